"""待办事项: the bureau's tasks per role, counted and listed by deadline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, func, or_

from .access import visible
from .extensions import db
from .models import Application, ApplicationStatus, Role, User
from .workdays import workdays_left


@dataclass(frozen=True)
class Task:
    key: str
    label: str  # the step's name in the seed's words
    status: ApplicationStatus
    role: Role
    deadline_field: str | None  # the Application column holding the due date

    @property
    def prompt(self) -> str:
        return f"使用登记的{self.label}任务"


TASKS = (
    Task("accept", "受理", ApplicationStatus.SUBMITTED, Role.ACCEPTOR, "accept_due_on"),
    Task("review", "审核", ApplicationStatus.ACCEPTED, Role.REVIEWER, "decision_due_on"),
    Task("approve", "审批", ApplicationStatus.REVIEWED, Role.APPROVER, "decision_due_on"),
    Task("certify", "证书生成", ApplicationStatus.APPROVED, Role.ACCEPTOR, None),
)


def tasks_for(user: User) -> list[Task]:
    return [task for task in TASKS if task.role is user.role]


def task_counts(user: User) -> dict[str, int]:
    """Open tasks per task key, in one query."""
    tasks = tasks_for(user)
    if not tasks:
        return {}
    rows = db.session.execute(
        visible(Application, user)
        .with_only_columns(Application.status, func.count())
        .where(Application.status.in_([t.status for t in tasks]))
        .group_by(Application.status)
    ).all()
    by_status = dict(rows)
    return {task.key: by_status.get(task.status, 0) for task in tasks}


def task_query(user: User, task: Task, search: str = "") -> Select[tuple[Application]]:
    """The task's applications in the user's district, soonest deadline first."""
    query = visible(Application, user).where(Application.status == task.status)
    search = search.strip()
    if search:
        query = query.where(
            or_(Application.unit_name.contains(search), Application.number.contains(search))
        )
    order = [Application.submitted_at, Application.id]
    if task.deadline_field:
        order.insert(0, getattr(Application, task.deadline_field).asc().nulls_last())
    return query.order_by(*order)


def due_date(application: Application, task: Task) -> date | None:
    return getattr(application, task.deadline_field) if task.deadline_field else None


def days_left(application: Application, task: Task, today: date) -> int | None:
    due = due_date(application, task)
    return None if due is None else workdays_left(due, today)
