"""The import job: small files in the request, large ones by rq with progress in Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from redis.exceptions import RedisError

from .. import audit, jobs
from ..extensions import db
from ..models import Application, ApplicationStatus, ImportJob, ImportStatus, User
from . import ImportRejected
from .persistence import ImportOutcome, import_rows
from .reader import parse_workbook

BACKGROUND_THRESHOLD = 2_000


def start_import(application: Application, data: bytes, *, filename: str, actor: User) -> ImportJob:
    """Import now (small files) or store the file and queue the job (large files).

    Raises ImportRejected for a file refused as a whole; then nothing is stored.
    """
    from .. import storage

    if application.status is not ApplicationStatus.DRAFT:
        raise ImportRejected("申请已提交，不能再导入气瓶")
    rows = parse_workbook(data, filename)
    job = ImportJob(
        application_id=application.id,
        original_name=filename[:255],
        total_rows=len(rows),
        hidden_rows=rows.hidden,
        created_by_id=actor.id,
        failed_rows=[],
    )
    db.session.add(job)
    db.session.flush()
    if len(rows) <= BACKGROUND_THRESHOLD:
        outcome = import_rows(application, rows)
        _finish(job, outcome)
        return job
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
    jobs.enqueue_after_commit(JOB_FUNCTION, job.id, job_id=rq_job_id(job.id))
    return job


JOB_FUNCTION = "run_import"


def rq_job_id(import_job_id: int) -> str:
    return f"regbackoffice-import-{import_job_id}"


def ensure_enqueued(job: ImportJob) -> bool:
    """Send a queued import to the workers again if it never reached Redis (Redis was down
    when the upload committed, or the queue was lost). Returns True when it re-sent it.

    Harmless when the job is in fact queued or running: the job is safe to run twice.
    """
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    if job.status is not ImportStatus.QUEUED:
        return False
    q = jobs.queue()
    if q is None:
        return False
    try:
        Job.fetch(rq_job_id(job.id), connection=q.connection)
        return False
    except NoSuchJobError:
        jobs.send(q, JOB_FUNCTION, job.id, job_id=rq_job_id(job.id))
        return True


def _finish(job: ImportJob, outcome: ImportOutcome, actor: User | None = None) -> None:
    job.status = ImportStatus.DONE
    job.total_rows = outcome.total
    job.imported_count = outcome.imported
    job.failed_count = len(outcome.failed)
    job.failed_rows = outcome.failed
    job.finished_at = datetime.now(UTC)
    audit.record(
        "application_import",
        object_type="application",
        object_id=job.application_id,
        actor=actor,
        import_job=job.id,
        imported=outcome.imported,
        failed=len(outcome.failed),
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
    a concurrent second run waits on the row lock, then sees it finished)."""
    from .. import storage

    job = db.session.get(ImportJob, job_id, with_for_update=True)
    if job is None or job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        db.session.rollback()
        return
    actor = db.session.get(User, job.created_by_id)
    connection = jobs.redis_connection()

    def progress(done: int, total: int) -> None:
        if connection is not None:
            connection.set(_progress_key(job_id), done, ex=24 * 3600)

    application = db.session.get_one(Application, job.application_id)
    try:
        rows = parse_workbook(storage.read(job.file_key or ""), job.file_key or "")
        outcome = import_rows(application, rows, progress=progress)
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
