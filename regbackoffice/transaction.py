"""The request's single commit, and side effects that may only leave after a commit.

Views and domain operations only ``flush``. After the response is built the request
commits when it succeeded (status < 400) and rolls back otherwise; audit rows for refusals
are then written on their own.

``after_commit(callback)`` queues a side effect (enqueueing an rq job, mostly) on the
current session: it runs once that session's transaction commits, and is dropped if it
rolls back. This holds in requests, CLI commands and jobs alike.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, current_app, g
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.exc import StaleDataError

from .extensions import db
from .page_hooks import app_wide

_AFTER_COMMIT = "regbo_after_commit"
_ON_ROLLBACK = "regbo_on_rollback"


def _session_in_transaction() -> Session:
    session = db.session()
    session.connection()  # begin now, so the commit or rollback event surely fires
    return session


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` after the current transaction commits; never if it rolls back."""
    _session_in_transaction().info.setdefault(_AFTER_COMMIT, []).append(callback)


def on_rollback(callback: Callable[[], None]) -> None:
    """Undo an outside effect (a stored file) if the current transaction rolls back."""
    _session_in_transaction().info.setdefault(_ON_ROLLBACK, []).append(callback)


def _run(callbacks: list[Callable[[], None]], what: str) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:  # e.g. Redis down: requeue_stuck re-sends what did not leave
            current_app.logger.exception("%s callback failed", what)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    # SQLAlchemy fires after_commit when a SAVEPOINT (begin_nested) is released too; the
    # side effects must wait for the outermost commit.
    if session.get_nested_transaction() is not None:
        return
    session.info.pop(_ON_ROLLBACK, None)
    _run(session.info.pop(_AFTER_COMMIT, []), "after-commit")


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is not None:
        return  # a savepoint inside the transaction: the outer work may still commit
    session.info.pop(_AFTER_COMMIT, None)
    _run(session.info.pop(_ON_ROLLBACK, []), "on-rollback")


def _finish(response: Response) -> Response:
    # A request that never began a transaction (the interlock check: its statements commit
    # themselves on a connection of their own) has nothing to commit or roll back. A
    # request that never used its session has none: db.session() would build one here.
    if db.session.registry.has() and db.session().in_transaction():
        response = _end_transaction(response)
    durable = g.pop("durable_audit", [])
    if durable:
        db.session.add_all(durable)
        db.session.commit()
    return response


def _end_transaction(response: Response) -> Response:
    """Commit when the request succeeded (status < 400), else roll back."""
    if response.status_code >= 400 or g.get("rollback_only"):
        db.session.rollback()
        return response
    try:
        db.session.commit()
    except StaleDataError:  # another request changed the same row first: nothing saved
        db.session.rollback()
        from .errors import conflict_response

        return current_app.make_response(conflict_response())
    return response


def _teardown(exc: BaseException | None) -> None:
    if exc is not None:
        db.session.rollback()


def init_app(app: Flask) -> None:
    app.after_request(app_wide(_finish))
    app.teardown_request(app_wide(_teardown))
