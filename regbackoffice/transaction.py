"""The request's single commit, and side effects that may only leave after it.

Views and domain operations only ``flush``. After the response is built the request
commits when it succeeded (status < 400) and rolls back otherwise; audit rows for refusals
are then written on their own. Callbacks registered with ``after_commit`` (enqueueing rq
jobs, mostly) run only once the commit has succeeded.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, current_app, g

from .extensions import db


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` after this request's commit; never if it rolls back."""
    g.setdefault("after_commit", []).append(callback)


def _finish(response: Response) -> Response:
    if response.status_code < 400 and not g.get("rollback_only"):
        db.session.commit()
        callbacks = g.pop("after_commit", [])
    else:
        db.session.rollback()
        callbacks = []
    durable = g.pop("durable_audit", [])
    if durable:
        db.session.add_all(durable)
        db.session.commit()
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the data is committed; the outbox re-sends what did not leave
            current_app.logger.exception("after-commit callback failed")
    return response


def _teardown(exc: BaseException | None) -> None:
    if exc is not None:
        db.session.rollback()


def init_app(app: Flask) -> None:
    app.after_request(_finish)
    app.teardown_request(_teardown)
