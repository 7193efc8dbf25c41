"""Settings from ``REGBO_*`` environment variables, with safe defaults.

``REGBO_ENV`` selects the mode: ``production`` (the default: nothing insecure is assumed),
``development`` (the ``scripts/run`` demo) or ``testing``. Outside development a secret key
must be given; the app refuses to start without one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from . import inspection_rules


class ConfigError(RuntimeError):
    """The environment describes a configuration the app must not start with."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _approval_steps(env: Mapping[str, str]) -> int:
    steps = _int(env, "REGBO_CHANGE_APPROVAL_STEPS", 2)
    if steps not in (1, 2):
        raise ConfigError(f"REGBO_CHANGE_APPROVAL_STEPS must be 1 or 2, got {steps}")
    return steps


def sqlalchemy_url(database_url: str) -> str:
    """``postgresql://…`` (the libpq form) as SQLAlchemy's psycopg 3 URL; others unchanged.

    SQLAlchemy would pick psycopg2 (not installed) for a bare ``postgresql://``.
    """
    if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
        return "postgresql+psycopg://" + database_url.split("://", 1)[1]
    return database_url


def load_config(instance_path: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping from the environment."""
    env = os.environ if env is None else env
    mode = env.get("REGBO_ENV", "production").strip().lower()
    if mode not in {"production", "development", "testing"}:
        raise ConfigError(f"REGBO_ENV must be production, development or testing, got {mode!r}")

    secret_key = env.get("REGBO_SECRET_KEY", "")
    if not secret_key:
        if mode != "development":
            raise ConfigError(
                "REGBO_SECRET_KEY is not set. It is required outside development "
                "(REGBO_ENV=development): set it to a long random string, e.g. "
                '`python -c "import secrets; print(secrets.token_urlsafe(48))"`.'
            )
        secret_key = "development-only-insecure-key"

    instance = Path(instance_path)
    database_url = sqlalchemy_url(
        env.get("REGBO_DATABASE_URL") or f"sqlite:///{instance / 'regbackoffice.db'}"
    )

    production = mode == "production"
    return {
        "REGBO_ENV": mode,
        "TESTING": mode == "testing",
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        # Connections idle this long are pinged at checkout (extensions.ping_when_idle);
        # SQLALCHEMY_ENGINE_OPTIONS {"pool_pre_ping": True} pings at every checkout instead.
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "DB_PING_AFTER_IDLE_SECONDS": float(env.get("REGBO_DB_PING_AFTER_IDLE_SECONDS", "5")),
        "REDIS_URL": env.get("REGBO_REDIS_URL") or None,
        "RQ_QUEUE": env.get("REGBO_RQ_QUEUE", "regbackoffice"),
        "STORAGE_DIR": env.get("REGBO_STORAGE_DIR") or str(instance / "files"),
        # Requests: whole body cap (an Excel import may be 20 MB, a photo zip larger).
        "MAX_CONTENT_LENGTH": _int(env, "REGBO_MAX_REQUEST_MB", 64) * 1024 * 1024,
        # Sessions: server-side rows, idle timeout, secure cookies in production.
        "IDLE_TIMEOUT": timedelta(minutes=_int(env, "REGBO_IDLE_TIMEOUT_MINUTES", 30)),
        # werkzeug hash method; tests may choose a cheaper one (never in production).
        "PASSWORD_HASH_METHOD": env.get("REGBO_PASSWORD_HASH_METHOD", "scrypt"),
        # Failed logins per (username, client address) within the lockout: that address
        # is locked (doubling on repeats). The account itself locks only at the much higher
        # count, from any addresses in a row, until an admin's 解锁 or the account lockout.
        "LOGIN_MAX_FAILURES": _int(env, "REGBO_LOGIN_MAX_FAILURES", 5),
        "LOGIN_LOCKOUT": timedelta(minutes=_int(env, "REGBO_LOGIN_LOCKOUT_MINUTES", 15)),
        "LOGIN_ACCOUNT_MAX_FAILURES": _int(env, "REGBO_LOGIN_ACCOUNT_MAX_FAILURES", 50),
        "LOGIN_ACCOUNT_LOCKOUT": timedelta(
            minutes=_int(env, "REGBO_LOGIN_ACCOUNT_LOCKOUT_MINUTES", 60)
        ),
        "SESSION_COOKIE_NAME": "regbo_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env, "REGBO_SECURE_COOKIES", production),
        "REMEMBER_COOKIE_DURATION": timedelta(seconds=0),
        # Flask-Login's remember cookie is never issued, but if it were: the same flags.
        "REMEMBER_COOKIE_SECURE": _bool(env, "REGBO_SECURE_COOKIES", production),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # Reverse proxies in front of the app (nginx terminating TLS): how many hops of
        # X-Forwarded-For/-Proto to trust, so audit rows carry the client's address.
        "TRUSTED_PROXIES": _int(env, "REGBO_TRUSTED_PROXIES", 0),
        "WTF_CSRF_TIME_LIMIT": None,  # the server-side session bounds the token's life
        # WTForms' own Chinese messages (see BaseForm.Meta.locales), not Flask-Babel.
        "WTF_I18N_ENABLED": False,
        # Workflow.
        "ACCEPT_LIMIT_WORKDAYS": _int(env, "REGBO_ACCEPT_LIMIT_WORKDAYS", 5),
        "DECISION_LIMIT_WORKDAYS": _int(env, "REGBO_DECISION_LIMIT_WORKDAYS", 15),
        "SEPARATION_OF_DUTIES": _bool(env, "REGBO_SEPARATION_OF_DUTIES", True),
        # Change requests after registration (change_workflow, docs/workflow.md): 2 = 受理
        # then 审批 by another person, 1 = the 受理 decides. Time limits in working days.
        "CHANGE_APPROVAL_STEPS": _approval_steps(env),
        "CHANGE_RECEIVE_LIMIT_WORKDAYS": _int(env, "REGBO_CHANGE_RECEIVE_LIMIT_WORKDAYS", 5),
        "CHANGE_ACCEPT_LIMIT_WORKDAYS": _int(env, "REGBO_CHANGE_ACCEPT_LIMIT_WORKDAYS", 5),
        "CHANGE_DECISION_LIMIT_WORKDAYS": _int(env, "REGBO_CHANGE_DECISION_LIMIT_WORKDAYS", 15),
        # 退回补正 (一次性告知): how many rounds per application, and whether 审核 may too.
        "MAX_CORRECTION_ROUNDS": _int(env, "REGBO_MAX_CORRECTION_ROUNDS", 1),
        "CORRECTION_AT_REVIEW": _bool(env, "REGBO_CORRECTION_AT_REVIEW", False),
        # 行政许可法 第三十二条: no 补正 notice within 5 working days means deemed accepted.
        "CORRECTION_NOTICE_LIMIT_WORKDAYS": _int(env, "REGBO_CORRECTION_NOTICE_LIMIT_WORKDAYS", 5),
        "CERTIFICATE_NO_FORMAT": env.get(
            "REGBO_CERTIFICATE_NO_FORMAT", "瓶渝{district:3}{serial:05d}({yy})"
        ),
        "CERTIFICATE_JOB_TIMEOUT": _int(env, "REGBO_CERTIFICATE_JOB_TIMEOUT", 300),
        # 排队中 this long with no rq job (Redis was down): the worker's sweep sends it again.
        "CERTIFICATE_REQUEUE_AFTER": _int(env, "REGBO_CERTIFICATE_REQUEUE_AFTER_SECONDS", 30),
        # The same for a large import 排队中 (its upload committed while Redis was down).
        "IMPORT_REQUEUE_AFTER": _int(env, "REGBO_IMPORT_REQUEUE_AFTER_SECONDS", 30),
        # Operations: the worker's heartbeat period; /healthz fails when no worker beat in
        # three periods, or when queued work waits longer than the queue age limit.
        "WORKER_HEARTBEAT_SECONDS": _int(env, "REGBO_WORKER_HEARTBEAT_SECONDS", 10),
        "HEALTH_MAX_QUEUE_AGE": _int(env, "REGBO_HEALTH_MAX_QUEUE_AGE_SECONDS", 600),
        "PUBLIC_BASE_URL": env.get("REGBO_PUBLIC_BASE_URL", "").rstrip("/"),
        # Public trace/verification pages (no login): requests per client address.
        "PUBLIC_RATE_LIMIT": env.get("REGBO_PUBLIC_RATE_LIMIT", "30 per minute"),
        # JSON API (DESIGN 8).
        # Records (fillings, inspections, trace events) one client may submit; far above a
        # real station's traffic, it stops a client posting unknown cylinders without end.
        # Empty: no quota (benchmarks).
        "API_RECORD_RATE_LIMIT": env.get("REGBO_API_RECORD_RATE_LIMIT", "60000 per hour"),
        "API_TOKEN_LIFETIME": timedelta(hours=_int(env, "REGBO_API_TOKEN_HOURS", 2)),
        # Failed token exchanges per (app_id, client address) within the window lock that
        # address (doubling on repeats); per app_id over all addresses only an alert.
        "API_AUTH_MAX_FAILURES": _int(env, "REGBO_API_AUTH_MAX_FAILURES", 10),
        "API_AUTH_ALERT_FAILURES": _int(env, "REGBO_API_AUTH_ALERT_FAILURES", 100),
        "API_AUTH_WINDOW": timedelta(minutes=_int(env, "REGBO_API_AUTH_WINDOW_MINUTES", 15)),
        # The interlock check's audit rows are written in batches per worker (audit_batch):
        # this many rows, or what waits this long after the first one. 1: row by row.
        "API_AUDIT_BATCH_ROWS": max(1, _int(env, "REGBO_API_AUDIT_BATCH_ROWS", 50)),
        "API_AUDIT_FLUSH_SECONDS": float(env.get("REGBO_API_AUDIT_FLUSH_SECONDS", "0.5")),
        # A base64 stamp photo of at most 10 MB is about 13.4 MB of JSON.
        "API_MAX_REQUEST_BYTES": _int(env, "REGBO_API_MAX_REQUEST_MB", 15) * 1024 * 1024,
        # Service life (DESIGN 12): variety + media → design years, and the years usable
        # after an inspection passed once the design life was reached.
        "SERVICE_LIFE_RULES": inspection_rules.DEFAULT_SERVICE_LIFE_RULES,
        # Periodic-inspection intervals keyed by 设备品种 + 充装介质 (DESIGN 12), each row
        # with its source; see docs/inspection-rules.md.
        "INSPECTION_INTERVAL_RULES": inspection_rules.DEFAULT_INSPECTION_INTERVAL_RULES,
    }
