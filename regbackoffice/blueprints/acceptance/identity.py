"""确认单位信息变更: the typed 使用单位 / 统一社会信用代码 differ from the registered unit."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ... import unit_identity, workflow
from ...access import get_or_404, roles_required
from ...models import Application, Role
from ..form_helpers import VersionedForm, confirm_field, reason_field
from . import bp


class IdentityConfirmForm(VersionedForm):
    reason = reason_field("确认理由")
    confirm = confirm_field("我已核验：证书上使用申请填写的单位名称和统一社会信用代码")


@bp.context_processor
def _identity_helpers() -> dict:
    # The detail page shows the differences without its view computing them.
    return {
        "unit_identity_differences": unit_identity.differences,
        "unit_identity_confirmed": unit_identity.is_confirmed,
        "identity_confirm_form": lambda application: IdentityConfirmForm(
            formdata=None, version=application.version_id
        ),
    }


@bp.route("/<int:application_id>/identity", methods=["POST"])
@roles_required(Role.ACCEPTOR)
def confirm_identity(application_id: int) -> Response:
    application = get_or_404(Application, application_id)
    form = IdentityConfirmForm()
    if not form.validate_on_submit():
        if not form.version.data:
            abort(400)
        flash("；".join(e for errors in form.errors.values() for e in errors), "danger")
        return redirect(url_for("acceptance.detail", application_id=application.id))
    try:
        unit_identity.confirm_change(
            application, current_user, form.reason.data or "", form.version.data
        )
    except workflow.StaleApplication as exc:
        abort(409, description=exc.message)
    except workflow.WorkflowError as exc:
        flash(exc.message, "danger")
    else:
        flash("已确认：证书将使用申请填写的单位名称和统一社会信用代码。", "success")
    return redirect(url_for("acceptance.detail", application_id=application.id))
