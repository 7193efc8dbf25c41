"""The rq worker process: jobs in the app context, the stuck-work sweep and a heartbeat.

Every kind of queued work registers one ``Sweeper`` in ``SWEEPERS``: ``requeue`` sends
again what never reached Redis or whose worker died (safe to call at any time), and
``waiting`` says how much is waiting in the database and since when (``/healthz`` shows
it). The worker runs every sweeper at start and every sweep interval.

The heartbeat: while a worker process lives it writes the time into a sorted set in Redis
(``heartbeat_key``) every ``WORKER_HEARTBEAT`` seconds; ``/healthz`` and the calm notice
on pages with queued work read it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from flask import Flask, current_app
from redis import Redis
from rq import Worker
from rq.job import Job
from rq.queue import Queue

from .extensions import db
from .jobs import low_queue_name


class AppWorker(Worker):
    """Each job runs in a forked work horse, which must not reuse the parent's connections."""

    def perform_job(self, job: Job, queue: Queue) -> bool:
        db.engine.dispose(close=False)  # forget the parent's pool without closing its sockets
        return super().perform_job(job, queue)


@dataclass(frozen=True)
class Sweeper:
    """One kind of queued work the worker's sweep keeps moving."""

    label: str  # for the log and /healthz, e.g. "certificates"
    requeue: Callable[[], int]  # re-send what is stuck; returns how many were sent
    waiting: Callable[[], tuple[int, datetime | None]]  # queued in the database: count, oldest


def _certificates() -> Sweeper:
    from . import certificates

    return Sweeper("certificates", certificates.requeue_stuck, certificates.waiting)


def _imports() -> Sweeper:
    from .imports import job

    return Sweeper("imports", job.requeue_stuck, job.waiting)


SWEEPER_FACTORIES: list[Callable[[], Sweeper]] = [_certificates, _imports]


def sweepers() -> list[Sweeper]:
    return [factory() for factory in SWEEPER_FACTORIES]


def sweep_once() -> int:
    """Run every sweeper; one failing (Redis or the database away) does not stop the rest."""
    sent = 0
    for sweeper in sweepers():
        try:
            count = sweeper.requeue()
        except Exception:  # try again at the next sweep
            current_app.logger.exception("stuck-work sweep of %s failed", sweeper.label)
            db.session.rollback()
            continue
        if count:
            current_app.logger.info("re-enqueued %s stuck %s", count, sweeper.label)
        sent += count
    return sent


# The dashboard's summaries are rebuilt after each certificate; this catches the rest
# (filling records arrive all day through the API).
STATS_MAX_AGE_SECONDS = 3600


def heartbeat_key(queue_name: str) -> str:
    return f"regbo:worker-heartbeats:{queue_name}"


def beat(connection: Redis, queue_name: str, member: str, now: float | None = None) -> None:
    """Record that ``member`` (a worker process) is alive now."""
    connection.zadd(heartbeat_key(queue_name), {member: time.time() if now is None else now})


def live_workers(connection: Redis, queue_name: str, max_age: float) -> tuple[int, float | None]:
    """Workers that beat within ``max_age`` seconds, and the age of the newest beat."""
    key = heartbeat_key(queue_name)
    now = time.time()
    connection.zremrangebyscore(key, "-inf", now - 24 * 3600)  # long gone: forget them
    # redis-py's sync client answers plain values (its types also cover the async client).
    newest = cast(list[tuple[bytes, float]], connection.zrevrange(key, 0, 0, withscores=True))
    alive = cast(int, connection.zcount(key, now - max_age, "+inf"))
    return alive, (now - newest[0][1]) if newest else None


def _beat_forever(
    connection: Redis, queue_name: str, interval: float, stop: threading.Event
) -> None:
    member = f"{socket.gethostname()}:{os.getpid()}"
    while True:
        with contextlib.suppress(Exception):  # Redis away: beat again next time
            beat(connection, queue_name, member)
        if stop.wait(interval):
            break
    with contextlib.suppress(Exception):
        connection.zrem(heartbeat_key(queue_name), member)  # a clean stop is not a death


def _sweep_forever(app: Flask, interval: float, stop: threading.Event) -> None:
    from .stats.summaries import refresh_if_stale

    while not stop.wait(interval):
        with app.app_context():
            sweep_once()
            try:
                if refresh_if_stale(STATS_MAX_AGE_SECONDS):
                    app.logger.info("dashboard statistics refreshed")
            except Exception:
                app.logger.exception("dashboard statistics refresh failed")
                db.session.rollback()


def run_worker(app: Flask, queue: Queue, *, burst: bool, sweep_interval: float) -> None:
    """Work the queue with a heartbeat; unless bursting, sweep stuck work every interval."""
    db.engine.dispose()
    sweep_once()  # work that was waiting while no worker (or no Redis) was there
    db.session.remove()
    db.engine.dispose()
    stop = threading.Event()
    threading.Thread(
        target=_beat_forever,
        args=(queue.connection, queue.name, app.config["WORKER_HEARTBEAT_SECONDS"], stop),
        daemon=True,
        name="heartbeat",
    ).start()
    if not burst:
        threading.Thread(
            target=_sweep_forever, args=(app, sweep_interval, stop), daemon=True, name="sweeper"
        ).start()
    try:
        # The low-priority queue second: rq takes from it only when the first is empty.
        low = Queue(low_queue_name(queue.name), connection=queue.connection)
        AppWorker([queue, low], connection=queue.connection).work(burst=burst, with_scheduler=True)
    finally:
        stop.set()
