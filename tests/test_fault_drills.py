"""Fault drills on private, throwaway servers (loopback only, bounded in time).

- Redis stops during 证书生成 and comes back: the request still commits, and the worker's
  sweep (``certificates.requeue_stuck``) sends the render job once Redis is back.
- PostgreSQL crashes and restarts under a load of API filling batches served by a real
  HTTP server: clients retry, every acknowledged record is stored exactly once (retries
  answered as duplicates), and the app serves again without manual repair.

The machine's shared PostgreSQL and Redis are never touched: each drill starts its own
``redis-server`` / PostgreSQL cluster on a free port and removes it afterwards. (Killing
the rq worker mid-render is in ``test_certificate_drills.py``.)
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from werkzeug.serving import make_server

from regbackoffice import create_app
from regbackoffice.extensions import db as _db
from regbackoffice.models import Certificate, RenderState, Role

from . import factories
from .api_helpers import token_for
from .conftest import csrf_token_from, login, make_test_config
from .test_api_records import filling, month
from .test_certificate_drills import start_worker, wait_for_state

pytestmark = pytest.mark.slow
# The newest PostgreSQL server binaries installed (Debian: /usr/lib/postgresql/<major>/bin).
_INITDBS = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
PG_BIN = _INITDBS[-1].parent if _INITDBS else Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class PrivateRedis:
    """A redis-server of our own, without persistence, that can be stopped and restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, 10, "private Redis to answer")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        wait_until(lambda: not self._answers(), 10, "private Redis to stop")


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temp folder, on its own port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="regbo-drill-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.as_owner: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/regbo_drill"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run([*self.as_owner, *args], check=True, capture_output=True, timeout=timeout)

    def init(self) -> None:
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        self.start()
        self._run(
            str(PG_BIN / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "regbo_drill",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
            timeout=90,
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    cluster = PrivatePostgres()
    try:
        cluster.init()
        yield cluster
    finally:
        cluster.remove()


# ----------------------------------------------------------------------- Redis during 证书生成


def test_redis_down_during_generation_commits_and_the_sweep_sends_the_job_when_it_returns(
    live_app, live_db, private_redis
):
    unit = factories.make_unit("500112")
    approved = factories.make_approved_application(unit, items=1)
    acceptor = factories.make_user(Role.ACCEPTOR, district_code="500112")
    live_db.session.commit()
    application_id = approved.id
    # A second app on the same database and config, but Redis = the private server; its
    # requests get their own app context (the test body runs in live_app's).
    web = create_app({**live_app.config, "REDIS_URL": private_redis.url})
    client = web.test_client()
    try:
        assert login(client, acceptor).status_code == 302
        page = client.get(f"/bureau/applications/{application_id}").get_data(as_text=True)
        live_db.session.refresh(approved)
        private_redis.stop()  # Redis goes away just before 证书生成
        response = client.post(
            f"/bureau/applications/{application_id}/certificate",
            data={"csrf_token": csrf_token_from(page), "version": approved.version_id},
        )
        assert response.status_code == 302  # the request still commits
    finally:
        with web.app_context():
            _db.engine.dispose()
    live_db.session.expire_all()
    certificate = live_db.session.scalar(
        sa.select(Certificate).where(Certificate.application_id == application_id)
    )
    assert certificate.render_state is RenderState.QUEUED and certificate.number
    number, certificate_id = certificate.number, certificate.id
    live_db.session.rollback()

    private_redis.start()  # back, and empty: the job that could not leave is not there
    worker = start_worker(
        live_app,
        ("REGBO_REDIS_URL", private_redis.url),
        ("REGBO_CERTIFICATE_REQUEUE_AFTER_SECONDS", "0"),
    )
    output, _ = worker.communicate(timeout=240)
    done = wait_for_state(
        live_db, certificate_id, {RenderState.READY, RenderState.FAILED}, timeout=10
    )
    assert done.render_state is RenderState.READY, output.decode(errors="replace")[-2000:]
    assert done.number == number
    folder = Path(live_app.config["STORAGE_DIR"]) / "certificates" / "500112"
    mine = sorted(p.name for p in folder.iterdir() if p.name.startswith(f"{certificate_id}."))
    assert mine == [f"{certificate_id}.pdf"]  # one file, no half-written temp file
    assert not list(folder.glob(f".tmp-{certificate_id}.pdf-*"))


# --------------------------------------------------------- PostgreSQL restart under API load

THREADS = 4
BATCHES_PER_THREAD = 12
RECORDS_PER_BATCH = 5


@pytest.fixture
def drill_app(private_postgres, tmp_path_factory):
    """The app on the private cluster, with real sessions (not the rolled-back test ones)."""
    config = make_test_config(tmp_path_factory, private_postgres.url)
    config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True, "pool_size": THREADS + 2}
    app = create_app(config)
    bound = _db.session
    _db.session = _db._make_scoped_session({})
    try:
        with app.app_context():
            upgrade()
            _db.session.remove()
        yield app
    finally:
        with app.app_context():
            _db.session.remove()
            _db.engine.dispose()
        _db.session = bound


def _post(
    url: str, token: str, body: dict, idempotency_key: str | None = None, timeout: float = 10
) -> tuple[int, dict | None]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):  # refused, reset, timed out, truncated
        return 0, None


def test_postgres_restart_under_api_filling_load_loses_and_doubles_nothing(
    drill_app, private_postgres
):
    with drill_app.app_context():
        unit = factories.make_unit("500112")
        cylinders = [
            factories.make_cylinder(unit, next_inspection_month=month(12)).id for _ in range(3)
        ]
        api_client, _ = factories.make_api_client(unit)
        token = token_for(api_client)
        client_id = api_client.id
        _db.session.commit()
        _db.session.remove()

    server = make_server("127.0.0.1", 0, drill_app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()

    acknowledged: dict[str, dict] = {}  # batch label → the answer's data
    failures = {"count": 0}
    lock = threading.Lock()
    progress = threading.Semaphore(0)

    database_down = threading.Event()

    def send_batches(thread_no: int) -> None:
        for batch_no in range(BATCHES_PER_THREAD):
            if batch_no == BATCHES_PER_THREAD // 2:
                database_down.wait(120)  # the second half is sent into the outage
            label = f"T{thread_no}-B{batch_no}"
            records = [
                filling(cylinders[r % len(cylinders)], record_no=f"{label}-R{r}")
                for r in range(RECORDS_PER_BATCH)
            ]
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                # Half the clients also send an Idempotency-Key (the same on every retry).
                key = f"key-{label}" if thread_no % 2 else None
                status, payload = _post(f"{base}/api/v1/fillings", token, {"records": records}, key)
                if status == 200 and payload and payload.get("code") == "200":
                    with lock:
                        acknowledged[label] = payload["data"]
                    progress.release()
                    break
                with lock:
                    failures["count"] += 1
                time.sleep(0.2)  # the client's retry back-off
            time.sleep(0.05)

    threads = [threading.Thread(target=send_batches, args=(n,)) for n in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for _ in range(THREADS * (BATCHES_PER_THREAD // 2)):  # half the load is through ...
            assert progress.acquire(timeout=120)
        private_postgres.stop("immediate")  # ... then the database crashes mid-load
        database_down.set()
        time.sleep(1.5)
        private_postgres.start()  # and comes back (crash recovery)
        for thread in threads:
            thread.join(180)
        assert not any(thread.is_alive() for thread in threads), "clients did not finish"
    finally:
        server.shutdown()
        serving.join(10)

    expected_batches = THREADS * BATCHES_PER_THREAD
    assert len(acknowledged) == expected_batches, f"only {len(acknowledged)} batches answered"
    assert failures["count"] > 0, "the restart did not hit the load (no request failed)"
    for label, data in acknowledged.items():
        # A retry of a batch whose first answer was lost comes back as duplicates.
        assert data["accepted"] + data["duplicates"] == RECORDS_PER_BATCH, (label, data)
        assert data["rejected"] == 0, (label, data)

    with drill_app.app_context():
        rows = _db.session.execute(
            sa.text(
                "SELECT record_no, count(*) FROM filling_records WHERE client_id = :c "
                "GROUP BY record_no"
            ),
            {"c": client_id},
        ).all()
        # No stuck state: every claimed Idempotency-Key has its stored answer.
        unanswered = _db.session.scalar(
            sa.text(
                "SELECT count(*) FROM api_idempotency_keys WHERE client_id = :c "
                "AND response IS NULL"
            ),
            {"c": client_id},
        )
        keys = _db.session.scalar(
            sa.text("SELECT count(*) FROM api_idempotency_keys WHERE client_id = :c"),
            {"c": client_id},
        )
        _db.session.remove()
    assert unanswered == 0 and keys == expected_batches // 2
    stored = dict(rows)
    assert all(n == 1 for n in stored.values()), "a record was stored twice"
    expected = {
        f"T{t}-B{b}-R{r}"
        for t in range(THREADS)
        for b in range(BATCHES_PER_THREAD)
        for r in range(RECORDS_PER_BATCH)
    }
    assert set(stored) == expected  # every acknowledged record is there, exactly once

    # The app serves again with no manual step (pool_pre_ping replaced dead connections).
    again = drill_app.test_client().post(
        "/api/v1/fillings",
        json={"records": [filling(cylinders[0], record_no="T0-B0-R0")]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert again.status_code == 200 and again.get_json()["data"]["duplicates"] == 1
