"""Registration workflow transitions (DESIGN 4). One named function per transition.

Each checks the current state and the version the user saw (optimistic locking), changes
state, time and actor, and writes the audit row. They only flush; the request commits.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from . import audit
from .clock import china_date
from .extensions import db
from .models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    AuditVerdict,
    Role,
    User,
    utcnow,
)
from .workdays import add_workdays


class WorkflowError(Exception):
    """A transition that cannot happen now; ``message`` is shown to the user (Chinese)."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StaleApplication(WorkflowError):
    """The application changed since the user loaded the page (double click, another clerk)."""

    status_code = 409


STALE_MESSAGE = (
    "该申请已被处理或已被他人修改（可能是重复点击），本次操作未执行。请刷新页面查看最新状态。"
)


def check_version(application: Application, expected_version: int | None) -> None:
    if expected_version is None or application.version_id != expected_version:
        raise StaleApplication(STALE_MESSAGE)


def require_status(application: Application, *allowed: ApplicationStatus) -> None:
    if application.status not in allowed:
        names = "、".join(s.label for s in allowed)
        raise StaleApplication(
            f"该申请当前状态为“{application.status.label}”，只有“{names}”状态才能执行此操作"
            "（可能已被处理或是重复点击）。请刷新页面查看最新状态。"
        )


def _record(action: str, application: Application, **detail: object) -> None:
    audit.record(action, object_type="application", object_id=application.id, **detail)


def check_separation_of_duties(application: Application, user: User, enforce: bool) -> None:
    """One person may not do two of 受理 / 审核 / 审批 on the same application."""
    if not enforce:
        return
    done_by = {
        application.accepted_by_id: "受理",
        application.reviewed_by_id: "审核",
        application.approved_by_id: "审批",
    }
    step = done_by.get(user.id)
    if step is not None:
        raise WorkflowError(
            f"您已办理过该申请的“{step}”环节。按岗位分离要求，同一人员不能办理同一申请的两个环节，"
            "请由其他人员办理。"
        )


def start_acceptance_clock(application: Application, config_limit: int) -> None:
    """Fix the 受理 deadline when an application is submitted."""
    assert application.submitted_at is not None
    application.accept_due_on = add_workdays(china_date(application.submitted_at), config_limit)


def accept(
    application: Application, user: User, expected_version: int | None, decision_limit: int
) -> None:
    """受理: after a complete attachment audit with at least one 正确 cylinder.

    Cylinders marked 错误 are excluded (with the clerk's note) and freed, so the unit can
    apply for them again in a new application.
    """
    require_status(application, ApplicationStatus.SUBMITTED)
    check_version(application, expected_version)
    if application.audit_completed_at is None:
        raise WorkflowError("请先在“审核附件”中审核全部气瓶并点击“完成”，再进行受理。")
    counts = dict(
        db.session.execute(
            select(ApplicationItem.audit_verdict, func.count())
            .where(ApplicationItem.application_id == application.id)
            .group_by(ApplicationItem.audit_verdict)
        ).all()
    )
    if counts.get(AuditVerdict.PENDING):
        raise WorkflowError("仍有气瓶未审核，请在“审核附件”中完成审核后再受理。")
    if not counts.get(AuditVerdict.CORRECT):
        raise WorkflowError(
            "全部气瓶均被标记为“错误”，不能受理。如需作废该批次申请，请使用“驳回（退件）”。"
        )
    excluded = db.session.execute(
        update(ApplicationItem)
        .where(
            ApplicationItem.application_id == application.id,
            ApplicationItem.audit_verdict == AuditVerdict.WRONG,
        )
        .values(excluded=True, live_identity_key=None)
    ).rowcount
    now = utcnow()
    application.status = ApplicationStatus.ACCEPTED
    application.accepted_at = now
    application.accepted_by_id = user.id
    application.decision_due_on = add_workdays(china_date(now), decision_limit)
    db.session.flush()
    _record(
        "application_accepted",
        application,
        registered=counts.get(AuditVerdict.CORRECT, 0),
        excluded=excluded,
    )


def review(application: Application, user: User, expected_version: int | None, sod: bool) -> None:
    """审核 passed: the application moves on to 审批."""
    require_status(application, ApplicationStatus.ACCEPTED)
    check_version(application, expected_version)
    check_separation_of_duties(application, user, sod)
    application.status = ApplicationStatus.REVIEWED
    application.reviewed_at = utcnow()
    application.reviewed_by_id = user.id
    db.session.flush()
    _record("application_reviewed", application)


def approve(application: Application, user: User, expected_version: int | None, sod: bool) -> None:
    """审批 passed: the application waits for 证书生成."""
    require_status(application, ApplicationStatus.REVIEWED)
    check_version(application, expected_version)
    check_separation_of_duties(application, user, sod)
    application.status = ApplicationStatus.APPROVED
    application.approved_at = utcnow()
    application.approved_by_id = user.id
    db.session.flush()
    _record("application_approved", application)


VOIDABLE = (ApplicationStatus.SUBMITTED, ApplicationStatus.ACCEPTED, ApplicationStatus.REVIEWED)
# Who voids at which step: 驳回（退件） is each step's negative decision.
VOID_STEP_BY_ROLE = {
    Role.ACCEPTOR: ApplicationStatus.SUBMITTED,
    Role.REVIEWER: ApplicationStatus.ACCEPTED,
    Role.APPROVER: ApplicationStatus.REVIEWED,
}


def void(
    application: Application,
    user: User,
    reason: str,
    expected_version: int | None,
    *,
    sod: bool,
) -> None:
    """驳回（退件）: voids the whole application, finally, and frees all its cylinders.

    Each bureau role voids at its own step (``VOID_STEP_BY_ROLE``).
    """
    step = VOID_STEP_BY_ROLE.get(user.role)
    if step is None:
        raise WorkflowError("您的角色不能驳回（退件）申请。")
    require_status(application, step)
    check_version(application, expected_version)
    if step is not ApplicationStatus.SUBMITTED:
        check_separation_of_duties(application, user, sod)
    reason = (reason or "").strip()
    if not reason:
        raise WorkflowError("请填写驳回（退件）原因。")
    if len(reason) > 500:
        raise WorkflowError("驳回原因不能超过500字。")
    previous = application.status
    db.session.execute(
        update(ApplicationItem)
        .where(ApplicationItem.application_id == application.id)
        .values(live_identity_key=None)
    )
    application.status = ApplicationStatus.VOIDED
    application.voided_at = utcnow()
    application.voided_by_id = user.id
    application.void_reason = reason
    db.session.flush()
    _record("application_voided", application, from_status=previous.value, reason=reason)
