"""Housekeeping jobs, run by the rq worker (or inline)."""

from __future__ import annotations

from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, update

from . import jobs
from .extensions import db
from .models import UserSession, utcnow


@jobs.job("end_idle_sessions")
def end_idle_sessions() -> int:
    """End every session idle past the timeout; returns how many. Safe to run twice."""
    cutoff = utcnow() - current_app.config["IDLE_TIMEOUT"]
    # An UPDATE's result is a CursorResult at run time; Session.execute is typed as Result.
    result = cast(
        CursorResult[Any],
        db.session.execute(
            update(UserSession)
            .where(UserSession.ended_at.is_(None), UserSession.last_seen_at < cutoff)
            .values(ended_at=utcnow(), end_reason="idle")
        ),
    )
    db.session.commit()
    return result.rowcount
