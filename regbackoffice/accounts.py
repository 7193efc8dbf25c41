"""Accounts: password checks with lockout, and server-side login sessions."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from flask import current_app
from sqlalchemy import or_, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit, passwords, throttle
from .domain_errors import DomainError
from .extensions import db
from .models import Role, Unit, User, UserSession, utcnow


def hash_secret(secret: str) -> str:
    """Password (or API secret) hash with the configured method (scrypt by default)."""
    return generate_password_hash(secret, method=current_app.config["PASSWORD_HASH_METHOD"])


@cache
def _dummy_hash(method: str) -> str:
    return generate_password_hash("not-a-real-password", method=method)


def dummy_check(secret: str) -> None:
    """Spend exactly one real check when there is no real hash to check against.

    The hash is made once per process (cached), so an unknown username or app_id costs
    the same one hash as a known one: no enumeration by timing.
    """
    check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), secret)


MIN_PASSWORD_LENGTH = passwords.MIN_LENGTH
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,49}$")


class AccountError(DomainError):
    """A user-facing reason an account operation was refused (Chinese message)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LoginResult:
    """``user`` when the login succeeded; otherwise why not (``retry_after`` if throttled)."""

    user: User | None
    throttled_until: datetime | None = None


def _typed_name(username: str) -> dict[str, object]:
    """How a failed login names what was typed: never the text (it may be a password)."""
    return {"matched": False, "username_hash": throttle.subject_key(username)[:12]}


def authenticate(username: str, password: str, address: str | None = None) -> LoginResult:
    """Check a login. Failures are audited with the real reason; the page says less.

    Throttled per (username, address): ``LOGIN_MAX_FAILURES`` failures within
    ``LOGIN_LOCKOUT`` lock that address (doubling on repeats) — the attacker's, not the
    user's at her desk. The whole account locks only after ``LOGIN_ACCOUNT_MAX_FAILURES``
    failures in a row from anywhere, until an admin's 解锁 or ``LOGIN_ACCOUNT_LOCKOUT``.
    """
    config = current_app.config
    username = username.strip()
    subject = throttle.subject_key(username)
    window: timedelta = config["LOGIN_LOCKOUT"]
    slot = throttle.reserve(
        throttle.LOGIN, subject, address, limit=config["LOGIN_MAX_FAILURES"], window=window
    )
    now = utcnow()
    user = db.session.scalar(select(User).where(User.username == username))
    who: dict[str, object] = {"actor": user} if user is not None else _typed_name(username)
    if not slot.allowed:
        # No hash spent: the answer is the same whether or not the account exists.
        audit.record("login", outcome="failed", reason="throttled", **who)
        return LoginResult(None, throttled_until=now + timedelta(seconds=slot.retry_after(window)))
    if user is None:
        dummy_check(password)
        audit.record("login", outcome="failed", reason="unknown_user", **who)
        _failed(slot, username, None)
        return LoginResult(None)
    if user.locked_until is not None and user.locked_until > now:
        dummy_check(password)
        audit.record("login", outcome="failed", actor=user, reason="locked")
        return LoginResult(None)
    if not check_password_hash(user.password_hash, password):
        audit.record("login", outcome="failed", actor=user, reason="bad_password")
        _failed(slot, username, user)
        return LoginResult(None)
    if not user.active:
        audit.record("login", outcome="failed", actor=user, reason="disabled")
        return LoginResult(None)
    throttle.clear(throttle.LOGIN, subject, address or "")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record("login", actor=user)
    if password_error(password, user.username) and not user.must_change_password:
        # Only now is the password in hand: a weak one must be changed before anything else.
        user.must_change_password = True
        audit.record("password_change_required", object_type="user", object_id=user.id)
    return LoginResult(user)


def _failed(slot: throttle.Reservation, username: str, user: User | None) -> None:
    """Count a wrong password: the address lock, and the account-wide count."""
    config = current_app.config
    until = throttle.record_failure(slot, lockout=config["LOGIN_LOCKOUT"])
    who: dict[str, object] = {"actor": user} if user is not None else _typed_name(username)
    if until is not None:
        audit.record(
            "login_address_locked",
            until=until.isoformat(timespec="seconds"),
            failures=slot.attempts,
            **who,
        )
    if user is None:
        return
    # One atomic UPDATE … RETURNING: parallel failures cannot skip the account-wide limit.
    failures = db.session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins),
        execution_options={"synchronize_session": False},
    ).scalar_one()
    if failures < config["LOGIN_ACCOUNT_MAX_FAILURES"]:
        return
    now = utcnow()
    account_until = now + config["LOGIN_ACCOUNT_LOCKOUT"]
    locked = db.session.execute(
        update(User)
        .where(User.id == user.id, or_(User.locked_until.is_(None), User.locked_until <= now))
        .values(locked_until=account_until, failed_logins=0)
        .returning(User.id),
        execution_options={"synchronize_session": False},
    ).first()
    if locked is not None:
        db.session.refresh(user, ["locked_until", "failed_logins"])
        audit.record(
            "account_locked",
            object_type="user",
            object_id=user.id,
            actor=user,
            until=account_until.isoformat(timespec="seconds"),
            failures=failures,
        )


def unlock(user: User) -> int:
    """解锁 by an admin: the account lock and every address lock of this username."""
    cleared = throttle.clear(
        throttle.LOGIN, throttle.subject_key(user.username), joins_request=True
    )
    was_locked = user.locked_until is not None and user.locked_until > utcnow()
    user.locked_until = None
    user.failed_logins = 0
    audit.record(
        "account_unlocked",
        object_type="user",
        object_id=user.id,
        account_was_locked=was_locked,
        addresses_cleared=cleared,
    )
    return cleared


def lock_state(user: User) -> dict[str, object]:
    """What the user admin shows: the account lock and the locked addresses."""
    now = utcnow()
    account_until = user.locked_until if user.locked_until and user.locked_until > now else None
    addresses = throttle.locked_addresses(throttle.LOGIN, throttle.subject_key(user.username))
    return {"account_until": account_until, "addresses": addresses}


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


def password_error(password: str, username: str | None = None) -> str | None:
    """Why a new password is refused (Chinese), or None: see ``regbackoffice.passwords``."""
    return passwords.password_error(password, username)


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
    error = password_error(password, username)
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
    """An admin's reset: ends every session; the address locks of the username go too."""
    error = password_error(password, user.username)
    if error:
        raise AccountError(error)
    user.password_hash = hash_secret(password)
    user.failed_logins = 0
    user.locked_until = None
    user.must_change_password = False
    cleared = throttle.clear(
        throttle.LOGIN, throttle.subject_key(user.username), joins_request=True
    )
    end_all_sessions(user, "password_reset")
    # A reset also unlocks (account and addresses): the row says so.
    audit.record("password_reset", object_type="user", object_id=user.id, addresses_cleared=cleared)


def change_own_password(user: User, current: str, new: str, keep_session: str) -> None:
    """The user's own change (forced after a weak password): other sessions end."""
    if not check_password_hash(user.password_hash, current):
        raise AccountError("当前密码不正确，请重新输入")
    if new == current:
        raise AccountError("新密码不能与当前密码相同")
    error = password_error(new, user.username)
    if error:
        raise AccountError(error)
    user.password_hash = hash_secret(new)
    was_forced = user.must_change_password
    user.must_change_password = False
    db.session.execute(
        update(UserSession)
        .where(
            UserSession.user_id == user.id,
            UserSession.ended_at.is_(None),
            UserSession.token_hash != hash_token(keep_session),
        )
        .values(ended_at=utcnow(), end_reason="password_changed")
    )
    audit.record(
        "password_changed", object_type="user", object_id=user.id, actor=user, forced=was_forced
    )


def set_active(user: User, active: bool) -> None:
    """Enable or disable a user; disabling ends every session they hold at once."""
    user.active = active
    if not active:
        end_all_sessions(user, "disabled")
    audit.record(
        "user_enabled" if active else "user_disabled", object_type="user", object_id=user.id
    )
