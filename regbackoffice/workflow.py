"""Registration workflow (DESIGN 4): the table of steps and one named function per transition.

``STEPS`` answers "who may act on an application in state X, and by when?": the inbox,
the bureau's next action, who voids where, the overdue rule and the progress page are all
derived from it. Each transition checks the current state and the version the user saw
(optimistic locking), changes state, time and actor, and writes the audit row. They only
flush; the request commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, false, func, or_, select, update

from . import audit, corrections, documents
from .clock import china_date, china_today
from .domain_errors import DomainError
from .extensions import db
from .models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    AuditVerdict,
    Certificate,
    CorrectionRound,
    DocumentKind,
    Role,
    User,
    utcnow,
)
from .workdays import add_workdays, workdays_between, workdays_left


@dataclass(frozen=True)
class Step:
    """One step of the registration: who acts in which state, and the time limit."""

    key: str
    label: str  # the seed's words
    status: ApplicationStatus  # the state in which the step is open
    role: Role  # who acts
    deadline_field: str | None  # Application column with the due date (working days)
    done_at: str  # Application column stamped when the step is done
    done_by: str | None  # Application column with who did it
    outcome: str  # shown on the progress page once done
    task: bool = True  # a 待办事项 task of its own (审核附件 is part of 受理)
    voids: bool = False  # the step's role may 驳回（退件） at this step
    withdraws: bool = False  # the applicant may 撤回申请 at this step (``withdraw``)
    optional: bool = False  # shown on the progress page only once it happened (补正)

    @property
    def prompt(self) -> str:
        return f"使用登记的{self.label}任务"


_S = ApplicationStatus
# The deadlines: accept_due_on = ACCEPT_LIMIT_WORKDAYS working days after submission (set by
# ``submit``); decision_due_on = DECISION_LIMIT_WORKDAYS after 受理 (set by ``accept``), and
# it covers 审核 and 审批 both. certified and voided are final: nobody acts on them.
# 补正: an application returned for correction (``request_correction``) waits on the
# applicant, with no deadline of the bureau's running (the paused clock), until ``resubmit``
# or until the applicant withdraws it (``withdraw``: 撤回申请, final like 驳回).
STEPS: tuple[Step, ...] = (
    Step("submit", "提交申请", _S.DRAFT, Role.APPLICANT, None,
         "submitted_at", "created_by_id", "已提交"),
    Step("correct", "补正", _S.RETURNED, Role.APPLICANT, None,
         "resubmitted_at", "created_by_id", "已补正并重新提交", optional=True, withdraws=True),
    Step("audit", "审核附件", _S.SUBMITTED, Role.ACCEPTOR, "accept_due_on",
         "audit_completed_at", "audit_completed_by_id", "已完成", task=False),
    Step("accept", "受理", _S.SUBMITTED, Role.ACCEPTOR, "accept_due_on",
         "accepted_at", "accepted_by_id", "已受理", voids=True),
    Step("review", "审核", _S.ACCEPTED, Role.REVIEWER, "decision_due_on",
         "reviewed_at", "reviewed_by_id", "已通过", voids=True),
    Step("approve", "审批", _S.REVIEWED, Role.APPROVER, "decision_due_on",
         "approved_at", "approved_by_id", "已批准", voids=True),
    Step("certify", "证书生成", _S.APPROVED, Role.ACCEPTOR, None,
         "certified_at", None, "已发证"),
)  # fmt: skip

TASKS: tuple[Step, ...] = tuple(s for s in STEPS if s.task)
# Where a clerk may 退回补正: at 受理 always, at 审核 when configured (CORRECTION_AT_REVIEW).
CORRECTION_STEPS = {Role.ACCEPTOR: _S.SUBMITTED, Role.REVIEWER: _S.ACCEPTED}
# Who voids at which step: 驳回（退件） is each step's negative decision.
VOID_STEP_BY_ROLE = {s.role: s.status for s in STEPS if s.voids}
# Where the applicant may 撤回申请 (待补正 only: a submitted application is the bureau's).
WITHDRAW_STATUSES = tuple(s.status for s in STEPS if s.withdraws)


def tasks_for(role: Role) -> list[Step]:
    """The 待办事项 tasks of a role, in workflow order."""
    return [s for s in TASKS if s.role is role]


def step_for(role: Role, status: ApplicationStatus) -> Step | None:
    """The task ``role`` can do on an application in ``status``, if any."""
    return next((s for s in TASKS if s.role is role and s.status is status), None)


def open_step(status: ApplicationStatus) -> Step | None:
    """The task waiting on an application in ``status`` (None once final)."""
    return next((s for s in TASKS if s.status is status), None)


def overdue_clause(today: date, deadline_field: str | None = None) -> ColumnElement[bool]:
    """Applications past their time limit as of ``today`` (optionally one deadline only)."""
    terms = [
        and_(Application.status == s.status, getattr(Application, s.deadline_field) < today)
        for s in TASKS
        if s.deadline_field and deadline_field in (None, s.deadline_field)
    ]
    return or_(*terms) if terms else false()


def is_overdue(application: Application, today: date) -> bool:
    """The rule of ``overdue_clause`` for one loaded application."""
    step = open_step(application.status)
    due = getattr(application, step.deadline_field) if step and step.deadline_field else None
    return bool(due and due < today)


def done_by(application: Application, key: str, user: User) -> bool:
    """Whether ``user`` already did step ``key`` (a double submission, not a conflict)."""
    step = next(s for s in STEPS if s.key == key)
    return (
        step.done_by is not None
        and getattr(application, step.done_at) is not None
        and getattr(application, step.done_by) == user.id
    )


def completed_steps(application: Application) -> Iterable[tuple[Step, datetime | None]]:
    """Every step with the time it was done (None while not done)."""
    return ((s, getattr(application, s.done_at)) for s in STEPS)


class WorkflowError(DomainError):
    """A transition that cannot happen now; ``message`` is shown to the user (Chinese)."""


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


def verdict_counts(application: Application) -> dict[AuditVerdict, int]:
    """How many of the application's cylinders carry each audit verdict (one query)."""
    return dict(
        db.session.execute(
            select(ApplicationItem.audit_verdict, func.count())
            .where(ApplicationItem.application_id == application.id)
            .group_by(ApplicationItem.audit_verdict)
        )
        .tuples()
        .all()
    )


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


def submit(
    application: Application, user: User, expected_version: int | None, accept_limit: int
) -> None:
    """提交申请: draft → submitted (待受理); starts the 受理 clock.

    The caller has checked that nothing is missing (``applications.submission_problems``).
    """
    require_status(application, ApplicationStatus.DRAFT)
    check_version(application, expected_version)
    application.status = ApplicationStatus.SUBMITTED
    application.submitted_at = utcnow()
    start_acceptance_clock(application, accept_limit)
    db.session.flush()
    _record("application_submitted", application, actor=user, items=application.item_count)


def complete_audit(
    application: Application, user: User, expected_version: int | None, **detail: object
) -> None:
    """审核附件完成: the clerk closes the attachment audit; 受理 becomes possible.

    Idempotent: completing an already completed audit changes nothing. The caller has
    checked that every cylinder has a verdict.
    """
    require_status(application, ApplicationStatus.SUBMITTED)
    check_version(application, expected_version)
    if application.audit_completed_at is not None:
        return
    application.audit_completed_at = utcnow()
    application.audit_completed_by_id = user.id
    db.session.flush()
    _record("attachment_audit_completed", application, actor=user, **detail)


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
    counts = verdict_counts(application)
    if counts.get(AuditVerdict.PENDING):
        raise WorkflowError("仍有气瓶未审核，请在“审核附件”中完成审核后再受理。")
    if not counts.get(AuditVerdict.CORRECT):
        raise WorkflowError(
            "全部气瓶均被标记为“错误”，不能受理。如需作废该批次申请，请使用“驳回（退件）”。"
        )
    # An UPDATE's result is a CursorResult at run time; Session.execute is typed as Result.
    excluded = cast(
        CursorResult[Any],
        db.session.execute(
            update(ApplicationItem)
            .where(
                ApplicationItem.application_id == application.id,
                ApplicationItem.audit_verdict == AuditVerdict.WRONG,
            )
            .values(excluded=True, live_identity_key=None, live_tag_key=None)
        ),
    ).rowcount
    now = utcnow()
    application.status = ApplicationStatus.ACCEPTED
    application.accepted_at = now
    application.accepted_by_id = user.id
    application.decision_due_on = add_workdays(china_date(now), decision_limit)
    db.session.flush()
    notice = documents.issue(
        application,
        DocumentKind.ACCEPTANCE_NOTICE,
        user,
        items=documents.excluded_items(application),
    )
    _record(
        "application_accepted",
        application,
        registered=counts.get(AuditVerdict.CORRECT, 0),
        excluded=excluded,
        document_no=notice.number,
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
    _release_claims(application)
    application.status = ApplicationStatus.VOIDED
    application.voided_at = utcnow()
    application.voided_by_id = user.id
    application.void_reason = reason
    db.session.flush()
    decision = documents.issue(application, documents.rejection_kind(previous), user, reason=reason)
    _record(
        "application_voided",
        application,
        from_status=previous.value,
        reason=reason,
        document_no=decision.number,
    )


def certify(
    application: Application,
    user: User,
    expected_version: int | None,
    issue: Callable[[], Certificate],
) -> Certificate:
    """证书生成: approved → certified.

    ``issue`` does the work once the checks pass: it assigns the number and writes the
    registered cylinders into the archive (``certificates.generate``).
    """
    require_status(application, ApplicationStatus.APPROVED)
    check_version(application, expected_version)
    certificate = issue()
    application.status = ApplicationStatus.CERTIFIED
    application.certified_at = utcnow()
    application.certificate_no = certificate.number
    db.session.flush()
    _record(
        "certificate_generated",
        application,
        certificate_no=certificate.number,
        cylinders=certificate.cylinder_count,
    )
    return certificate


def correction_allowed(application: Application, user: User, at_review: bool) -> bool:
    """Whether ``user`` may 退回补正 ``application`` now (before the rounds limit)."""
    status = CORRECTION_STEPS.get(user.role)
    if status is None or (user.role is Role.REVIEWER and not at_review):
        return False
    return application.status is status


def rounds_refusal(application: Application, max_rounds: int) -> str | None:
    """Why no further 补正 round is possible (None while one is)."""
    done = corrections.round_count(application)
    if done < max_rounds:
        return None
    return (
        f"该申请已退回补正{done}次，已达上限（{max_rounds}次）：补正应一次性告知，"
        "不能再次退回补正。请审核后受理（错误气瓶将被排除），或驳回（退件）。"
    )


def request_correction(
    application: Application,
    user: User,
    items: list[str],
    expected_version: int | None,
    *,
    max_rounds: int,
    at_review: bool = False,
    sod: bool = True,
) -> CorrectionRound:
    """退回补正: back to the applicant as 待补正 with every item at once (一次性告知).

    Keeps every cylinder, photo and verdict; issues the 补正告知书; stops the clock, keeping
    the working days the open step had left (``remaining_workdays``) for ``resubmit``.
    """
    status = CORRECTION_STEPS.get(user.role)
    if status is None or (user.role is Role.REVIEWER and not at_review):
        raise WorkflowError("您的角色在本环节不能退回补正。")
    require_status(application, status)
    check_version(application, expected_version)
    if status is not ApplicationStatus.SUBMITTED:
        check_separation_of_duties(application, user, sod)
    refusal = rounds_refusal(application, max_rounds)
    if refusal:
        raise WorkflowError(refusal)
    done = corrections.round_count(application)
    items = [item.strip() for item in items if item and item.strip()]
    if not items:
        raise WorkflowError("请填写需要补正的内容（每行一项），或勾选审核中标记为错误的气瓶。")
    if len(items) > corrections.MAX_ITEMS:
        raise WorkflowError(f"补正内容共{len(items)}项，最多{corrections.MAX_ITEMS}项。")
    too_long = next((i for i in items if len(i) > corrections.MAX_ITEM_LENGTH), None)
    if too_long is not None:
        raise WorkflowError(
            f"补正内容“{too_long[:30]}…”超过{corrections.MAX_ITEM_LENGTH}字，请分为几项。"
        )
    due_field = "accept_due_on" if status is ApplicationStatus.SUBMITTED else "decision_due_on"
    due = getattr(application, due_field)
    remaining = workdays_left(due, china_today()) if due else 0
    db.session.execute(
        update(ApplicationItem)
        .where(ApplicationItem.application_id == application.id)
        .values(correction_change=None)
    )
    notice = documents.issue(application, DocumentKind.CORRECTION_NOTICE, user, items=items)
    correction = CorrectionRound(
        application_id=application.id,
        round_no=done + 1,
        from_status=status,
        document_id=notice.id,
        requested_at=utcnow(),
        requested_by_id=user.id,
        items=items,
        remaining_workdays=remaining,
        unit_info={name: getattr(application, name) for name in _UNIT_COLUMNS},
        removed=[],
    )
    db.session.add(correction)
    application.status = ApplicationStatus.RETURNED
    db.session.flush()
    _record(
        "application_returned",
        application,
        round=correction.round_no,
        correction_items=len(items),
        remaining_workdays=remaining,
        document_no=notice.number,
    )
    return correction


# applications.UNIT_FIELDS, named here because applications imports this module.
_UNIT_COLUMNS = (
    "unit_name",
    "safety_department",
    "contact_name",
    "contact_phone",
    "credit_code",
    "address",
)


def resubmit(application: Application, user: User, expected_version: int | None) -> None:
    """补正后重新提交: 待补正 → the state it was returned from; the clock runs again.

    The open step's deadline is the resubmission date plus the working days it had left
    (at least today: an overdue step stays due at once). The working days spent 待补正
    are kept on the round and the application. Cylinders the applicant changed are
    未审核 again (``corrections.note_change``), so the attachment audit is reopened.
    The caller has checked that nothing is missing (``applications.submission_problems``).
    """
    require_status(application, ApplicationStatus.RETURNED)
    check_version(application, expected_version)
    correction = corrections.open_round(application)
    if correction is None:  # cannot happen: RETURNED is only set with a round
        raise WorkflowError("未找到该申请的补正告知记录，请联系管理员。")
    now = utcnow()
    today = china_date(now)
    paused = workdays_between(china_date(correction.requested_at), today)
    seconds = int((now - correction.requested_at).total_seconds())
    due = add_workdays(today, max(correction.remaining_workdays, 0))
    if correction.from_status is ApplicationStatus.SUBMITTED:
        application.accept_due_on = due
        application.accept_paused_seconds += seconds
        if verdict_counts(application).get(AuditVerdict.PENDING):
            application.audit_completed_at = None
            application.audit_completed_by_id = None
    else:
        application.decision_due_on = due
        application.decision_paused_seconds += seconds
    application.paused_workdays += paused
    application.status = correction.from_status
    application.resubmitted_at = now
    correction.resubmitted_at = now
    correction.paused_workdays = paused
    db.session.flush()
    summary = corrections.change_summary(application)
    _record(
        "application_resubmitted",
        application,
        actor=user,
        round=correction.round_no,
        paused_workdays=paused,
        changed_items=len(summary.changed) if summary else 0,
        added_items=len(summary.added) if summary else 0,
        removed_items=len(correction.removed),
    )


def _release_claims(application: Application) -> None:
    """Free every cylinder and tag the application claims (a new application may take
    them), as a final 驳回 or 撤回 does."""
    db.session.execute(
        update(ApplicationItem)
        .where(ApplicationItem.application_id == application.id)
        .values(live_identity_key=None, live_tag_key=None)
    )


MAX_WITHDRAW_REASON = 200


def withdraw(
    application: Application, user: User, expected_version: int | None, reason: str = ""
) -> None:
    """撤回申请: the applicant ends a 待补正 application instead of correcting it.

    Final, like 驳回（退件）: the application is voided (``withdrawn_at`` says by whom:
    the applicant, not the bureau), every cylinder and tag claim is freed, and the open
    补正 round stays unanswered. No document is issued (the bureau decided nothing); the
    applicant may copy it into a new application later (``copy_voided_application``).
    """
    require_status(application, *WITHDRAW_STATUSES)
    check_version(application, expected_version)
    if user.role is not Role.APPLICANT:
        raise WorkflowError("只有申请单位可以撤回申请。")
    reason = (reason or "").strip()
    if len(reason) > MAX_WITHDRAW_REASON:
        raise WorkflowError(f"撤回说明不能超过{MAX_WITHDRAW_REASON}字（现为{len(reason)}字）。")
    correction = corrections.open_round(application)
    if correction is None:  # cannot happen: RETURNED is only set with a round
        raise WorkflowError("未找到该申请的补正告知记录，请联系管理员。")
    _release_claims(application)
    now = utcnow()
    application.status = ApplicationStatus.VOIDED
    application.voided_at = application.withdrawn_at = now
    application.voided_by_id = user.id
    application.void_reason = "申请人撤回申请" + (f"：{reason}" if reason else "")
    db.session.flush()
    _record(
        "application_withdrawn",
        application,
        actor=user,
        round=correction.round_no,
        returned_workdays=workdays_between(china_date(correction.requested_at), china_date(now)),
        reason=reason or "未填写",
    )
