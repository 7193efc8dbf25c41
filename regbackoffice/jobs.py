"""Background jobs on rq, or inline when no Redis is configured.

Jobs are registered by name (``@jobs.job("render_certificate")``) and take only ids; each
runs in an app context, commits its own work and is safe to run twice. rq stores every job
as ``jobs.run(name, *args)``, so renaming or moving a job's function never strands a queued
job; jobs queued before the registry (by dotted path) still run while their function stays
importable at that path.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app
from redis import Redis
from rq import Queue
from rq.job import Job

from .transaction import after_commit

F = TypeVar("F", bound=Callable[..., Any])

_REGISTRY: dict[str, Callable[..., Any]] = {}
# The modules that define jobs, imported on the first lookup so that a bare worker process
# knows every name.
JOB_MODULES = (
    "regbackoffice.certificates",
    "regbackoffice.imports.job",
    "regbackoffice.maintenance",
    "regbackoffice.photo_files",
    "regbackoffice.prereading",
    "regbackoffice.stats.summaries",
)


def job(name: str) -> Callable[[F], F]:
    """Register the decorated function as the job ``name``."""

    def register(func: F) -> F:
        known = _REGISTRY.get(name)
        if known is not None and known.__qualname__ != func.__qualname__:
            raise RuntimeError(f"two jobs are named {name!r}")
        _REGISTRY[name] = func
        return func

    return register


def lookup(name: str) -> Callable[..., Any]:
    """The function registered as ``name``."""
    if name not in _REGISTRY:
        for module in JOB_MODULES:
            importlib.import_module(module)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LookupError(f"no job is named {name!r}") from None


def run(name: str, *args: Any) -> Any:
    """What rq executes for every job: the registered function, called with the ids."""
    return lookup(name)(*args)


def name_of(rq_job: Job) -> str:
    """The registered name of a queued rq job (its dotted path if queued before the registry)."""
    if rq_job.func_name == f"{__name__}.run" and rq_job.args:
        return str(rq_job.args[0])
    # rq types func_name as optional; a job made from a function (all of ours) always has one.
    return rq_job.func_name or ""


def redis_connection() -> Redis | None:
    url = current_app.config.get("REDIS_URL")
    return Redis.from_url(url) if url else None


def low_queue_name(name: str) -> str:
    """The low-priority queue beside ``name``: the worker takes from it only when ``name``
    is empty (machine reading of photos must never delay a certificate)."""
    return f"{name}-low"


def queue(low_priority: bool = False) -> Queue | None:
    connection = redis_connection()
    if connection is None:
        return None
    name = current_app.config["RQ_QUEUE"]
    return Queue(low_queue_name(name) if low_priority else name, connection=connection)


def send(q: Queue, name: str, *args: Any, **options: Any) -> Job:
    """Put the job ``name`` on ``q`` (checked against the registry first)."""
    lookup(name)
    return q.enqueue(run, name, *args, **options)


def enqueue(
    name: str,
    *args: Any,
    job_id: str | None = None,
    low_priority: bool = False,
    **options: Any,
) -> None:
    """Send a job to the worker now; run it inline when Redis is not configured."""
    q = queue(low_priority)
    if q is None:
        # Inline: in a fresh app context, so the job has its own session and transaction
        # (it may be called from another session's after-commit hook).
        with current_app.app_context():
            lookup(name)(*args)
        return
    send(q, name, *args, job_id=job_id, **options)


def enqueue_after_commit(name: str, *args: Any, **options: Any) -> None:
    """Queue a job to leave only once the current request has committed."""
    after_commit(lambda: enqueue(name, *args, **options))
