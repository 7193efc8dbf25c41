"""Token exchange and bearer-token checks for the JSON API (身份鉴权).

``app_id`` + ``app_secret`` → a random bearer token, stored only as its sha256, valid for
``API_TOKEN_HOURS`` (2 h). Tokens die with the client: disabling it or rotating its secret
revokes them (``api_clients.revoke_tokens``). Failed exchanges are audited as
``api_auth_failed``; those rows are also the throttle's counters (per ``app_id`` and per
IP within ``API_AUTH_WINDOW``), so the limit holds across app servers without Redis and
survives restarts.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import lazyload
from werkzeug.security import check_password_hash, generate_password_hash

from . import api_clients, audit
from .extensions import db
from .models import ApiClient, ApiToken, AuditLog, utcnow

AUTH_FAILED_ACTION = "api_auth_failed"


@cache
def _dummy_hash() -> str:
    return generate_password_hash("not-a-secret-of-any-client")


class AuthThrottled(Exception):
    """Too many failed exchanges recently; the caller must wait."""


class AuthFailed(Exception):
    """Unknown app_id, wrong secret, or a disabled client (one answer for all three)."""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _recent_failures(app_id: str, ip: str | None, since: datetime) -> tuple[int, int]:
    by_app = select(func.count()).where(
        AuditLog.action == AUTH_FAILED_ACTION, AuditLog.at >= since, AuditLog.object_id == app_id
    )
    by_ip = select(func.count()).where(
        AuditLog.action == AUTH_FAILED_ACTION, AuditLog.at >= since, AuditLog.ip == ip
    )
    return db.session.scalar(by_app) or 0, (db.session.scalar(by_ip) or 0) if ip else 0


def exchange(app_id: str, secret: str, ip: str | None) -> IssuedToken:
    """Issue a bearer token; raises AuthThrottled or AuthFailed (audited, durable)."""
    config = current_app.config
    since = utcnow() - config["API_AUTH_WINDOW"]
    by_app, by_ip = _recent_failures(app_id, ip, since)
    if by_app >= config["API_AUTH_MAX_FAILURES"] or by_ip >= config["API_AUTH_MAX_FAILURES_PER_IP"]:
        audit.record_refusal(
            "api_auth_throttled",
            object_type="api_client",
            object_id=app_id[:50],
            path="/auth/token",
        )
        raise AuthThrottled
    client = api_clients.client_by_app_id(app_id)
    if client is None:
        # Spend the same time as a wrong secret, so app_ids cannot be probed by timing.
        check_password_hash(_dummy_hash(), secret)
    if client is None or not client.active or not api_clients.secret_matches(client, secret):
        reason = "unknown" if client is None else ("inactive" if not client.active else "secret")
        audit.record_refusal(
            AUTH_FAILED_ACTION,
            object_type="api_client",
            object_id=app_id[:50],
            actor=client,
            reason=reason,
        )
        raise AuthFailed
    token = secrets.token_urlsafe(32)
    lifetime: timedelta = config["API_TOKEN_LIFETIME"]
    db.session.add(
        ApiToken(client_id=client.id, token_hash=hash_token(token), expires_at=utcnow() + lifetime)
    )
    client.last_seen_at = utcnow()
    audit.record("api_token_issued", object_type="api_client", object_id=client.id, actor=client)
    return IssuedToken(access_token=token, expires_in=int(lifetime.total_seconds()))


def client_for_token(token: str) -> ApiClient | None:
    """The active client owning a live (unexpired, unrevoked) token, or None."""
    now = utcnow()
    return db.session.scalar(
        select(ApiClient)
        .options(lazyload(ApiClient.unit))  # the unit is rarely needed: not joined each call
        .join(ApiToken, ApiToken.client_id == ApiClient.id)
        .where(
            ApiToken.token_hash == hash_token(token),
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > now,
            ApiClient.active.is_(True),
        )
    )
