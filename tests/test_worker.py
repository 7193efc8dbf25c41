"""The rq worker command runs jobs from real Redis inside the app context."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from rq import Queue
from rq.job import Job

from regbackoffice import accounts, jobs
from regbackoffice.extensions import db
from regbackoffice.models import Role, UserSession, utcnow

from . import factories
from .conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def committed_idle_session(app):
    """A committed user and idle session (a worker process cannot see test transactions)."""
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=sa.pool.NullPool)
    stale = utcnow() - timedelta(hours=2)
    with engine.begin() as conn:
        user_id = conn.execute(
            sa.text(
                "INSERT INTO users (username, display_name, password_hash, role, active,"
                " failed_logins, created_at) VALUES ('worker-probe', 'w', 'x', 'admin', true, 0,"
                " now()) RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO user_sessions (token_hash, user_id, created_at, last_seen_at)"
                " VALUES (:h, :u, :t, :t)"
            ),
            {"h": accounts.hash_token("probe"), "u": user_id, "t": stale},
        )
    yield engine
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM user_sessions WHERE user_id = :u"), {"u": user_id})
        conn.execute(sa.text("DELETE FROM users WHERE id = :u"), {"u": user_id})
    engine.dispose()


def run_worker_burst(app) -> None:
    """``flask worker --burst`` in its own process on the test database and Redis: it works
    the queues empty and exits."""
    env = {
        **os.environ,
        "REGBO_ENV": "testing",
        "REGBO_SECRET_KEY": "test-secret-key",
        "REGBO_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REGBO_REDIS_URL": TEST_REDIS_URL,
    }
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_worker_command_runs_queued_jobs_by_name_and_by_old_path_in_the_app_context(
    app, redis_conn, committed_idle_session
):
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_conn)
    job = jobs.send(queue, "end_idle_sessions")
    # Queued by an older release, before the registry: rq stored the dotted path.
    old = queue.enqueue("regbackoffice.maintenance.end_idle_sessions")
    run_worker_burst(app)
    job = Job.fetch(job.id, connection=redis_conn)
    assert job.is_finished and job.return_value() == 1
    old = Job.fetch(old.id, connection=redis_conn)
    assert old.is_finished and old.return_value() == 0  # nothing left to end
    with committed_idle_session.connect() as conn:
        reason = conn.execute(sa.text("SELECT end_reason FROM user_sessions")).scalars().all()
    assert reason == ["idle"]


def test_worker_takes_the_low_priority_queue_only_after_the_main_one(
    app, redis_conn, committed_idle_session
):
    # 机器预读 waits on the low-priority queue; a certificate (main queue) goes first.
    low = Queue(jobs.low_queue_name(app.config["RQ_QUEUE"]), connection=redis_conn)
    main = Queue(app.config["RQ_QUEUE"], connection=redis_conn)
    later = jobs.send(low, "end_idle_sessions")  # queued first, but low priority
    first = jobs.send(main, "end_idle_sessions")
    run_worker_burst(app)
    # The main queue's job ran first and ended the idle session; the low one found none.
    assert Job.fetch(first.id, connection=redis_conn).return_value() == 1
    assert Job.fetch(later.id, connection=redis_conn).return_value() == 0


def test_without_redis_jobs_run_inline(app, shadow_app, redis_conn):
    user = factories.make_user(Role.ACCEPTOR)
    accounts.start_session(user, None)
    row = db.session.scalar(sa.select(UserSession).where(UserSession.user_id == user.id))
    row.last_seen_at = utcnow() - timedelta(hours=1)
    db.session.flush()
    shadow_app.config["REDIS_URL"] = None
    try:
        jobs.enqueue("end_idle_sessions")  # runs here and now
    finally:
        shadow_app.config["REDIS_URL"] = app.config["REDIS_URL"]
    db.session.refresh(row)
    assert row.end_reason == "idle"
    assert redis_conn.keys("rq:*") == []


def test_worker_command_refuses_without_redis(app):
    env = {**os.environ, "REGBO_ENV": "development"}
    env.pop("REGBO_REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "REGBO_REDIS_URL" in result.stderr


def test_a_rolled_back_request_sends_no_job_and_leaves_no_file(app, shadow_app, redis_conn):
    """after_commit work is dropped and files saved for the transaction are removed."""
    from regbackoffice import storage, transaction

    key = storage.new_key("photos", ".jpg")
    storage.save_in_transaction(key, b"\xff\xd8\xff photo")
    jobs.enqueue_after_commit("end_idle_sessions")
    assert storage.exists(key)
    db.session.rollback()
    assert not storage.exists(key)
    assert redis_conn.keys("rq:queue:*") == []
    # And on commit the job leaves and the file stays.
    storage.save_in_transaction(key, b"\xff\xd8\xff photo")
    transaction.after_commit(lambda: redis_conn.set("committed", 1))
    db.session.commit()
    assert storage.exists(key) and redis_conn.get("committed") == b"1"
