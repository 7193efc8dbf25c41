"""变更申请: the use unit's change requests, the receiving unit's 接收确认 (过户), and the
bureau's 受理 / 审批 / 驳回. The rules live in ``change_workflow`` and ``change_selection``."""

from __future__ import annotations

from flask import Response as FlaskResponse
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from ... import change_selection, change_workflow, history, storage
from ...access import get_or_404, roles_required, visible
from ...clock import china_today
from ...credit_code import normalize_credit_code
from ...domain_errors import DomainError
from ...extensions import db
from ...models import (
    Certificate,
    CertificateVersion,
    ChangeItem,
    ChangeKind,
    ChangeOrigin,
    ChangeRequest,
    ChangeStatus,
    Cylinder,
    InspectionRecord,
    Role,
    Unit,
    User,
)
from ..form_helpers import VersionedForm
from ..refusal import refuse
from . import bp
from .forms import ChangeForm, RejectForm

# Kinds whose cylinders are all the unit's (no selection).
NOTES = {
    ChangeKind.SUSPEND: "停用一年以上的，应当在停用后30日内申请报停；超过30日提交的，系统照常受理，"
    "并在待办事项和申请详情中标注“逾期报停”。",
    ChangeKind.RESUME: "下次检验日期已过的气瓶须检验合格后方可启用。",
    ChangeKind.SCRAP: "须附报废证明照片，或选择检验机构的判废检验记录。",
    ChangeKind.CANCEL: "须附报废证明照片，或选择检验机构的判废检验记录。",
    ChangeKind.RENAME: "更名适用于本单位名下的全部气瓶。",
    ChangeKind.ADDRESS: "地址变更适用于本单位名下的全部气瓶。",
    ChangeKind.TRANSFER: "过户给另一家已登记的使用单位：接收单位经办人确认接收后，"
    "由区县局受理、审批。气瓶档案ID、信息化标签和历史记录保持不变。",
    ChangeKind.REISSUE: "使用登记证遗失或损毁时申请补领，补发的证书标注“补发”。",
}


def _kind(value: str) -> ChangeKind:
    try:
        return ChangeKind(value)
    except ValueError:
        abort(404)


@bp.route("/")
@roles_required(Role.APPLICANT)
def index() -> str:
    """The unit's change requests, and 过户 waiting for its 接收确认."""
    rows = db.session.scalars(
        visible(ChangeRequest).order_by(ChangeRequest.submitted_at.desc()).limit(200)
    ).all()
    incoming = [
        c
        for c in rows
        if c.target_unit_id == current_user.unit_id and c.status is ChangeStatus.AWAITING_RECEIVER
    ]
    return render_template("changes/index.html", rows=rows, incoming=incoming, kinds=ChangeKind)


def _selected(form: ChangeForm, kind: ChangeKind, unit: Unit) -> list[Cylinder]:
    if kind in change_workflow.UNIT_WIDE:
        return change_selection.all_of_unit(unit)
    tokens = change_selection.tokens_from_text(form.cylinder_ids.data or "")
    tokens += request.args.getlist("cylinder")  # the form's own address keeps the link's
    tokens += change_selection.tokens_from_text(form.product_nos.data or "")
    upload = form.product_file.data
    if upload and upload.filename:
        tokens += change_selection.tokens_from_xlsx(upload.read())
    return change_selection.resolve(unit, tokens)


def _fields(
    form: ChangeForm, kind: ChangeKind, cylinders: list[Cylinder]
) -> change_workflow.ChangeFields:
    target = None
    if kind is ChangeKind.TRANSFER and form.target_credit_code.data:
        code = normalize_credit_code(form.target_credit_code.data)
        target = db.session.scalar(select(Unit).where(Unit.credit_code == code))
        if target is None:
            raise change_workflow.ChangeError(
                f"统一社会信用代码{code}没有对应的已登记使用单位。请核对代码，或请接收单位先办理单位登记。"
            )
    record = None
    if kind in (ChangeKind.SCRAP, ChangeKind.CANCEL) and form.inspection_record_id.data:
        record = change_selection.scrap_record_of(
            form.inspection_record_id.data, {c.id for c in cylinders}
        )
        if record is None:
            raise change_workflow.ChangeError(
                "所选检验记录不是所选气瓶的判废检验记录，请重新选择。"
            )
    proof = None
    photo = form.proof_photo.data
    if kind in (ChangeKind.SCRAP, ChangeKind.CANCEL) and photo and photo.filename:
        proof = change_selection.store_proof(photo.read(), photo.filename)
    return change_workflow.ChangeFields(
        reason=form.reason.data or "",
        effective_on=form.effective_on.data,
        long_stop=bool(form.long_stop.data),
        new_unit_name=form.new_unit_name.data or "",
        new_address=form.new_address.data or "",
        target_unit=target,
        certificate_no=form.certificate_no.data or "",
        proof=proof,
        inspection_record=record,
    )


@bp.route("/new/<kind>", methods=["GET", "POST"])
@roles_required(Role.APPLICANT)
def new(kind: str) -> str | Response:
    change_kind = _kind(kind)
    unit = current_user.unit
    form = ChangeForm()
    # A selection posted from the 气瓶档案 list (name="cylinder" per ticked row) opens the
    # form with those cylinders; only this form's own POST (kind_form) submits.
    from_selection = request.method == "POST" and "kind_form" not in request.form
    if request.method == "GET" or from_selection:
        ids = request.args.getlist("cylinder") + request.form.getlist("cylinder")
        form.cylinder_ids.data = " ".join(ids)
    preselected = change_selection.tokens_from_text(form.cylinder_ids.data or "")
    records: list[InspectionRecord] = []
    if change_kind in (ChangeKind.SCRAP, ChangeKind.CANCEL):
        records = change_selection.scrap_records_of_unit(unit, limit=50)
    if not from_selection and form.validate_on_submit():
        try:
            cylinders = _selected(form, change_kind, unit)
            change = change_workflow.submit(
                change_kind,
                unit,
                current_user,
                cylinders,
                _fields(form, change_kind, cylinders),
                current_app.config,
            )
        except DomainError as exc:
            return refuse(exc, request.full_path.rstrip("?"))
        flash(
            f"{change_kind.label}申请 {change.number} 已提交（{change.item_count}只气瓶）。",
            "success",
        )
        return redirect(url_for("changes.show", change_id=change.id))
    return render_template(
        "changes/form.html",
        form=form,
        kind=change_kind,
        note=NOTES[change_kind],
        whole_unit=change_kind in change_workflow.UNIT_WIDE,
        preselected=preselected,
        records=records,
        unit=unit,
    )


def _items(change: ChangeRequest) -> list[tuple[ChangeItem, Cylinder]]:
    return list(
        db.session.execute(
            select(ChangeItem, Cylinder)
            .join(Cylinder, Cylinder.id == ChangeItem.cylinder_id)
            .where(ChangeItem.change_id == change.id)
            .order_by(ChangeItem.id)
            .limit(500)
        ).tuples()
    )


def _actions(change: ChangeRequest, user: User) -> list[str]:
    """What the user may do now (the buttons shown): from the open step's role, and the
    applying unit's 撤回 while nobody at the bureau has acted."""
    actions: list[str] = []
    step = change_workflow.open_step(change)
    if (
        step is not None
        and user.role is step.role
        and (step.key != "receive" or user.unit_id == change.target_unit_id)
    ):
        actions += [step.key, "reject"]
    if (
        user.role is Role.APPLICANT
        and user.unit_id == change.unit_id
        and change.origin is ChangeOrigin.UNIT
        and change.status in change_workflow.WITHDRAWABLE
    ):
        actions.append("withdraw")
    return actions


@bp.route("/<int:change_id>")
@login_required
def show(change_id: int) -> str:
    change = get_or_404(ChangeRequest, change_id)
    record = (
        db.session.get(InspectionRecord, change.inspection_record_id)
        if change.inspection_record_id
        else None
    )
    names = dict(
        db.session.execute(
            select(User.id, User.display_name).where(
                User.id.in_(
                    [
                        i
                        for i in (
                            change.created_by_id,
                            change.received_by_id,
                            change.accepted_by_id,
                            change.approved_by_id,
                            change.rejected_by_id,
                            change.withdrawn_by_id,
                        )
                        if i
                    ]
                )
            )
        )
        .tuples()
        .all()
    )
    # The certificates this change had issued again (those the user may open).
    issued = db.session.scalars(
        visible(Certificate)
        .join(CertificateVersion, CertificateVersion.certificate_id == Certificate.id)
        .where(CertificateVersion.change_request_id == change.id)
        .order_by(Certificate.number)
    ).all()
    return render_template(
        "changes/show.html",
        issued=issued,
        events=history.change_events(change.id),
        change=change,
        items=_items(change),
        record=record,
        names=names,
        actions=_actions(change, current_user),
        held=change_workflow.held_scrap_records([change.id]).get(change.id, []),
        form=VersionedForm(version=change.version_id),
        reject_form=RejectForm(version=change.version_id),
        overdue=change_workflow.is_overdue(change, china_today()),
        one_step=current_app.config["CHANGE_APPROVAL_STEPS"] == 1,
    )


@bp.route("/<int:change_id>/proof")
@login_required
def proof(change_id: int) -> FlaskResponse:
    change = get_or_404(ChangeRequest, change_id)
    if not change.proof_photo_key or not storage.exists(change.proof_photo_key):
        abort(404)
    response = FlaskResponse(
        storage.read(change.proof_photo_key), mimetype=change.proof_content_type
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _back(change: ChangeRequest) -> str:
    return url_for("changes.show", change_id=change.id)


def _done(change: ChangeRequest) -> Response:
    if current_user.role is Role.APPLICANT:
        return redirect(url_for("changes.index"))
    return redirect(url_for("inbox.index"))


@bp.route("/<int:change_id>/receive", methods=["POST"])
@roles_required(Role.APPLICANT)
def receive(change_id: int) -> Response:
    change = get_or_404(ChangeRequest, change_id)
    form = VersionedForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        change_workflow.receive(change, current_user, form.version.data, current_app.config)
    except DomainError as exc:
        return refuse(exc, _back(change))
    flash(
        f"已确认接收过户申请 {change.number} 的{change.item_count}只气瓶，待区县局受理。", "success"
    )
    return _done(change)


@bp.route("/<int:change_id>/accept", methods=["POST"])
@roles_required(Role.ACCEPTOR)
def accept(change_id: int) -> Response:
    change = get_or_404(ChangeRequest, change_id)
    form = VersionedForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        change_workflow.accept(change, current_user, form.version.data, current_app.config)
    except DomainError as exc:
        return refuse(exc, _back(change))
    done = "已批准并生效" if change.status is ChangeStatus.APPROVED else "已受理，转审批"
    flash(f"{change.kind.label}申请 {change.number} {done}。", "success")
    return _done(change)


@bp.route("/<int:change_id>/approve", methods=["POST"])
@roles_required(Role.APPROVER)
def approve(change_id: int) -> Response:
    change = get_or_404(ChangeRequest, change_id)
    form = VersionedForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        change_workflow.approve(
            change, current_user, form.version.data, current_app.config["SEPARATION_OF_DUTIES"]
        )
    except DomainError as exc:
        return refuse(exc, _back(change))
    flash(f"{change.kind.label}申请 {change.number} 审批通过，已生效。", "success")
    return _done(change)


@bp.route("/<int:change_id>/withdraw", methods=["POST"])
@roles_required(Role.APPLICANT)
def withdraw(change_id: int) -> Response:
    change = get_or_404(ChangeRequest, change_id)
    form = VersionedForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        change_workflow.withdraw(change, current_user, form.version.data)
    except DomainError as exc:
        return refuse(exc, _back(change))
    flash(
        f"{change.kind.label}申请 {change.number} 已撤回，"
        f"所涉{change.item_count}只气瓶可重新申请。",
        "success",
    )
    return redirect(url_for("changes.index"))


@bp.route("/<int:change_id>/reject", methods=["GET", "POST"])
@roles_required(Role.APPLICANT, Role.ACCEPTOR, Role.APPROVER)
def reject(change_id: int) -> str | Response:
    change = get_or_404(ChangeRequest, change_id)
    form = RejectForm(version=change.version_id)
    if form.validate_on_submit():
        try:
            change_workflow.reject(
                change,
                current_user,
                form.reason.data or "",
                form.version.data,
                sod=current_app.config["SEPARATION_OF_DUTIES"],
            )
        except DomainError as exc:
            return refuse(exc, _back(change))
        flash(f"{change.kind.label}申请 {change.number} 已驳回。", "success")
        return _done(change)
    return render_template("changes/reject.html", change=change, form=form)
