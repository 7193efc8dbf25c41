"""待办事项: the bureau's tasks per role, counted and listed by deadline.

Registration tasks come from ``workflow.STEPS``; change requests after registration add one
task kind per kind and step (``change_workflow.tasks_for``: 停用申请的受理任务, …).
"""

from __future__ import annotations

from datetime import date

from flask import current_app
from sqlalchemy import Select, func, or_, select

from .access import visible
from .change_workflow import ChangeTask
from .change_workflow import tasks_for as change_tasks_for
from .clock import china_date
from .extensions import db
from .models import Application, ApplicationStatus, ChangeRequest, CorrectionRound, Role, User
from .search import contains
from .workdays import add_workdays, workdays_left
from .workflow import Step
from .workflow import tasks_for as tasks_for_role

Task = Step | ChangeTask
NOTICE_WARNING_WORKDAYS = 2  # warn this many working days before deemed acceptance


def tasks_for(user: User) -> list[Task]:
    """The user's 待办事项 tasks: registration first, then the change requests."""
    steps = int(current_app.config.get("CHANGE_APPROVAL_STEPS", 2))
    return [*tasks_for_role(user.role), *change_tasks_for(user.role, steps)]


def task_counts(user: User) -> dict[str, int]:
    """Open tasks per task key, in two queries (applications, change requests)."""
    tasks = tasks_for(user)
    if not tasks:
        return {}
    steps = [t for t in tasks if isinstance(t, Step)]
    changes = [t for t in tasks if isinstance(t, ChangeTask)]
    counts: dict[str, int] = {}
    if steps:
        rows = (
            db.session.execute(
                visible(Application, user)
                .with_only_columns(Application.status, func.count())
                .where(Application.status.in_([t.status for t in steps]))
                .group_by(Application.status)
            )
            .tuples()
            .all()
        )
        by_status = dict(rows)
        counts.update({t.key: by_status.get(t.status, 0) for t in steps})
    if changes:
        query = visible(ChangeRequest, user)
        if user.role is Role.APPLICANT:  # 接收确认 is the receiving unit's task only
            query = query.where(ChangeRequest.target_unit_id == user.unit_id)
        change_rows = (
            db.session.execute(
                query.with_only_columns(ChangeRequest.kind, ChangeRequest.status, func.count())
                .where(ChangeRequest.status.in_({t.status for t in changes}))
                .group_by(ChangeRequest.kind, ChangeRequest.status)
            )
            .tuples()
            .all()
        )
        by_kind = {(k, s): n for k, s, n in change_rows}
        counts.update({t.key: by_kind.get((t.kind, t.status), 0) for t in changes})
    return counts


def task_query(user: User, task: Step, search: str = "") -> Select[tuple[Application]]:
    """The task's applications in the user's district, soonest deadline first."""
    query = visible(Application, user).where(Application.status == task.status)
    search = search.strip()
    if search:
        query = query.where(
            or_(contains(Application.unit_name, search), contains(Application.number, search))
        )
    order = [Application.submitted_at, Application.id]
    if task.deadline_field:
        order.insert(0, getattr(Application, task.deadline_field).asc().nulls_last())
    return query.order_by(*order)


def change_task_query(
    user: User, task: ChangeTask, search: str = ""
) -> Select[tuple[ChangeRequest]]:
    """The change task's requests in the user's district, soonest deadline first."""
    query = visible(ChangeRequest, user).where(
        ChangeRequest.kind == task.kind, ChangeRequest.status == task.status
    )
    search = search.strip()
    if search:
        query = query.where(
            or_(contains(ChangeRequest.unit_name, search), contains(ChangeRequest.number, search))
        )
    return query.order_by(
        ChangeRequest.due_on.asc().nulls_last(), ChangeRequest.submitted_at, ChangeRequest.id
    )


def due_date(row: Application | ChangeRequest, task: Task) -> date | None:
    return getattr(row, task.deadline_field) if task.deadline_field else None


def days_left(row: Application | ChangeRequest, task: Task, today: date) -> int | None:
    due = due_date(row, task)
    return None if due is None else workdays_left(due, today)


def correction_notice_warnings(
    applications: list[Application], today: date, limit_workdays: int
) -> dict[int, str]:
    """行政许可法 第三十二条: without a 补正 notice within ``limit_workdays`` working days of
    submission the application counts as accepted. Warns, for the 受理 applications on the
    page that never had a notice, from two working days before that date on."""
    waiting = [
        a for a in applications if a.status is ApplicationStatus.SUBMITTED and a.submitted_at
    ]
    if not waiting:
        return {}
    noticed = set(
        db.session.scalars(
            select(CorrectionRound.application_id).where(
                CorrectionRound.application_id.in_([a.id for a in waiting])
            )
        )
    )
    warnings: dict[int, str] = {}
    for application in waiting:
        if application.id in noticed:
            continue
        assert application.submitted_at is not None
        deemed = add_workdays(china_date(application.submitted_at), limit_workdays)
        left = workdays_left(deadline=deemed, today=today)
        if left < 0:
            warnings[application.id] = f"已超过补正告知期限（{deemed}），未告知补正的视为受理"
        elif left <= NOTICE_WARNING_WORKDAYS:
            when = "今日" if left == 0 else f"{left}个工作日后（{deemed}）"
            warnings[application.id] = (
                f"补正告知期限将至：{when}未退回补正即视为受理；如需补正，请尽快一次性告知"
            )
    return warnings
