"""The request plumbing every API endpoint shares: parse, authenticate, authorise, audit.

``endpoint(scope=..., spec=...)`` wraps a handler ``(client, body) -> Answer``. Checks run
in this order, each answered in the envelope with the HTTP status equal to ``code``:
401 missing/expired/revoked token → 415 not ``application/json`` → 413 body too large →
400 not JSON (or nested too deep, or not an object) → 403 scope → the handler (400
validation with ``data.errors``, 404, 409 …). Every call is audited with its outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import Response, current_app, g, request
from sqlalchemy.engine import Engine
from werkzeug.exceptions import RequestEntityTooLarge

from ... import api_auth, audit, driver_sql, json_text
from ...errors import api_envelope
from ...extensions import db
from ...models import ApiCaller, ApiClient, utcnow

# A client's last_seen_at is written at most this often (it is one row, updated by every
# call of that client: writing it each time would serialise the client's requests).
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


# RFC 6750: every 401 names the scheme the client must use.
BEARER_CHALLENGE = 'Bearer realm="regbackoffice"'


class ApiError(Exception):
    """An answer other than success: ``status`` and a Chinese ``message``; ``errors`` per field."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}


@dataclass
class Answer:
    data: Any
    message: str = "成功"
    status: int = 200
    counts: dict[str, int] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def validation_error(errors: list[dict[str, str]]) -> ApiError:
    summary = "；".join(e["message"] for e in errors[:5])
    return ApiError(400, f"请求数据校验未通过：{summary}", errors)


def _parse_json_body() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise ApiError(415, "请求内容格式应为application/json")
    limit = current_app.config["API_MAX_REQUEST_BYTES"]
    too_large = ApiError(413, f"请求内容超过{limit / (1024 * 1024):g}MB")
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise too_large from None
    # A chunked body (no Content-Length) is read only up to the limit, silently cut there:
    # reaching the limit means it was longer.
    if request.content_length is None and len(raw) >= limit:
        raise too_large
    try:
        body = json_text.loads(raw)
    except RecursionError:
        raise ApiError(400, "JSON嵌套层数过多") from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "请求内容不是有效的JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "请求内容应为JSON对象")
    return body


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "缺少访问令牌：请先调用 /api/v1/auth/token 获取，并以 Authorization: Bearer 发送",
            headers={"WWW-Authenticate": BEARER_CHALLENGE},
        )
    return token.strip()


def _bearer_client(
    token: str, *, plain: bool, cylinder_id: str | None = None
) -> ApiClient | ApiCaller:
    """The token's client (401 if none): a plain row (``ApiCaller``) when ``plain``, else
    the ORM object. With ``cylinder_id`` (plain), that cylinder's interlock facts are read
    in the same statement and kept in ``g.api_prefetched``."""
    client: ApiClient | ApiCaller | None
    if not plain:
        client = api_auth.client_for_token(token)
    elif cylinder_id is None:
        client = api_auth.caller_for_token(token)
    else:
        client, facts = api_auth.caller_and_cylinder(token, cylinder_id)
        g.api_prefetched = (cylinder_id, facts)
    if client is None:
        raise ApiError(
            401,
            "访问令牌无效、已过期或已被撤销，请重新获取",
            headers={"WWW-Authenticate": f'{BEARER_CHALLENGE}, error="invalid_token"'},
        )
    return client


def _touch(client: ApiClient | ApiCaller) -> None:
    now = utcnow()
    if client.last_seen_at is None or now - client.last_seen_at >= LAST_SEEN_RESOLUTION:
        if isinstance(client, ApiClient):
            client.last_seen_at = now
        else:
            api_auth.touch(client, now)


def _autocommit_postgresql() -> bool:
    """On PostgreSQL: True, and this request's session in autocommit mode when it is fresh.

    Connection-level only: the pool resets the isolation level when the connection is
    returned, so the next request starts transactional as usual. A session bound to a
    connection or already in a transaction keeps it (the relaxed commit then applies to
    that transaction, like ``SET LOCAL synchronous_commit = off``).
    """
    session = db.session()
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    if isinstance(bind, Engine) and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return True


def respond(
    status: int, message: str, data: Any, headers: dict[str, str] | None = None
) -> Response:
    response = api_envelope(status, message, data)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", BEARER_CHALLENGE)
    return response


def endpoint(
    *,
    scope: str | None,
    authenticated: bool = True,
    read_only: bool = False,
    plain_client: bool = False,
    prefetch: Callable[[dict[str, Any]], str | None] | None = None,
    own_connection: bool = False,
) -> Callable[[Callable[..., Answer]], Callable[[], Response]]:
    """Wrap an API handler ``(client, body)`` (``(body)`` when not authenticated).

    ``read_only`` endpoints (query, check, trail) change nothing but their audit row. On
    PostgreSQL they run in autocommit mode (no BEGIN and COMMIT round trips: each read is
    its own statement) and write the audit row with one INSERT that commits itself without
    waiting for the WAL flush (``synchronous_commit = off`` for that statement's
    transaction only, ``audit.record_now(relaxed_commit=True)``): a database crash may
    lose the last fraction of a second of such audit rows, never a record, and the
    interlock check stays fast. Where the session is already inside a transaction (the
    tests' rolled-back one) the same statements run in it instead.

    Read-only handlers, and those marked ``plain_client``, get the client as an
    ``ApiCaller`` (a plain row: no ORM object per call); the others get the ORM
    ``ApiClient``.

    ``prefetch(body)`` (read-only endpoints) may name a cylinder ID to read together with
    the token (the interlock check): the body is then parsed before the token lookup, but
    its errors are still answered after the token's, in the order above.

    ``own_connection`` (the interlock check): the token-and-cylinder read and the audit row
    are ``driver_sql`` statements, run on a pooled connection of their own in autocommit
    mode, with no ORM session work (``driver_sql.own_autocommit_connection``); its audit
    rows are written in batches (``audit_batch``).
    """

    def decorator(handler: Callable[..., Answer]) -> Callable[[], Response]:
        @wraps(handler)
        def view() -> Response:
            request.max_content_length = current_app.config["API_MAX_REQUEST_BYTES"]
            if own_connection:
                with driver_sql.own_autocommit_connection() as own:
                    return serve(relaxed=own or _autocommit_postgresql())
            return serve(relaxed=read_only and _autocommit_postgresql())

        def serve(*, relaxed: bool) -> Response:
            client: ApiClient | ApiCaller | None = None
            try:
                body: dict[str, Any] | None = None
                body_error: ApiError | None = None
                if authenticated:
                    token = _bearer_token()
                    cylinder_id = None
                    if prefetch is not None:
                        try:
                            body = _parse_json_body()
                            cylinder_id = prefetch(body)
                        except ApiError as exc:
                            body_error = exc
                    client = _bearer_client(
                        token, plain=read_only or plain_client, cylinder_id=cylinder_id
                    )
                    g.api_client = client
                if body_error is not None:
                    raise body_error
                if body is None:
                    body = _parse_json_body()
                if client is not None and scope is not None and scope not in client.scope_set:
                    raise ApiError(403, f"调用单位未获得“{scope}”接口权限")
                answer = handler(client, body) if authenticated else handler(body)
            except ApiError as exc:
                audit.record_refusal(
                    "api_call",
                    object_type="api_client",
                    object_id=None if client is None else client.id,
                    actor=client,
                    path=request.path,
                    status=exc.status,
                    reason=exc.message[:200],
                )
                data = {"errors": exc.errors} if exc.errors else None
                return respond(exc.status, exc.message, data, exc.headers)
            if client is not None:
                _touch(client)
            audit.record_now(
                "api_call",
                relaxed_commit=relaxed,
                batched=own_connection,
                object_type="api_client",
                object_id=None if client is None else client.id,
                actor=client,
                path=request.path,
                status=answer.status,
                **answer.counts,
            )
            return respond(answer.status, answer.message, answer.data, answer.headers)

        return view

    return decorator
