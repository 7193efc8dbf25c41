"""Who may do what and see which rows: the one mechanism every view uses.

- ``roles_required(*roles)`` guards a view by role (403 otherwise, audited).
- ``scope_clause(Model, user)`` is the SQL condition for the rows of ``Model`` a user may
  see; ``visible(Model)`` starts a query with it and ``get_or_404(Model, id)`` loads one row
  through it. Rows outside the user's scope answer 404, exactly like missing rows, so ids
  cannot be probed. Every refusal is audited.
- Supervisors are read-only: any state-changing request from them is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, request
from flask_login import current_user, login_required
from sqlalchemy import ColumnElement, Select, exists, false, select, true

from . import audit
from .extensions import db
from .models import (
    ApiClient,
    Application,
    ApplicationItem,
    Attachment,
    AuditLog,
    Certificate,
    ChangeRequest,
    Cylinder,
    FillingRecord,
    ImportJob,
    InspectionRecord,
    LicensingDocument,
    Role,
    TraceEvent,
    Unit,
    User,
)
from .models.base import Model

M = TypeVar("M", bound=Model)
F = TypeVar("F", bound=Callable[..., Any])


def _district_or_unit(district_col: Any, unit_col: Any, user: User) -> ColumnElement[bool]:
    if user.role in (Role.SUPERVISOR, Role.ADMIN):
        return true()
    if user.role.is_district_role:
        return district_col == user.district_code
    if user.role is Role.APPLICANT:
        return unit_col == user.unit_id
    return false()


def _application_scope(user: User) -> ColumnElement[bool]:
    return _district_or_unit(Application.district_code, Application.unit_id, user)


def _via_application(app_id_col: Any) -> Callable[[User], ColumnElement[bool]]:
    def clause(user: User) -> ColumnElement[bool]:
        if user.role in (Role.SUPERVISOR, Role.ADMIN):
            return true()
        return exists().where(Application.id == app_id_col, _application_scope(user))

    return clause


def _attachment_scope(user: User) -> ColumnElement[bool]:
    if user.role in (Role.SUPERVISOR, Role.ADMIN):
        return true()
    return exists().where(
        ApplicationItem.id == Attachment.item_id,
        Application.id == ApplicationItem.application_id,
        _application_scope(user),
    )


def _unit_scope(user: User) -> ColumnElement[bool]:
    return _district_or_unit(Unit.district_code, Unit.id, user)


def _change_scope(user: User) -> ColumnElement[bool]:
    """The district's bureau; the applying unit and, for a 过户, the receiving unit."""
    if user.role is Role.APPLICANT:
        return (ChangeRequest.unit_id == user.unit_id) | (
            ChangeRequest.target_unit_id == user.unit_id
        )
    return _district_or_unit(ChangeRequest.district_code, ChangeRequest.unit_id, user)


def _user_scope(user: User) -> ColumnElement[bool]:
    return true() if user.role is Role.ADMIN else User.id == user.id


def _only(*roles: Role) -> Callable[[User], ColumnElement[bool]]:
    return lambda user: true() if user.role in roles else false()


def _via_cylinder_or_sender(model: Any) -> Callable[[User], ColumnElement[bool]]:
    """Enterprise records: by the cylinder's district/unit, or the sending client's unit.

    The sender's side matters for records naming a cylinder the archive does not know
    (黑气瓶): the district where the filling station sits must still see them.
    """

    def clause(user: User) -> ColumnElement[bool]:
        if user.role in (Role.SUPERVISOR, Role.ADMIN):
            return true()
        if user.role.is_district_role:
            by_cylinder = exists().where(
                Cylinder.id == model.cylinder_id, Cylinder.district_code == user.district_code
            )
            by_sender = exists().where(
                ApiClient.id == model.client_id,
                Unit.id == ApiClient.unit_id,
                Unit.district_code == user.district_code,
            )
            return by_cylinder | by_sender
        if user.role is Role.APPLICANT:
            return exists().where(
                Cylinder.id == model.cylinder_id, Cylinder.use_unit_id == user.unit_id
            )
        return false()

    return clause


SCOPES: dict[type, Callable[[User], ColumnElement[bool]]] = {
    Application: _application_scope,
    ApplicationItem: _via_application(ApplicationItem.application_id),
    Attachment: _attachment_scope,
    Certificate: _via_application(Certificate.application_id),
    ChangeRequest: _change_scope,
    ImportJob: _via_application(ImportJob.application_id),
    LicensingDocument: _via_application(LicensingDocument.application_id),
    Cylinder: lambda user: _district_or_unit(Cylinder.district_code, Cylinder.use_unit_id, user),
    FillingRecord: _via_cylinder_or_sender(FillingRecord),
    InspectionRecord: _via_cylinder_or_sender(InspectionRecord),
    TraceEvent: _via_cylinder_or_sender(TraceEvent),
    Unit: _unit_scope,
    User: _user_scope,
    ApiClient: _only(Role.ADMIN),
    AuditLog: _only(Role.ADMIN, Role.SUPERVISOR),
}


def scope_clause(model: type, user: User) -> ColumnElement[bool]:
    """The condition selecting the rows of ``model`` that ``user`` may see."""
    try:
        return SCOPES[model](user)
    except KeyError:
        raise TypeError(f"no access scope is defined for {model.__name__}") from None


def visible(model: type[M], user: User | None = None) -> Select[tuple[M]]:
    """``select(model)`` limited to the current (or given) user's scope."""
    user = user or current_user._get_current_object()
    return select(model).where(scope_clause(model, user))


def get_or_404(model: type[M], ident: object, user: User | None = None) -> M:
    """The row with primary key ``ident`` if the user may see it; 404 (audited) otherwise."""
    user = user or current_user._get_current_object()
    pk = model.__mapper__.primary_key[0]
    row = db.session.scalar(visible(model, user).where(pk == ident))
    if row is None:
        audit.record_refusal(
            "access_denied", object_type=model.__tablename__, object_id=ident, path=request.path
        )
        abort(404)
    return row


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Require a login and one of ``roles``; others get 403 and an audit row."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles:
                audit.record_refusal("role_denied", path=request.path, role=current_user.role.value)
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Endpoints a read-only user may still POST to.
_READ_ONLY_ALLOWED = frozenset({"auth.logout", "auth.login", "auth.change_password"})


def _refuse_writes_by_read_only_users() -> None:
    if request.method in _SAFE_METHODS or request.endpoint in _READ_ONLY_ALLOWED:
        return
    if current_user.is_authenticated and current_user.role is Role.SUPERVISOR:
        audit.record_refusal("read_only_denied", path=request.path)
        abort(403)


def init_app(app: Flask) -> None:
    app.before_request(_refuse_writes_by_read_only_users)
