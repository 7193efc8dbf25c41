"""审核 (reviewer) and 审批 (approver): pass the application on. Voiding is shared with
受理 (``acceptance.void``)."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, current_app, flash, redirect, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ... import workflow
from ...access import get_or_404, roles_required
from ...models import Application, Role, User
from ..form_helpers import VersionedForm
from ..refusal import refuse
from . import bp


def _decide(
    application_id: int,
    transition: Callable[[Application, User, int | None, bool], None],
    step: str,
    done: str,
) -> Response:
    application = get_or_404(Application, application_id)
    form = VersionedForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        transition(
            application,
            current_user,
            form.version.data,
            current_app.config["SEPARATION_OF_DUTIES"],
        )
    except workflow.WorkflowError as exc:
        if workflow.done_by(application, step, current_user):
            flash(f"申请 {application.number} {done}（重复提交，未再次办理）", "info")
            return redirect(url_for("inbox.index"))
        return refuse(exc, url_for("acceptance.detail", application_id=application.id))
    flash(f"申请 {application.number} {done}", "success")
    return redirect(url_for("inbox.index"))


@bp.route("/<int:application_id>/review", methods=["POST"])
@roles_required(Role.REVIEWER)
def review(application_id: int) -> Response:
    return _decide(application_id, workflow.review, "review", "审核通过，已转审批。")


@bp.route("/<int:application_id>/approve", methods=["POST"])
@roles_required(Role.APPROVER)
def approve(application_id: int) -> Response:
    return _decide(application_id, workflow.approve, "approve", "审批通过，待受理人员生成证书。")
