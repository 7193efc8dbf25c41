"""The import job: small files in the request, large ones by rq with progress in Redis."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq.queue import Queue
from sqlalchemy import func, select

from .. import audit, jobs
from ..corrections import require_cylinder_edits
from ..extensions import db
from ..models import EDITABLE_STATUSES, Application, ImportJob, ImportStatus, User
from ..transaction import after_commit
from . import ImportRejected
from .persistence import ImportOutcome, import_rows
from .reader import ParsedRows, parse_workbook

BACKGROUND_THRESHOLD = 2_000


def start_import(application: Application, data: bytes, *, filename: str, actor: User) -> ImportJob:
    """Import now (small files) or store the file and queue the job (large files).

    Raises ImportRejected for a file refused as a whole; then nothing is stored.
    """
    from .. import storage

    if application.status not in EDITABLE_STATUSES:
        raise ImportRejected("申请已提交，不能再导入气瓶")
    require_cylinder_edits(application, ImportRejected)
    rows = parse_workbook(data, filename)
    if len(rows) <= BACKGROUND_THRESHOLD:
        return import_now(application, rows, filename=filename, actor=actor)
    job = _new_job(application, rows, filename=filename, actor=actor)
    # The stored file keeps a .csv suffix, so the job reads it as CSV again.
    job.file_key = storage.new_key("imports", f".{rows.kind}")
    storage.save_in_transaction(job.file_key, data)
    audit.record(
        "application_import_queued",
        object_type="application",
        object_id=application.id,
        rows=len(rows),
        import_job=job.id,
    )
    jobs.enqueue_after_commit(JOB_FUNCTION, job.id, job_id=rq_job_id(job.id), **_enqueue_options())
    return job


def _new_job(
    application: Application, rows: ParsedRows, *, filename: str, actor: User
) -> ImportJob:
    job = ImportJob(
        application_id=application.id,
        original_name=filename[:255],
        total_rows=len(rows),
        hidden_rows=rows.hidden,
        created_by_id=actor.id,
    )
    db.session.add(job)
    db.session.flush()
    return job


def import_now(
    application: Application,
    rows: ParsedRows,
    *,
    filename: str,
    actor: User,
    today: date | None = None,
) -> ImportJob:
    """Import the rows of a file now, in this transaction, as one finished import job (a
    small upload; the demo's lists)."""
    job = _new_job(application, rows, filename=filename, actor=actor)
    _finish(job, import_rows(application, rows, job=job, today=today), actor)
    return job


JOB_FUNCTION = "run_import"


def rq_job_id(import_job_id: int) -> str:
    return f"regbackoffice-import-{import_job_id}"


# rq kills a work horse after this; an import 导入中 for longer has no live worker on it.
JOB_TIMEOUT_SECONDS = 600
_LIVE_RQ_STATES = {"queued", "started", "scheduled", "deferred"}

INTERRUPTED_MESSAGE = "导入进程意外中断，未导入任何气瓶，请点击“重试”"


def _rq_job_alive(import_job_id: int, connection: Redis) -> bool:
    """Is an rq job for this import waiting or running? A failed, stopped, canceled or
    finished one (its work horse was killed, say) is not."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        rq_job = Job.fetch(rq_job_id(import_job_id), connection=connection)
    except NoSuchJobError:
        return False
    return rq_job.get_status(refresh=True) in _LIVE_RQ_STATES


def _send(q: Queue, import_job_id: int) -> None:
    """Enqueue the import, replacing a dead rq job of the same id (kept in rq's failed list)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    with contextlib.suppress(NoSuchJobError):
        Job.fetch(rq_job_id(import_job_id), connection=q.connection).delete()
    jobs.send(q, JOB_FUNCTION, import_job_id, job_id=rq_job_id(import_job_id), **_enqueue_options())


def _enqueue_options() -> dict[str, Any]:
    return {"job_timeout": JOB_TIMEOUT_SECONDS}


def _running_for_too_long(job: ImportJob, now: datetime) -> bool:
    started = job.started_at or job.created_at
    return now - started > timedelta(seconds=JOB_TIMEOUT_SECONDS + 60)


def _fail_if_dead(job: ImportJob, connection: Redis, now: datetime) -> bool:
    """导入中 with no worker on it any more → 失败 (重试 offered). Returns True when it was.

    A live import holds its row lock for its whole transaction, so a locked row is alive
    (skipped, never waited for); an unlocked one is dead when rq has no live job for it,
    or when it started longer ago than rq lets a job run.
    """
    locked = db.session.scalar(
        select(ImportJob)
        .where(ImportJob.id == job.id, ImportJob.status == ImportStatus.RUNNING)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if locked is None:
        return False
    if _rq_job_alive(job.id, connection) and not _running_for_too_long(locked, now):
        return False
    mark_interrupted(locked)
    return True


def mark_interrupted(job: ImportJob) -> None:
    """导入中 → 失败: the worker died mid-import, so its transaction rolled back and nothing
    was imported; the stored file is kept for 重试."""
    job.status = ImportStatus.FAILED
    job.message = INTERRUPTED_MESSAGE
    job.finished_at = datetime.now(UTC)
    db.session.flush()
    audit.record(
        "application_import_interrupted",
        outcome="failed",
        object_type="application",
        object_id=job.application_id,
        import_job=job.id,
    )


def can_retry(job: ImportJob) -> bool:
    """重试 is offered for a failed import whose file is still stored (the worker died or a
    system error stopped it), while the application is a draft."""
    return (
        job.status is ImportStatus.FAILED
        and bool(job.file_key)
        and job.application.status in EDITABLE_STATUSES
    )


def retry_import(job: ImportJob, actor: User) -> None:
    """失败 → 排队中: queue the same stored file again (it is imported once: a finished job
    is never run again)."""
    if job.status is not ImportStatus.FAILED:
        raise ImportRejected(
            f"本次导入现在是“{job.status.label}”，不是“失败”，无需重试。请刷新页面查看结果。"
        )
    if not job.file_key:
        raise ImportRejected(
            "本次导入的文件未保存（文件本身未通过检查），不能重试：请改正文件后重新导入。"
        )
    if job.application.status not in EDITABLE_STATUSES:
        raise ImportRejected("申请已提交，不能再导入气瓶")
    job.status = ImportStatus.QUEUED
    job.message = None
    job.started_at = None
    job.finished_at = None
    db.session.flush()
    audit.record(
        "application_import_retried",
        object_type="application",
        object_id=job.application_id,
        actor=actor,
        import_job=job.id,
    )
    connection = jobs.redis_connection()
    if connection is not None:  # stale progress of the dead run: cosmetic, best effort
        with contextlib.suppress(RedisError):
            connection.delete(_progress_key(job.id))
    job_id = job.id
    after_commit(lambda: _send_after_commit(job_id))


def _send_after_commit(import_job_id: int) -> None:
    q = jobs.queue()
    if q is None:
        jobs.enqueue(JOB_FUNCTION, import_job_id)  # inline: no Redis configured
        return
    _send(q, import_job_id)  # Redis down: the import stays 排队中 and the sweep sends it


def ensure_enqueued(job: ImportJob) -> bool:
    """Keep one import moving (its pages ask on every view): 排队中 with no live rq job
    (Redis was down when the upload committed, the queue was lost, or the work horse died
    before it began) is sent again; 导入中 whose worker died becomes 失败 with 重试.
    Returns True when it changed something.

    Harmless when the job is in fact queued or running: the job is safe to run twice.
    """
    if job.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
        return False  # finished: nothing to ask Redis
    q = jobs.queue()
    if q is None:
        return False
    if job.status is ImportStatus.QUEUED:
        if _rq_job_alive(job.id, q.connection):
            return False
        _send(q, job.id)
        return True
    if job.status is ImportStatus.RUNNING:
        return _fail_if_dead(job, q.connection, datetime.now(UTC))
    return False


def requeue_stuck(queued_for: timedelta | None = None) -> int:
    """The worker's sweep: every import 排队中 for longer than ``queued_for`` (default
    ``IMPORT_REQUEUE_AFTER``) without a live rq job is sent again, and every 导入中 whose
    worker died becomes 失败 with 重试 (committed here). Returns how many changed."""
    q = jobs.queue()
    if q is None:
        return 0
    if queued_for is None:
        queued_for = timedelta(seconds=current_app.config.get("IMPORT_REQUEUE_AFTER", 30))
    now = datetime.now(UTC)
    changed = 0
    stuck = db.session.scalars(
        select(ImportJob)
        .where(ImportJob.status.in_([ImportStatus.QUEUED, ImportStatus.RUNNING]))
        .order_by(ImportJob.id)
    ).all()
    for job in stuck:
        if job.status is ImportStatus.QUEUED:
            if now - job.created_at < queued_for or _rq_job_alive(job.id, q.connection):
                continue
            _send(q, job.id)
            changed += 1
        elif _fail_if_dead(job, q.connection, now):
            changed += 1
    db.session.commit()
    return changed


def waiting() -> tuple[int, datetime | None]:
    """Imports 排队中 (not begun yet): how many, and since when."""
    count, oldest = db.session.execute(
        select(func.count(), func.min(ImportJob.created_at)).where(
            ImportJob.status == ImportStatus.QUEUED
        )
    ).one()
    return count, oldest


def _finish(job: ImportJob, outcome: ImportOutcome, actor: User | None = None) -> None:
    job.status = ImportStatus.DONE
    job.total_rows = outcome.total
    job.imported_count = outcome.imported
    job.failed_count = outcome.failed
    job.finished_at = datetime.now(UTC)
    audit.record(
        "application_import",
        object_type="application",
        object_id=job.application_id,
        actor=actor,
        import_job=job.id,
        imported=outcome.imported,
        failed=outcome.failed,
    )


def _progress_key(job_id: int) -> str:
    return f"regbackoffice:import:{job_id}:progress"


def read_progress(job: ImportJob) -> dict[str, Any]:
    """Status for the progress bar: rows processed so far, from Redis while running."""

    processed = job.total_rows if job.status is ImportStatus.DONE else 0
    if job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING):
        connection = jobs.redis_connection()
        if connection is not None:
            try:
                raw = connection.get(_progress_key(job.id))
            except RedisError:  # progress is cosmetic; the status comes from the database
                raw = None
            processed = int(cast(bytes, raw)) if raw else 0
    return {
        "status": job.status.value,
        "status_label": job.status.label,
        "total": job.total_rows,
        "processed": processed,
        "imported": job.imported_count,
        "failed": job.failed_count,
        "hidden": job.hidden_rows,
        "message": job.message,
    }


@jobs.job(JOB_FUNCTION)
def run_import_job(job_id: int) -> None:
    """The rq job: import a stored file. Safe to run twice (a finished job is left alone;
    a concurrent second run waits on the row lock, then sees it finished).

    导入中 and ``started_at`` are committed first, on their own; the import itself is then
    one transaction, so a worker killed mid-import leaves nothing half-imported and the
    sweep (or the import's page) sees 导入中 with no live rq job: 失败, 重试.
    """
    from .. import storage

    job = db.session.get(ImportJob, job_id, with_for_update=True)
    if job is None or job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        db.session.rollback()
        return
    job.status = ImportStatus.RUNNING
    started = job.started_at = datetime.now(UTC)
    db.session.commit()

    job = db.session.get(ImportJob, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.status is not ImportStatus.RUNNING or job.started_at != started:
        db.session.rollback()  # another run took it over, or it was declared dead meanwhile
        return
    actor = db.session.get(User, job.created_by_id)
    connection = jobs.redis_connection()

    def progress(done: int, total: int) -> None:
        if connection is not None:
            connection.set(_progress_key(job_id), done, ex=24 * 3600)

    application = db.session.get_one(Application, job.application_id)
    try:
        rows = parse_workbook(storage.read(job.file_key or ""), job.file_key or "")
        outcome = import_rows(application, rows, job=job, progress=progress)
    except ImportRejected as exc:
        job.status = ImportStatus.FAILED
        job.message = str(exc)
        job.finished_at = datetime.now(UTC)
    except Exception:
        db.session.rollback()
        job = db.session.get(ImportJob, job_id, with_for_update=True)
        if job is not None and job.status not in (ImportStatus.DONE, ImportStatus.FAILED):
            job.status = ImportStatus.FAILED
            job.message = "导入时发生系统错误，已记录，请稍后重新导入或联系管理员"
            job.finished_at = datetime.now(UTC)
            db.session.commit()
        raise
    else:
        _finish(job, outcome, actor)
    file_key = job.file_key
    job.file_key = None
    db.session.commit()
    if file_key:
        storage.delete(file_key)
    if connection is not None:
        connection.delete(_progress_key(job_id))
