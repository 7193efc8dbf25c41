"""Token exchange and bearer-token checks for the JSON API (身份鉴权).

``app_id`` + ``app_secret`` → a random bearer token, stored only as its sha256, valid for
``API_TOKEN_HOURS`` (2 h). Tokens die with the client: disabling it or rotating its secret
revokes them (``api_clients.revoke_tokens``). Failed exchanges are audited as
``api_auth_failed`` and counted in ``auth_throttle`` (``regbackoffice.throttle``) per
(app_id, client address), in the database: the limit holds across app servers without
Redis and survives restarts.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from flask import current_app
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import lazyload

from . import accounts, api_clients, api_records, audit, throttle
from .driver_sql import DriverStatement
from .extensions import db
from .models import ApiCaller, ApiClient, ApiToken, AuditLog, Cylinder, CylinderStatus, utcnow

AUTH_FAILED_ACTION = "api_auth_failed"
ALERT_ACTION = "api_auth_alert"
LOCK_ACTION = "api_auth_locked"


class AuthThrottled(Exception):
    """Too many failed exchanges from this address for this app_id; wait ``retry_after`` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class AuthFailed(Exception):
    """Unknown app_id, wrong secret, or a disabled client (one answer for all three)."""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def exchange(app_id: str, secret: str, ip: str | None) -> IssuedToken:
    """Issue a bearer token; raises AuthThrottled or AuthFailed (audited, durable).

    Failures count per (app_id, address): a platform whose secret is right is never refused
    because someone elsewhere typed wrong ones. Over all addresses one app_id only raises an
    alert (``api_auth_alert``, shown to admins) at ``API_AUTH_ALERT_FAILURES``.
    """
    config = current_app.config
    window: timedelta = config["API_AUTH_WINDOW"]
    subject = throttle.subject_key(app_id)
    slot = throttle.reserve(
        throttle.API, subject, ip, limit=config["API_AUTH_MAX_FAILURES"], window=window
    )
    if not slot.allowed:
        audit.record_refusal(
            "api_auth_throttled",
            object_type="api_client",
            object_id=app_id[:50],
            path="/auth/token",
        )
        raise AuthThrottled(slot.retry_after(window))
    client = api_clients.client_by_app_id(app_id)
    if client is None:
        # Spend the same one hash as a wrong secret, so app_ids cannot be probed by timing.
        accounts.dummy_check(secret)
    if client is None or not client.active or not api_clients.secret_matches(client, secret):
        reason = "unknown" if client is None else ("inactive" if not client.active else "secret")
        audit.record_refusal(
            AUTH_FAILED_ACTION,
            object_type="api_client",
            object_id=app_id[:50],
            actor=client,
            reason=reason,
        )
        _count_failure(slot, app_id, client, window)
        raise AuthFailed
    throttle.clear(throttle.API, subject, ip or "")
    token = secrets.token_urlsafe(32)
    lifetime: timedelta = config["API_TOKEN_LIFETIME"]
    db.session.add(
        ApiToken(client_id=client.id, token_hash=hash_token(token), expires_at=utcnow() + lifetime)
    )
    client.last_seen_at = utcnow()
    audit.record("api_token_issued", object_type="api_client", object_id=client.id, actor=client)
    return IssuedToken(access_token=token, expires_in=int(lifetime.total_seconds()))


def _count_failure(
    slot: throttle.Reservation, app_id: str, client: ApiClient | None, window: timedelta
) -> None:
    config = current_app.config
    until = throttle.record_failure(slot, lockout=window)
    if until is not None:
        audit.record_refusal(
            LOCK_ACTION,
            outcome="ok",
            object_type="api_client",
            object_id=app_id[:50],
            actor=client,
            until=until.isoformat(timespec="seconds"),
            failures=slot.attempts,
        )
    total = throttle.count(throttle.API_APP, slot.subject, window=window)
    if total == config["API_AUTH_ALERT_FAILURES"]:
        # Once per window: many addresses failing for one app_id is an attack on it, or a
        # leaked app_id; an admin should look (and rotate the secret), nothing is locked.
        audit.record_refusal(
            ALERT_ACTION,
            outcome="alert",
            object_type="api_client",
            object_id=app_id[:50],
            actor=client,
            failures=total,
            window_minutes=int(window.total_seconds() // 60),
        )


def recent_alerts(days: int = 7) -> list[AuditLog]:
    """The alerts of the last days, newest first (the API client admin page lists them)."""
    since = utcnow() - timedelta(days=days)
    return list(
        db.session.scalars(
            select(AuditLog)
            .where(AuditLog.action == ALERT_ACTION, AuditLog.at >= since)
            .order_by(AuditLog.id.desc())
            .limit(50)
        )
    )


# Built once: every API call runs one of these, and a prebuilt statement skips
# construction and cache-key generation (the compiled form is cached by SQLAlchemy either way).
_CLIENT_FOR_TOKEN = (
    select(ApiClient)
    .options(lazyload(ApiClient.unit))  # the unit is rarely needed: not joined each call
    .join(ApiToken, ApiToken.client_id == ApiClient.id)
    .where(
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.revoked_at.is_(None),
        ApiToken.expires_at > bindparam("now", type_=ApiToken.expires_at.type),
        ApiClient.active.is_(True),
    )
)
# Of the tables' own columns, not the ORM attributes: Session.execute then skips the ORM's
# compile step (≈ 0.09 ms a call; api_records.INTERLOCK_COLUMNS are table columns too).
_CLIENTS, _TOKENS = cast(Table, ApiClient.__table__), cast(Table, ApiToken.__table__)
_CALLER_FOR_TOKEN = (
    select(*(_CLIENTS.c[name] for name in ApiCaller._fields))
    .join(_TOKENS, _TOKENS.c.client_id == _CLIENTS.c.id)
    .where(
        _TOKENS.c.token_hash == bindparam("token_hash"),
        _TOKENS.c.revoked_at.is_(None),
        _TOKENS.c.expires_at > bindparam("now", type_=_TOKENS.c.expires_at.type),
        _CLIENTS.c.active.is_(True),
    )
)
_CALLER = DriverStatement(_CALLER_FOR_TOKEN)
# The caller and, in the same round trip, the interlock's columns of one cylinder: every
# interlock check runs it, straight on the driver (``driver_sql``).
_CALLER_AND_CYLINDER = DriverStatement(
    _CALLER_FOR_TOKEN.outerjoin(
        cast(Table, Cylinder.__table__),
        api_records.INTERLOCK_COLUMNS[0] == bindparam("cylinder_id"),
    ).add_columns(*api_records.INTERLOCK_COLUMNS)
)
_CALLER_WIDTH = len(ApiCaller._fields)


def _token_params(token: str) -> dict[str, object]:
    return {"token_hash": hash_token(token), "now": utcnow()}


def client_for_token(token: str) -> ApiClient | None:
    """The active client owning a live (unexpired, unrevoked) token, or None."""
    return db.session.scalar(_CLIENT_FOR_TOKEN, _token_params(token))


def caller_for_token(token: str) -> ApiCaller | None:
    """``client_for_token`` as a plain row, for the read-only calls and the batches."""
    row = _CALLER.first(_token_params(token))
    return None if row is None else ApiCaller(*row)


def caller_and_cylinder(
    token: str, cylinder_id: str
) -> tuple[ApiCaller | None, api_records.InterlockFacts | None]:
    """``caller_for_token`` and ``api_records.interlock_facts(id=…)`` in one statement.

    For the interlock check, whose whole work is these two reads: one round trip fewer
    per call. The cylinder is read only when the token is live (no row otherwise).
    """
    row = _CALLER_AND_CYLINDER.first({**_token_params(token), "cylinder_id": cylinder_id})
    if row is None:
        return None, None
    caller = ApiCaller(*row[:_CALLER_WIDTH])
    facts = row[_CALLER_WIDTH:]
    if facts[0] is None:
        return caller, None
    return caller, api_records.InterlockFacts(facts[0], CylinderStatus(facts[1]), *facts[2:])


def touch(caller: ApiCaller, now: datetime) -> None:
    """Record that a caller was seen (one UPDATE, at most once a resolution)."""
    db.session.execute(update(ApiClient).where(ApiClient.id == caller.id).values(last_seen_at=now))
