"""Records sent by enterprise platforms: fillings, inspections and trace events.

A batch (≤ 500 records) is answered record by record: valid records are stored, invalid
ones answered with their reasons (records that cannot be true, such as a fill before the
cylinder was made or a 下次检验日期 beyond the inspection interval, are refused before their
``record_no`` is claimed, so the corrected record can be sent under it), and duplicates
(the same ``record_no`` from the same client, ever) are stored once and answered with the
first answer (its code, ``violation`` and ``reasons``), flagged ``replay``: a platform that
lost the reply still learns whether the fill was a violation. Fillings are judged by the
cylinder's status as of their fill date (``cylinder_changes.statuses_as_of``).

Idempotency rests on unique keys in the database (``api_record_keys``, which also keeps
each record's first answer, and ``api_idempotency_keys``), inserted with ON CONFLICT DO
NOTHING: a concurrent duplicate waits on the first insert's row lock and then sees the
conflict, so it is stored once however the requests interleave.

Inspection records update the archive (``apply_inspection``):
- 定期 with a passing conclusion: 最近一次检验日期 and 下次检验日期 are taken over;
- a conclusion containing 不合格 (or 判废/报废): the cylinder is set to 停用 (it must not be
  filled until a district clerk looks at it; 停用 is reversible, 报废 is not) and its last
  inspection date recorded, the next inspection month left as it was;
- 报废处置: the cylinder is set to 报废 (effective on the inspection date);
- a 定期 inspection of a 报废 cylinder is stored and answered with a ``warning``; the archive
  is left as it is (报废 is final).
An inspection older than the archive's last inspection is stored but changes nothing, and a
later passing inspection does not put a stopped cylinder back into use by itself: 停用 may
have other causes, so the district re-enables it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, cast

from flask import current_app
from sqlalchemy import Insert, Table, Text, any_, bindparam, exists, select
from sqlalchemy.dialects import postgresql, sqlite

from . import audit, bulk_sql, change_workflow, cylinder_changes, inspection_rules, interlock
from .api_validation import FILLING, INSPECTION, TRACE, RecordSpec
from .clock import china_date
from .driver_sql import DriverStatement
from .extensions import db
from .models import (
    ApiCaller,
    ApiClient,
    ApiIdempotencyKey,
    ApiRecordKey,
    Cylinder,
    CylinderStatus,
    CylinderStatusChange,
    FillingRecord,
    InspectionRecord,
    TraceEvent,
    utcnow,
)
from .models.base import Model

# The client of a batch: the plain row (fillings, traces) or the ORM object (inspections).
Caller = ApiClient | ApiCaller

SPECS: dict[str, RecordSpec] = {"filling": FILLING, "inspection": INSPECTION, "trace": TRACE}
FAILED_CONCLUSIONS = ("不合格", "判废", "报废")
# How many of each kind the trail query returns (newest first).
TRAIL_LIMIT = 100
LAST_DATA_RESOLUTION = timedelta(minutes=1)


def _insert(table: Any) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING for the current backend."""
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()


def find_cylinder(
    *,
    id: str | None = None,
    info_code: str | None = None,
    qr_content: str | None = None,
    identity: tuple[str, str, str] | None = None,
    for_update: bool = False,
) -> Cylinder | None:
    """The archive record named by one of the API's lookup keys."""
    from .identity import identity_key

    query = select(Cylinder)
    if id is not None:
        query = query.where(Cylinder.id == id)
    elif info_code is not None:
        query = query.where(Cylinder.info_code == info_code)
    elif qr_content is not None:
        query = query.where(Cylinder.qr_content == qr_content).order_by(Cylinder.id).limit(1)
    elif identity is not None:
        query = query.where(Cylinder.identity_key == identity_key(*identity))
    else:
        return None
    if for_update:
        query = query.with_for_update()
    return db.session.scalar(query)


class InterlockFacts(NamedTuple):
    """The interlock's columns of one cylinder (``INTERLOCK_COLUMNS``, in that order), and
    whether it has a status history (read for a batch's cylinders: most have none, their
    status on any day is the current one, and ``cylinder_changes.statuses_as_of`` skips
    them; unknown, so looked up, when not read).

    A plain tuple rather than a statement's Row: judging a record reads about ten of its
    attributes, and a Row's attribute lookup costs ten times a tuple's.
    """

    id: str
    status: CylinderStatus
    next_inspection_month: str | None
    medium_code: str
    use_unit_id: int
    variety_code: str
    manufacture_month: str
    design_life_years: int | None
    last_inspection_date: date | None
    has_status_history: bool = True


# What the interlock reads of a cylinder (``interlock.CylinderFacts``), as the table's own
# columns rather than the ORM attributes: a statement of plain columns skips the ORM's
# compile step in Session.execute (≈ 0.09 ms a statement on the check's hot path). The
# fields with a default are not columns.
_CYLINDERS = cast(Table, Cylinder.__table__)
INTERLOCK_COLUMNS = tuple(
    _CYLINDERS.c[name]
    for name in InterlockFacts._fields
    if name not in InterlockFacts._field_defaults
)

_FACTS_WITH_HISTORY_FLAG = select(
    *INTERLOCK_COLUMNS,
    exists().where(CylinderStatusChange.cylinder_id == _CYLINDERS.c.id).label("has_status_history"),
)

# A batch's cylinders, straight on the driver (``driver_sql``; PostgreSQL: ``id_in``'s form).
_FACTS_WITH_HISTORY_FLAG_BY_IDS = DriverStatement(
    _FACTS_WITH_HISTORY_FLAG.where(
        _CYLINDERS.c.id == any_(bulk_sql.elements_of(bindparam("ids", type_=Text)))
    )
)

# Built once (the check runs them on every call): no construction or cache-key work.
_FACTS_BY_ID = select(*INTERLOCK_COLUMNS).where(_CYLINDERS.c.id == bindparam("key"))
_FACTS_BY_INFO_CODE = select(*INTERLOCK_COLUMNS).where(_CYLINDERS.c.info_code == bindparam("key"))


def interlock_facts(
    *, id: str | None = None, info_code: str | None = None, **_other: Any
) -> interlock.CylinderFacts | None:
    """The interlock's columns of the cylinder with this ID or 信息化编码 (one Core row).

    The check's hot path: no ORM object is built for a cylinder that is only read.
    """
    if id is not None:
        row = db.session.execute(_FACTS_BY_ID, {"key": id}).first()
    elif info_code is not None:
        row = db.session.execute(_FACTS_BY_INFO_CODE, {"key": info_code}).first()
    else:
        return None
    return cast("interlock.CylinderFacts | None", row)


@dataclass
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "results": self.results,
            "replay": False,
        }


def _claim_record_nos(
    client: Caller, kind: str, answers: dict[str, dict[str, Any] | None]
) -> set[str]:
    """Insert the keys not yet stored, each with its answer when known already.

    Returns the record numbers this call inserted (the rest were sent before: duplicates).
    """
    if not answers:
        return set()
    same = _key_constants(client, kind)
    rows = [{"record_no": no, "answer": a} for no, a in answers.items()]
    if bulk_sql.on_postgresql():
        table = cast(Table, ApiRecordKey.__table__)
        found = bulk_sql.json_rows_insert(
            table, rows, constants=same, skip_conflicts=True, returning="record_no"
        )
        return set(found)
    inserted = db.session.execute(
        _insert(ApiRecordKey.__table__).returning(ApiRecordKey.record_no),
        [{**row, **same} for row in rows],
    )
    return set(inserted.scalars())


def _key_constants(client: Caller, kind: str) -> dict[str, Any]:
    """The columns a batch's record keys share."""
    return {"client_id": client.id, "kind": kind, "created_at": utcnow()}


def _stores(
    index: int, clean: dict[str, Any], first_index: dict[str, int], claimed: set[str]
) -> bool:
    """Whether this call stores the record: no record_no, or the first one of a new key."""
    record_no = clean.get("record_no")
    return record_no is None or (record_no in claimed and first_index[record_no] == index)


def _first_answers(client: Caller, kind: str, record_nos: Iterable[str]) -> dict[str, Any]:
    """The stored first answers of these record numbers (None for keys stored before 0010)."""
    wanted = sorted(set(record_nos))
    if not wanted:
        return {}
    rows = db.session.execute(
        select(ApiRecordKey.record_no, ApiRecordKey.answer).where(
            ApiRecordKey.client_id == client.id,
            ApiRecordKey.kind == kind,
            bulk_sql.id_in(ApiRecordKey.record_no, wanted),
        )
    )
    return {row.record_no: row.answer for row in rows}


def _remember_answers(client: Caller, kind: str, answers: dict[str, dict[str, Any]]) -> None:
    if not answers:
        return
    table = cast(Table, ApiRecordKey.__table__)
    db.session.execute(
        table.update()
        .where(
            table.c.client_id == client.id,
            table.c.kind == kind,
            table.c.record_no == bindparam("no"),
        )
        .values(answer=bindparam("first_answer")),
        [{"no": no, "first_answer": answer} for no, answer in answers.items()],
    )


ACCEPTED = "已接收"


def filling_message(reason_messages: Iterable[str]) -> str:
    """A stored filling's answer message: accepted, or accepted as a violation and why."""
    why = "；".join(reason_messages)
    return f"{ACCEPTED}，记为违规充装：{why}" if why else ACCEPTED


def _kept_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """A first answer as its record key keeps it, for replays: without what the replay
    knows anyway (index, record_no) and, for a filling, without the message its reasons
    spell out (``filling_message``). Half the bytes of a batch's keys."""
    kept = {k: v for k, v in answer.items() if k not in ("index", "record_no", "message")}
    if "violation" not in answer:  # not a filling: its message says what the reasons cannot
        kept["message"] = answer["message"]
    return kept


def replayed_answer(index: int, record_no: str, first: dict[str, Any] | None) -> dict[str, Any]:
    """A re-sent record's answer: the first answer (code, violation, reasons), as a replay."""
    if first is None:  # a key stored before first answers were kept
        return {
            "index": index,
            "code": "409",
            "message": f"重复记录：记录编号“{record_no}”已接收，不再重复存储",
            "record_no": record_no,
            "replay": True,
        }
    answer = {k: v for k, v in first.items() if k != "index"}
    first_message = first.get("message")
    if first_message is None:  # a filling's, kept without it (_kept_answer)
        first_message = filling_message(r["message"] for r in first.get("reasons", ()))
    return {
        "index": index,
        **answer,
        "message": f"重复记录：记录编号“{record_no}”已接收，未重复存储；首次答复：{first_message}",
        "record_no": record_no,
        "replay": True,
    }


def submit_batch(client: Caller, kind: str, raw_records: Sequence[Any]) -> BatchResult:
    """Validate and store one batch; flushes, audits, and answers record by record."""
    spec = SPECS[kind]
    result = BatchResult()
    valid: list[tuple[int, dict[str, Any]]] = []
    outcome: dict[int, dict[str, Any]] = {}
    for index, raw in enumerate(raw_records):
        clean, errors = spec.validate(raw)
        if errors:
            outcome[index] = {
                "index": index,
                "code": "400",
                "message": "；".join(e["message"] for e in errors),
                "errors": errors,
            }
        else:
            valid.append((index, clean))

    cylinders = _cylinders_for(
        (clean["id"] for _, clean in valid), for_update=(kind == "inspection")
    )
    # Records that cannot be true (dates before the cylinder was made, intervals longer
    # than the rules allow …) are answered before any record number is claimed, so that
    # the corrected record can be sent again under the same record_no.
    still_valid = []
    for index, clean in valid:
        refusal = REFUSALS[kind](clean, cylinders.get(clean["id"]))
        if refusal is None:
            still_valid.append((index, clean))
        else:
            outcome[index] = _rejected(index, *refusal)
    valid = still_valid

    # The first occurrence of each record_no in this batch; the others are its replays.
    first_index: dict[str, int] = {}
    for index, clean in valid:
        if "record_no" in clean:
            first_index.setdefault(clean["record_no"], index)
    if kind == "inspection":
        # Inspections change the archive as they are stored (oldest first): claim, store
        # the claimed ones, then keep their answers.
        claimed = _claim_record_nos(client, kind, dict.fromkeys(first_index))
        mine = [(i, c) for i, c in valid if _stores(i, c, first_index, claimed)]
        outcome.update(_store_inspections(client, mine, cylinders))
        _remember_answers(
            client,
            kind,
            {no: _kept_answer(outcome[i]) for no, i in first_index.items() if no in claimed},
        )
    else:
        # Fillings and traces are judged without storing anything, so each key is claimed
        # together with its answer and only the claimed records are inserted.
        judged = JUDGES[kind](client, valid, cylinders)
        answers: dict[str, dict[str, Any] | None] = {
            no: _kept_answer(judged[i][0]) for no, i in first_index.items()
        }
        if bulk_sql.on_postgresql():
            # The keys and the rows of the first occurrences in one statement: a row is
            # stored when its record_no is new (claimed) or absent.
            every_key = set(first_index)  # built once: per record it made the batch O(n²)
            firsts = [i for i, c in valid if _stores(i, c, first_index, every_key)]
            claimed = bulk_sql.claim_and_insert(
                cast(Table, ApiRecordKey.__table__),
                [{"record_no": no, "answer": answer} for no, answer in answers.items()],
                cast(Table, MODELS[kind].__table__),
                [judged[i][1] for i in firsts],
                key_constants=_key_constants(client, kind),
                constants=_row_constants(client),
            )
            for index, clean in valid:
                if _stores(index, clean, first_index, claimed):
                    outcome[index] = judged[index][0]
        else:
            claimed = _claim_record_nos(client, kind, answers)
            rows = []
            for index, clean in valid:
                if _stores(index, clean, first_index, claimed):
                    outcome[index], row = judged[index]
                    rows.append(row)
            _insert_rows(MODELS[kind], rows, _row_constants(client))

    pending = [(i, c["record_no"]) for i, c in valid if i not in outcome]
    stored_first = _first_answers(client, kind, [no for _, no in pending if no not in claimed])
    for index, record_no in pending:
        first = (
            outcome[first_index[record_no]] if record_no in claimed else stored_first.get(record_no)
        )
        outcome[index] = replayed_answer(index, record_no, first)

    for index in range(len(raw_records)):
        answer = outcome[index]
        result.results.append(answer)
        if answer.get("replay"):
            result.duplicates += 1
        elif answer["code"] == "200":
            result.accepted += 1
        else:
            result.rejected += 1
    now = utcnow()
    # One row per client, written by each of its batches: at most once a minute, so that a
    # client's concurrent batches do not queue on the row lock.
    if result.accepted and (
        client.last_data_at is None or now - client.last_data_at >= LAST_DATA_RESOLUTION
    ):
        _mark_data_received(client, now)
    db.session.flush()
    return result


def _mark_data_received(client: Caller, now: datetime) -> None:
    """The client's ``last_data_at``: on the ORM object, or one UPDATE for a plain row."""
    if isinstance(client, ApiClient):
        client.last_data_at = now
    else:
        table = cast(Table, ApiClient.__table__)
        db.session.execute(table.update().where(table.c.id == client.id).values(last_data_at=now))


# --- Records that cannot be true ------------------------------------------------------

EARLIEST_FILL_DATE = date(2000, 1, 1)


def _made_on(cylinder: Cylinder) -> date:
    """The first day of the cylinder's 制造年月."""
    year, month = map(int, cylinder.manufacture_month.split("-"))
    return date(year, month, 1)


def _filling_refusal(clean: dict[str, Any], cylinder: Cylinder | None) -> tuple[str, str] | None:
    filled: date = clean["fill_date"]
    if filled < EARLIEST_FILL_DATE:
        return "fill_date", f"充装日期{filled.isoformat()}早于2000年，不是可能的充装日期，请核对"
    if cylinder is not None and filled < _made_on(cylinder):
        return (
            "fill_date",
            f"充装日期{filled.isoformat()}早于气瓶制造年月{cylinder.manufacture_month}，"
            "气瓶制造前不可能充装，请核对充装日期或气瓶档案ID",
        )
    return None


def _trace_refusal(clean: dict[str, Any], cylinder: Cylinder | None) -> tuple[str, str] | None:
    if cylinder is None:
        return None
    day = china_date(clean["time"])
    if day < _made_on(cylinder):
        return (
            "time",
            f"溯源轨迹日期{day.isoformat()}早于气瓶制造年月{cylinder.manufacture_month}，"
            "气瓶制造前不可能有流转记录，请核对日期或气瓶档案ID",
        )
    return None


def _inspection_refusal(clean: dict[str, Any], cylinder: Cylinder | None) -> tuple[str, str] | None:
    if cylinder is None:
        # An inspection body inspects registered cylinders only: an unknown ID is an error.
        return "id", f"气瓶档案ID“{clean['id']}”不存在"
    inspected: date = clean["inspect_date"]
    if inspected < _made_on(cylinder):
        return (
            "inspect_date",
            f"检验日期{inspected.isoformat()}早于气瓶制造年月{cylinder.manufacture_month}，请核对",
        )
    passing_periodic = clean["inspect_type"] == "定期" and not inspection_failed(
        clean["conclusion"]
    )
    next_month = clean.get("next_inspection_month")
    if passing_periodic and next_month is None:
        return "next_inspection_month", "定期检验合格时须提供下次检验日期"
    if next_month is not None and next_month <= inspected.strftime("%Y-%m"):
        return "next_inspection_month", "下次检验日期应晚于检验日期所在月份"
    error = inspection_rules.next_inspection_error(
        cylinder.variety_code,
        cylinder.medium_code,
        cylinder.manufacture_month,
        inspected,
        next_month,
        current_app.config["INSPECTION_INTERVAL_RULES"],
    )
    if error:
        return "next_inspection_month", error
    return None


REFUSALS = {
    "filling": _filling_refusal,
    "inspection": _inspection_refusal,
    "trace": _trace_refusal,
}


def _rejected(index: int, field_key: str, message: str) -> dict[str, Any]:
    return {
        "index": index,
        "code": "400",
        "message": message,
        "errors": [{"field": field_key, "message": message}],
    }


def _cylinders_for(ids: Iterable[str], *, for_update: bool = False) -> dict[str, Cylinder]:
    """The archive records of these IDs: ORM objects, locked, when they are to be changed
    (inspections); otherwise ``InterlockFacts`` tuples of the interlock's columns (fillings
    and traces only read them: no ORM objects for 500 cylinders per batch)."""
    wanted = sorted(set(ids))  # sorted: concurrent batches lock rows in the same order
    if not wanted:
        return {}
    if not for_update:
        if bulk_sql.on_postgresql():
            rows = _FACTS_WITH_HISTORY_FLAG_BY_IDS.all({"ids": bulk_sql.json_list(wanted)})
        else:
            query = _FACTS_WITH_HISTORY_FLAG.where(_CYLINDERS.c.id.in_(wanted))
            rows = db.session.execute(query).all()
        return {
            row[0]: cast(Cylinder, InterlockFacts(row[0], CylinderStatus(row[1]), *row[2:]))
            for row in rows
        }
    query = select(Cylinder).where(bulk_sql.id_in(Cylinder.id, wanted)).order_by(Cylinder.id)
    return {c.id: c for c in db.session.scalars(query.with_for_update())}


def _accepted(index: int, clean: dict[str, Any], message: str = ACCEPTED) -> dict[str, Any]:
    answer: dict[str, Any] = {"index": index, "code": "200", "message": message}
    if "record_no" in clean:
        answer["record_no"] = clean["record_no"]
    return answer


def _row_constants(client: Caller) -> dict[str, Any]:
    """The columns a batch's stored fillings or trace events share (not in each row)."""
    return {"client_id": client.id, "received_at": utcnow()}


def _insert_rows(model: type[Model], rows: list[dict[str, Any]], constants: dict[str, Any]) -> None:
    """One INSERT of all rows (no RETURNING: append-only rows nobody reads back here):
    one JSON document on PostgreSQL (``bulk_sql.json_rows_insert``), an executemany
    elsewhere. ``constants``: the columns every row shares."""
    if not rows:
        return
    table = cast(Table, model.__table__)
    if bulk_sql.on_postgresql():
        bulk_sql.json_rows_insert(table, rows, constants=constants)
    else:
        db.session.execute(table.insert(), [{**row, **constants} for row in rows])


def _judge_fillings(
    client: Caller, records: list[tuple[int, dict[str, Any]]], cylinders: dict[str, Cylinder]
) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    """Each filling's answer and row (the interlock's verdict as of its fill date)."""
    rules = current_app.config["SERVICE_LIFE_RULES"]
    judged: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    # A record sent late is judged by the cylinder's status on its fill date.
    statuses = cylinder_changes.statuses_as_of(
        cylinders.values(), ((clean["id"], clean["fill_date"]) for _, clean in records)
    )
    # What a verdict says (message, codes, reasons), spelled out once per distinct verdict:
    # a batch's records mostly share a few. Only serialised, never changed afterwards.
    spelled: dict[tuple[interlock.Reason, ...], tuple[str, list[str], list[dict[str, str]]]] = {}
    for index, clean in records:
        reasons = tuple(
            interlock.check(
                cylinders.get(clean["id"]),
                clean["medium_code"],
                client.unit_id,
                clean["fill_date"],
                rules,
                status=statuses.get((clean["id"], clean["fill_date"])) if statuses else None,
            )
        )
        parts = spelled.get(reasons)
        if parts is None:
            parts = spelled[reasons] = (
                filling_message(r.message for r in reasons),
                [r.code for r in reasons],
                [r.as_dict() for r in reasons],
            )
        message, codes, reason_dicts = parts
        row = {  # client_id and received_at: _row_constants
            "record_no": clean.get("record_no"),
            "cylinder_id": clean["id"],
            "medium_code": clean["medium_code"],
            "filler": clean["filler"],
            "fill_date": clean["fill_date"],
            "filling_unit_name": clean["filling_unit_name"],
            "violation": bool(reasons),
            "violation_reasons": codes,
        }
        answer = _accepted(index, clean, message)
        answer["violation"] = bool(reasons)
        if reasons:
            answer["reasons"] = reason_dicts
        judged[index] = (answer, row)
    return judged


def inspection_failed(conclusion: str) -> bool:
    return any(word in conclusion for word in FAILED_CONCLUSIONS)


def apply_inspection(cylinder: Cylinder, record: dict[str, Any]) -> str:
    """Bring the archive up to date with one inspection; returns what changed (Chinese)."""
    inspected: date = record["inspect_date"]
    if cylinder.status is CylinderStatus.CANCELLED:
        return "气瓶已注销使用登记，档案未更新"
    if record["inspect_type"] == "报废处置":
        cylinder_changes.set_status(cylinder, CylinderStatus.SCRAPPED, inspected)
        if cylinder.last_inspection_date is None or inspected > cylinder.last_inspection_date:
            cylinder.last_inspection_date = inspected
        return "档案已更新：使用状态为报废"
    if cylinder.status is CylinderStatus.SCRAPPED:
        # 报废 is final: a later periodic inspection must not bring dates back to life.
        return "档案未更新"
    if cylinder.last_inspection_date is not None and inspected < cylinder.last_inspection_date:
        return "早于档案中的最近一次检验日期，档案未更新"
    cylinder.last_inspection_date = inspected
    if inspection_failed(record["conclusion"]):
        if cylinder.status is CylinderStatus.IN_USE:
            cylinder_changes.set_status(cylinder, CylinderStatus.STOPPED, inspected)
        return "档案已更新：检验不合格，使用状态为停用"
    cylinder.next_inspection_month = record["next_inspection_month"]
    return "档案已更新：最近一次检验日期与下次检验日期"


def _store_inspections(
    client: Caller, records: list[tuple[int, dict[str, Any]]], cylinders: dict[str, Cylinder]
) -> dict[int, dict[str, Any]]:
    answers: dict[int, dict[str, Any]] = {}
    # Oldest first, so that the archive ends with the newest inspection's result.
    for index, clean in sorted(records, key=lambda item: item[1]["inspect_date"]):
        cylinder = cylinders[clean["id"]]
        warning = None
        if clean["inspect_type"] == "定期" and cylinder.status is CylinderStatus.SCRAPPED:
            warning = (
                f"警告：气瓶{cylinder.id}已报废，不应再做定期检验；记录已保存，档案未更新，"
                "请核对气瓶档案ID"
            )
        inspection = InspectionRecord(
            client_id=client.id,
            record_no=clean.get("record_no"),
            cylinder_id=cylinder.id,
            inspect_date=clean["inspect_date"],
            inspection_org=clean["inspection_org"],
            next_inspection_month=clean.get("next_inspection_month"),
            conclusion=clean["conclusion"],
            inspect_type=clean["inspect_type"],
        )
        db.session.add(inspection)
        was_cancelled = cylinder.status is CylinderStatus.CANCELLED
        change = apply_inspection(cylinder, clean)
        if not was_cancelled and (
            clean["inspect_type"] == "报废处置" or inspection_failed(clean["conclusion"])
        ):
            # 判废 / 不合格: the district's clerk confirms 注销 or sends it back to the unit.
            db.session.flush()
            change_workflow.open_from_inspection(cylinder, inspection)
        audit.record(
            "cylinder_inspection_applied",
            object_type="cylinder",
            object_id=cylinder.id,
            conclusion=clean["conclusion"],
            inspect_type=clean["inspect_type"],
            change=change,
        )
        if warning:
            answer = _accepted(index, clean, f"已接收，{warning}")
            answer["warning"] = warning
        else:
            answer = _accepted(index, clean, f"已接收，{change}")
        answers[index] = answer
    return answers


def _judge_traces(
    client: Caller, records: list[tuple[int, dict[str, Any]]], cylinders: dict[str, Cylinder]
) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    judged: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for index, clean in records:
        row = {  # client_id and received_at: _row_constants
            "record_no": clean.get("record_no"),
            "cylinder_id": clean["id"],
            "event_time": clean["time"],
            "node": clean["node"],
            "actor": clean["actor"],
        }
        message = "已接收" if clean["id"] in cylinders else "已接收（该ID未在档案中登记）"
        judged[index] = (_accepted(index, clean, message), row)
    return judged


JUDGES = {"filling": _judge_fillings, "trace": _judge_traces}
MODELS = {"filling": FillingRecord, "trace": TraceEvent}


# --- Idempotency-Key -------------------------------------------------------------------


class IdempotencyConflict(Exception):
    """The key was used before with a different body or path."""


def body_hash(body: bytes) -> str:
    """Hash of the request's JSON, canonicalised (key order and spacing do not matter)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim_idempotency_key(
    client: Caller, key: str, path: str, digest: str
) -> ApiIdempotencyKey | None:
    """Claim ``key`` for this request: None when new, else the earlier request's row.

    Raises IdempotencyConflict when the key was used with another body or path.
    """
    inserted = db.session.execute(
        _insert(ApiIdempotencyKey.__table__).returning(ApiIdempotencyKey.id),
        [
            {
                "client_id": client.id,
                "key": key,
                "path": path,
                "body_sha256": digest,
                "created_at": utcnow(),
            }
        ],
    ).scalar()
    if inserted is not None:
        return None
    earlier = db.session.scalar(
        select(ApiIdempotencyKey).where(
            ApiIdempotencyKey.client_id == client.id, ApiIdempotencyKey.key == key
        )
    )
    assert earlier is not None
    if earlier.body_sha256 != digest or earlier.path != path:
        raise IdempotencyConflict
    return earlier


def remember_response(client: Caller, key: str, data: dict[str, Any]) -> None:
    row = db.session.scalar(
        select(ApiIdempotencyKey).where(
            ApiIdempotencyKey.client_id == client.id, ApiIdempotencyKey.key == key
        )
    )
    assert row is not None
    row.response = data


def replay_first_answer(data: dict[str, Any]) -> dict[str, Any]:
    """The earlier answer exactly (per-record codes, violation, reasons), flagged a replay."""
    return {**data, "replay": True}


# --- Queries ----------------------------------------------------------------------------


def violations(limit: int = 100, district_code: str | None = None) -> list[FillingRecord]:
    """违规充装 records, newest first (for the supervisors' lists)."""
    query = (
        select(FillingRecord)
        .where(FillingRecord.violation.is_(True))
        .order_by(FillingRecord.fill_date.desc(), FillingRecord.id.desc())
        .limit(limit)
    )
    if district_code is not None:
        query = query.where(
            FillingRecord.cylinder_id.in_(
                select(Cylinder.id).where(Cylinder.district_code == district_code)
            )
        )
    return list(db.session.scalars(query))


def trail(cylinder_id: str) -> dict[str, list[Any]]:
    """The newest fillings, inspections and trace events of one cylinder."""
    fillings = db.session.scalars(
        select(FillingRecord)
        .where(FillingRecord.cylinder_id == cylinder_id)
        .order_by(FillingRecord.fill_date.desc(), FillingRecord.id.desc())
        .limit(TRAIL_LIMIT)
    )
    inspections = db.session.scalars(
        select(InspectionRecord)
        .where(InspectionRecord.cylinder_id == cylinder_id)
        .order_by(InspectionRecord.inspect_date.desc(), InspectionRecord.id.desc())
        .limit(TRAIL_LIMIT)
    )
    events = db.session.scalars(
        select(TraceEvent)
        .where(TraceEvent.cylinder_id == cylinder_id)
        .order_by(TraceEvent.event_time.desc(), TraceEvent.id.desc())
        .limit(TRAIL_LIMIT)
    )
    return {"fillings": list(fillings), "inspections": list(inspections), "traces": list(events)}


def own_trail(cylinder_id: str, unit_id: int) -> dict[str, list[Any]]:
    """The fillings and trace events a unit's own clients sent under ``cylinder_id``."""
    own_clients = select(ApiClient.id).where(ApiClient.unit_id == unit_id)
    fillings = db.session.scalars(
        select(FillingRecord)
        .where(FillingRecord.cylinder_id == cylinder_id, FillingRecord.client_id.in_(own_clients))
        .order_by(FillingRecord.fill_date.desc(), FillingRecord.id.desc())
        .limit(TRAIL_LIMIT)
    )
    events = db.session.scalars(
        select(TraceEvent)
        .where(TraceEvent.cylinder_id == cylinder_id, TraceEvent.client_id.in_(own_clients))
        .order_by(TraceEvent.event_time.desc(), TraceEvent.id.desc())
        .limit(TRAIL_LIMIT)
    )
    return {"fillings": list(fillings), "traces": list(events)}
