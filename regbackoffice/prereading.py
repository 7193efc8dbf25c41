"""机器预读 stored and queried: the per-application job, and what the pages ask of it.

The job (``read_photos``) reads every photo of one application that has no reading for
its current content and reader version, committing photo by photo, so a re-run or a run
after a killed worker goes on where the last one stopped. It runs on the low-priority
queue (the worker takes it only when no certificate waits), after submission and after
each photo change of a draft (so the applicant sees the warnings before submitting);
inline when no Redis is configured (the demo).

A cylinder's machine verdict, for the audit's badges, filter, order and counts:
不一致 if any of its photos reads 不一致; 一致 if one reads 一致 and none 不一致 (the
certificate's printed number confirms the row; stamps are mostly 未识别); 未识别 otherwise
(also while its photos wait to be read). A reading counts only for the content it was
made from (a replaced photo's old reading is ignored until it is read again). The verdict,
and the number of the cylinder's photos still waiting, are stored on the cylinder
(``refresh_verdicts``, after every stored reading and photo change), so the audit pager's
counts are one GROUP BY on an indexed column and its filter and order a plain column.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.util import identity_key

from . import jobs, photo_reading, storage
from .extensions import db
from .models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    Attachment,
    PhotoReading,
    ReadingVerdict,
    utcnow,
)
from .transaction import after_commit, on_rollback

READ_JOB = "read_photos"
APPLICANT_WARNING = "照片中的编号与表中不一致，请核对"
PENDING_NOTICE = "机器预读中，稍后刷新查看"
# The statuses whose photos the job reads (a later one keeps what was read before).
READ_STATUSES = (ApplicationStatus.DRAFT, ApplicationStatus.SUBMITTED)
_PENDING_KEY = "regbo_prereading_pending"


def enqueue_after_commit(application_id: int) -> None:
    """Read the application's photos once the current transaction commits (once per
    transaction, however many photos it changed)."""
    pending: set[int] = db.session().info.setdefault(_PENDING_KEY, set())
    if application_id in pending:
        return
    pending.add(application_id)

    def send() -> None:
        pending.discard(application_id)
        jobs.enqueue(READ_JOB, application_id, low_priority=True, job_timeout=3 * 3600)

    after_commit(send)
    on_rollback(lambda: pending.discard(application_id))


@jobs.job(READ_JOB)
def read_photos_job(application_id: int) -> str:
    """rq job: read every photo not yet read for its content; safe to run twice."""
    application = db.session.get(Application, application_id)
    if application is None:
        return "missing"  # deleted draft, or the enqueuing transaction rolled back
    if application.status not in READ_STATUSES:
        return "past the attachment audit"  # nobody would look at the hints any more
    engine = photo_reading.engine_version()
    rows = db.session.execute(
        select(
            Attachment.id,
            Attachment.kind,
            Attachment.sha256,
            Attachment.storage_key,
            ApplicationItem.product_no,
            ApplicationItem.manufacturer,
            ApplicationItem.manufacture_month,
            PhotoReading.sha256,
            PhotoReading.engine,
        )
        .join(ApplicationItem, ApplicationItem.id == Attachment.item_id)
        .outerjoin(PhotoReading, PhotoReading.attachment_id == Attachment.id)
        .where(ApplicationItem.application_id == application_id)
        .order_by(ApplicationItem.row_no, Attachment.id)
    ).all()
    db.session.commit()  # ends the (read-only) transaction: none held open while Tesseract works
    read = skipped = 0
    for attachment_id, kind, sha256, key, product_no, maker, month, read_sha, read_engine in rows:
        if read_sha == sha256 and read_engine == engine:
            skipped += 1
            continue
        try:
            data = storage.read(key)
        except FileNotFoundError:  # replaced or deleted since the query: the next run reads it
            continue
        result = photo_reading.read_photo(kind, data, photo_reading.Row(product_no, maker, month))
        if _store(attachment_id, sha256, engine, result):
            read += 1
    return f"read {read}, skipped {skipped}"


def _store(attachment_id: int, sha256: str, engine: str, result: photo_reading.Reading) -> bool:
    """Upsert one reading in its own commit (the job resumes after a kill)."""
    try:
        current = db.session.get(Attachment, attachment_id)
        if current is None or current.sha256 != sha256:
            db.session.rollback()
            return False  # deleted or replaced while it was being read
        reading = db.session.scalar(
            select(PhotoReading).where(PhotoReading.attachment_id == attachment_id)
        )
        if reading is None:
            reading = PhotoReading(attachment_id=attachment_id)
            db.session.add(reading)
        reading.sha256 = sha256
        reading.engine = engine
        reading.verdict = result.verdict
        reading.product_no_read = result.product_no
        reading.confidence = result.confidence
        reading.manufacturer_read = result.manufacturer
        reading.manufacture_month_read = result.manufacture_month
        reading.note = (result.note or "")[:200] or None
        reading.read_at = utcnow()
        db.session.flush()
        refresh_verdicts(item_ids=[current.item_id])
        db.session.commit()
    except IntegrityError:  # a second run stored it first, or the photo went meanwhile
        db.session.rollback()
        return False
    return True


# ----------------------------------------------------------------------------- queries


def _current_reading() -> ColumnElement[bool]:
    # Only a reading of the photo's present content counts (a replaced photo's old one: none).
    return and_(
        PhotoReading.attachment_id == Attachment.id,
        PhotoReading.sha256 == Attachment.sha256,
    )


def refresh_verdicts(
    *, item_ids: list[int] | None = None, application_id: int | None = None
) -> None:
    """Recompute the stored 机器预读 of some cylinders (``machine_verdict``, ``photos_unread``)
    from their photos' current readings: after a reading is stored, and after a photo is
    added, replaced, deleted or copied. One set-based UPDATE; the rows are locked first so
    that two jobs storing readings of the same cylinder's photos never leave a stale verdict
    (the second waits, then sees the first's reading)."""
    if item_ids is not None and not item_ids:
        return
    where = (
        ApplicationItem.id.in_(item_ids)
        if item_ids is not None
        else ApplicationItem.application_id == application_id
    )
    db.session.execute(select(ApplicationItem.id).where(where).with_for_update()).all()
    score = (
        select(
            func.max(
                case(
                    (PhotoReading.verdict == ReadingVerdict.MISMATCH, 2),
                    (PhotoReading.verdict == ReadingVerdict.MATCH, 1),
                    else_=0,
                )
            )
        )
        .select_from(Attachment)
        .join(PhotoReading, _current_reading())
        .where(Attachment.item_id == ApplicationItem.id)
        .scalar_subquery()
    )
    unread = (
        select(func.count())
        .select_from(Attachment)
        .outerjoin(PhotoReading, _current_reading())
        .where(Attachment.item_id == ApplicationItem.id, PhotoReading.id.is_(None))
        .scalar_subquery()
    )
    db.session.execute(
        update(ApplicationItem)
        .where(where)
        .values(
            machine_verdict=case(
                (score == 2, ReadingVerdict.MISMATCH.value),
                (score == 1, ReadingVerdict.MATCH.value),
                else_=ReadingVerdict.UNREAD.value,
            ),
            photos_unread=unread,
        )
        .execution_options(synchronize_session=False)
    )
    # Loaded cylinders would show the old values for the rest of the request otherwise (by
    # key: a bulk upload refreshes once per photo, with thousands of objects loaded).
    if item_ids is not None:
        loaded = [db.session.identity_map.get(identity_key(ApplicationItem, i)) for i in item_ids]
    else:
        loaded = [
            obj
            for obj in db.session.identity_map.values()
            if isinstance(obj, ApplicationItem) and obj.application_id == application_id
        ]
    for obj in loaded:
        if obj is not None:
            db.session.expire(obj, ["machine_verdict", "photos_unread"])


def machine_view(
    query: Select[tuple[ApplicationItem]],
    application_id: int,
    verdict: ReadingVerdict | None = None,
    machine_first: bool = False,
) -> Select[tuple[ApplicationItem]]:
    """``query`` (the application's cylinders) kept to one machine verdict and/or ordered
    不一致 first, then 未识别, then 一致 (add the row order after it). A plain indexed
    column (``application_items.machine_verdict``): no reading is looked at per page view."""
    if verdict is not None:
        query = query.where(ApplicationItem.machine_verdict == verdict)
    if machine_first:
        query = query.order_by(
            case(
                (ApplicationItem.machine_verdict == ReadingVerdict.MISMATCH, 0),
                (ApplicationItem.machine_verdict == ReadingVerdict.MATCH, 2),
                else_=1,
            )
        )
    return query


# The audit's 机器预读 order: the doubtful first.
MACHINE_ORDER = (ReadingVerdict.MISMATCH, ReadingVerdict.UNREAD, ReadingVerdict.MATCH)


def machine_first_items(
    query: Select[tuple[ApplicationItem]],
    counts: dict[ReadingVerdict, int],
    offset: int,
    limit: int,
) -> list[ApplicationItem]:
    """Cylinders ``offset``… of ``query`` (all of one application's, counted per verdict in
    ``counts``) in the order 不一致, 未识别, 一致, each by row: one range of the index
    (application_id, machine_verdict, row_no) per verdict the window touches, instead of
    sorting all 10,000 cylinders per page. A reading stored between the count and this
    query may shift one cylinder across a page edge; the order is a hint, and the next
    page view is right again."""
    items: list[ApplicationItem] = []
    start = 0
    for verdict in MACHINE_ORDER:
        size = counts.get(verdict, 0)
        if offset < start + size and len(items) < limit:
            items += db.session.scalars(
                query.where(ApplicationItem.machine_verdict == verdict)
                .order_by(ApplicationItem.row_no, ApplicationItem.id)
                .offset(max(0, offset - start))
                .limit(limit - len(items))
            )
        start += size
    return items


def summary(application: Application) -> tuple[dict[ReadingVerdict, int], int]:
    """(cylinders per machine verdict, every verdict present; photos still waiting to be
    read): the audit header, in one GROUP BY on the application's cylinders."""
    rows = db.session.execute(
        select(
            ApplicationItem.machine_verdict,
            func.count(),
            func.coalesce(func.sum(ApplicationItem.photos_unread), 0),
        )
        .where(ApplicationItem.application_id == application.id)
        .group_by(ApplicationItem.machine_verdict)
    ).all()
    found: dict[ReadingVerdict, int] = {row[0]: row[1] for row in rows}
    return {v: found.get(v, 0) for v in ReadingVerdict}, sum(int(row[2]) for row in rows)


def counts(application: Application) -> dict[ReadingVerdict, int]:
    """Cylinders per machine verdict (every verdict present, zeros included)."""
    return summary(application)[0]


def unread_photos(application: Application) -> int:
    """Photos still waiting for the reader (none, or a stale reading)."""
    return summary(application)[1]


def pending_photos(application: Application) -> int:
    """Photos the applicant should expect a reading for soon: those waiting, while the job
    still reads this application's photos (0 once it is past the attachment audit)."""
    if application.status not in READ_STATUSES:
        return 0
    return unread_photos(application)


def readings_for(attachment_ids: list[int]) -> dict[int, PhotoReading]:
    """Each photo's reading for its present content (absent: not read yet)."""
    if not attachment_ids:
        return {}
    return {
        reading.attachment_id: reading
        for reading in db.session.scalars(
            select(PhotoReading)
            .join(Attachment, Attachment.id == PhotoReading.attachment_id)
            .where(
                PhotoReading.attachment_id.in_(attachment_ids),
                PhotoReading.sha256 == Attachment.sha256,
            )
        )
    }


def items_to_check(item_ids: list[int]) -> set[int]:
    """The cylinders (of ``item_ids``) with a photo read 不一致 or 未识别: the applicant's
    list marks them, so the warning is seen before submitting."""
    if not item_ids:
        return set()
    return set(
        db.session.scalars(
            select(Attachment.item_id)
            .join(PhotoReading, PhotoReading.attachment_id == Attachment.id)
            .where(
                Attachment.item_id.in_(item_ids),
                PhotoReading.sha256 == Attachment.sha256,
                PhotoReading.verdict != ReadingVerdict.MATCH,
            )
        )
    )
