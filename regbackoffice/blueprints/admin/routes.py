"""系统管理: users, units, API clients, reference data and the audit log viewer."""

from __future__ import annotations

from datetime import date, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import or_, select
from werkzeug.wrappers import Response
from wtforms import SelectChoice  # type: ignore[attr-defined]  # new in WTForms 3.3; types-WTForms 3.2 lacks it

from ... import accounts, api_auth, api_clients, history, units
from ...access import get_or_404, roles_required, visible
from ...clock import china_day_start
from ...credit_code import normalize_credit_code
from ...extensions import db
from ...models import (
    ApiClient,
    AuditLog,
    District,
    Medium,
    Role,
    Unit,
    UnitKind,
    User,
    Variety,
)
from ...search import contains
from ..form_helpers import choices, required_text
from . import bp
from .forms import (
    SCOPE_LABELS,
    ApiClientForm,
    ConfirmForm,
    PasswordResetForm,
    UnitForm,
    UserForm,
)

PER_PAGE = 50


def _district_choices(blank: str | None = None) -> list[SelectChoice]:
    rows = db.session.execute(select(District.code, District.name).order_by(District.code))
    pairs = [(code, f"{code} {name}") for code, name in rows]
    return choices([("", blank), *pairs] if blank is not None else pairs)


def _unit_by_credit_code(raw: str | None) -> Unit | None:
    if not raw:
        return None
    return db.session.scalar(select(Unit).where(Unit.credit_code == normalize_credit_code(raw)))


# ---- users -------------------------------------------------------------------------------


@bp.route("/users")
@roles_required(Role.ADMIN)
def users() -> str:
    query = visible(User).order_by(User.username)
    q = request.args.get("q", "").strip()
    if q:
        query = query.where(or_(contains(User.username, q), contains(User.display_name, q)))
    role = request.args.get("role", "")
    if role in {r.value for r in Role}:
        query = query.where(User.role == Role(role))
    page = db.paginate(query, per_page=PER_PAGE, error_out=False)
    return render_template("admin/users.html", page=page, q=q, role=role)


def _user_form(user: User | None) -> UserForm:
    form = UserForm(obj=user)
    form.district_code.choices = _district_choices(blank="（不适用）")
    if user is not None and request.method == "GET":
        form.role.data = user.role.value
        form.district_code.data = user.district_code or ""
        form.unit_credit_code.data = user.unit.credit_code if user.unit else ""
    return form


def _scope_from_form(form: UserForm) -> tuple[Role, str | None, Unit | None] | None:
    role = Role(form.role.data)
    unit = _unit_by_credit_code(form.unit_credit_code.data)
    if role is Role.APPLICANT and unit is None:
        form.unit_credit_code.errors = ["找不到该统一社会信用代码对应的单位，请先在单位管理中登记"]
        return None
    return role, form.district_code.data or None, unit


@bp.route("/users/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def user_new() -> Response | str:
    form = _user_form(None)
    if form.validate_on_submit() and (scope := _scope_from_form(form)):
        role, district_code, unit = scope
        try:
            user = accounts.create_user(
                required_text(form.username).strip(),
                form.password.data or "",
                role,
                display_name=form.display_name.data,
                district_code=district_code,
                unit=unit,
            )
        except accounts.AccountError as exc:
            flash(str(exc), "danger")
        else:
            flash(f"已创建用户 {user.username}", "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/user_form.html", form=form, user=None)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def user_edit(user_id: int) -> Response | str:
    user = get_or_404(User, user_id)
    form = _user_form(user)
    form.username.data = user.username  # not editable
    if form.validate_on_submit() and (scope := _scope_from_form(form)):
        role, district_code, unit = scope
        try:
            accounts.update_user(
                user,
                display_name=required_text(form.display_name),
                role=role,
                district_code=district_code,
                unit=unit,
            )
        except accounts.AccountError as exc:
            flash(str(exc), "danger")
        else:
            flash(f"已保存用户 {user.username}", "success")
            return redirect(url_for("admin.user_edit", user_id=user.id))
    return render_template(
        "admin/user_form.html",
        form=form,
        user=user,
        password_form=PasswordResetForm(),
        confirm_form=ConfirmForm(),
        lock_state=accounts.lock_state(user),
    )


@bp.route("/users/<int:user_id>/unlock", methods=["POST"])
@roles_required(Role.ADMIN)
def user_unlock(user_id: int) -> Response:
    user = get_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    cleared = accounts.unlock(user)
    flash(f"已解锁用户 {user.username}（账号锁定及{cleared}个地址的登录暂停已解除）", "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@roles_required(Role.ADMIN)
def user_password(user_id: int) -> Response:
    user = get_or_404(User, user_id)
    form = PasswordResetForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        accounts.set_password(user, required_text(form.password))
    except accounts.AccountError as exc:
        flash(str(exc), "danger")
    else:
        flash(f"已重置 {user.username} 的密码，其现有登录已全部失效", "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@roles_required(Role.ADMIN)
def user_active(user_id: int) -> Response:
    user = get_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    enable = request.form.get("active") == "1"
    if user.id == current_user.id and not enable:
        flash("不能停用自己的账号", "danger")
    else:
        accounts.set_active(user, enable)
        flash(f"已{'启用' if enable else '停用'}用户 {user.username}", "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


# ---- units -------------------------------------------------------------------------------


@bp.route("/units")
@roles_required(Role.ADMIN)
def units_list() -> str:
    query = visible(Unit).order_by(Unit.district_code, Unit.name)
    q = request.args.get("q", "").strip()
    if q:
        query = query.where(or_(contains(Unit.name, q), contains(Unit.credit_code, q.upper())))
    page = db.paginate(query, per_page=PER_PAGE, error_out=False)
    districts = dict(db.session.execute(select(District.code, District.name)).tuples().all())
    return render_template("admin/units.html", page=page, q=q, districts=districts)


@bp.route("/units/new", methods=["GET", "POST"], defaults={"unit_id": None})
@bp.route("/units/<int:unit_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def unit_edit(unit_id: int | None) -> Response | str:
    unit = get_or_404(Unit, unit_id) if unit_id is not None else None
    form = UnitForm(obj=unit)
    form.district_code.choices = _district_choices()
    if unit is not None and request.method == "GET":
        form.kind.data = unit.kind.value
    if form.validate_on_submit():
        data = units.UnitData(
            kind=UnitKind(form.kind.data),
            name=form.name.data or "",
            credit_code=form.credit_code.data or "",
            district_code=form.district_code.data or "",
            address=form.address.data or "",
            safety_department=form.safety_department.data or "",
            contact_name=form.contact_name.data or "",
            contact_phone=form.contact_phone.data or "",
        )
        try:
            saved = units.save_unit(data, unit)
        except units.UnitError as exc:
            form.credit_code.errors = [str(exc)] if "代码" in str(exc) else []
            flash(str(exc), "danger")
        else:
            flash(f"已保存单位 {saved.name}", "success")
            return redirect(url_for("admin.units_list"))
    return render_template("admin/unit_form.html", form=form, unit=unit)


# ---- API clients -------------------------------------------------------------------------


@bp.route("/api-clients", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def api_clients_list() -> str:
    form = ApiClientForm()
    if form.validate_on_submit():
        unit = _unit_by_credit_code(form.unit_credit_code.data)
        if unit is None:
            form.unit_credit_code.errors = ["找不到该统一社会信用代码对应的单位"]
        else:
            try:
                client, secret = api_clients.issue_client(
                    unit, form.scopes.data or [], description=form.description.data or ""
                )
            except api_clients.ApiClientError as exc:
                flash(str(exc), "danger")
            else:
                # Rendered directly (not redirected) so the secret is never stored anywhere.
                return render_template("admin/api_client_secret.html", client=client, secret=secret)
    clients = db.session.scalars(visible(ApiClient).order_by(ApiClient.created_at.desc())).all()
    return render_template(
        "admin/api_clients.html",
        form=form,
        clients=clients,
        confirm_form=ConfirmForm(),
        scope_labels=SCOPE_LABELS,
        alerts=api_auth.recent_alerts(),
    )


@bp.route("/api-clients/<int:client_id>/rotate", methods=["POST"])
@roles_required(Role.ADMIN)
def api_client_rotate(client_id: int) -> str:
    client = get_or_404(ApiClient, client_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    secret = api_clients.rotate_secret(client)
    return render_template("admin/api_client_secret.html", client=client, secret=secret)


@bp.route("/api-clients/<int:client_id>/active", methods=["POST"])
@roles_required(Role.ADMIN)
def api_client_active(client_id: int) -> Response:
    client = get_or_404(ApiClient, client_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    enable = request.form.get("active") == "1"
    api_clients.set_client_active(client, enable)
    flash(f"已{'启用' if enable else '停用（吊销）'}接口客户端 {client.app_id}", "success")
    return redirect(url_for("admin.api_clients_list"))


# ---- reference data and audit log ------------------------------------------------------------


@bp.route("/reference")
@roles_required(Role.ADMIN, Role.SUPERVISOR)
def reference() -> str:
    return render_template(
        "admin/reference.html",
        districts=db.session.scalars(select(District).order_by(District.code)).all(),
        media=sorted(db.session.scalars(select(Medium)), key=lambda m: int(m.code[1:])),
        varieties=db.session.scalars(select(Variety).order_by(Variety.code)).all(),
    )


def _parse_day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@bp.route("/audit")
@roles_required(Role.ADMIN, Role.SUPERVISOR)
def audit_log() -> str:
    filters = {
        k: request.args.get(k, "").strip()
        for k in ("action", "actor", "object_type", "object_id", "outcome", "start", "end")
    }
    query = visible(AuditLog).order_by(AuditLog.id.desc())
    if filters["action"]:
        query = query.where(AuditLog.action == filters["action"])
    if filters["actor"]:
        query = query.where(contains(AuditLog.actor_name, filters["actor"]))
    if filters["object_type"]:
        query = query.where(AuditLog.object_type == filters["object_type"])
    if filters["object_id"]:
        query = query.where(AuditLog.object_id == filters["object_id"])
    if filters["outcome"]:
        query = query.where(AuditLog.outcome == filters["outcome"])
    if start := _parse_day(filters["start"]):
        query = query.where(AuditLog.at >= china_day_start(start))
    if end := _parse_day(filters["end"]):
        query = query.where(AuditLog.at < china_day_start(end + timedelta(days=1)))
    page = db.paginate(query, per_page=PER_PAGE, error_out=False)
    actions = db.session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)).all()
    return render_template(
        "admin/audit.html",
        page=page,
        filters=filters,
        actions=actions,
        action_labels=history.AUDIT_ACTION_LABELS,
        object_labels=history.OBJECT_LABELS,
        numbers=history.application_numbers(page.items),
        object_in_words=history.object_in_words,
        describe=history.describe_for_audit_log,
    )
