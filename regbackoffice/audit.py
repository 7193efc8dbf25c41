"""Writing the audit log. Rows go into the caller's transaction; refusals survive a rollback."""

from __future__ import annotations

from typing import Any, cast

from flask import current_app, g, has_request_context, request
from flask_login import current_user
from sqlalchemy import Column, Insert, Table, bindparam, func, select

from . import audit_batch, driver_sql
from .driver_sql import DriverStatement, driver_json
from .extensions import db
from .models import ApiCaller, ApiClient, AuditLog, User, utcnow

# Keys never written to the audit log, whatever a caller passes in ``detail``.
SECRET_KEYS = frozenset({"password", "app_secret", "secret", "token", "access_token"})


def _clean(detail: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in detail.items():
        if key in SECRET_KEYS:
            continue
        if isinstance(value, str):
            # Control characters (newlines included) cannot forge extra log lines.
            if not value.isprintable():
                value = "".join(ch if ch.isprintable() else " " for ch in value)
            value = value[:500]
        cleaned[key] = value
    return cleaned


Actor = User | ApiClient | ApiCaller


def _actor(actor: Actor | None) -> tuple[str, int | None, str]:
    if actor is None and has_request_context():
        actor = g.get("api_client")
        if actor is None and current_user and current_user.is_authenticated:
            actor = current_user._get_current_object()
    if isinstance(actor, User):
        return "user", actor.id, actor.username
    if isinstance(actor, ApiClient | ApiCaller):
        return "api_client", actor.id, actor.app_id
    return "system", None, ""


def _values(
    action: str,
    *,
    outcome: str = "ok",
    object_type: str | None = None,
    object_id: object = None,
    actor: Actor | None = None,
    **detail: Any,
) -> dict[str, Any]:
    actor_type, actor_id, actor_name = _actor(actor)
    return {
        "action": action,
        "outcome": outcome,
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "actor_type": actor_type,
        "actor_id": actor_id,
        "actor_name": actor_name,
        "ip": request.remote_addr if has_request_context() else None,
        "detail": _clean(detail),
    }


def build_entry(action: str, **kwargs: Any) -> AuditLog:
    """An audit row (not yet added); keywords as for ``record``."""
    return AuditLog(**_values(action, **kwargs))


def record(action: str, **kwargs: Any) -> AuditLog:
    """Add an audit row to the current transaction (committed with the change it records)."""
    entry = build_entry(action, **kwargs)
    db.session.add(entry)
    return entry


def _inserted_columns() -> list[Column[Any]]:
    return [c for c in cast(Table, AuditLog.__table__).columns if c.key != "id"]


def _plain_insert() -> Insert:
    """INSERT of one row, every column but the id a parameter."""
    table = cast(Table, AuditLog.__table__)
    return table.insert().values(
        {c.key: bindparam(c.key, type_=c.type) for c in _inserted_columns()}
    )


def _relaxed_insert() -> Insert:
    """INSERT … SELECT whose one row first sets ``synchronous_commit = off`` (PostgreSQL).

    ``set_config(…, true)`` lasts until the end of the transaction: in autocommit mode the
    statement's own, so the row is written and committed in one round trip without waiting
    for the WAL flush.
    """
    columns = _inserted_columns()
    relaxed = select(func.set_config("synchronous_commit", "off", True)).subquery("relaxed")
    values = select(*(bindparam(c.key, type_=c.type) for c in columns)).select_from(relaxed)
    return cast(Table, AuditLog.__table__).insert().from_select([c.key for c in columns], values)


# The plain INSERT and the relaxed one (built at first use: the table's columns).
_INSERTS: tuple[DriverStatement, DriverStatement] | None = None


def record_now(
    action: str, *, relaxed_commit: bool = False, batched: bool = False, **kwargs: Any
) -> None:
    """Like ``record``, written at once with one Core INSERT in the current transaction.

    For the API's per-call row: no ORM object, unit of work or flush at commit (the row is
    the same, and it commits or rolls back with the request like ``record``'s).
    ``relaxed_commit`` (PostgreSQL only): that transaction commits without waiting for the
    WAL flush (a database crash may lose the last fraction of a second of such rows).
    ``batched`` (the interlock check, on its own connection): the row joins this process's
    batch (``audit_batch``), written with the others within a moment.
    """
    global _INSERTS
    values = {**_values(action, **kwargs), "at": utcnow()}
    own = driver_sql.own_driver() if batched else None
    if own is not None:
        config = current_app.config
        full = audit_batch.PENDING.add(
            values,
            engine=db.engine,
            batch_rows=config["API_AUDIT_BATCH_ROWS"],
            flush_seconds=config["API_AUDIT_FLUSH_SECONDS"],
        )
        if full:
            audit_batch.write(own, full)
    else:
        # Straight on the driver (driver_sql): the API's calls write one such row each.
        if _INSERTS is None:
            _INSERTS = (DriverStatement(_plain_insert()), DriverStatement(_relaxed_insert()))
        insert = _INSERTS[1] if relaxed_commit else _INSERTS[0]
        insert.execute({**values, "detail": driver_json(values["detail"])})


def record_refusal(action: str, **kwargs: Any) -> None:
    """Audit a refused or failed request: kept even though the request's work is rolled back.

    Outside a request (CLI, jobs) the row simply joins the current transaction.
    """
    kwargs.setdefault("outcome", "refused")
    entry = build_entry(action, **kwargs)
    if has_request_context():
        g.setdefault("durable_audit", []).append(entry)
    else:
        db.session.add(entry)
