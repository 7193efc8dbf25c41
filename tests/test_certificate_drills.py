"""Certificate generation under concurrency and failure, with committed data.

These run against their own database (``live_app``) because other threads and a separate
worker process must see the data.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from rq.job import Job
from sqlalchemy import select

from regbackoffice import certificates
from regbackoffice.models import Application, Certificate, RenderState, Role, User

from . import factories
from .conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def start_worker(live_app, *extra_env) -> subprocess.Popen:
    env = {
        **os.environ,
        "REGBO_ENV": "testing",
        "REGBO_SECRET_KEY": "test-secret-key",
        "REGBO_DATABASE_URL": live_app.config["SQLALCHEMY_DATABASE_URI"],
        "REGBO_REDIS_URL": TEST_REDIS_URL,
        "REGBO_STORAGE_DIR": live_app.config["STORAGE_DIR"],
        **dict(extra_env),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_state(live_db, certificate_id: int, states: set, timeout: float = 90) -> Certificate:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live_db.session.expire_all()
        certificate = live_db.session.get(Certificate, certificate_id)
        if certificate.render_state in states:
            return certificate
        live_db.session.rollback()
        time.sleep(0.2)
    raise AssertionError(f"certificate {certificate_id} never reached {states}")


def test_fifty_concurrent_generations_get_fifty_consecutive_numbers(live_app, live_db, redis_conn):
    district = "500105"
    unit = factories.make_unit(district)
    approved = [factories.make_approved_application(unit, items=1) for _ in range(50)]
    clerk = factories.make_user(Role.ACCEPTOR, district_code=district)
    live_db.session.commit()
    ids, clerk_id = [a.id for a in approved], clerk.id
    barrier = threading.Barrier(len(ids))
    errors = []

    def generate(application_id: int) -> None:
        with live_app.app_context():
            try:
                application = live_db.session.get(Application, application_id)
                user = live_db.session.get(User, clerk_id)
                barrier.wait(timeout=60)
                certificates.generate(application, user, application.version_id)
                live_db.session.commit()
            except Exception as exc:  # collected and asserted below
                errors.append(exc)
                live_db.session.rollback()
            finally:
                live_db.session.remove()

    threads = [threading.Thread(target=generate, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    rows = live_db.session.scalars(
        select(Certificate).where(Certificate.application_id.in_(ids))
    ).all()
    serials = sorted(c.serial for c in rows)
    assert len({c.number for c in rows}) == 50
    assert serials == list(range(serials[0], serials[0] + 50))


def test_worker_killed_mid_render_then_rerun_gives_same_number_and_one_file(
    live_app, live_db, redis_conn
):
    application = factories.make_approved_application(factories.make_unit("500112"), items=1500)
    clerk = factories.make_user(Role.ACCEPTOR, district_code="500112")
    live_db.session.commit()
    certificate = certificates.generate(application, clerk, application.version_id)
    live_db.session.commit()  # the render job is enqueued after this commit
    number, certificate_id = certificate.number, certificate.id

    worker = start_worker(live_app)
    wait_for_state(live_db, certificate_id, {RenderState.RENDERING})
    time.sleep(0.5)
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its work horse, mid-render
    worker.wait(30)
    worker.stdout.close()
    stuck = wait_for_state(live_db, certificate_id, {RenderState.RENDERING}, timeout=5)
    assert stuck.pdf_key is None

    # Ours is re-sent; so may be other tests' certificates left 排队中 in the live database
    # (their jobs were flushed with Redis) once they are older than 30 s on a slow run.
    assert certificates.requeue_stuck(rendering_for=timedelta(0)) >= 1
    job = Job.fetch(f"certificate-render-{certificate_id}", connection=redis_conn)
    assert job.get_status() == "queued"
    live_db.session.commit()
    rerun = start_worker(live_app)
    output, _ = rerun.communicate(timeout=180)
    done = wait_for_state(
        live_db, certificate_id, {RenderState.READY, RenderState.FAILED}, timeout=5
    )
    assert done.render_state is RenderState.READY, output.decode(errors="replace")[-2000:]
    assert done.number == number
    folder = Path(live_app.config["STORAGE_DIR"]) / "certificates" / "500112"
    mine = sorted(p.name for p in folder.iterdir() if str(certificate_id) in p.name)
    assert mine == [f"{certificate_id}.pdf"]
    assert (folder / mine[0]).read_bytes().startswith(b"%PDF")


def test_job_timeout_ends_in_failed_with_retry_offered(live_app, live_db, redis_conn):
    application = factories.make_approved_application(factories.make_unit("500112"), items=600)
    clerk = factories.make_user(Role.ACCEPTOR, district_code="500112")
    live_db.session.commit()
    live_app.config["CERTIFICATE_JOB_TIMEOUT"] = 1
    try:
        certificate = certificates.generate(application, clerk, application.version_id)
        live_db.session.commit()
    finally:
        live_app.config["CERTIFICATE_JOB_TIMEOUT"] = 300
    worker = start_worker(live_app)
    output, _ = worker.communicate(timeout=120)
    failed = wait_for_state(live_db, certificate.id, {RenderState.FAILED}, timeout=5)
    assert "JobTimeoutException" in failed.render_error, output.decode(errors="replace")[-2000:]
