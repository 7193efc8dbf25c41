"""Template helpers, login wiring and the navigation by role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, request, session, url_for
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from . import accounts, photo_files, work_calendar
from .clock import format_china
from .extensions import login_manager
from .models import Role, User, utcnow


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str


# Menu entries per role. Later features add theirs here; unknown endpoints are skipped.
NAVIGATION: dict[Role, list[NavItem]] = {
    Role.APPLICANT: [
        NavItem("我的申请", "applications.index"),
        NavItem("气瓶档案", "archive.index"),
        NavItem("变更申请", "changes.index"),
    ],
    Role.ACCEPTOR: [
        NavItem("待办事项", "inbox.index"),
        NavItem("证书打印", "certificates.index"),
        NavItem("气瓶档案", "archive.index"),
    ],
    Role.REVIEWER: [NavItem("待办事项", "inbox.index"), NavItem("气瓶档案", "archive.index")],
    Role.APPROVER: [NavItem("待办事项", "inbox.index"), NavItem("气瓶档案", "archive.index")],
    Role.SUPERVISOR: [
        NavItem("监管看板", "supervision.dashboard"),
        NavItem("气瓶档案", "archive.index"),
        NavItem("审计日志", "admin.audit_log"),
        NavItem("代码表", "admin.reference"),
    ],
    Role.ADMIN: [
        NavItem("用户管理", "admin.users"),
        NavItem("单位管理", "admin.units_list"),
        NavItem("接口客户端", "admin.api_clients_list"),
        NavItem("代码表", "admin.reference"),
        NavItem("节假日安排", "admin.calendar_years"),
        NavItem("审计日志", "admin.audit_log"),
    ],
}

# Who sees the missing-holiday-schedule banner: those whose work the deadlines measure.
CALENDAR_WARNING_ROLES = frozenset({Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER, Role.ADMIN})


def _load_user_from_session(_request: object) -> User | None:
    token = session.get("sid")
    if not token:
        return None
    user = accounts.load_session(token)
    if user is None:
        session.pop("sid", None)
    return user


def _navigation() -> list[NavItem]:
    if not current_user.is_authenticated:
        return []
    endpoints = current_app.view_functions
    return [item for item in NAVIGATION.get(current_user.role, []) if item.endpoint in endpoints]


def _calendar_warnings() -> list[str]:
    """The banner "2027年节假日安排尚未录入…" for clerks and admins (one small query a request)."""
    if not current_user.is_authenticated or current_user.role not in CALENDAR_WARNING_ROLES:
        return []
    try:
        return work_calendar.missing_schedule_warnings()
    except SQLAlchemyError:  # an error page while the database is away still renders
        current_app.logger.warning("holiday schedule status unavailable", exc_info=True)
        return []


def init_app(app: Flask) -> None:
    login_manager.request_loader(_load_user_from_session)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "请先登录。"
    login_manager.login_message_category = "warning"
    app.context_processor(
        lambda: {
            "navigation": _navigation(),
            "Role": Role,
            "now_utc": utcnow,
            "calendar_warnings": _calendar_warnings(),
        }
    )
    app.jinja_env.globals["page_url"] = _page_url  # globals reach imported macros too
    app.jinja_env.globals["photo_url"] = photo_files.photo_url
    app.jinja_env.globals["photo_alt"] = photo_files.photo_alt
    app.jinja_env.filters["local_dt"] = _local_datetime


def _page_url(endpoint: str, number: int) -> str:
    """This page's URL (path and query) with another page number."""
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "page"}
    return url_for(endpoint, **(request.view_args or {}), **args, page=number)


def _local_datetime(value: object, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """UTC timestamps shown in China Standard Time."""
    return format_china(value, fmt)
