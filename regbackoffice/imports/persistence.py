"""Persistence: archive and claim look-ups, and the insert that claims each cylinder."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select

from ..archive import CylinderData
from ..clock import china_today
from ..extensions import db
from ..identity import normalize_text
from ..models import Application, ApplicationItem, ApplicationStatus, Cylinder, TagType
from . import ImportRejected
from .rules import CodeTables, RowResult, validate_row


@dataclass
class ImportOutcome:
    total: int
    imported: int
    failed: list[dict[str, Any]]


Progress = Callable[[int, int], None]


def _chunks(items: list[str], size: int = 2000) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def archived_identities(keys: list[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for chunk in _chunks(keys):
        stmt = select(Cylinder.identity_key, Cylinder.certificate_no).where(
            Cylinder.identity_key.in_(chunk)
        )
        found.update(dict(db.session.execute(stmt).tuples().all()))
    return found


def claimed_identities(keys: list[str]) -> dict[str, tuple[int, str | None]]:
    found: dict[str, tuple[int, str | None]] = {}
    for chunk in _chunks(keys):
        stmt = (
            select(ApplicationItem.live_identity_key, Application.id, Application.number)
            .join(Application, Application.id == ApplicationItem.application_id)
            .where(ApplicationItem.live_identity_key.in_(chunk))
        )
        for key, app_id, number in db.session.execute(stmt):
            found[key] = (app_id, number)
    return found


def _insert_claiming(rows: list[dict[str, Any]]) -> set[str]:
    """Insert items, skipping any whose cylinder another live item claims (now or
    concurrently: the unique index decides); returns the keys that were inserted."""
    if not rows:
        return set()
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        return _copy_insert_claiming(rows)
    from sqlalchemy.dialects.sqlite import insert

    table = ApplicationItem.__table__
    inserted: set[str] = set()
    # Sorted by key, so two concurrent imports lock keys in one order (no deadlock).
    rows = sorted(rows, key=lambda r: r["live_identity_key"])
    for start in range(0, len(rows), 1000):
        stmt = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["live_identity_key"])
            .returning(table.c.live_identity_key)
        )
        result = db.session.execute(stmt, rows[start : start + 1000])
        inserted.update(result.scalars().all())
    return inserted


def _copy_insert_claiming(rows: list[dict[str, Any]]) -> set[str]:
    """PostgreSQL: COPY the rows into a temp table, then one INSERT … SELECT … ON CONFLICT
    DO NOTHING RETURNING (a multi-row VALUES statement is far slower to build and send)."""
    columns = list(rows[0])
    column_sql = ", ".join(columns)
    connection = db.session.connection().connection.driver_connection
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE import_items_incoming AS SELECT {column_sql}"
            " FROM application_items WITH NO DATA"
        )
        with cursor.copy(f"COPY import_items_incoming ({column_sql}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([v.value if isinstance(v, TagType) else v for v in row.values()])
        # Ordered by key, so two concurrent imports lock keys in one order (no deadlock).
        cursor.execute(
            f"INSERT INTO application_items ({column_sql})"
            f" SELECT {column_sql} FROM import_items_incoming ORDER BY live_identity_key"
            " ON CONFLICT (live_identity_key) DO NOTHING RETURNING live_identity_key"
        )
        inserted = {key for (key,) in cursor.fetchall()}
        cursor.execute("DROP TABLE import_items_incoming")
    return inserted


def import_rows(
    application: Application,
    rows: Iterable[tuple[int, list[Any]]],
    *,
    today: date | None = None,
    progress: Progress | None = None,
) -> ImportOutcome:
    """Validate ``rows`` and add the good ones to ``application`` (flushes, no commit)."""
    if application.status is not ApplicationStatus.DRAFT:
        raise ImportRejected("申请已提交，不能再导入气瓶")
    today = today or china_today()
    rows = list(rows)
    total = len(rows)
    codes = CodeTables.load()
    results: list[RowResult] = []
    first_row_of: dict[str, int] = {}
    for done, (row_no, cells) in enumerate(rows, start=1):
        result = validate_row(row_no, cells, codes, today)
        if result.data is not None:
            key = result.key
            if key in first_row_of:
                result.reasons.append(
                    f"与第{first_row_of[key]}行是同一只气瓶（制造单位+产品编号+制造年月相同）"
                )
            else:
                first_row_of[key] = row_no
        results.append(result)
        if progress and done % 500 == 0:
            progress(done, total)

    candidates = [r for r in results if r.data is not None and not r.reasons]
    keys = [r.key for r in candidates]
    archived = archived_identities(keys)
    claimed = claimed_identities(keys)
    for result in candidates:
        key = result.key
        if key in archived:
            number = archived[key]
            result.reasons.append(
                "该气瓶已登记" + (f"（使用登记证{number}）" if number else "") + "，不能重复申请"
            )
        elif key in claimed:
            app_id, number = claimed[key]
            where = "本申请" if app_id == application.id else f"申请{number or app_id}"
            result.reasons.append(f"该气瓶已在{where}中，不能重复申请")

    next_row = (
        db.session.scalar(
            select(func.max(ApplicationItem.row_no)).where(
                ApplicationItem.application_id == application.id
            )
        )
        or 0
    )
    to_insert: dict[str, tuple[RowResult, dict[str, Any]]] = {}
    for result in results:
        if result.reasons or result.data is None:
            continue
        next_row += 1
        values = item_values(application.id, next_row, result.data, result.key)
        to_insert[result.key] = (result, values)
    inserted = _insert_claiming([values for _, values in to_insert.values()])
    for key, (result, _) in to_insert.items():
        if key not in inserted:
            result.reasons.append("该气瓶已在其他申请中（同时导入冲突），不能重复申请")
    application.item_count += len(inserted)
    db.session.flush()
    if progress:
        progress(total, total)
    failed = [
        {"row": r.row, "values": r.values, "reasons": r.reasons} for r in results if r.reasons
    ]
    return ImportOutcome(total=total, imported=len(inserted), failed=failed)


def item_values(
    application_id: int, row_no: int, data: CylinderData, key: str | None = None
) -> dict[str, Any]:
    key = key or data.identity_key
    return {
        "application_id": application_id,
        "row_no": row_no,
        "variety_code": data.variety_code,
        "product_no": normalize_text(data.product_no),
        "medium_code": data.medium_code,
        "manufacturer": normalize_text(data.manufacturer),
        "manufacture_month": data.manufacture_month,
        "nominal_pressure_mpa": data.nominal_pressure_mpa,
        "volume_l": data.volume_l,
        "last_inspection_date": data.last_inspection_date,
        "next_inspection_month": data.next_inspection_month,
        "internal_no": data.internal_no,
        "tag_type": data.tag_type,
        "qr_content": data.qr_content,
        "rfid_code": data.rfid_code,
        "identity_key": key,
        "live_identity_key": key,
        "audit_verdict": "pending",
        "excluded": False,
        "attachment_count": 0,
    }
