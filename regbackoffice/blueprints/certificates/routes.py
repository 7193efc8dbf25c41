"""证书生成, state polling, retry, printing (several at once) and download."""

from __future__ import annotations

from urllib.parse import quote

from flask import abort, flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from ... import audit, certificates, documents, workflow
from ...access import get_or_404, roles_required, visible
from ...extensions import db
from ...models import Application, Certificate, LicensingDocument, Role
from ...search import contains
from ..form_helpers import BaseForm, VersionedForm, required_text
from ..refusal import refuse
from . import bp
from .forms import VoidCertificateForm

PER_PAGE = 30


@bp.route("/bureau/applications/<int:application_id>/certificate", methods=["POST"])
@roles_required(Role.ACCEPTOR)
def generate(application_id: int) -> Response:
    application = get_or_404(Application, application_id)
    form = VersionedForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        certificate = certificates.generate(application, current_user, form.version.data)
    except workflow.WorkflowError as exc:
        issued = certificates.certificate_for(application)
        if issued is not None and issued.issued_by_id == current_user.id:
            flash(f"已生成使用登记证 {issued.number}（重复提交，未再次生成）。", "info")
            return redirect(url_for("acceptance.detail", application_id=application.id))
        return refuse(exc, url_for("acceptance.detail", application_id=application.id))
    flash(
        f"已生成使用登记证 {certificate.number}。证书文件的状态见下方，生成后即可打印。", "success"
    )
    return redirect(url_for("acceptance.detail", application_id=application.id))


@bp.route("/certificates/<int:certificate_id>/status")
@login_required
def status(certificate_id: int) -> Response:
    certificate = get_or_404(Certificate, certificate_id)
    return jsonify(
        state=certificate.render_state.value,
        label=certificate.render_state.label,
        error=certificate.render_error,
    )


@bp.route("/certificates/<int:certificate_id>/retry", methods=["POST"])
@roles_required(Role.ACCEPTOR)
def retry(certificate_id: int) -> Response:
    certificate = get_or_404(Certificate, certificate_id)
    if not BaseForm().validate_on_submit():
        abort(400)
    try:
        certificates.retry(certificate, current_user)
    except workflow.WorkflowError as exc:
        abort(409, description=exc.message)
    flash("已重新提交证书生成任务。", "info")
    return redirect(url_for("acceptance.detail", application_id=certificate.application_id))


@bp.route("/certificates/<int:certificate_id>/void", methods=["GET", "POST"])
@roles_required(Role.ACCEPTOR)
def void(certificate_id: int) -> Response | str:
    """注销 behind a confirmation page that says what will happen."""
    certificate = get_or_404(Certificate, certificate_id)
    if certificate.voided_at is not None:
        abort(409, description="该使用登记证已注销。")
    form = VoidCertificateForm()
    if form.validate_on_submit():
        try:
            stopped = certificates.void_certificate(
                certificate, current_user, required_text(form.reason)
            )
        except workflow.WorkflowError as exc:
            abort(409, description=exc.message)
        flash(f"使用登记证 {certificate.number} 已注销，{stopped} 只气瓶已停用。", "warning")
        return redirect(url_for("acceptance.detail", application_id=certificate.application_id))
    return render_template("certificates/void.html", certificate=certificate, form=form)


@bp.route("/certificates")
@roles_required(Role.ACCEPTOR)
def index() -> str:
    query = (
        visible(Certificate)
        .options(joinedload(Certificate.application), joinedload(Certificate.last_printed_by))
        .order_by(Certificate.id.desc())
    )
    q = request.args.get("q", "").strip()
    if q:
        query = query.where(contains(Certificate.number, q))
    page = db.paginate(query, per_page=PER_PAGE, error_out=False)
    return render_template("certificates/index.html", page=page, q=q, form=BaseForm())


def _pdf_response(data: bytes, filename: str, inline: bool) -> Response:
    response = make_response(data)
    response.mimetype = "application/pdf"
    disposition = "inline" if inline else "attachment"
    # Header values are latin-1 on the wire: the Chinese name goes percent-encoded (RFC 6266).
    response.headers["Content-Disposition"] = (
        f"{disposition}; filename=certificate.pdf; filename*=UTF-8''{quote(filename)}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/certificates/print", methods=["POST"])
@roles_required(Role.ACCEPTOR)
def print_pdf() -> Response:
    """打印: one PDF of the chosen certificates, opened inline in a new tab; counts prints."""
    if not BaseForm().validate_on_submit():
        abort(400)
    ids = [int(v) for v in request.form.getlist("certificate") if v.isdigit()][:100]
    if not ids:
        flash("请选择要打印的证书。", "warning")
        return redirect(request.referrer or url_for("certificates.index"))
    chosen = db.session.scalars(visible(Certificate).where(Certificate.id.in_(ids))).all()
    if len(chosen) != len(set(ids)):
        # Another district's (or a missing) certificate: refused like get_or_404, audited.
        hidden = sorted(set(ids) - {c.id for c in chosen})
        audit.record_refusal(
            "access_denied",
            object_type="certificates",
            object_id=",".join(map(str, hidden))[:50],
            path=request.path,
        )
        abort(404)
    ordered = sorted(chosen, key=lambda c: ids.index(c.id))
    try:
        data = certificates.record_print(ordered, current_user)
    except workflow.WorkflowError as exc:
        abort(409, description=exc.message)
    return _pdf_response(data, "print.pdf", inline=True)


@bp.route("/certificates/<int:certificate_id>/download")
@login_required
def download(certificate_id: int) -> Response:
    """Any user in scope (the applicant included) downloads the certificate PDF."""
    certificate = get_or_404(Certificate, certificate_id)
    try:
        data = certificates.pdf_bytes(certificate)
    except workflow.WorkflowError as exc:
        abort(409, description=exc.message)
    return _pdf_response(
        data, f"{certificate.number}.pdf".replace("(", "_").replace(")", ""), False
    )


@bp.route("/documents/<int:document_id>.pdf")
@login_required
def document_pdf(document_id: int) -> Response:
    """A licensing document (受理通知书, 补正告知书, decisions), scoped by its application:
    the clerk prints it (``?print=1``, inline), the applicant downloads it."""
    document = get_or_404(LicensingDocument, document_id)
    return _pdf_response(
        documents.pdf(document),
        f"{document.kind.label}-{document.number}.pdf",
        inline=request.args.get("print") == "1",
    )
