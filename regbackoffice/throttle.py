"""Failure counters for the login form and the token exchange, counted atomically.

Each counter is one ``auth_throttle`` row per (scope, subject, address): the login form
counts per (username, client address), the API per (app_id, client address), so a stranger's
failures lock only the stranger's address, never the right user elsewhere.

An attempt is *reserved* before the password or secret is checked: one
``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (PostgreSQL and SQLite alike) adds it to the
window and answers the new count, so 30 parallel wrong passwords cannot make more than the
limit's checks. The statements run on their own connection and commit at once: the count
survives the request's rollback (an API 401) and no row lock is held while hashing.

When the limit is reached the address is locked for the base lockout, doubled for each
further lock in a row (backoff, at most ``2**MAX_DOUBLINGS`` times); a success clears the
row. Subjects are stored as a keyed hash (HMAC with the app's secret key), never as typed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, case, delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .extensions import db
from .models import AuthThrottle, utcnow
from .models.base import UTCDateTime

LOGIN = "login"
API = "api"
API_APP = "api_app"  # all addresses of one app_id: alerts, never locks

MAX_DOUBLINGS = 4
# A row untouched this long forgets its earlier locks (the backoff starts over).
QUIET_RESET = timedelta(days=1)
# About one reservation in this many also prunes the quiet rows (no job needed).
PRUNE_ONE_IN = 500


def subject_key(value: str) -> str:
    """Keyed hash of a username or app_id: correlates repeats, cannot be read back."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Reservation:
    scope: str
    subject: str
    address: str
    attempts: int
    window_started_at: datetime
    locked_until: datetime | None
    lock_count: int
    limit: int

    @property
    def allowed(self) -> bool:
        """May this attempt be checked? Not while locked, nor past the limit (in flight)."""
        return self.locked_until is None and self.attempts <= self.limit

    def retry_after(self, window: timedelta) -> int:
        """Seconds until this address may try again (for Retry-After)."""
        until = self.locked_until or self.window_started_at + window
        return max(1, int((until - utcnow()).total_seconds()) + 1)


@contextmanager
def _connection(joins_request: bool = False) -> Iterator[Connection]:
    """Its own connection, committed at once.

    ``joins_request``: an admin's clear (解锁, password reset) after the request has written.
    SQLite allows one writer and the request then holds the lock, so there it joins the
    request's transaction; PostgreSQL still commits it on its own (row locks held by a
    request would otherwise make the next login of that user wait for it).
    """
    bind = db.session.get_bind()
    if joins_request and bind.dialect.name == "sqlite":
        yield db.session.connection()
        return
    # The session's engine (``.engine`` of an Engine is itself; of a Connection, its pool).
    with bind.engine.begin() as conn:
        yield conn


def _insert(dialect: str) -> postgresql.Insert | sqlite.Insert:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(AuthThrottle)


def reserve(
    scope: str, subject: str, address: str | None, *, limit: int, window: timedelta
) -> Reservation:
    """Count one attempt now and answer the reservation (check ``allowed`` before hashing)."""
    now = utcnow()
    at = literal(now, UTCDateTime())
    t = AuthThrottle.__table__.c
    lock_over = and_(t.locked_until.is_not(None), t.locked_until <= at)
    window_over = and_(t.locked_until.is_(None), t.window_started_at < now - window)
    fresh = or_(lock_over, window_over)
    if secrets.randbelow(PRUNE_ONE_IN) == 0:
        prune()
    with _connection() as conn:
        insert = _insert(conn.dialect.name)
        statement = (
            insert.values(
                scope=scope,
                subject=subject,
                address=address or "",
                attempts=1,
                window_started_at=now,
                locked_until=None,
                lock_count=0,
                updated_at=now,
            )
            .on_conflict_do_update(
                index_elements=["scope", "subject", "address"],
                set_={
                    "attempts": case((fresh, 1), else_=t.attempts + 1),
                    "window_started_at": case((fresh, at), else_=t.window_started_at),
                    "locked_until": case(
                        (fresh, literal(None, UTCDateTime())), else_=t.locked_until
                    ),
                    "lock_count": case((t.updated_at < now - QUIET_RESET, 0), else_=t.lock_count),
                    "updated_at": at,
                },
            )
            .returning(t.attempts, t.window_started_at, t.locked_until, t.lock_count)
        )
        row = conn.execute(statement).one()
    return Reservation(
        scope, subject, address or "", row.attempts, row.window_started_at,
        row.locked_until, row.lock_count, limit,
    )  # fmt: skip


def prune() -> int:
    """Forget rows quiet for a day and not locked (sprayed usernames would pile up)."""
    now = utcnow()
    t = AuthThrottle.__table__.c
    with _connection() as conn:
        return conn.execute(
            delete(AuthThrottle).where(
                t.updated_at < now - QUIET_RESET,
                or_(t.locked_until.is_(None), t.locked_until < now),
            )
        ).rowcount


def record_failure(reservation: Reservation, *, lockout: timedelta) -> datetime | None:
    """After a failed check: lock the address if the limit is reached.

    Answers the lock's end when *this* failure set it (exactly one concurrent failure does:
    the caller audits it), else None.
    """
    if reservation.attempts < reservation.limit:
        return None
    now = utcnow()
    until = now + lockout * (2 ** min(reservation.lock_count, MAX_DOUBLINGS))
    t = AuthThrottle.__table__.c
    with _connection() as conn:
        locked = conn.execute(
            update(AuthThrottle)
            .where(
                t.scope == reservation.scope,
                t.subject == reservation.subject,
                t.address == reservation.address,
                t.window_started_at == reservation.window_started_at,
                t.attempts >= reservation.limit,
                or_(t.locked_until.is_(None), t.locked_until <= now),
            )
            .values(locked_until=until, lock_count=t.lock_count + 1, updated_at=now)
            .returning(t.locked_until)
        ).first()
    return None if locked is None else until


def count(scope: str, subject: str, *, window: timedelta) -> int:
    """Count one event on a counter that never locks (the per-app_id alert ceiling)."""
    return reserve(scope, subject, "", limit=1 << 30, window=window).attempts


def clear(
    scope: str, subject: str, address: str | None = None, *, joins_request: bool = False
) -> int:
    """Forget the counters (a success; an admin's 解锁 clears every address). Rows removed."""
    t = AuthThrottle.__table__.c
    condition = [t.scope == scope, t.subject == subject]
    if address is not None:
        condition.append(t.address == address)
    with _connection(joins_request) as conn:
        return conn.execute(delete(AuthThrottle).where(*condition)).rowcount


def locked_addresses(scope: str, subject: str) -> list[tuple[str, datetime]]:
    """Addresses locked now for this subject, with the end of each lock."""
    t = AuthThrottle.__table__.c
    now = utcnow()
    with _connection() as conn:
        rows = conn.execute(
            select(t.address, t.locked_until)
            .where(t.scope == scope, t.subject == subject, t.locked_until > now)
            .order_by(t.locked_until.desc())
        ).all()
    return [(row.address, row.locked_until) for row in rows]
