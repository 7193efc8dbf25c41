"""Accounts: password checks with lockout, and server-side login sessions."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit
from .domain_errors import DomainError
from .extensions import db
from .models import Role, Unit, User, UserSession, utcnow


def hash_secret(secret: str) -> str:
    """Password (or API secret) hash with the configured method (scrypt by default)."""
    return generate_password_hash(secret, method=current_app.config["PASSWORD_HASH_METHOD"])


def _dummy_check(password: str) -> None:
    """Spend the time of a real check when there is no real hash to check against."""
    check_password_hash(hash_secret("not-a-real-password"), password)


MIN_PASSWORD_LENGTH = 8
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,49}$")


class AccountError(DomainError):
    """A user-facing reason an account operation was refused (Chinese message)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(username: str, password: str) -> User | None:
    """The user when the password is right and the account usable; None otherwise.

    Failures are audited with the real reason; the caller shows one generic message.
    """
    now = utcnow()
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        _dummy_check(password)
        audit.record("login", outcome="failed", username=username[:50], reason="unknown_user")
        return None
    if user.locked_until is not None and user.locked_until > now:
        _dummy_check(password)
        audit.record("login", outcome="failed", actor=user, reason="locked")
        return None
    if not check_password_hash(user.password_hash, password):
        user.failed_logins += 1
        audit.record("login", outcome="failed", actor=user, reason="bad_password")
        if user.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
            user.locked_until = now + current_app.config["LOGIN_LOCKOUT"]
            user.failed_logins = 0
            audit.record("account_locked", outcome="ok", actor=user, until=str(user.locked_until))
        return None
    if not user.active:
        audit.record("login", outcome="failed", actor=user, reason="disabled")
        return None
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record("login", actor=user)
    return user


def start_session(user: User, ip: str | None) -> str:
    """Create the server-side session row; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(
        UserSession(
            token_hash=hash_token(token), user_id=user.id, created_at=now, last_seen_at=now, ip=ip
        )
    )
    db.session.flush()
    return token


# last_seen_at is written at most this often, so not every page view is a write.
_TOUCH_INTERVAL = timedelta(seconds=60)


def load_session(token: str) -> User | None:
    """The user of a live session, or None. Ends the session if it sat idle too long."""
    row = db.session.scalar(
        select(UserSession).where(
            UserSession.token_hash == hash_token(token), UserSession.ended_at.is_(None)
        )
    )
    if row is None:
        return None
    now = utcnow()
    if not row.user.active:
        end_session_row(row, "disabled", now)
        return None
    if now - row.last_seen_at > current_app.config["IDLE_TIMEOUT"]:
        end_session_row(row, "idle", now)
        return None
    if now - row.last_seen_at > _TOUCH_INTERVAL:
        row.last_seen_at = now
    return row.user


def end_session_row(row: UserSession, reason: str, now: datetime | None = None) -> None:
    row.ended_at = now or utcnow()
    row.end_reason = reason


def end_session(token: str) -> None:
    row = db.session.scalar(select(UserSession).where(UserSession.token_hash == hash_token(token)))
    if row is not None and row.ended_at is None:
        end_session_row(row, "logout")
        audit.record("logout", actor=row.user)


def end_all_sessions(user: User, reason: str) -> None:
    db.session.execute(
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    )


def password_error(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"密码至少{MIN_PASSWORD_LENGTH}位"
    return None


def create_user(
    username: str,
    password: str,
    role: Role,
    *,
    display_name: str | None = None,
    district_code: str | None = None,
    unit: Unit | None = None,
) -> User:
    """Add a user with the scope its role needs; raises AccountError with the reason."""
    if not USERNAME.match(username):
        raise AccountError("用户名为2-50位字母、数字或 . _ -，且以字母或数字开头")
    error = password_error(password)
    if error:
        raise AccountError(error)
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"用户名“{username}”已存在")
    scope_district, scope_unit = _scope_for_role(role, district_code, unit)
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_secret(password),
        role=role,
        district_code=scope_district,
        unit_id=scope_unit,
    )
    db.session.add(user)
    db.session.flush()
    audit.record("user_created", object_type="user", object_id=user.id, role=role.value)
    return user


def _scope_for_role(role: Role, district_code: str | None, unit: Unit | None) -> tuple:
    if role is Role.APPLICANT and unit is None:
        raise AccountError("使用单位经办人必须指定所属单位")
    if role.is_district_role and not district_code:
        raise AccountError(f"{role.label}必须指定所属区县")
    return (
        district_code if role.is_district_role else None,
        unit.id if role is Role.APPLICANT and unit is not None else None,
    )


def update_user(
    user: User,
    *,
    display_name: str,
    role: Role,
    district_code: str | None,
    unit: Unit | None,
) -> None:
    """Change name, role and scope; a changed role or scope ends the user's sessions."""
    new_district, new_unit = _scope_for_role(role, district_code, unit)
    scope_changed = (role, new_district, new_unit) != (user.role, user.district_code, user.unit_id)
    user.display_name = display_name.strip() or user.username
    user.role, user.district_code, user.unit_id = role, new_district, new_unit
    if scope_changed:
        end_all_sessions(user, "role_changed")
    audit.record(
        "user_updated",
        object_type="user",
        object_id=user.id,
        role=role.value,
        scope_changed=scope_changed,
    )


def set_password(user: User, password: str) -> None:
    error = password_error(password)
    if error:
        raise AccountError(error)
    user.password_hash = hash_secret(password)
    user.failed_logins = 0
    user.locked_until = None
    end_all_sessions(user, "password_reset")
    audit.record("password_reset", object_type="user", object_id=user.id)


def set_active(user: User, active: bool) -> None:
    """Enable or disable a user; disabling ends every session they hold at once."""
    user.active = active
    if not active:
        end_all_sessions(user, "disabled")
    audit.record(
        "user_enabled" if active else "user_disabled", object_type="user", object_id=user.id
    )
