"""使用单位申请: the applicant's pages. Views parse and authorise; the domain modules act."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any
from urllib.parse import quote

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user
from redis.exceptions import RedisError
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # new in WTForms 3.3; types-WTForms 3.2 lacks it

from ... import (
    access,
    applications,
    corrections,
    documents,
    history,
    photos,
    prereading,
    workflow,
)
from ...domain_errors import DomainError
from ...extensions import db
from ...images import ImageRejected
from ...imports import ImportRejected, safety
from ...imports import job as import_job
from ...imports import refused as refused_rows
from ...imports import template as import_template
from ...models import (
    EDITABLE_STATUSES,
    Application,
    ApplicationItem,
    ApplicationStatus,
    Attachment,
    AttachmentKind,
    AuditVerdict,
    Certificate,
    District,
    ImportJob,
    ImportStatus,
    Medium,
    Role,
    Unit,
    User,
    Variety,
)
from ...search import contains
from ..form_helpers import BaseForm, VersionedForm
from ..refusal import refuse
from . import bp
from .forms import (
    ApplicationForm,
    BulkPhotoForm,
    ConfirmForm,
    ImportForm,
    ItemForm,
    NamedPhotoForm,
    PhotoForm,
    ReplacePhotoForm,
    WithdrawForm,
)

applicant_only = access.roles_required(Role.APPLICANT)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ITEMS_PER_PAGE = 50


def _read_upload(upload: FileStorage, limit: int) -> bytes:
    """At most ``limit`` + 1 bytes (enough to tell it is too big), then release the temp file."""
    try:
        return upload.stream.read(limit + 1)
    finally:
        upload.close()


def _application(application_id: int) -> Application:
    return access.get_or_404(Application, application_id)


def _item(application: Application, item_id: int) -> ApplicationItem:
    item = access.get_or_404(ApplicationItem, item_id)
    if item.application_id != application.id:
        abort(404)
    return item


def _attachment(application: Application, attachment_id: int) -> Attachment:
    attachment = access.get_or_404(Attachment, attachment_id)
    if attachment.item.application_id != application.id:
        abort(404)
    return attachment


def _district_choices() -> list[SelectChoice]:
    districts = db.session.scalars(select(District).order_by(District.code))
    return [SelectChoice(d.code, d.name) for d in districts]


def _info_from(form: ApplicationForm) -> applications.UnitInfo:
    return applications.UnitInfo(
        **{name: (getattr(form, name).data or "").strip() for name in applications.UNIT_FIELDS}
    )


def _unit_form_complete(form: ApplicationForm) -> bool:
    """Validate the posted unit information, every field at once (the form's own checks
    and the unit rules, each message beside its field); False on GET."""
    if request.method != "POST":
        return False
    valid = form.validate_on_submit()
    for name, messages in applications.unit_info_problems_by_field(_info_from(form)).items():
        field = getattr(form, name)
        if not field.errors:  # the form's message (e.g. 请填写…) already says it
            field.errors = [*field.errors, *messages]
        valid = False
    return valid


@bp.route("/")
@applicant_only
def index() -> str:
    rows = db.session.scalars(access.visible(Application).order_by(Application.id.desc())).all()
    return render_template("applications/index.html", applications=rows, form=ConfirmForm())


@bp.route("/new", methods=["GET", "POST"])
@applicant_only
def new() -> Response | tuple[str, int]:
    unit = access.get_or_404(Unit, current_user.unit_id)
    form = ApplicationForm()
    form.district_code.choices = _district_choices()
    if request.method == "GET":
        info = applications.UnitInfo.from_unit(unit)
        for name in applications.UNIT_FIELDS:
            getattr(form, name).data = getattr(info, name)
        form.district_code.data = unit.district_code
    if _unit_form_complete(form):
        application = applications.create_application(
            unit, current_user, district_code=form.district_code.data, info=_info_from(form)
        )
        flash(f"已创建申请{application.number}，请下载模板并导入气瓶信息。", "success")
        return redirect(url_for(".show", application_id=application.id))
    status = 400 if request.method == "POST" else 200
    return render_template("applications/form.html", form=form, application=None), status


@bp.route("/<int:application_id>/edit", methods=["GET", "POST"])
@applicant_only
def edit(application_id: int) -> Response | tuple[str, int]:
    application = _application(application_id)
    form = ApplicationForm(obj=application)
    form.district_code.choices = _district_choices()
    if _unit_form_complete(form):
        try:
            applications.update_application(
                application,
                _info_from(form),
                district_code=form.district_code.data,
                actor=current_user,
            )
        except applications.ApplicationError as exc:
            return refuse(exc, url_for(".show", application_id=application.id))
        flash("单位基本信息已保存。", "success")
        return redirect(url_for(".show", application_id=application.id))
    status = 400 if request.method == "POST" else 200
    return render_template("applications/form.html", form=form, application=application), status


@bp.route("/<int:application_id>/delete", methods=["POST"])
@applicant_only
def delete(application_id: int) -> Response:
    application = _application(application_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        applications.delete_application(application, current_user)
    except applications.ApplicationError as exc:
        return refuse(exc, url_for(".show", application_id=application.id))
    flash("草稿已删除。", "success")
    return redirect(url_for(".index"))


@bp.route("/<int:application_id>")
@applicant_only
def show(application_id: int) -> str:
    application = _application(application_id)
    query = (request.args.get("q") or "").strip()
    has_photos = request.args.get("photos", "")
    stmt = select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    if query:
        stmt = stmt.where(contains(ApplicationItem.product_no, query))
    condition = applications.photo_filter(has_photos)
    if condition is not None:
        stmt = stmt.where(condition)
    page = db.paginate(
        stmt.order_by(ApplicationItem.row_no), per_page=ITEMS_PER_PAGE, error_out=False
    )
    kinds = applications.photo_kinds_by_item([item.id for item in page.items])
    problems = {item.id: applications.photo_problem(kinds.get(item.id, {})) for item in page.items}
    last_import = db.session.scalar(
        select(ImportJob)
        .where(ImportJob.application_id == application.id)
        .order_by(ImportJob.id.desc())
        .limit(1)
    )
    if last_import is not None:
        _resend_if_lost(last_import)  # as its result page does (the sweep catches the rest)
    # 待补正 is edited like a draft (the same paths), then resubmitted.
    is_draft = application.status in EDITABLE_STATUSES
    return render_template(
        "applications/show.html",
        application=application,
        page=page,
        photo_problems=problems,
        photos_to_check=prereading.items_to_check([item.id for item in page.items]),
        reading_warning=prereading.APPLICANT_WARNING,
        pending_photos=prereading.pending_photos(application),
        pending_notice=prereading.PENDING_NOTICE,
        query=query,
        has_photos=has_photos,
        import_form=ImportForm(),
        confirm_form=ConfirmForm(),
        submit_form=VersionedForm(version=application.version_id),
        last_import=last_import,
        is_draft=is_draft,
        photo_filters=applications.PHOTO_FILTERS,
        submission_problems=(
            applications.submission_problems(application, limit=5) if is_draft else []
        ),
        correction=corrections.open_round(application),
        returned_waiting=corrections.waiting(application),
        withdraw_form=WithdrawForm(version=application.version_id),
        incomplete=applications.incomplete_items(application) if is_draft else [],
    )


@bp.route("/template.xlsx")
@applicant_only
def template() -> Response:
    varieties = db.session.scalars(select(Variety).order_by(Variety.code)).all()
    media = db.session.scalars(select(Medium)).all()
    media = sorted(media, key=lambda m: int(m.code[1:]))
    data = import_template.build_template(varieties, media)
    return send_file(
        io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name="气瓶信息模板.xlsx"
    )


@bp.route("/<int:application_id>/import", methods=["POST"])
@applicant_only
def import_file(application_id: int) -> Response | tuple[str, int]:
    application = _application(application_id)
    form = ImportForm()
    if not form.validate_on_submit():
        flash(f"请选择要导入的文件（{safety.ACCEPTED_TYPES}）。", "danger")
        return redirect(url_for(".show", application_id=application.id))
    upload = form.file.data
    filename = upload.filename or ""
    if not filename.lower().endswith(safety.ACCEPTED_SUFFIXES):
        flash(
            f"只能导入{safety.ACCEPTED_TYPES}格式的文件（“{filename[-60:]}”不是）："
            "请用模板填写，或在Excel/WPS中另存为其中一种格式。",
            "danger",
        )
        return redirect(url_for(".show", application_id=application.id))
    data = _read_upload(upload, safety.MAX_FILE_BYTES)
    try:
        job = import_job.start_import(application, data, filename=filename, actor=current_user)
    except ImportRejected as exc:
        flash(f"导入失败：{exc}", "danger")
        return redirect(url_for(".show", application_id=application.id))
    return redirect(url_for(".import_result", application_id=application.id, job_id=job.id))


def _import_job(application: Application, job_id: int) -> ImportJob:
    job = access.get_or_404(ImportJob, job_id)
    if job.application_id != application.id:
        abort(404)
    return job


def _resend_if_lost(job: ImportJob) -> None:
    try:
        import_job.ensure_enqueued(job)
    except RedisError:  # Redis still down: the page shows "queued" and polling retries
        current_app.logger.warning("import job %s not re-sent: Redis unavailable", job.id)


@bp.route("/<int:application_id>/imports/<int:job_id>")
@applicant_only
def import_result(application_id: int, job_id: int) -> str:
    application = _application(application_id)
    job = _import_job(application, job_id)
    _resend_if_lost(job)
    done = job.status is ImportStatus.DONE and job.failed_count
    return render_template(
        "applications/import_result.html",
        application=application,
        job=job,
        refused=refused_rows.first(job.id) if done else [],
        shown_rows=refused_rows.SHOWN_ROWS,
        progress=import_job.read_progress(job),
        running=job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING),
        can_retry=import_job.can_retry(job),
        retry_form=BaseForm(),
    )


@bp.route("/<int:application_id>/imports/<int:job_id>/retry", methods=["POST"])
@applicant_only
def retry_import(application_id: int, job_id: int) -> Response:
    application = _application(application_id)
    job = _import_job(application, job_id)
    form = BaseForm()
    if not form.validate_on_submit():
        flash("页面已过期，请刷新后再点击“重试”。", "danger")
    else:
        try:
            import_job.retry_import(job, current_user)
        except ImportRejected as exc:
            flash(f"不能重试：{exc}", "danger")
        else:
            flash("已重新排队导入同一文件。", "success")
    return redirect(url_for(".import_result", application_id=application.id, job_id=job.id))


@bp.route("/<int:application_id>/imports/<int:job_id>/status.json")
@applicant_only
def import_status(application_id: int, job_id: int) -> Response:
    application = _application(application_id)
    job = _import_job(application, job_id)
    _resend_if_lost(job)
    return jsonify(import_job.read_progress(job))


@bp.route("/<int:application_id>/imports/<int:job_id>/errors.xlsx")
@applicant_only
def import_errors(application_id: int, job_id: int) -> Response:
    application = _application(application_id)
    job = _import_job(application, job_id)
    if not job.failed_count:
        abort(404, description="本次导入没有失败的数据。")
    file = refused_rows.error_file(job.id)  # a temporary file, gone once closed
    response = Response(_sent_and_closed(file), mimetype=XLSX)
    response.content_length = os.fstat(file.fileno()).st_size
    name = f"错误数据-{application.number}-{job.id}.xlsx"
    # Header values are latin-1 on the wire: the Chinese name goes percent-encoded (RFC 6266).
    response.headers["Content-Disposition"] = (
        f"attachment; filename=errors-{job.id}.xlsx; filename*=UTF-8''{quote(name)}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _sent_and_closed(file: IO[bytes]) -> Iterator[bytes]:
    """The file in pieces, closed when sent (or when the client went away)."""
    try:
        while chunk := file.read(256 * 1024):
            yield chunk
    finally:
        file.close()


@bp.route("/<int:application_id>/items/<int:item_id>/edit", methods=["GET", "POST"])
@applicant_only
def edit_item(application_id: int, item_id: int) -> Response | tuple[str, int] | str:
    application = _application(application_id)
    item = _item(application, item_id)
    form = ItemForm()
    if request.method == "GET":
        for key, value in applications.item_form_values(item).items():
            getattr(form, key).data = value
    reasons: list[str] = []
    if form.validate_on_submit():
        values = {key: getattr(form, key).data or "" for key in applications.ITEM_FIELDS}
        try:
            reasons = applications.update_item(item, values, current_user)
        except applications.ApplicationError as exc:
            reasons = [str(exc)]
        if not reasons:
            flash(f"气瓶{item.product_no}已保存。", "success")
            return redirect(url_for(".show", application_id=application.id))
    status = 400 if request.method == "POST" else 200
    return (
        render_template(
            "applications/item_form.html",
            application=application,
            item=item,
            form=form,
            reasons=reasons,
        ),
        status,
    )


@bp.route("/<int:application_id>/items/<int:item_id>/delete", methods=["POST"])
@applicant_only
def delete_item(application_id: int, item_id: int) -> Response:
    application = _application(application_id)
    item = _item(application, item_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    back = url_for(".show", application_id=application.id)
    try:
        applications.delete_item(item, current_user)
    except applications.ApplicationError as exc:
        return refuse(exc, back)
    flash(f"已删除气瓶{item.product_no}。", "success")
    return redirect(back)


@bp.route("/<int:application_id>/items/<int:item_id>/photos", methods=["GET", "POST"])
@applicant_only
def item_photos(application_id: int, item_id: int) -> Response | tuple[str, int]:
    application = _application(application_id)
    item = _item(application, item_id)
    form = PhotoForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            upload = form.file.data
            try:
                photos.add_photo(
                    item,
                    AttachmentKind(form.kind.data),
                    _read_upload(upload, photos.MAX_BYTES),
                    filename=upload.filename or "",
                    actor=current_user,
                )
            except (ImageRejected, photos.PhotoError) as exc:
                flash(f"上传失败：{exc}", "danger")
                status = 400
            else:
                flash("照片已上传。", "success")
                return redirect(request.path)
        else:
            flash("请选择照片类型和照片文件。", "danger")
            status = 400
    attachments = db.session.scalars(
        select(Attachment).where(Attachment.item_id == item.id).order_by(Attachment.id)
    ).all()
    kinds = applications.photo_kinds_by_item([item.id]).get(item.id, {})
    previous_id, next_id = applications.neighbour_items(item)
    return (
        render_template(
            "applications/item_photos.html",
            application=application,
            item=item,
            attachments=attachments,
            form=form,
            replace_form=ReplacePhotoForm(),
            confirm_form=ConfirmForm(),
            problem=applications.photo_problem(kinds),
            previous_id=previous_id,
            next_id=next_id,
            is_draft=application.status in EDITABLE_STATUSES,
            readings=prereading.readings_for([a.id for a in attachments]),
            reading_warning=prereading.APPLICANT_WARNING,
            reading_pending=application.status in prereading.READ_STATUSES,
            pending_notice=prereading.PENDING_NOTICE,
        ),
        status,
    )


@bp.route("/<int:application_id>/photos/<int:attachment_id>/replace", methods=["POST"])
@applicant_only
def replace_photo(application_id: int, attachment_id: int) -> Response:
    application = _application(application_id)
    attachment = _attachment(application, attachment_id)
    form = ReplacePhotoForm()
    back = url_for(".item_photos", application_id=application.id, item_id=attachment.item_id)
    if not form.validate_on_submit():
        flash("请选择新照片。", "danger")
        return redirect(back)
    upload = form.file.data
    try:
        photos.replace_photo(
            attachment,
            _read_upload(upload, photos.MAX_BYTES),
            filename=upload.filename or "",
            actor=current_user,
        )
    except (ImageRejected, photos.PhotoError) as exc:
        return refuse(exc, back, prefix="替换失败：")
    flash("照片已替换。", "success")
    return redirect(back)


@bp.route("/<int:application_id>/photos/<int:attachment_id>/delete", methods=["POST"])
@applicant_only
def delete_photo(application_id: int, attachment_id: int) -> Response:
    application = _application(application_id)
    attachment = _attachment(application, attachment_id)
    back = url_for(".item_photos", application_id=application.id, item_id=attachment.item_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        photos.delete_photo(attachment, current_user)
    except photos.PhotoError as exc:
        return refuse(exc, back)
    flash("照片已删除。", "success")
    return redirect(back)


def _wants_json() -> bool:
    """photo-upload.js sends its uploads itself (for the progress bar) and reads JSON back."""
    return request.headers.get("Accept") == "application/json"


def _result_json(result: photos.FileResult) -> dict:
    return {
        "name": result.name,
        "ok": result.ok,
        "message": result.message,
        "product_no": result.product_no,
    }


@bp.route("/<int:application_id>/photos/bulk", methods=["GET", "POST"])
@applicant_only
def bulk_photos(application_id: int) -> tuple[str, int] | tuple[Response, int]:
    application = _application(application_id)
    form = BulkPhotoForm()
    results: list[photos.FileResult] | None = None
    status = 200
    if request.method == "POST":
        error = ""
        if not form.validate_on_submit():
            error = "请选择.zip压缩包。"
            status = 400
        else:
            try:
                results = photos.bulk_upload(
                    application,
                    _read_upload(form.file.data, photos.MAX_ZIP_BYTES),
                    current_user,
                )
            except photos.PhotoError as exc:
                error = f"上传失败：{exc}"
                status = 400
        if _wants_json():
            return jsonify(error=error, results=[_result_json(r) for r in results or []]), status
        if error:
            flash(error, "danger")
    return (
        render_template(
            "applications/bulk_photos.html",
            application=application,
            form=form,
            file_form=NamedPhotoForm(),
            results=results,
            is_draft=application.status in EDITABLE_STATUSES,
        ),
        status,
    )


@bp.route("/<int:application_id>/photos/file", methods=["POST"])
@applicant_only
def photo_file(application_id: int) -> tuple[Response, int]:
    """One photo of a multi-file (or drag-and-drop) upload, placed by its name."""
    application = _application(application_id)
    form = NamedPhotoForm()
    if not form.validate_on_submit():
        return jsonify(error="请选择照片（页面已过期时请刷新后重试）。"), 400
    upload = form.file.data
    try:
        result = photos.upload_named_photo(
            application,
            upload.filename or "",
            _read_upload(upload, photos.MAX_BYTES),
            current_user,
        )
    except photos.PhotoError as exc:
        return jsonify(error=str(exc)), 409
    return jsonify(result=_result_json(result)), 200


@bp.route("/<int:application_id>/submit", methods=["POST"])
@applicant_only
def submit(application_id: int) -> Response | tuple[str, int]:
    application = _application(application_id)
    form = VersionedForm()
    if not form.validate_on_submit():
        abort(400)
    resubmission = application.status is ApplicationStatus.RETURNED
    try:
        applications.submit_application(
            application,
            current_user,
            current_app.config["ACCEPT_LIMIT_WORKDAYS"],
            form.version.data,
        )
    except DomainError as exc:
        return refuse(exc, url_for(".show", application_id=application.id))
    if resubmission:
        flash(f"申请{application.number}已补正并重新提交，受理期限继续计算。", "success")
    else:
        flash(f"申请{application.number}已提交，等待区县局受理。", "success")
    return redirect(url_for(".progress", application_id=application.id))


@bp.route("/<int:application_id>/withdraw", methods=["POST"])
@applicant_only
def withdraw(application_id: int) -> Response:
    """撤回申请 while 待补正 (final; the cylinders are freed)."""
    application = _application(application_id)
    form = WithdrawForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        workflow.withdraw(application, current_user, form.version.data, form.reason.data or "")
    except DomainError as exc:
        if application.withdrawn_at is not None:  # a double click: done once already
            flash(f"申请{application.number}已撤回（重复提交，未再次办理）。", "info")
            return redirect(url_for(".progress", application_id=application.id))
        return refuse(exc, url_for(".progress", application_id=application.id))
    flash(
        f"申请{application.number}已撤回，终止办理；其中的气瓶已释放，可以在新申请中重新申请。",
        "success",
    )
    return redirect(url_for(".progress", application_id=application.id))


@bp.route("/<int:application_id>/copy", methods=["POST"])
@applicant_only
def copy(application_id: int) -> Response:
    application = _application(application_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        new_application, notes = applications.copy_voided_application(application, current_user)
    except applications.ApplicationError as exc:
        return refuse(exc, url_for(".progress", application_id=application.id))
    for note in notes:
        flash(note, "warning")
    flash(
        f"已复制为新申请{new_application.number}（{new_application.item_count}只气瓶），"
        "请检查后重新提交。",
        "success",
    )
    return redirect(url_for(".show", application_id=new_application.id))


@bp.route("/<int:application_id>/progress")
@applicant_only
def progress(application_id: int) -> str:
    application = _application(application_id)
    events = history.timeline(application)
    excluded = db.session.scalars(
        select(ApplicationItem)
        .where(
            ApplicationItem.application_id == application.id,
            (ApplicationItem.excluded.is_(True))
            | (ApplicationItem.audit_verdict == AuditVerdict.WRONG),
        )
        .order_by(ApplicationItem.row_no)
    ).all()
    if application.status is ApplicationStatus.RETURNED:
        excluded = []  # not decided yet: the 补正告知书 lists what to correct
    certificate = db.session.scalar(
        select(Certificate).where(Certificate.application_id == application.id)
    )
    return render_template(
        "applications/progress.html",
        application=application,
        steps=_steps(application, certificate),
        events=events,
        excluded=excluded,
        certificate=certificate,
        correction_rounds=corrections.rounds(application),
        returned_waiting=corrections.waiting(application),
        withdraw_form=WithdrawForm(version=application.version_id),
        licensing_documents=documents.for_application(application),
        confirm_form=ConfirmForm(),
    )


def _steps(application: Application, certificate: Certificate | None = None) -> list[dict]:
    """The workflow steps with time, outcome and who acted, from the application's columns."""

    def name(user_id: int | None) -> str:
        user = db.session.get(User, user_id) if user_id else None
        return user.display_name if user else ""

    a = application
    steps: list[tuple[str, datetime | None, str, int | None]] = [
        ("创建申请", a.created_at, "已创建", a.created_by_id)
    ]
    for step, at in workflow.completed_steps(a):
        if step.optional and at is None and a.status is not step.status:
            continue  # 补正: only when the application was returned
        if step.done_by:
            by = getattr(a, step.done_by)
        else:  # 证书生成: who issued is on the certificate
            by = certificate.issued_by_id if certificate else None
        steps.append((step.label, at, step.outcome, by))
    result: list[dict[str, Any]] = [
        {"name": step, "at": at, "outcome": outcome if at else "", "by": name(by) if at else ""}
        for step, at, outcome, by in steps
    ]
    if a.status is ApplicationStatus.VOIDED:
        result.append(
            {
                "name": "撤回申请" if a.withdrawn_at else "驳回（退件）",
                "at": a.voided_at,
                "outcome": "已撤回" if a.withdrawn_at else "已作废",
                "by": name(a.voided_by_id),
                "voided": True,
            }
        )
    return result
