"""Error pages in Chinese (HTML) or the API envelope (JSON), never a traceback."""

from __future__ import annotations

import json
import uuid

from flask import Flask, Response, current_app, render_template, request
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, InternalServerError

from . import json_text
from .domain_errors import DomainError
from .extensions import db

MESSAGES = {
    400: ("请求有误", "提交的内容不完整或格式不正确，请返回检查后重试。"),
    401: ("需要登录", "请先登录后再访问。"),
    403: ("无权访问", "您的账号没有执行此操作的权限。"),
    404: ("页面不存在", "您访问的页面或记录不存在，或不在您的管辖范围内。"),
    405: ("请求方式不允许", "该地址不支持此请求方式。"),
    409: ("数据已变化", "该记录已被他人或您在其他窗口修改，请刷新页面后重新操作。"),
    413: ("文件过大", "上传的内容超过了允许的大小，请压缩或拆分后重试。"),
    415: ("格式不支持", "请求内容的格式不受支持。"),
    429: ("操作过于频繁", "请稍后再试。"),
    500: ("系统错误", "系统处理时发生错误，已记录。请稍后重试或联系管理员。"),
    503: ("服务暂时不可用", "数据库连接中断，本次操作未保存。请稍等片刻后重试。"),
}

# Seconds a client should wait after a 503 (the database connection dropped: a restart or
# failover usually takes a few seconds; the pool then hands out fresh connections).
RETRY_AFTER_SECONDS = 5


def wants_api_envelope() -> bool:
    return request.path.startswith("/api/")


def api_envelope(code: int, message: str, data: object = None) -> Response:
    """The API's answer: ``{"code", "message", "data"}`` as compact UTF-8 JSON (Chinese
    as text, not ``\\u`` escapes: a third of the bytes); values beyond JSON's own types
    (dates, Decimal) as Flask's JSON provider writes them."""
    document = {"code": str(code), "message": message, "data": data}
    default = current_app.json.default  # type: ignore[attr-defined]
    try:
        body = json_text.dumps(document, default)
    except UnicodeEncodeError:
        # A lone surrogate echoed from the request (JSON can carry one, UTF-8 cannot): the
        # answer falls back to \\u escapes, still valid JSON.
        body = json.dumps(document, separators=(",", ":"), default=default).encode()
    return Response(body, status=code, mimetype="application/json")


def _handle_http(exc: HTTPException) -> Response | tuple[str, int]:
    code = exc.code or 500
    title, default_message = MESSAGES.get(code, (exc.name, exc.description or ""))
    # A view may abort with its own Chinese explanation: abort(409, description="...").
    message = exc.description if _is_custom(exc) else default_message
    if code == 429 and not wants_api_envelope() and isinstance(exc, RateLimitExceeded):
        message = "查询过于频繁，请稍等一分钟后再试。"
    if isinstance(exc, CSRFError):
        code, title, message = 400, "页面已过期", "表单已过期或来源无效，请刷新页面后重新提交。"
    if wants_api_envelope():
        response = api_envelope(code, message or title)
        # Keep what the exception says beyond its body, e.g. Allow on 405.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        if code == 401:
            response.headers.setdefault("WWW-Authenticate", 'Bearer realm="regbackoffice"')
        return response
    return render_template("errors/error.html", code=code, title=title, message=message), code


def _is_custom(exc: HTTPException) -> bool:
    return bool(exc.description) and exc.description != type(exc).description


def conflict_response() -> Response | tuple[str, int]:
    """409 for a concurrent change detected by optimistic locking (version_id_col)."""
    title, message = MESSAGES[409]
    if wants_api_envelope():
        return api_envelope(409, message)
    return render_template("errors/error.html", code=409, title=title, message=message), 409


def _handle_stale(_exc: StaleDataError) -> Response | tuple[str, int]:
    db.session.rollback()
    return conflict_response()


def _handle_refusal(exc: DomainError) -> Response | tuple[str, int]:
    """A refusal no view turned into a response: its message, with nothing committed."""
    db.session.rollback()
    code = exc.status_code
    if wants_api_envelope():
        return api_envelope(code, exc.message)
    title = MESSAGES.get(code, MESSAGES[400])[0]
    return render_template("errors/error.html", code=code, title=title, message=exc.message), code


def _database_unavailable(exc: BaseException | None) -> bool:
    """The database went away under the request (connection dropped, pool exhausted)."""
    while exc is not None:
        if isinstance(exc, DBAPIError) and (
            exc.connection_invalidated or isinstance(exc, OperationalError)
        ):
            return True
        if isinstance(exc, DisconnectionError | SATimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def unavailable_response(request_id: str) -> Response:
    """503 with Retry-After: nothing was saved, the same request may simply be sent again."""
    try:
        db.session.rollback()
    except Exception:  # the connection is gone; the pool replaces it
        current_app.logger.warning("rollback after a lost connection failed", exc_info=True)
    title, message = MESSAGES[503]
    if wants_api_envelope():
        response = api_envelope(503, message, {"request_id": request_id})
    else:
        try:
            page = render_template(
                "errors/error.html", code=503, title=title, message=message, request_id=request_id
            )
        except Exception:  # the layout asks for the user, i.e. the database: plain page then
            page = (
                f'<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>{title}</title>'
                f"<h1>{title}（503）</h1><p>{message}</p><p>请求编号：{request_id}</p></html>"
            )
        response = current_app.make_response((page, 503))
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _handle_unexpected(exc: Exception) -> Response | tuple[str, int]:
    request_id = uuid.uuid4().hex[:12]
    original = exc.original_exception if isinstance(exc, InternalServerError) else exc
    if _database_unavailable(original):
        current_app.logger.warning("database unavailable, request id %s: %s", request_id, original)
        return unavailable_response(request_id)
    current_app.logger.error("unhandled error, request id %s", request_id, exc_info=original)
    title, message = MESSAGES[500]
    if wants_api_envelope():
        return api_envelope(500, f"{message}（请求编号 {request_id}）", {"request_id": request_id})
    page = render_template(
        "errors/error.html", code=500, title=title, message=message, request_id=request_id
    )
    return page, 500


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(StaleDataError, _handle_stale)
    app.register_error_handler(DomainError, _handle_refusal)
    app.register_error_handler(InternalServerError, _handle_unexpected)
    app.register_error_handler(Exception, _handle_unexpected)
