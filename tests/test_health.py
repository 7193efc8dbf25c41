"""/healthz judges waiting work: an rq job or a 排队中 row older than the limit fails it."""

from datetime import UTC, datetime, timedelta

from rq import Queue

from regbackoffice import certificates, worker
from regbackoffice.models import RenderState, Role, utcnow

from . import factories


def _healthz(client) -> tuple[int, dict]:
    response = client.get("/healthz")
    return response.status_code, response.get_json()


def test_healthz_is_ok_with_a_live_worker_and_nothing_waiting(app, client, redis_conn):
    worker.beat(redis_conn, app.config["RQ_QUEUE"], "test-worker")
    status, body = _healthz(client)
    assert status == 200 and body["status"] == "ok"
    assert body["checks"]["worker"]["alive"] == 1
    assert client.get("/healthz").headers["Cache-Control"] == "no-store"


def test_healthz_fails_when_work_waits_longer_than_the_limit(app, client, db, redis_conn):
    worker.beat(redis_conn, app.config["RQ_QUEUE"], "test-worker")
    unit = factories.make_unit("500112")
    approved = factories.make_approved_application(unit, items=1)
    certificate = certificates.generate(
        approved, factories.make_user(Role.ACCEPTOR), approved.version_id
    )
    assert certificate.render_state is RenderState.QUEUED
    certificate.created_at = utcnow() - timedelta(hours=2)  # the sweep has not sent it
    db.session.flush()
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_conn)
    job = queue.enqueue("regbackoffice.maintenance.end_idle_sessions")
    job.enqueued_at = datetime.now(UTC) - timedelta(hours=1)  # no worker takes it
    job.save()

    status, body = _healthz(client)
    assert status == 503 and body["status"] == "fail"
    limit = app.config["HEALTH_MAX_QUEUE_AGE"]
    queue_check = body["checks"]["queue"]
    assert queue_check["ok"] is False and queue_check["depth"] == 1
    assert queue_check["oldest_seconds"] >= 3600 > limit
    waiting = body["checks"]["waiting"]
    assert waiting["ok"] is False and waiting["certificates"]["count"] == 1
    assert waiting["certificates"]["oldest_seconds"] >= 7200
    assert body["checks"]["worker"]["ok"] is True and body["checks"]["database"]["ok"] is True


def test_healthz_reports_the_low_priority_queue_beside_the_main_one(app, client, redis_conn):
    from regbackoffice import jobs

    worker.beat(redis_conn, app.config["RQ_QUEUE"], "test-worker")
    low = Queue(jobs.low_queue_name(app.config["RQ_QUEUE"]), connection=redis_conn)
    for _ in range(2):
        job = low.enqueue("regbackoffice.maintenance.end_idle_sessions")
    job.enqueued_at = datetime.now(UTC) - timedelta(hours=2)
    job.save()
    first = low.jobs[0]
    first.enqueued_at = datetime.now(UTC) - timedelta(hours=3)  # a long reading waits
    first.save()

    status, body = _healthz(client)
    # 机器预读 waits by design while certificates run: reported, never a failure.
    assert status == 200 and body["status"] == "ok"
    assert body["checks"]["queue"]["depth"] == 0
    low_check = body["checks"]["low_queue"]
    assert low_check["ok"] is True and low_check["depth"] == 2
    assert low_check["oldest_seconds"] >= 3 * 3600
