"""Background jobs on rq, or inline when no Redis is configured.

Jobs are referred to by dotted path and take only ids; each runs in an app context,
commits its own work and is safe to run twice.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from redis import Redis
from rq import Queue
from werkzeug.utils import import_string

from .transaction import after_commit


def redis_connection() -> Redis | None:
    url = current_app.config.get("REDIS_URL")
    return Redis.from_url(url) if url else None


def queue() -> Queue | None:
    connection = redis_connection()
    if connection is None:
        return None
    return Queue(current_app.config["RQ_QUEUE"], connection=connection)


def enqueue(func_path: str, *args: Any, job_id: str | None = None, **options: Any) -> None:
    """Send a job to the worker now; run it inline when Redis is not configured."""
    q = queue()
    if q is None:
        # Inline: in a fresh app context, so the job has its own session and transaction
        # (it may be called from another session's after-commit hook).
        with current_app.app_context():
            import_string(func_path)(*args)
        return
    q.enqueue(func_path, *args, job_id=job_id, **options)


def enqueue_after_commit(func_path: str, *args: Any, **options: Any) -> None:
    """Queue a job to leave only once the current request has committed."""
    after_commit(lambda: enqueue(func_path, *args, **options))
