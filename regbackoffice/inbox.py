"""待办事项: the bureau's tasks per role (``workflow.STEPS``), counted and listed by deadline."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Select, func, or_, select

from .access import visible
from .clock import china_date
from .extensions import db
from .models import Application, ApplicationStatus, CorrectionRound, User
from .search import contains
from .workdays import add_workdays, workdays_left
from .workflow import Step
from .workflow import tasks_for as tasks_for_role

NOTICE_WARNING_WORKDAYS = 2  # warn this many working days before deemed acceptance


def tasks_for(user: User) -> list[Step]:
    """The user's 待办事项 tasks (``workflow.STEPS``)."""
    return tasks_for_role(user.role)


def task_counts(user: User) -> dict[str, int]:
    """Open tasks per task key, in one query."""
    tasks = tasks_for(user)
    if not tasks:
        return {}
    rows = (
        db.session.execute(
            visible(Application, user)
            .with_only_columns(Application.status, func.count())
            .where(Application.status.in_([t.status for t in tasks]))
            .group_by(Application.status)
        )
        .tuples()
        .all()
    )
    by_status = dict(rows)
    return {task.key: by_status.get(task.status, 0) for task in tasks}


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


def due_date(application: Application, task: Step) -> date | None:
    return getattr(application, task.deadline_field) if task.deadline_field else None


def days_left(application: Application, task: Step, today: date) -> int | None:
    due = due_date(application, task)
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
