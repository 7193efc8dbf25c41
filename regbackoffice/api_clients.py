"""Issuing, rotating and revoking API clients (调用单位)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from sqlalchemy import select, update
from werkzeug.security import check_password_hash

from . import audit
from .accounts import hash_secret
from .domain_errors import DomainError
from .extensions import db
from .models import API_SCOPES, ApiClient, ApiToken, Unit, UnitKind, utcnow


class ApiClientError(DomainError):
    """A user-facing reason an API client operation was refused."""


def parse_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted({s.strip() for s in scopes if s.strip()})
    unknown = [s for s in chosen if s not in API_SCOPES]
    if unknown:
        raise ApiClientError(
            f"未知的接口权限：{', '.join(unknown)}（可选：{', '.join(API_SCOPES)}）"
        )
    if not chosen:
        raise ApiClientError("至少选择一项接口权限")
    return chosen


def check_scopes_for_unit(unit: Unit, scopes: Iterable[str]) -> None:
    """The ``inspection`` scope (which stops and scraps cylinders) is for inspection bodies."""
    if "inspection" in scopes and unit.kind is not UnitKind.INSPECTION_BODY:
        raise ApiClientError(
            f"单位“{unit.name}”的单位类型是{unit.kind.label}，不能授予inspection（检验记录）权限："
            "只有检验检测单位可以提交检验记录；如该单位是检验检测单位，请先在单位管理中修改单位类型"
        )


def issue_client(
    unit: Unit,
    scopes: Iterable[str],
    *,
    description: str = "",
    app_id: str | None = None,
    secret: str | None = None,
) -> tuple[ApiClient, str]:
    """Create a client; returns it with its secret, which is shown once and stored hashed."""
    chosen = parse_scopes(scopes)
    check_scopes_for_unit(unit, chosen)
    secret = secret or secrets.token_urlsafe(32)
    client = ApiClient(
        app_id=app_id or f"cq{secrets.token_hex(8)}",
        secret_hash=hash_secret(secret),
        unit_id=unit.id,
        scopes=",".join(chosen),
        description=description,
    )
    db.session.add(client)
    db.session.flush()
    audit.record(
        "api_client_issued", object_type="api_client", object_id=client.id, scopes=client.scopes
    )
    return client, secret


def revoke_tokens(client: ApiClient) -> None:
    db.session.execute(
        update(ApiToken)
        .where(ApiToken.client_id == client.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def rotate_secret(client: ApiClient, secret: str | None = None) -> str:
    """A new secret (returned once); every token issued under the old one stops working."""
    secret = secret or secrets.token_urlsafe(32)
    client.secret_hash = hash_secret(secret)
    client.secret_rotated_at = utcnow()
    revoke_tokens(client)
    audit.record("api_client_rotated", object_type="api_client", object_id=client.id)
    return secret


def set_client_active(client: ApiClient, active: bool) -> None:
    client.active = active
    if not active:
        revoke_tokens(client)
    audit.record(
        "api_client_enabled" if active else "api_client_revoked",
        object_type="api_client",
        object_id=client.id,
    )


def secret_matches(client: ApiClient, secret: str) -> bool:
    return check_password_hash(client.secret_hash, secret)


def client_by_app_id(app_id: str) -> ApiClient | None:
    return db.session.scalar(select(ApiClient).where(ApiClient.app_id == app_id))
