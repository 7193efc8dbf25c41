"""Operations drills on private, throwaway servers (loopback only, bounded in time).

- ``/healthz`` follows the real state of the database, Redis and a real worker process
  (its heartbeat): 200 when all is well, 503 with the failing check named when not; no
  login, no rate limit, no addresses or messages in the answer.
- A Redis outage is visible: pages where queued work waits say calmly that it waits and
  will run once Redis is back; the notice goes away when Redis and a worker are there.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from regbackoffice import create_app, health, worker
from regbackoffice.config import load_config
from regbackoffice.extensions import db as _db
from regbackoffice.models import Certificate, ImportJob, ImportStatus, RenderState, Role

from . import factories
from . import test_fault_drills as fault
from .api_helpers import token_for
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
        PUBLIC_RATE_LIMIT="3 per minute",  # the public pages' limit must not count /healthz
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
        # The public pages' limit is exhausted meanwhile; /healthz is not counted by it.
        assert [client.get("/verify/none").status_code for _ in range(4)][-1] == 429
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


# --------------------------------------------------- slow uploads under the README's gunicorn


def _load_gunicorn_config(monkeypatch, **env: str) -> dict:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    namespace: dict = {}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    return namespace


def test_gunicorn_config_sizes_threads_for_the_box_and_waits_out_the_largest_upload(
    monkeypatch,
):
    config = _load_gunicorn_config(monkeypatch, REGBO_MAX_REQUEST_MB="64")
    assert config["worker_class"] == "gthread"
    assert config["workers"] == os.cpu_count() + 1 and config["threads"] >= 4
    # 64 MB at 256 KB/s is 256 s of upload alone: the timeout must not cut it short.
    assert config["timeout"] > 64 * 1024 / 256
    bigger = _load_gunicorn_config(monkeypatch, REGBO_MAX_REQUEST_MB="200")
    assert bigger["timeout"] > 200 * 1024 / 256
    chosen = _load_gunicorn_config(monkeypatch, GUNICORN_WORKERS="3", GUNICORN_TIMEOUT="900")
    assert (chosen["workers"], chosen["timeout"]) == (3, 900)


def test_gunicorn_forks_workers_from_a_preloaded_app_unless_told_not_to(monkeypatch):
    # A max_requests restart must not import the whole app again in the new worker.
    config = _load_gunicorn_config(monkeypatch)
    assert config["preload_app"] is True and config["max_requests"] > 0
    assert _load_gunicorn_config(monkeypatch, GUNICORN_PRELOAD="0")["preload_app"] is False


def _readme_gunicorn_command() -> list[str]:
    """The gunicorn line of the README's deployment section, as an argument list."""
    readme = (ROOT / "README.md").read_text()
    line = next(part for part in readme.split("`") if "bin/gunicorn -c gunicorn.conf.py" in part)
    command = line[line.index(".venv/bin/gunicorn") :].split()
    return [str(Path(sys.executable).parent / "gunicorn"), *command[1:]]


def _start_readme_gunicorn(live_app, tmp_path, **settings: str) -> tuple[subprocess.Popen, int]:
    """The README's gunicorn line serving ``live_app``'s database, one worker process;
    ``settings``: more environment. Returns the server (its own process group) and port."""
    port = fault.free_port()
    env = {
        **os.environ,
        "REGBO_ENV": "testing",
        "REGBO_SECRET_KEY": "test-secret-key",
        "REGBO_DATABASE_URL": live_app.config["SQLALCHEMY_DATABASE_URI"],
        "REGBO_STORAGE_DIR": str(tmp_path / "files"),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_ACCESSLOG": "",
        **settings,
    }
    env.pop("REGBO_REDIS_URL", None)
    server = subprocess.Popen(
        _readme_gunicorn_command(),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    return server, port


def test_a_slow_upload_holds_up_no_one_else_under_the_readme_gunicorn_line(live_app, tmp_path):
    # One process only: with sync workers it would serve nobody while the upload lasts. A
    # short worker timeout: the upload below outlasts it (as a 10 MB zip at 250 KB/s
    # outlasted sync workers' 30 s) and must still be answered, not killed.
    server, port = _start_readme_gunicorn(live_app, tmp_path, GUNICORN_TIMEOUT="3")
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/login", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    body_size = 2_000_000
    sent = {"bytes": 0}
    release = threading.Event()
    upload_done = threading.Event()
    upload_answer: list[bytes] = []

    def slow_upload() -> None:  # an applicant on a thin uplink: 1 KB at a time
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            sock.sendall(
                b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                + f"Content-Length: {body_size}\r\n\r\n".encode()
            )
            started = time.monotonic()
            while sent["bytes"] < body_size - 1024 and not (
                release.is_set() and time.monotonic() - started > 6
            ):
                sock.sendall(b"x" * 1024)
                sent["bytes"] += 1024
                time.sleep(0.02)
            sock.sendall(b"x" * (body_size - sent["bytes"]))
            upload_done.set()
            upload_answer.append(sock.recv(64))

    try:
        wait_until(lambda: answers() or server.poll() is not None, 90, "gunicorn to serve")
        assert server.poll() is None, server.communicate()[1].decode(errors="replace")[-3000:]
        uploader = threading.Thread(target=slow_upload, daemon=True)
        uploader.start()
        wait_until(lambda: sent["bytes"] >= 20 * 1024, 30, "the slow upload to be under way")
        # Another user's page answers while the upload is still trickling in.
        with urllib.request.urlopen(f"{base}/login", timeout=60) as response:
            assert response.status == 200 and "登录" in response.read().decode()
        assert not upload_done.is_set()
        release.set()
        uploader.join(120)
        # Served by the app after more than the worker timeout (the form lacks its CSRF
        # token: 400), not cut off with a bare 500 or a reset connection.
        assert upload_answer and upload_answer[0].startswith(b"HTTP/1.1 400 ")
    finally:
        release.set()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        _, errors = server.communicate(timeout=60)
    assert b"WORKER TIMEOUT" not in errors, errors.decode(errors="replace")[-2000:]


def test_nginx_example_body_limit_matches_the_app_and_trusted_proxies_are_named():
    example = (ROOT / "deploy" / "nginx.conf.example").read_text()
    app_limit_mb = load_config("/tmp", {"REGBO_ENV": "development"})["MAX_CONTENT_LENGTH"] >> 20
    assert f"client_max_body_size {app_limit_mb}m;" in example
    assert "proxy_request_buffering on;" in example and "REGBO_TRUSTED_PROXIES=1" in example


def test_a_stopping_worker_writes_the_interlock_audit_rows_it_holds(live_app, live_db, tmp_path):
    # The check's audit rows wait in the worker for their batch (audit_batch); a worker
    # stopped gracefully (a release, max_requests) writes them before it exits.
    unit = factories.make_unit()
    cylinder = factories.make_cylinder(unit)
    api_client, _ = factories.make_api_client(unit)
    token = token_for(api_client)
    live_db.session.commit()
    # Neither a full batch nor the writer's interval: only the exit writes them.
    server, port = _start_readme_gunicorn(
        live_app,
        tmp_path,
        REGBO_API_AUDIT_BATCH_ROWS="1000",
        REGBO_API_AUDIT_FLUSH_SECONDS="600",
    )

    def check() -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/fillings/check",
            data=json.dumps({"id": cylinder.id, "medium_code": "G1"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except OSError:
            return 0

    def rows() -> int:
        live_db.session.rollback()
        return live_db.session.scalar(
            sa.text(
                "SELECT count(*) FROM audit_log WHERE action = 'api_call' AND actor_id = :c"
                " AND detail->>'path' = '/api/v1/fillings/check'"
            ),
            {"c": api_client.id},
        )

    try:
        wait_until(lambda: check() == 200 or server.poll() is not None, 90, "gunicorn to serve")
        assert server.poll() is None, server.communicate()[1].decode(errors="replace")[-3000:]
        assert [check(), check()] == [200, 200]
        assert rows() == 0  # three rows wait in the worker
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=60)
    assert rows() == 3
