"""The rq worker process: jobs in the app context, plus the stuck-work sweeper."""

from __future__ import annotations

import threading

from flask import Flask
from rq import Worker
from rq.job import Job
from rq.queue import Queue

from .extensions import db


class AppWorker(Worker):
    """Each job runs in a forked work horse, which must not reuse the parent's connections."""

    def perform_job(self, job: Job, queue: Queue) -> bool:
        db.engine.dispose(close=False)  # forget the parent's pool without closing its sockets
        return super().perform_job(job, queue)


# The dashboard's summaries are rebuilt after each certificate; this catches the rest
# (filling records arrive all day through the API).
STATS_MAX_AGE_SECONDS = 3600


def _sweep_forever(app: Flask, interval: float, stop: threading.Event) -> None:
    from .certificates import requeue_stuck
    from .stats.summaries import refresh_if_stale

    while not stop.wait(interval):
        with app.app_context():
            try:
                sent = requeue_stuck()
                if sent:
                    app.logger.info("re-enqueued %s stuck certificate(s)", sent)
            except Exception:  # Redis or the database may be away; try again next time
                app.logger.exception("stuck-work sweep failed")
            try:
                if refresh_if_stale(STATS_MAX_AGE_SECONDS):
                    app.logger.info("dashboard statistics refreshed")
            except Exception:
                app.logger.exception("dashboard statistics refresh failed")
                db.session.rollback()


def run_worker(app: Flask, queue: Queue, *, burst: bool, sweep_interval: float) -> None:
    """Work the queue; unless bursting, sweep for stuck certificates every interval."""
    from .certificates import requeue_stuck

    db.engine.dispose()
    requeue_stuck()  # work that was waiting while no worker (or no Redis) was there
    db.session.remove()
    db.engine.dispose()
    stop = threading.Event()
    if not burst:
        threading.Thread(
            target=_sweep_forever, args=(app, sweep_interval, stop), daemon=True, name="sweeper"
        ).start()
    try:
        AppWorker([queue], connection=queue.connection).work(burst=burst, with_scheduler=True)
    finally:
        stop.set()
