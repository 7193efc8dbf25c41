"""Persistence: archive and claim look-ups, and the insert that claims each cylinder."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, func, select

from .. import bulk_sql
from ..archive import CylinderData
from ..clock import china_today
from ..corrections import require_cylinder_edits
from ..extensions import db
from ..identity import normalize_text
from ..models import (
    EDITABLE_STATUSES,
    Application,
    ApplicationItem,
    ApplicationStatus,
    Cylinder,
    ImportJob,
    TagBinding,
    TagType,
)
from ..tag_binding import lock_all_tags, lock_tags, tag_digest
from . import ImportRejected
from .refused import RefusedRows
from .rules import CodeTables, RowResult, validate_row


@dataclass
class ImportOutcome:
    total: int
    imported: int
    failed: int  # rows refused: the import job's ImportFailedRow rows


Progress = Callable[[int, int], None]


def _chunks(items: list[str], size: int = 2000) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def archived_identities(keys: list[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for chunk in _chunks(keys):
        stmt = select(Cylinder.identity_key, Cylinder.certificate_no).where(
            bulk_sql.id_in(Cylinder.identity_key, chunk)
        )
        found.update(dict(db.session.execute(stmt).tuples().all()))
    return found


def claimed_identities(keys: list[str]) -> dict[str, tuple[int, str | None]]:
    found: dict[str, tuple[int, str | None]] = {}
    for chunk in _chunks(keys):
        stmt = (
            select(ApplicationItem.live_identity_key, Application.id, Application.number)
            .join(Application, Application.id == ApplicationItem.application_id)
            .where(bulk_sql.id_in(ApplicationItem.live_identity_key, chunk))
        )
        for key, app_id, number in db.session.execute(stmt):
            found[key] = (app_id, number)
    return found


class _ItemSink:
    """Where the good rows go, chunk by chunk; ``finish`` claims them all at once.

    PostgreSQL: each chunk is COPied into a temp table (with the row's Excel row number and
    cell texts, for the error file should it lose its claim); ``finish`` runs one INSERT …
    SELECT … ORDER BY live_identity_key ON CONFLICT DO NOTHING over all of them, so two
    concurrent imports still lock keys in one order (no deadlock), whatever the chunks.
    SQLite (the demo, one writer at a time): each chunk is inserted as it comes.
    """

    TEMP_TABLE = "import_items_incoming"

    def __init__(self) -> None:
        self.postgresql = db.session.get_bind().dialect.name == "postgresql"
        self.columns: list[str] = []
        self.inserted = 0
        self.lost: list[RowResult] = []  # SQLite: rows that lost their claim (a race: few)
        self.copied = 0

    def add(self, chunk: list[tuple[RowResult, dict[str, Any]]]) -> None:
        if not chunk:
            return
        if not self.columns:
            self.columns = list(chunk[0][1])
        if self.postgresql:
            self._copy(chunk)
        else:
            self._insert_sqlite(chunk)

    def _insert_sqlite(self, chunk: list[tuple[RowResult, dict[str, Any]]]) -> None:
        from sqlalchemy.dialects.sqlite import insert

        table = cast(Table, ApplicationItem.__table__)
        inserted: set[str] = set()
        rows = sorted((values for _, values in chunk), key=lambda r: r["live_identity_key"])
        for start in range(0, len(rows), 1000):
            # No conflict target: the live cylinder (live_identity_key) and the live tag
            # (live_tag_key) are both claimed; a row losing either is not inserted.
            stmt = insert(table).on_conflict_do_nothing().returning(table.c.live_identity_key)
            result = db.session.execute(stmt, rows[start : start + 1000])
            inserted.update(result.scalars().all())
        self.inserted += len(inserted)
        self.lost.extend(result for result, _ in chunk if result.key not in inserted)

    def _cursor(self) -> Any:
        connection = db.session.connection().connection.driver_connection
        assert connection is not None  # a live psycopg connection inside the transaction
        return connection.cursor()

    def _copy(self, chunk: list[tuple[RowResult, dict[str, Any]]]) -> None:
        column_sql = ", ".join(self.columns)
        with self._cursor() as cursor:
            if not self.copied:
                cursor.execute(
                    f"CREATE TEMP TABLE {self.TEMP_TABLE} ON COMMIT DROP AS SELECT {column_sql},"
                    " 0 AS source_row, ''::text AS source_values"
                    " FROM application_items WITH NO DATA"
                )
            with cursor.copy(
                f"COPY {self.TEMP_TABLE} ({column_sql}, source_row, source_values) FROM STDIN"
            ) as copy:
                for result, values in chunk:
                    copy.write_row(
                        [
                            *(v.value if isinstance(v, TagType) else v for v in values.values()),
                            result.row,
                            json.dumps(result.values, ensure_ascii=False),
                        ]
                    )
        self.copied += len(chunk)

    def finish(self, lost: Callable[[list[RowResult]], None], chunk_rows: int) -> int:
        """Claim every row; returns the number of items inserted. The rows that lost their
        claim to another live item (inserted concurrently, or committed since the
        look-ups) are given to ``lost``, in row order, ``chunk_rows`` at a time."""
        if not self.postgresql or not self.copied:
            for start in range(0, len(self.lost), chunk_rows):
                lost(self.lost[start : start + chunk_rows])
            return self.inserted
        column_sql = ", ".join(self.columns)
        with self._cursor() as cursor:
            # Ordered by key, so two concurrent imports lock keys in one order (no deadlock).
            cursor.execute(
                f"INSERT INTO application_items ({column_sql})"
                f" SELECT {column_sql} FROM {self.TEMP_TABLE} ORDER BY live_identity_key"
                " ON CONFLICT DO NOTHING"
            )
            inserted = cursor.rowcount
        if inserted < self.copied:
            connection = db.session.connection().connection.driver_connection
            assert connection is not None
            # A server-side cursor, read a chunk at a time: however many rows lost (every
            # row of a file imported twice at once), no more than a chunk is held.
            with connection.cursor(name="import_lost_rows") as cursor:
                cursor.execute(
                    "SELECT t.source_row, t.source_values, t.live_identity_key, t.qr_content,"
                    f" t.rfid_code FROM {self.TEMP_TABLE} t WHERE NOT EXISTS (SELECT 1 FROM"
                    " application_items a WHERE a.application_id = t.application_id"
                    " AND a.row_no = t.row_no) ORDER BY t.source_row"
                )
                while rows := cursor.fetchmany(chunk_rows):
                    lost([_lost_row(*row) for row in rows])
        with self._cursor() as cursor:
            cursor.execute(f"DROP TABLE {self.TEMP_TABLE}")
        return inserted


def _lost_row(
    row: int, values: str, key: str, qr_content: str | None, rfid_code: str | None
) -> RowResult:
    tag = (
        (TagType.QR, qr_content) if qr_content else (TagType.RFID, rfid_code) if rfid_code else None
    )
    return RowResult(row=row, values=json.loads(values), key=key, tag=tag)


TAG_LABELS = {TagType.QR: "二维码", TagType.RFID: "RFID编码"}


def tags_in_use(
    tags: list[tuple[TagType, str]], *, application_id: int | None = None
) -> dict[tuple[TagType, str], list[tuple[str, str]]]:
    """Where each QR URL or RFID code is already used: in the archive (on a cylinder or a
    bound tag) or on a live application item. Values: (that cylinder's identity key, where)."""
    found: dict[tuple[TagType, str], list[tuple[str, str]]] = {}
    # Held to the commit: a concurrent API binding of one of these tags either committed
    # before (and is found below) or waits and then finds this transaction's items.
    lock_tags([tag_digest(kind, value) for kind, value in tags], exclusive=False)

    def add(tag: tuple[TagType, str], key: str | None, where: str) -> None:
        found.setdefault(tag, []).append((key or "", where))

    def archive_place(certificate_no: str | None) -> str:
        return "已登记气瓶的档案" + (f"（使用登记证{certificate_no}）" if certificate_no else "")

    columns = {
        TagType.QR: (Cylinder.qr_content, ApplicationItem.qr_content),
        TagType.RFID: (Cylinder.rfid_code, ApplicationItem.rfid_code),
    }
    for tag_type, (archive_column, item_column) in columns.items():
        values = sorted({value for kind, value in tags if kind is tag_type})
        for chunk in _chunks(values):
            archived = select(archive_column, Cylinder.identity_key, Cylinder.certificate_no)
            for value, key, number in db.session.execute(
                archived.where(bulk_sql.id_in(archive_column, chunk))
            ):
                add((tag_type, value), key, archive_place(number))
            live = (
                select(
                    item_column,
                    ApplicationItem.live_identity_key,
                    ApplicationItem.row_no,
                    Application.id,
                    Application.number,
                )
                .join(Application, Application.id == ApplicationItem.application_id)
                .where(
                    ApplicationItem.live_identity_key.is_not(None),
                    bulk_sql.id_in(item_column, chunk),
                )
            )
            for value, key, row_no, app_id, number in db.session.execute(live):
                where = (
                    f"本申请第{row_no}行" if app_id == application_id else f"申请{number or app_id}"
                )
                add((tag_type, value), key, where)
    # Tags bound through the API (信息化标签绑定) are known by their digest.
    digests = {tag_digest(kind, value): (kind, value) for kind, value in tags}
    for chunk in _chunks(sorted(digests)):
        bound = (
            select(TagBinding.tag_sha256, Cylinder.identity_key, Cylinder.certificate_no)
            .join(Cylinder, Cylinder.id == TagBinding.cylinder_id)
            .where(bulk_sql.id_in(TagBinding.tag_sha256, chunk))
        )
        for digest, key, number in db.session.execute(bound):
            add(digests[digest], key, archive_place(number))
    return found


def tag_reasons(
    tag: tuple[TagType, str],
    keys: set[str],
    used: dict[tuple[TagType, str], list[tuple[str, str]]],
) -> list[str]:
    """一瓶一码: the refusal when the tag is used by another cylinder (whose identity key
    is not among ``keys``, the keys of this very cylinder)."""
    label = TAG_LABELS[tag[0]]
    places = sorted({where for other, where in used.get(tag, []) if other not in keys})
    if not places:
        return []
    return [
        f"{label}“{tag[1][:60]}”已用于{'、'.join(places[:3])}中的另一只气瓶："
        f"一瓶一码，同一{label}不能用于两只气瓶，请核对后填写本气瓶自己的{label}"
    ]


# Rows validated, looked up and written together: what the import holds at a time, besides
# the identity keys and tags seen so far (for the duplicates within the file).
CHUNK_ROWS = 2000


SheetRow = tuple[int, list[Any]]  # (Excel row number, cells)


def _digest(*parts: Any) -> bytes:
    """A 128-bit digest of a key (a collision between two rows of one file: ~1e-29)."""
    text = "\x1f".join(part.value if isinstance(part, TagType) else part for part in parts)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _chunked(rows: Iterable[SheetRow], size: int) -> Iterator[list[SheetRow]]:
    chunk: list[SheetRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_rows(
    application: Application,
    rows: Iterable[tuple[int, list[Any]]],
    *,
    job: ImportJob,
    today: date | None = None,
    progress: Progress | None = None,
    chunk_rows: int | None = None,
) -> ImportOutcome:
    """Validate ``rows``, add the good ones to ``application`` and the refused ones to
    ``job``'s ``ImportFailedRow``s (flushes, no commit).

    The rows stream through in chunks of ``chunk_rows`` (default ``CHUNK_ROWS``): each
    chunk is validated, looked up (archive, other applications, tags) and written out, its
    good rows and its refused rows, before the next one is read, so memory does not grow
    with the file nor with the rows refused. All of it is one transaction: a worker killed
    midway leaves nothing imported and no refused row stored, and a row refused in the last
    chunk is reported like any other.
    """
    if application.status not in EDITABLE_STATUSES:
        raise ImportRejected("申请已提交，不能再导入气瓶")
    require_cylinder_edits(application, ImportRejected)
    today = today or china_today()
    chunk_rows = chunk_rows or CHUNK_ROWS
    if not isinstance(rows, Sized):
        rows = list(rows)
    total = len(rows)
    codes = CodeTables.load()
    if total > chunk_rows:
        # Every chunk looks its tags up under their locks, held to the commit; taken all at
        # once here, in one order, so that a binder waiting on one cannot deadlock with us.
        lock_all_tags(exclusive=False)
    # The cylinders and tags seen so far in the file (for the duplicates across chunks):
    # 16-byte digests of their normalised keys, not the keys, and never the rows.
    first_row_of: dict[bytes, int] = {}
    first_row_with_tag: dict[bytes, int] = {}
    next_row = (
        db.session.scalar(
            select(func.max(ApplicationItem.row_no)).where(
                ApplicationItem.application_id == application.id
            )
        )
        or 0
    )
    sink = _ItemSink()
    refused = RefusedRows(job.id)
    done = 0
    for chunk in _chunked(rows, chunk_rows):
        results: list[RowResult] = []
        for row_no, cells in chunk:
            result = validate_row(row_no, cells, codes, today)
            if result.key:
                seen = first_row_of.setdefault(_digest(result.key), row_no)
                if seen != row_no:
                    result.reasons.append(
                        f"与第{seen}行是同一只气瓶（制造单位+产品编号+制造年月相同）"
                    )
            if result.tag:
                seen = first_row_with_tag.setdefault(_digest(*result.tag), row_no)
                if seen != row_no:
                    label = TAG_LABELS[result.tag[0]]
                    result.reasons.append(
                        f"{label}与第{seen}行相同：一瓶一码，同一{label}不能用于两只气瓶"
                    )
            results.append(result)
            done += 1
            if progress and done % 500 == 0:
                progress(done, total)
        _check_against_database(results, application.id)
        good: list[tuple[RowResult, dict[str, Any]]] = []
        bad: list[RowResult] = []
        for result in results:
            if result.reasons or result.data is None:
                bad.append(result)
                continue
            next_row += 1
            values = item_values(application.id, next_row, result.data, result.key)
            if application.status is ApplicationStatus.RETURNED:
                values["correction_change"] = "new"  # the clerk's next audit shows it as new
            good.append((result, values))
        sink.add(good)
        refused.add(bad)

    def lost(results: list[RowResult]) -> None:
        _explain_lost_claims(results, application.id)
        refused.add(results)  # after the others: the rows are read back in row order

    inserted = sink.finish(lost, chunk_rows)
    application.item_count += inserted
    db.session.flush()
    if progress:
        progress(total, total)
    return ImportOutcome(total=total, imported=inserted, failed=refused.count)


def _check_against_database(results: list[RowResult], application_id: int) -> None:
    """The archive and other-application checks of one chunk. They run on every row whose
    identity is known, so that a row's result lists all its reasons at once."""
    keyed = [r for r in results if r.key]
    keys = [r.key for r in keyed]
    archived = archived_identities(keys)
    claimed = claimed_identities(keys)
    for result in keyed:
        key = result.key
        if key in archived:
            number = archived[key]
            result.reasons.append(
                "该气瓶已登记" + (f"（使用登记证{number}）" if number else "") + "，不能重复申请"
            )
        elif key in claimed:
            app_id, number = claimed[key]
            where = "本申请" if app_id == application_id else f"申请{number or app_id}"
            result.reasons.append(f"该气瓶已在{where}中，不能重复申请")
    tagged = [r for r in results if r.tag]
    used = tags_in_use([r.tag for r in tagged if r.tag], application_id=application_id)
    for result in tagged:
        if result.tag:
            result.reasons.extend(tag_reasons(result.tag, {result.key}, used))


def _explain_lost_claims(lost: list[RowResult], application_id: int) -> None:
    """The reason of each row another import claimed while this one ran: its cylinder, or
    its tag (the other transaction has committed by now: the insert waited for it)."""
    claimed = claimed_identities([result.key for result in lost])
    used = tags_in_use([r.tag for r in lost if r.tag], application_id=application_id)
    for result in lost:
        if result.key in claimed:
            app_id, number = claimed[result.key]
            result.reasons.append(
                f"该气瓶已在申请{number or app_id}中（同时导入冲突），不能重复申请"
            )
            continue
        reasons = tag_reasons(result.tag, {result.key}, used) if result.tag else []
        result.reasons.extend(
            [reason.replace("已用于", "刚被同时导入，已用于", 1) for reason in reasons]
            or ["该气瓶或其二维码/RFID编码已在其他申请中（同时导入冲突），不能重复申请"]
        )


def live_tag_key(data: CylinderData) -> str | None:
    """The item's claim on its QR URL or RFID code (None without a tag)."""
    value = data.qr_content if data.tag_type is TagType.QR else data.rfid_code
    if data.tag_type is None or not value:
        return None
    return tag_digest(data.tag_type, value)


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
        "design_life_years": data.design_life_years,
        "identity_key": key,
        "live_identity_key": key,
        "live_tag_key": live_tag_key(data),
        "audit_verdict": "pending",
        "excluded": False,
        "attachment_count": 0,
    }
