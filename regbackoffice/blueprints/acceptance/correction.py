"""退回补正: the clerk's notice page, and what the application page shows of 补正."""

from __future__ import annotations

from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms import TextAreaField
from wtforms.validators import Length, Optional

from ... import corrections, documents, workflow
from ...access import get_or_404, roles_required
from ...models import Application, Role
from ..form_helpers import VersionedForm, confirm_field
from ..refusal import refuse
from . import bp


class CorrectionForm(VersionedForm):
    # The gathered 错误 cylinders come as ``gathered`` checkboxes (dynamic, one per item).
    extra = TextAreaField(
        "其他需要补正的内容（每行一项）", validators=[Optional(), Length(max=20000)]
    )
    confirm = confirm_field("我已知晓：补正应一次性告知，申请人补正并重新提交后不能再次退回补正")


def correction_context(application: Application) -> dict[str, Any]:
    """What the application page shows of 补正 and the documents (the partial's values)."""
    config = current_app.config
    can = workflow.correction_allowed(application, current_user, config["CORRECTION_AT_REVIEW"])
    return {
        "can_request_correction": can,
        "correction_rounds_left": config["MAX_CORRECTION_ROUNDS"]
        - corrections.round_count(application),
        "correction_rounds": corrections.rounds(application),
        "returned_waiting": corrections.waiting(application),
        "change_summary": corrections.change_summary(application),
        "licensing_documents": documents.for_application(application),
    }


@bp.route("/<int:application_id>/correction", methods=["GET", "POST"])
@roles_required(Role.ACCEPTOR, Role.REVIEWER)
def request_correction(application_id: int) -> Response | str:
    """退回补正 behind a page listing every item: the 错误 cylinders gathered, plus text."""
    application = get_or_404(Application, application_id)
    form = (
        CorrectionForm(version=application.version_id)
        if request.method == "GET"
        else CorrectionForm()
    )
    gathered = corrections.gathered_items(application)
    back = url_for("acceptance.detail", application_id=application.id)
    if form.validate_on_submit():
        chosen = {int(v) for v in request.form.getlist("gathered") if v.isdigit()}
        items = [text for index, text in enumerate(gathered) if index in chosen]
        items += corrections.split_items(form.extra.data or "")
        try:
            correction = workflow.request_correction(
                application,
                current_user,
                items,
                form.version.data,
                max_rounds=current_app.config["MAX_CORRECTION_ROUNDS"],
                at_review=current_app.config["CORRECTION_AT_REVIEW"],
                sod=current_app.config["SEPARATION_OF_DUTIES"],
            )
        except workflow.WorkflowError as exc:
            current = corrections.open_round(application)
            if current is not None and current.requested_by_id == current_user.id:
                flash(f"申请 {application.number} 已退回补正（重复提交，未再次办理）。", "info")
                return redirect(back)
            return refuse(exc, back)
        flash(
            f"申请 {application.number} 已退回补正（{len(correction.items)}项），"
            "补正告知书已生成，期限暂停计算。",
            "warning",
        )
        return redirect(back)
    if request.method == "POST" and not form.version.data:
        abort(400)
    if not workflow.correction_allowed(
        application, current_user, current_app.config["CORRECTION_AT_REVIEW"]
    ):
        abort(409, description=workflow.STALE_MESSAGE)
    refusal = workflow.rounds_refusal(application, current_app.config["MAX_CORRECTION_ROUNDS"])
    if refusal:
        abort(409, description=refusal)
    return render_template(
        "acceptance/correction.html",
        application=application,
        form=form,
        gathered=gathered,
        rounds_done=corrections.round_count(application),
        max_rounds=current_app.config["MAX_CORRECTION_ROUNDS"],
    )
