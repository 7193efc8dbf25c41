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
from sqlalchemy.orm import Session

from .extensions import db

_CALLBACKS = "regbo_after_commit"


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` after the current transaction commits; never if it rolls back."""
    db.session().info.setdefault(_CALLBACKS, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_callbacks(session: Session) -> None:
    # SQLAlchemy fires after_commit when a SAVEPOINT (begin_nested) is released too; the
    # side effects must wait for the outermost commit.
    if session.get_nested_transaction() is not None:
        return
    callbacks = session.info.pop(_CALLBACKS, [])
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the data is committed; requeue_stuck re-sends what did not leave
            current_app.logger.exception("after-commit callback failed")


@event.listens_for(Session, "after_rollback")
def _drop_callbacks(session: Session) -> None:
    session.info.pop(_CALLBACKS, None)


def _finish(response: Response) -> Response:
    if response.status_code < 400 and not g.get("rollback_only"):
        db.session.commit()
    else:
        db.session.rollback()
    durable = g.pop("durable_audit", [])
    if durable:
        db.session.add_all(durable)
        db.session.commit()
    return response


def _teardown(exc: BaseException | None) -> None:
    if exc is not None:
        db.session.rollback()


def init_app(app: Flask) -> None:
    app.after_request(_finish)
    app.teardown_request(_teardown)
