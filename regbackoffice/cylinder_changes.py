"""What changed in the archive and when: status history and the changes feed.

Status history. Every change of a cylinder's 使用状态 is kept with the date it took effect
(``CylinderStatusChange``), written by a flush listener, so no writer can forget it: a new
cylinder's status takes effect on its registration date; ``set_status(cylinder, status,
effective_on)`` names the date (an inspection's date); any other change takes effect today
(China date). ``statuses_as_of`` answers what a cylinder's status was on a given day: a fill
dated 11-10 and sent after a 报废 inspection dated 11-25 was not a fill of a scrapped cylinder.

Changes feed (``/api/v1/cylinders/changes``). Each cylinder row carries ``change_seq``, its
position in the feed. A number taken from a sequence at write time would not do: a
transaction that took number 5 may commit after one that took 6, and a terminal that read
6 and moved its cursor past it would never see 5. So numbers are assigned at commit time,
under the lock of the single ``cylinder_change_counter`` row (taken in ``before_commit``,
after every other lock of the transaction, held only through the commit): a transaction
that gets a higher number waits until every lower number is committed, so commit order is
number order and every snapshot sees a gap-free prefix. A cursor (``encode_cursor``) is
just the last number a terminal has read: opaque to it, stateless here, valid across
restarts. SQLite (the demo) runs the same code; it has one writer at a time anyway.

Departures. A 过户 moves the cylinder's row to the receiving unit's feed; the sending unit's
feed announces it once more as a departure (``record_departure``: one
``CylinderDeparture`` row per unit and cylinder, numbered from the same counter in the same
commit), so an offline terminal of the sender drops it. When a cylinder comes back to a
unit its departure row there is deleted: the cylinder row, numbered later, is the news.

Writers must change cylinders through the ORM (the flush listener sees those); a bulk
``UPDATE cylinders`` would neither be numbered nor keep the history.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, event, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from . import bulk_sql
from .clock import china_today
from .extensions import db
from .models import (
    Cylinder,
    CylinderChangeCounter,
    CylinderDeparture,
    CylinderStatus,
    CylinderStatusChange,
    utcnow,
)

_CHANGED = "regbo_changed_cylinders"
_DEPARTED = "regbo_departures_to_number"
_EFFECTIVE = "_regbo_status_effective_on"  # set on a Cylinder by set_status
COUNTER_ID = 1


def set_status(cylinder: Cylinder, status: CylinderStatus, effective_on: date) -> None:
    """Change the status, recording that it took effect on ``effective_on``."""
    if cylinder.status is status:
        return
    setattr(cylinder, _EFFECTIVE, effective_on)
    cylinder.status = status


def record_departure(
    cylinder: Cylinder,
    from_unit_id: int,
    change_request_id: int | None,
    left_on: date,
    session: Session | None = None,
) -> None:
    """``cylinder`` (already moved to its new unit) left ``from_unit_id`` by 过户.

    Call after the cylinder's new owner, name, district and certificate are set; numbered
    when ``session`` (the request's by default) commits.
    """
    session = session or db.session()
    session.execute(
        delete(CylinderDeparture).where(
            CylinderDeparture.cylinder_id == cylinder.id,
            CylinderDeparture.unit_id.in_([from_unit_id, cylinder.use_unit_id]),
        )
    )
    session.add(
        CylinderDeparture(
            unit_id=from_unit_id,
            cylinder_id=cylinder.id,
            change_request_id=change_request_id,
            to_unit_id=cylinder.use_unit_id,
            to_unit_name=cylinder.use_unit_name,
            to_district_code=cylinder.district_code,
            to_certificate_no=cylinder.certificate_no,
            to_registration_authority=cylinder.registration_authority,
            left_on=left_on,
        )
    )
    session.info[_DEPARTED] = True


# --- flush and commit listeners ----------------------------------------------------------


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush_context: Any) -> None:
    changed: set[str] = session.info.setdefault(_CHANGED, set())
    history_rows: list[dict[str, Any]] = []
    now = utcnow()
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, Cylinder):
            continue
        is_new = obj in session.new
        if not is_new and not session.is_modified(obj, include_collections=False):
            continue
        changed.add(obj.id)
        status_history = sa_inspect(obj).attrs.status.history
        if is_new:
            previous, status = None, obj.status or CylinderStatus.IN_USE
            effective = getattr(obj, _EFFECTIVE, None) or obj.registration_date or china_today()
        elif status_history.added and status_history.deleted:
            previous, status = status_history.deleted[0], status_history.added[0]
            if previous is status:
                continue
            effective = getattr(obj, _EFFECTIVE, None) or china_today()
        else:
            continue
        obj.__dict__.pop(_EFFECTIVE, None)
        history_rows.append(
            {
                "cylinder_id": obj.id,
                "previous_status": previous,
                "status": status,
                "effective_on": effective,
                "recorded_at": now,
            }
        )
    if history_rows:
        history = cast(Table, CylinderStatusChange.__table__)
        session.connection().execute(history.insert(), history_rows)


@event.listens_for(Session, "before_commit")
def _number_changes(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a SAVEPOINT release: number at the real commit
    if (
        not session.info.get(_CHANGED)
        and not session.info.get(_DEPARTED)
        and not (session.new or session.dirty)
    ):
        return
    session.flush()
    changed = sorted(session.info.pop(_CHANGED, set()))
    connection = session.connection()
    departures = cast(Table, CylinderDeparture.__table__)
    departed: list[int] = []
    if session.info.pop(_DEPARTED, False):
        # Only this transaction's rows are unnumbered (every committed one has its number).
        departed = list(
            connection.execute(
                select(departures.c.id)
                .where(departures.c.change_seq.is_(None))
                .order_by(departures.c.id)
            ).scalars()
        )
    total = len(changed) + len(departed)
    if not total:
        return
    counter = cast(Table, CylinderChangeCounter.__table__)
    # The lock that orders the feed: held from here to the end of the commit.
    updated = connection.execute(
        update(counter)
        .where(counter.c.id == COUNTER_ID)
        .values(last_seq=counter.c.last_seq + total)
    )
    if updated.rowcount == 0:  # a database created without the migration's row
        connection.execute(counter.insert().values(id=COUNTER_ID, last_seq=total))
    last = connection.execute(
        select(counter.c.last_seq).where(counter.c.id == COUNTER_ID)
    ).scalar_one()
    first = last - total + 1
    # Departures first: the sender's news, then the cylinders as they now are.
    if departed:
        connection.execute(
            update(departures)
            .where(departures.c.id == bindparam("did"))
            .values(change_seq=bindparam("seq")),
            [{"did": did, "seq": first + n} for n, did in enumerate(departed)],
        )
        first += len(departed)
    table = cast(Table, Cylinder.__table__)
    if changed:
        connection.execute(
            update(table).where(table.c.id == bindparam("cid")).values(change_seq=bindparam("seq")),
            [{"cid": cid, "seq": first + n} for n, cid in enumerate(changed)],
        )
    # The ORM objects still hold the old number; read it again if asked.
    for cid in changed:
        obj = session.identity_map.get(session.identity_key(Cylinder, cid))
        if obj is not None:
            session.expire(obj, ["change_seq"])


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    if session.get_nested_transaction() is None:
        session.info.pop(_CHANGED, None)
        session.info.pop(_DEPARTED, None)


# --- status as of a date -----------------------------------------------------------------


def statuses_as_of(
    cylinders: Iterable[Cylinder], wanted: Iterable[tuple[str, date]]
) -> dict[tuple[str, date], CylinderStatus]:
    """The status of each (cylinder id, day) asked for, from the recorded history.

    The latest change effective on or before the day wins; before the first recorded change
    the status is that change's previous status; with no history, the current status.
    A cylinder read with ``has_status_history`` false (a batch's rows) is not looked up: it
    is left out of the answer, its status on every day being its current one.
    """
    by_id = {c.id: c for c in cylinders if getattr(c, "has_status_history", True)}
    pairs = {(cid, day) for cid, day in wanted if cid in by_id}
    if not pairs:
        return {}
    ids = sorted({cid for cid, _ in pairs})
    rows = db.session.execute(
        select(
            CylinderStatusChange.cylinder_id,
            CylinderStatusChange.previous_status,
            CylinderStatusChange.status,
            CylinderStatusChange.effective_on,
        )
        .where(bulk_sql.id_in(CylinderStatusChange.cylinder_id, ids))
        .order_by(
            CylinderStatusChange.cylinder_id,
            CylinderStatusChange.effective_on,
            CylinderStatusChange.id,
        )
    ).all()
    history: dict[str, list[Any]] = {}
    for row in rows:
        history.setdefault(row.cylinder_id, []).append(row)
    answer: dict[tuple[str, date], CylinderStatus] = {}
    for cid, day in pairs:
        changes = history.get(cid)
        if not changes:
            answer[(cid, day)] = by_id[cid].status
            continue
        effective = [c for c in changes if c.effective_on <= day]
        if effective:
            answer[(cid, day)] = effective[-1].status
        else:
            first = changes[0]
            answer[(cid, day)] = first.previous_status or first.status
    return answer


# --- the changes feed --------------------------------------------------------------------

# "c1." + the last change number read. Opaque to terminals (they store and send it back,
# never build one); the version prefix lets the format change later. Every string of
# this form is a valid cursor, so the OpenAPI pattern says exactly what is accepted.
CURSOR_PREFIX = "c1."
CURSOR_PATTERN = r"^c1\.[0-9]{1,18}$"
_CURSOR_RE = re.compile(r"c1\.([0-9]{1,18})", re.ASCII)


class BadCursor(ValueError):
    """The cursor was not one this server hands out."""


def encode_cursor(seq: int) -> str:
    return f"{CURSOR_PREFIX}{seq}"


def decode_cursor(cursor: str) -> int:
    match = _CURSOR_RE.fullmatch(cursor)
    if match is None:
        raise BadCursor(cursor)
    return int(match.group(1))


@dataclass(frozen=True)
class FeedEntry:
    """One change in a unit's feed: the cylinder as it is, or its departure by 过户."""

    seq: int
    cylinder: Cylinder
    departure: CylinderDeparture | None = None


@dataclass(frozen=True)
class ChangesPage:
    entries: list[FeedEntry]
    cursor: str
    more: bool


def changes_since(unit_id: int, cursor: str | None, limit: int) -> ChangesPage:
    """The unit's cylinders changed after ``cursor`` and those that left it by 过户,
    oldest change first (two bounded index scans, merged)."""
    after = 0 if cursor is None else decode_cursor(cursor)
    # A cursor past the end (never handed out) is taken as the end, so that it cannot make
    # a terminal skip changes still to come.
    last_seq = db.session.scalar(
        select(CylinderChangeCounter.last_seq).where(CylinderChangeCounter.id == COUNTER_ID)
    )
    after = min(after, last_seq or 0)
    entries = [
        FeedEntry(c.change_seq or 0, c)
        for c in db.session.scalars(
            select(Cylinder)
            .where(Cylinder.use_unit_id == unit_id, Cylinder.change_seq > after)
            .order_by(Cylinder.change_seq)
            .limit(limit + 1)
        )
    ]
    entries += [
        FeedEntry(d.change_seq or 0, c, d)
        for d, c in db.session.execute(
            select(CylinderDeparture, Cylinder)
            .join(Cylinder, Cylinder.id == CylinderDeparture.cylinder_id)
            .where(CylinderDeparture.unit_id == unit_id, CylinderDeparture.change_seq > after)
            .order_by(CylinderDeparture.change_seq)
            .limit(limit + 1)
        ).tuples()
    ]
    entries.sort(key=lambda e: e.seq)
    more = len(entries) > limit
    entries = entries[:limit]
    last = entries[-1].seq if entries else after
    return ChangesPage(entries, encode_cursor(last), more)
