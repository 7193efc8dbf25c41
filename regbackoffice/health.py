"""Health of the app and its background work: ``/healthz`` and the calm notice on pages.

``report()`` checks the database, Redis, the rq queue (depth and the oldest waiting job; the
low-priority queue's too, reported but not judged),
the workers' heartbeat and the work waiting in the database (certificates 排队中, …: every
``worker.Sweeper``). It names what failed by kind only (no address, no message), so it is
safe to show without a login.

``jobs_delayed()`` is the cheaper question a page with queued work asks: is background
work held up right now (Redis unreachable, or no worker alive)? Then the page says so
calmly: the work is kept and will run once things are back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask, current_app, g
from redis import Redis
from rq import Queue
from rq.job import Job

from . import jobs, worker
from .extensions import db

NOTICE = "后台任务暂时排队，恢复后自动处理"


def _redis() -> Redis | None:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    # Short timeouts: a health check or a page must not hang on an unreachable Redis.
    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)


def _age_seconds(moment: datetime | None, now: datetime) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # rq stores naive UTC times
        moment = moment.replace(tzinfo=UTC)
    return max(0, int((now - moment).total_seconds()))


def _failure(exc: Exception) -> dict[str, Any]:
    return {"ok": False, "error": type(exc).__name__}


def _heartbeat_max_age() -> float:
    return 3 * current_app.config["WORKER_HEARTBEAT_SECONDS"]


def _database() -> dict[str, Any]:
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return _failure(exc)
    return {"ok": True}


def _waiting(now: datetime, max_age: int) -> dict[str, Any]:
    """Queued work in the database, per kind (it waits there whether or not Redis is up)."""
    kinds: dict[str, Any] = {}
    try:
        for sweeper in worker.sweepers():
            count, oldest = sweeper.waiting()
            age = _age_seconds(oldest, now)
            kinds[sweeper.label] = {"count": count, "oldest_seconds": age}
    except Exception as exc:
        db.session.rollback()
        return _failure(exc)
    stale = [label for label, w in kinds.items() if (w["oldest_seconds"] or 0) > max_age]
    return {"ok": not stale, **kinds}


def _queue_state(connection: Redis, name: str) -> tuple[int, datetime | None]:
    """(depth, when the job waiting longest was enqueued) of one rq queue."""
    queue = Queue(name, connection=connection)
    depth = queue.count
    # rq appends: the head waited longest (the sync client answers bytes).
    first = cast(bytes | None, connection.lindex(queue.key, 0))
    if first is None:
        return depth, None
    try:
        return depth, Job.fetch(first.decode(), connection=connection).enqueued_at
    except Exception:  # the job expired or was deleted meanwhile
        return depth, None


def _background(now: datetime, max_age: int) -> dict[str, dict[str, Any]]:
    """Redis, the queues and the workers; all fine (and said so) when jobs run inline."""
    connection = _redis()
    if connection is None:
        inline = {"ok": True, "configured": False}
        return {"redis": inline, "queue": inline, "low_queue": inline, "worker": inline}
    name = current_app.config["RQ_QUEUE"]
    try:
        with connection:
            connection.ping()
            depth, oldest = _queue_state(connection, name)
            low_depth, low_oldest = _queue_state(connection, jobs.low_queue_name(name))
            alive, last_beat = worker.live_workers(connection, name, _heartbeat_max_age())
    except Exception as exc:
        failed = _failure(exc)
        return {
            "redis": failed,
            "queue": {"ok": False},
            "low_queue": {"ok": False},
            "worker": {"ok": False},
        }
    age = _age_seconds(oldest, now)
    return {
        "redis": {"ok": True},
        "queue": {"ok": (age or 0) <= max_age, "depth": depth, "oldest_seconds": age},
        # The low-priority queue (机器预读) is reported, not judged: it waits by design while
        # certificates run, and one application's reading may take hours.
        "low_queue": {
            "ok": True,
            "depth": low_depth,
            "oldest_seconds": _age_seconds(low_oldest, now),
        },
        "worker": {
            "ok": alive > 0,
            "alive": alive,
            "last_heartbeat_seconds": None if last_beat is None else int(last_beat),
        },
    }


def report(scope: str = "all") -> tuple[bool, dict[str, Any]]:
    """(healthy, the JSON body). ``scope="web"``: only what this app server needs to serve
    pages (the database), for a load balancer that must not drop every app server because
    the worker is down; monitoring asks for everything."""
    now = datetime.now(UTC)
    max_age = current_app.config["HEALTH_MAX_QUEUE_AGE"]
    checks: dict[str, Any] = {"database": _database()}
    if scope != "web":
        checks.update(_background(now, max_age))
        if checks["database"]["ok"]:
            checks["waiting"] = _waiting(now, max_age)
    healthy = all(check["ok"] for check in checks.values())
    return healthy, {"status": "ok" if healthy else "fail", "checks": checks}


def jobs_delayed() -> bool:
    """Is background work held up now (Redis unreachable or no live worker)? Once a request."""
    if "regbo_jobs_delayed" not in g:
        connection = _redis()
        delayed = False
        if connection is not None:
            try:
                with connection:
                    connection.ping()
                    name = current_app.config["RQ_QUEUE"]
                    alive, _ = worker.live_workers(connection, name, _heartbeat_max_age())
                    delayed = alive == 0
            except Exception:
                delayed = True
        g.regbo_jobs_delayed = delayed
    return g.regbo_jobs_delayed


def init_app(app: Flask) -> None:
    # Templates with queued work ask `jobs_delayed()` and include _jobs_delayed.html.
    app.jinja_env.globals["jobs_delayed"] = jobs_delayed
