"""待办事项: the bureau's tasks per role (``workflow.STEPS``), counted and listed by deadline."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Select, func, or_

from .access import visible
from .extensions import db
from .models import Application, User
from .search import contains
from .workdays import workdays_left
from .workflow import Step
from .workflow import tasks_for as tasks_for_role


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
