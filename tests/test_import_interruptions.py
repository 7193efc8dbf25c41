"""Imports that lose their worker or never reach Redis: nothing stays 排队中 for ever.

- A work horse killed mid-import (kill -9, real worker process) leaves nothing imported:
  the import is one transaction; its 导入中 was committed on its own, so the sweep sees
  导入中 with no live rq job and ends it as 失败 with 重试. 重试 imports the file once.
- rq's failed status counts as not alive (the result page shows 失败 and 重试 at once).
- An import committed while Redis was down is sent by the worker's sweep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus
from sqlalchemy import func, select

from regbackoffice import health, jobs, storage, worker
from regbackoffice.imports import job as import_job
from regbackoffice.models import (
    ApplicationItem,
    AuditLog,
    ImportFailedRow,
    ImportJob,
    ImportStatus,
    Role,
    User,
)

from . import factories
from .conftest import TEST_REDIS_URL, post_form
from .test_fault_drills import wait_until
from .xlsx_helpers import good_row, workbook_bytes

ROOT = Path(__file__).resolve().parent.parent


def _file(count: int, prefix: str) -> bytes:
    rows = [good_row(f"{prefix}{n:05d}") for n in range(count)]
    rows[5] = good_row(f"{prefix}BAD", volume="abc")
    return workbook_bytes(rows)


def _stored_job(db, application, applicant, count: int, prefix: str, **kw) -> ImportJob:
    key = storage.new_key("imports", ".xlsx")
    storage.save(key, _file(count, prefix))
    job = ImportJob(
        application_id=application.id,
        created_by_id=applicant.id,
        total_rows=count,
        file_key=key,
        original_name=f"{prefix}.xlsx",
        **kw,
    )
    db.session.add(job)
    db.session.flush()
    return job


def _items(db, application_id: int) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(ApplicationItem)
        .where(ApplicationItem.application_id == application_id)
    )


def _worker_env(app, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "REGBO_ENV": "testing",
        "REGBO_SECRET_KEY": "worker-test-key",
        "REGBO_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REGBO_REDIS_URL": TEST_REDIS_URL,
        "REGBO_RQ_QUEUE": app.config["RQ_QUEUE"],
        "REGBO_STORAGE_DIR": app.config["STORAGE_DIR"],
        **extra,
    }


def _worker_command() -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"]


def _run_burst_worker(app, **extra: str) -> None:
    done = subprocess.run(
        _worker_command(),
        cwd=ROOT,
        env=_worker_env(app, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _refused_rows(db, job_id: int) -> list[int]:
    return list(
        db.session.scalars(
            select(ImportFailedRow.row_no)
            .where(ImportFailedRow.import_job_id == job_id)
            .order_by(ImportFailedRow.row_no)
        )
    )


def _fresh(db, job_id: int) -> ImportJob:
    db.session.expire_all()
    return db.session.get_one(ImportJob, job_id)


def test_a_work_horse_killed_mid_import_ends_failed_with_nothing_imported_and_retry_imports_once(
    live_app, live_db, redis_conn
):
    db = live_db
    applicant = factories.make_user(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    job = _stored_job(db, application, applicant, 30, "KILL")
    db.session.commit()
    job_id, application_id, key = job.id, application.id, job.file_key
    queue = Queue(live_app.config["RQ_QUEUE"], connection=redis_conn)

    # Hold the items table, so the import blocks inside its transaction (a slow import).
    blocker = db.engine.connect()
    blocker.execute(sa.text("LOCK TABLE application_items IN ACCESS EXCLUSIVE MODE"))
    process = None
    try:
        assert import_job.ensure_enqueued(job)  # sent to the queue
        process = subprocess.Popen(
            _worker_command(),
            cwd=ROOT,
            env=_worker_env(live_app),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(
            lambda: _fresh(db, job_id).status is ImportStatus.RUNNING, 60, "导入中 committed"
        )
        assert _fresh(db, job_id).started_at is not None
        db.session.rollback()

        def horse_waits() -> bool:
            with db.engine.connect() as probe:
                return bool(
                    probe.execute(
                        sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    ).scalar()
                )

        wait_until(horse_waits, 60, "the import to wait inside its transaction")
        # While it runs, neither its page nor the sweep takes it for dead.
        running = _fresh(db, job_id)
        assert not import_job.ensure_enqueued(running)
        assert import_job.requeue_stuck() == 0
        (horse,) = _children(process.pid)  # in burst mode the work horse is the only child
        os.kill(horse, signal.SIGKILL)
        assert process.wait(60) == 0  # rq marks the job failed; the burst worker ends
    finally:
        blocker.rollback()
        blocker.close()
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    assert Job.fetch(import_job.rq_job_id(job_id), connection=redis_conn).get_status() == (
        JobStatus.FAILED
    )

    # The killed horse's database session ends (rolled back); then the sweep ends the import.
    def swept() -> bool:
        import_job.requeue_stuck()
        return _fresh(db, job_id).status is ImportStatus.FAILED

    wait_until(swept, 60, "the sweep to end the dead import")
    failed = _fresh(db, job_id)
    assert failed.message == "导入进程意外中断，未导入任何气瓶，请点击“重试”"
    assert failed.imported_count == 0 and _items(db, application_id) == 0  # nothing half-done
    assert _refused_rows(db, job_id) == []  # its refused row (row 7) was not kept either
    assert failed.file_key == key and storage.exists(key)  # kept for 重试
    assert import_job.can_retry(failed)
    assert db.session.scalar(
        select(func.count())
        .select_from(AuditLog)
        .where(AuditLog.action == "application_import_interrupted")
    )

    import_job.retry_import(failed, db.session.get_one(User, failed.created_by_id))
    db.session.commit()
    assert queue.count == 1
    _run_burst_worker(live_app)
    done = _fresh(db, job_id)
    assert done.status is ImportStatus.DONE, done.message
    assert (done.imported_count, done.failed_count) == (29, 1)
    assert _items(db, application_id) == 29 and _refused_rows(db, job_id) == [7]
    assert not storage.exists(key)
    import_job.run_import_job(job_id)  # delivered twice: imported once
    assert _items(db, application_id) == 29 and _refused_rows(db, job_id) == [7]


def _failed_rq_job(redis_conn, app, import_job_id: int) -> None:
    """The rq job as rq leaves it when its work horse died: status failed."""
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_conn)
    rq_job = queue.enqueue(
        jobs.run, import_job.JOB_FUNCTION, import_job_id, job_id=import_job.rq_job_id(import_job_id)
    )
    queue.remove(rq_job)
    rq_job.set_status(JobStatus.FAILED)


def test_an_import_whose_rq_job_failed_shows_failed_with_retry_and_retry_imports_once(
    app, db, client, login_as, redis_conn
):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    job = _stored_job(
        db,
        application,
        applicant,
        10,
        "RETRY",
        status=ImportStatus.RUNNING,
        started_at=datetime.now(UTC),
    )
    _failed_rq_job(redis_conn, app, job.id)
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_conn)
    url = f"/applications/{application.id}/imports/{job.id}"

    page = client.get(url).get_data(as_text=True)
    assert "导入失败：导入进程意外中断，未导入任何气瓶，请点击“重试”" in page
    assert "重试</button>" in page
    db.session.expire_all()
    assert job.status is ImportStatus.FAILED and _items(db, application.id) == 0

    response = post_form(client, f"{url}/retry", page=url)
    assert response.status_code == 302
    db.session.expire_all()
    assert job.status is ImportStatus.QUEUED and job.message is None
    assert queue.count == 1  # the failed rq job replaced by a queued one
    SimpleWorker([queue], connection=redis_conn).work(burst=True)
    db.session.expire_all()
    assert job.status is ImportStatus.DONE and job.imported_count == 9
    assert _items(db, application.id) == 9

    again = post_form(client, f"{url}/retry", page=url, follow_redirects=True)
    assert "不能重试：本次导入现在是“已完成”，不是“失败”，无需重试" in again.get_data(as_text=True)
    assert queue.count == 0 and _items(db, application.id) == 9


def test_a_file_refused_as_a_whole_offers_no_retry(app, db, client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    job = ImportJob(
        application_id=application.id,
        created_by_id=applicant.id,
        status=ImportStatus.FAILED,
        message="文件中没有数据行",
        original_name="empty.xlsx",
    )
    db.session.add(job)
    db.session.flush()
    url = f"/applications/{application.id}/imports/{job.id}"
    page = client.get(url).get_data(as_text=True)
    assert "导入失败：文件中没有数据行" in page and "重试</button>" not in page
    refused = post_form(client, f"{url}/retry", page=url, follow_redirects=True)
    assert "本次导入的文件未保存" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert job.status is ImportStatus.FAILED


def test_the_application_page_resends_an_import_whose_rq_job_failed_before_it_began(
    app, db, client, login_as, redis_conn
):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    job = _stored_job(db, application, applicant, 10, "APPPAGE")
    _failed_rq_job(redis_conn, app, job.id)  # rq failed status: not alive
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_conn)
    assert queue.count == 0

    client.get(f"/applications/{application.id}")
    assert queue.count == 1
    client.get(f"/applications/{application.id}")
    assert queue.count == 1  # sent once, not on every view


def test_an_import_committed_while_redis_was_down_is_sent_by_the_workers_sweep(
    live_app, live_db, redis_conn, monkeypatch
):
    db = live_db
    applicant = factories.make_user(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    db.session.commit()
    monkeypatch.setattr(import_job, "BACKGROUND_THRESHOLD", 5)  # a "large" file, quickly
    monkeypatch.setitem(live_app.config, "REDIS_URL", "redis://127.0.0.1:1/0")  # Redis down
    job = import_job.start_import(
        application, _file(12, "SWEEP"), filename="sweep.xlsx", actor=applicant
    )
    db.session.commit()  # the enqueue after the commit fails: only the log says so
    job_id, application_id = job.id, application.id
    monkeypatch.setitem(live_app.config, "REDIS_URL", TEST_REDIS_URL)  # Redis is back
    queue = Queue(live_app.config["RQ_QUEUE"], connection=redis_conn)
    assert queue.count == 0 and _fresh(db, job_id).status is ImportStatus.QUEUED

    # /healthz's waiting work names imports (every sweeper is asked).
    assert "imports" in [sweeper.label for sweeper in worker.sweepers()]
    with live_app.test_request_context():
        _, body = health.report()
    assert body["checks"]["waiting"]["imports"]["count"] >= 1
    db.session.rollback()

    # The worker sweeps at its start (every interval after): the import is sent and runs.
    _run_burst_worker(live_app, REGBO_IMPORT_REQUEUE_AFTER_SECONDS="0")
    done = _fresh(db, job_id)
    assert done.status is ImportStatus.DONE, done.message
    assert (done.imported_count, done.failed_count) == (11, 1)
    assert _items(db, application_id) == 11


def test_the_sweep_waits_before_resending_a_fresh_import(app, db, login_as, redis_conn):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    _stored_job(db, application, applicant, 10, "FRESH")
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_conn)
    # Created just now: younger than IMPORT_REQUEUE_AFTER (30 s), its upload may still be
    # enqueueing it.
    assert import_job.requeue_stuck() == 0 and queue.count == 0
