"""Retention of the append-only audit log: the one job allowed to delete its rows.

PostgreSQL refuses UPDATE/DELETE/TRUNCATE on ``audit_log`` (trigger of migration 0006).
Pruning opens the documented bypass, ``SET LOCAL regbo.audit_prune = 'on'``, for its own
transaction only, deletes rows older than the retention period (never less than
``MIN_RETENTION_DAYS``), closes the bypass again and records that it ran.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, text

from . import audit
from .domain_errors import DomainError
from .extensions import db
from .models import AuditLog, utcnow

# DESIGN 10 asks for an audit trail; six months is the floor the regulator set.
MIN_RETENTION_DAYS = 180


class RetentionError(DomainError):
    """A pruning request that would delete rows still inside the retention period."""


def prune(older_than_days: int) -> int:
    """Delete audit rows older than ``older_than_days`` days; returns how many.

    Runs in the caller's transaction (the CLI commits); refuses less than 180 days.
    """
    if older_than_days < MIN_RETENTION_DAYS:
        raise RetentionError(
            f"审计日志至少保留 {MIN_RETENTION_DAYS} 天，不能清理 {older_than_days} 天以内的记录。"
        )
    cutoff = utcnow() - timedelta(days=older_than_days)
    postgres = db.session.get_bind().dialect.name == "postgresql"
    if postgres:
        db.session.execute(text("SELECT set_config('regbo.audit_prune', 'on', true)"))
    try:
        # A DELETE's result is a CursorResult at run time; Session.execute is typed as Result.
        result = cast(
            CursorResult[Any],
            db.session.execute(
                delete(AuditLog)
                .where(AuditLog.at < cutoff)
                .execution_options(synchronize_session=False)
            ),
        )
    finally:
        if postgres:
            db.session.execute(text("SELECT set_config('regbo.audit_prune', 'off', true)"))
    audit.record(
        "audit_pruned",
        object_type="audit_log",
        older_than_days=older_than_days,
        cutoff=cutoff.isoformat(),
        deleted=result.rowcount,
    )
    db.session.flush()
    return result.rowcount
