"""Bureau application pages: detail, 审核附件 pager, 受理 and 驳回（退件）."""

from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import Select, select
from werkzeug.wrappers import Response

from ... import (
    applications,
    attachment_audit,
    certificates,
    corrections,
    history,
    photo_files,
    prereading,
    workflow,
)
from ...access import get_or_404, roles_required
from ...extensions import db
from ...models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    Attachment,
    AuditVerdict,
    PhotoReading,
    ReadingVerdict,
    Role,
)
from ...search import contains
from ..form_helpers import VersionedForm, required_text
from ..refusal import refuse
from . import bp
from .correction import correction_context
from .forms import AuditPageForm, VoidForm

BUREAU_READERS = (Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER, Role.SUPERVISOR)
ITEMS_PER_PAGE = 50


def _items_query(application: Application) -> Select[tuple[ApplicationItem]]:
    query = select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    verdict = request.args.get("verdict", "")
    if verdict in {v.value for v in AuditVerdict}:
        query = query.where(ApplicationItem.audit_verdict == AuditVerdict(verdict))
    product_no = request.args.get("product_no", "").strip()
    if product_no:
        query = query.where(contains(ApplicationItem.product_no, product_no))
    condition = applications.photo_filter(request.args.get("photos", ""))
    if condition is not None:
        query = query.where(condition)
    return query.order_by(ApplicationItem.row_no, ApplicationItem.id)


@bp.route("/<int:application_id>")
@roles_required(*BUREAU_READERS)
def detail(application_id: int) -> str:
    application = get_or_404(Application, application_id)
    step = workflow.step_for(current_user.role, application.status)
    items = db.paginate(_items_query(application), per_page=ITEMS_PER_PAGE, error_out=False)
    photos: dict[int, list[Attachment]] = {}
    if items.items:
        for photo in db.session.scalars(
            select(Attachment).where(Attachment.item_id.in_([i.id for i in items.items]))
        ):
            photos.setdefault(photo.item_id, []).append(photo)
    return render_template(
        "acceptance/detail.html",
        application=application,
        items=items,
        photos=photos,
        progress=attachment_audit.progress(application),
        history=history.timeline(application),
        form=VersionedForm(version=application.version_id),
        step=step,
        accept_summary=(
            attachment_audit.acceptance_summary(application)
            if step is not None and step.key == "accept" and application.audit_completed_at
            else ""
        ),
        certificate=certificates.certificate_for(application),
        photo_filters=applications.PHOTO_FILTERS,
        retry_form=AuditPageForm(),
        **correction_context(application),
    )


def _pager_args() -> dict:
    machine = request.args.get("machine", "")
    return {
        "page": request.args.get("page", 1, type=int),
        "size": request.args.get("size", attachment_audit.PAGE_SIZES[0], type=int),
        "only_wrong": request.args.get("only") == "wrong",
        # 机器预读: a verdict to keep, and the "不一致 first, then 未识别" order.
        "machine": ReadingVerdict(machine)
        if machine in {v.value for v in ReadingVerdict}
        else None,
        "machine_first": request.args.get("order") == "machine",
    }


def _entries_from_form(item_ids: list[int]) -> list[attachment_audit.VerdictEntry]:
    entries = []
    for item_id in item_ids:
        raw = request.form.get(f"verdict-{item_id}", AuditVerdict.CORRECT.value)
        if raw not in (AuditVerdict.CORRECT.value, AuditVerdict.WRONG.value):
            abort(400)
        entries.append(
            attachment_audit.VerdictEntry(
                item_id=item_id,
                verdict=AuditVerdict(raw),
                note=request.form.get(f"note-{item_id}", ""),
                revision=request.form.get(f"rev-{item_id}", -1, type=int),
            )
        )
    return entries


@bp.route("/<int:application_id>/audit", methods=["GET", "POST"])
@roles_required(Role.ACCEPTOR)
def audit_pager(application_id: int) -> Response | str:
    application = get_or_404(Application, application_id)
    args = _pager_args()
    form = AuditPageForm()
    conflicts = []
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        item_ids = [int(v) for v in request.form.getlist("item") if v.isdigit()]
        here = url_for("acceptance.audit_pager", application_id=application.id, **_query(args))
        try:
            result = attachment_audit.save_verdicts(
                application, current_user, _entries_from_form(item_ids)
            )
        except workflow.WorkflowError as exc:
            return refuse(exc, here)
        action = request.form.get("action", "save")
        if not result.conflicts and action == "finish":
            try:
                attachment_audit.complete(application, current_user, form.version.data)
            except workflow.WorkflowError as exc:
                # The page's verdicts are saved (and committed); only 完成 is refused.
                flash(f"本页审核结果已保存，但未能完成审核：{exc.message}", "danger")
                return redirect(here)
            flash("附件审核已完成，可以进行受理。", "success")
            return redirect(url_for("acceptance.detail", application_id=application.id))
        conflicts = result.conflicts
        if not conflicts:
            step = {"next": 1, "prev": -1}.get(action, 0)
            args["page"] += step
            return redirect(
                url_for("acceptance.audit_pager", application_id=application.id, **_query(args))
            )
    page = attachment_audit.load_page(application, **args)
    form.version.data = application.version_id
    args["page"] = page.page
    query = _query(args)
    query.pop("page")
    return render_template(
        "acceptance/audit.html",
        application=application,
        audit=page,
        pager_query=query,  # the page's options, kept by its links and forms
        unread_photos=page.unread_photos,
        form=form,
        conflicts=conflicts,
        editable=application.status is ApplicationStatus.SUBMITTED,
    )


# ----------------------------------------------------------------- 逐只审核 (reading stamps)
# One cylinder at a time, its stamp large enough to read; the page asks for cylinders in
# windows and saves each verdict as it is given, through the pager's save (same revisions).
READER_WINDOW = 30


@bp.route("/<int:application_id>/audit/read")
@roles_required(Role.ACCEPTOR)
def audit_reader(application_id: int) -> str:
    application = get_or_404(Application, application_id)
    stats = attachment_audit.progress(application)
    machine_first = request.args.get("order") == "machine"
    start = request.args.get("at", type=int)
    if start is None or not 0 <= start < max(stats.total, 1):
        # In 机器预读 order the doubtful cylinders come first: start there.
        start = 0 if machine_first else attachment_audit.first_pending_index(application)
    form = AuditPageForm(version=application.version_id)
    machine_counts, unread_photos = prereading.summary(application)
    return render_template(
        "acceptance/audit_read.html",
        application=application,
        progress=stats,
        start=start,
        window=READER_WINDOW,
        form=form,
        editable=application.status is ApplicationStatus.SUBMITTED,
        machine_first=machine_first,
        machine_counts={v.value: n for v, n in machine_counts.items()},
        unread_photos=unread_photos,
    )


def _reading_json(reading: PhotoReading | None) -> dict | None:
    if reading is None:
        return None  # not read yet
    return {"verdict": reading.verdict.value, "label": reading.verdict.label, "note": reading.note}


def _photo_json(photo: Attachment, product_no: str, reading: PhotoReading | None) -> dict:
    return {
        "machine": _reading_json(reading),
        "kind": photo.kind.value,
        "alt": photo_files.photo_alt(photo, product_no),
        "view": photo_files.photo_url(photo, "view"),
        "side": photo_files.photo_url(photo, "side"),
        "small": photo_files.photo_url(photo, "small"),
        "thumb": photo_files.photo_url(photo, "thumb"),
        "full": photo_files.photo_url(photo, "full"),
    }


@bp.route("/<int:application_id>/audit/cylinders")
@roles_required(Role.ACCEPTOR)
def audit_window(application_id: int) -> Response:
    """A window of cylinders in audit order, with their photos' URLs, for 逐只审核."""
    application = get_or_404(Application, application_id)
    offset = request.args.get("offset", 0, type=int)
    items, photos = attachment_audit.load_window(
        application, offset, READER_WINDOW, machine_first=request.args.get("order") == "machine"
    )
    readings = prereading.readings_for([p.id for ps in photos.values() for p in ps])
    return jsonify(
        offset=max(0, offset),
        total=application.item_count,
        items=[
            {
                "id": item.id,
                "row_no": item.row_no,
                "product_no": item.product_no,
                "facts": [
                    ["制造单位", item.manufacturer],
                    ["制造年月", item.manufacture_month],
                    ["品种", item.variety_code],
                    ["介质", item.medium_code],
                    ["公称压力", f"{item.nominal_pressure_mpa} MPa"],
                    ["容积", f"{item.volume_l} L"],
                    ["最近检验", str(item.last_inspection_date or "—")],
                    ["下次检验", item.next_inspection_month or "—"],
                    ["单位内编号", item.internal_no or "—"],
                ],
                "verdict": item.audit_verdict.value,
                "note": item.audit_note or "",
                "rev": item.audit_revision,
                # 补正: what the applicant changed since the notice (data / photos / new).
                "changed": _change_labels(item),
                "photos": [
                    _photo_json(p, item.product_no, readings.get(p.id))
                    for p in sorted(photos.get(item.id, []), key=lambda p: p.kind.value)
                ],
            }
            for item in items
        ],
    )


@bp.route("/<int:application_id>/audit/verdict", methods=["POST"])
@roles_required(Role.ACCEPTOR)
def audit_verdict(application_id: int) -> Response | tuple[Response, int]:
    """One cylinder's verdict from 逐只审核: the pager's save, revision check included."""
    application = get_or_404(Application, application_id)
    if not AuditPageForm().validate_on_submit():
        abort(400)
    item_id = request.form.get("item", type=int)
    if item_id is None:
        abort(400)
    try:
        result = attachment_audit.save_verdicts(
            application, current_user, _entries_from_form([item_id])
        )
    except workflow.WorkflowError as exc:
        return jsonify(ok=False, message=exc.message), exc.status_code
    item = db.session.get(ApplicationItem, item_id)
    assert item is not None  # save_verdicts checked it belongs to the application
    stats = attachment_audit.progress(application)
    return jsonify(
        ok=not result.conflicts,
        conflict=bool(result.conflicts),
        item=item.id,
        product_no=item.product_no,
        verdict=item.audit_verdict.value,
        verdict_label=item.audit_verdict.label,
        note=item.audit_note or "",
        rev=item.audit_revision,
        # 补正: a conflict on a cylinder the applicant changed is a reset, not another clerk.
        changed=_change_labels(item),
        progress={"total": stats.total, "audited": stats.audited, "wrong": stats.wrong},
    )


def _change_labels(item: ApplicationItem) -> list[str]:
    return [
        corrections.CHANGE_LABELS[c]
        for c in (item.correction_change or "").split(",")
        if c in corrections.CHANGE_LABELS
    ]


def _query(args: dict) -> dict:
    query = {"page": args["page"], "size": args["size"]}
    if args["only_wrong"]:
        query["only"] = "wrong"
    if args["machine"] is not None:
        query["machine"] = args["machine"].value
    if args["machine_first"]:
        query["order"] = "machine"
    return query


@bp.route("/<int:application_id>/accept", methods=["POST"])
@roles_required(Role.ACCEPTOR)
def accept(application_id: int) -> Response:
    application = get_or_404(Application, application_id)
    form = VersionedForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        workflow.accept(
            application,
            current_user,
            form.version.data,
            current_app.config["DECISION_LIMIT_WORKDAYS"],
        )
    except workflow.WorkflowError as exc:
        if workflow.done_by(application, "accept", current_user):
            flash(f"申请 {application.number} 已受理（重复提交，未再次办理）。", "info")
            return redirect(url_for("inbox.index", task="accept"))
        return refuse(exc, url_for("acceptance.detail", application_id=application.id))
    flash(f"申请 {application.number} 已受理，已转审核。", "success")
    return redirect(url_for("inbox.index", task="accept"))


@bp.route("/<int:application_id>/void", methods=["GET", "POST"])
@roles_required(Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER)
def void(application_id: int) -> Response | str:
    """驳回（退件） at the user's own step, behind a confirmation page."""
    application = get_or_404(Application, application_id)
    form = VoidForm(version=application.version_id) if request.method == "GET" else VoidForm()
    if form.validate_on_submit():
        try:
            workflow.void(
                application,
                current_user,
                required_text(form.reason),
                form.version.data,
                sod=current_app.config["SEPARATION_OF_DUTIES"],
            )
        except workflow.WorkflowError as exc:
            if application.voided_by_id == current_user.id:
                flash(f"申请 {application.number} 已驳回（退件）（重复提交，未再次办理）。", "info")
                return redirect(url_for("inbox.index"))
            return refuse(exc, url_for("acceptance.detail", application_id=application.id))
        flash(f"申请 {application.number} 已驳回（退件），该批次申请已作废。", "warning")
        return redirect(url_for("inbox.index"))
    if request.method == "POST" and not form.version.data:
        abort(400)
    if application.status is not workflow.VOID_STEP_BY_ROLE[current_user.role]:
        abort(409, description=workflow.STALE_MESSAGE)
    return render_template("acceptance/void.html", application=application, form=form)
