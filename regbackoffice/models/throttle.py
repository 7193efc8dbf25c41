"""Counters of failed logins and token exchanges (see ``regbackoffice.throttle``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Model, UTCDateTime


class AuthThrottle(Model):
    """One (scope, subject, address): attempts in the current window and any lock.

    ``subject`` is a keyed hash of the username or app_id, never the typed text: a password
    typed into the username box must not land here readable.
    """

    __tablename__ = "auth_throttle"

    scope: Mapped[str] = mapped_column(String(20), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(45), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Locks in a row: each doubles the next one (backoff), reset by a success or a quiet day.
    lock_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
