"""Operations drills on private, throwaway servers (loopback only, bounded in time).

- ``/healthz`` follows the real state of the database, Redis and a real worker process
  (its heartbeat): 200 when all is well, 503 with the failing check named when not; no
  login, no rate limit, no addresses or messages in the answer.
- A Redis outage is visible: pages where queued work waits say calmly that it waits and
  will run once Redis is back; the notice goes away when Redis and a worker are there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from regbackoffice import create_app, health, worker
from regbackoffice.extensions import db as _db
from regbackoffice.models import Certificate, ImportJob, ImportStatus, RenderState, Role

from . import factories
from . import test_fault_drills as fault
from .conftest import csrf_token_from, login

# The fault drills' private servers (their own redis-server / PostgreSQL cluster).
private_redis = fault.private_redis
private_postgres = fault.private_postgres
drill_app = fault.drill_app
wait_until = fault.wait_until

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _healthz(client, query: str = "") -> tuple[int, dict]:
    response = client.get(f"/healthz{query}")
    assert response.headers["Content-Type"] == "application/json"
    return response.status_code, response.get_json()


def _start_worker(app, redis_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "REGBO_ENV": "testing",
        "REGBO_SECRET_KEY": "test-secret-key",
        "REGBO_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REGBO_REDIS_URL": redis_url,
        "REGBO_STORAGE_DIR": app.config["STORAGE_DIR"],
        "REGBO_WORKER_HEARTBEAT_SECONDS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--sweep-interval", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_healthz_follows_database_redis_and_the_worker_heartbeat(
    drill_app,
    private_postgres,
    private_redis,
):
    drill_app.config.update(
        REDIS_URL=private_redis.url,
        WORKER_HEARTBEAT_SECONDS=1,
        # A default limit for every route: /healthz must stay exempt from it.
        RATELIMIT_DEFAULT="3 per minute",
    )
    web = create_app(drill_app.config)
    client = web.test_client()

    # Database and Redis answer, but no worker runs: queued work would wait for ever.
    status, body = _healthz(client)
    assert status == 503 and body["status"] == "fail"
    assert body["checks"]["database"] == {"ok": True} and body["checks"]["redis"] == {"ok": True}
    assert body["checks"]["worker"] == {"ok": False, "alive": 0, "last_heartbeat_seconds": None}
    assert body["checks"]["queue"] == {"ok": True, "depth": 0, "oldest_seconds": None}
    assert body["checks"]["waiting"]["certificates"] == {"count": 0, "oldest_seconds": None}
    assert _healthz(client, "?scope=web")[0] == 200  # the app server itself can serve

    process = _start_worker(drill_app, private_redis.url)
    try:
        wait_until(lambda: _healthz(client)[0] == 200, 60, "the worker's heartbeat")
        status, body = _healthz(client)
        assert body["status"] == "ok" and body["checks"]["worker"]["alive"] == 1
        for _ in range(10):  # no login, and never rate-limited (load balancers poll often)
            assert _healthz(client)[0] == 200
        os.killpg(process.pid, signal.SIGKILL)  # the worker dies without a word
        process.wait(10)
        wait_until(lambda: _healthz(client)[0] == 503, 30, "the dead worker to be noticed")
        worker_check = _healthz(client)[1]["checks"]["worker"]
        assert worker_check["ok"] is False and worker_check["alive"] == 0
        assert worker_check["last_heartbeat_seconds"] >= 3
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    private_redis.stop()
    status, body = _healthz(client)
    assert status == 503
    assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert body["checks"]["database"] == {"ok": True}
    assert str(private_redis.port) not in str(body)  # kinds of failure only, no addresses
    assert _healthz(client, "?scope=web")[0] == 200

    private_postgres.stop()
    status, body = _healthz(client)
    assert status == 503 and body["checks"]["database"]["ok"] is False
    web_status, web_body = _healthz(client, "?scope=web")
    assert web_status == 503 and web_body["checks"] == {"database": body["checks"]["database"]}
    assert str(private_postgres.port) not in str(body)
    private_postgres.start()
    private_redis.start()
    with web.app_context():
        _db.engine.dispose()


def test_redis_outage_shows_a_calm_notice_where_queued_work_waits(live_app, live_db, private_redis):
    unit = factories.make_unit("500112")
    approved = factories.make_approved_application(unit, items=1)
    acceptor = factories.make_user(Role.ACCEPTOR, district_code="500112")
    applicant = factories.make_user(Role.APPLICANT, unit=unit)
    draft = factories.make_application(unit, created_by=applicant)
    import_job = ImportJob(
        application_id=draft.id,
        original_name="气瓶清单.xlsx",
        total_rows=5000,
        created_by_id=applicant.id,
    )
    live_db.session.add(import_job)
    live_db.session.commit()
    application_id, draft_id, import_id = approved.id, draft.id, import_job.id
    web = create_app({**live_app.config, "REDIS_URL": private_redis.url})
    clerk, owner = web.test_client(), web.test_client()
    detail = f"/bureau/applications/{application_id}"
    import_page = f"/applications/{draft_id}/imports/{import_id}"
    try:
        assert login(clerk, acceptor).status_code == 302
        page = clerk.get(detail).get_data(as_text=True)
        live_db.session.refresh(approved)
        private_redis.stop()  # Redis goes away just before 证书生成
        response = clerk.post(
            f"{detail}/certificate",
            data={"csrf_token": csrf_token_from(page), "version": approved.version_id},
        )
        assert response.status_code == 302
        assert health.NOTICE in clerk.get(detail).get_data(as_text=True)
        live_db.session.expire_all()
        number = live_db.session.scalar(
            sa.select(Certificate.number).where(Certificate.application_id == application_id)
        )
        live_db.session.rollback()
        listed = clerk.get("/certificates", query_string={"q": number}).get_data(as_text=True)
        assert number in listed and health.NOTICE in listed
        assert login(owner, applicant).status_code == 302
        assert health.NOTICE in owner.get(import_page).get_data(as_text=True)

        # Redis is back and a worker beats: the pages no longer say anything is held up.
        private_redis.start()
        with web.app_context():
            connection = health._redis()
            worker.beat(connection, web.config["RQ_QUEUE"], "drill-worker")
        assert health.NOTICE not in clerk.get(detail).get_data(as_text=True)
        assert health.NOTICE not in owner.get(import_page).get_data(as_text=True)
    finally:
        with web.app_context():
            _db.engine.dispose()
    live_db.session.expire_all()
    certificate = live_db.session.scalar(
        sa.select(Certificate).where(Certificate.application_id == application_id)
    )
    assert certificate.render_state is RenderState.QUEUED  # still waiting, nothing lost
    assert live_db.session.get(ImportJob, import_id).status is ImportStatus.QUEUED
