"""Official working days (工作日) for the workflow's time limits.

Which days are off comes from ``work_calendar``: the State Council's schedule kept in the
database (holidays and 调休 working weekends), or for a year without one the statutory
holidays of 《全国年节及纪念日放假办法》 with every weekend off (see that module).

Definitions used throughout:

- ``add_workdays(start, n)`` is the date of the n-th working day *after* ``start``; the
  start day itself never counts, whether or not it is a working day. A deadline of
  "受理 within 5 working days of submission" is ``add_workdays(submission_date, 5)``, and
  the work is on time if done on or before that date.
- ``workdays_left(deadline, today)`` counts the working days after ``today`` up to and
  including ``deadline``: 0 on the deadline itself (due today), negative once overdue.

Timestamps are stored in UTC; the date that counts is the date in China (UTC+8).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from . import work_calendar
from .clock import china_date, china_today

ACCEPT_STEP = "受理"
DECISION_STEP = "审批"
_DEFAULT_LIMITS = {"ACCEPT_LIMIT_WORKDAYS": 5, "DECISION_LIMIT_WORKDAYS": 15}


def is_workday(day: date) -> bool:
    """True on official working days, including 调休 weekends (see ``work_calendar``)."""
    if isinstance(day, datetime):  # a datetime is a date subclass; be explicit about intent
        raise TypeError("is_workday takes a date; convert timestamps with china_date() first")
    return work_calendar.schedule(day.year).is_workday(day)


def add_workdays(start: date, n: int) -> date:
    """The date of the n-th working day after ``start`` (``start`` itself does not count).

    ``n == 0`` returns ``start`` unchanged.
    """
    if n < 0:
        raise ValueError("add_workdays counts forwards only; n must be >= 0")
    work_calendar.official_versions()  # drops the cache below if a year changed
    return _add_workdays(start, n)


def workdays_between(start: date, end: date) -> int:
    """Working days in the half-open interval (start, end]; 0 when ``end <= start``."""
    work_calendar.official_versions()
    return _workdays_between(start, end)


@lru_cache(maxsize=8192)
def _add_workdays(start: date, n: int) -> date:
    day = start
    remaining = n
    while remaining:
        day += timedelta(days=1)
        if is_workday(day):
            remaining -= 1
    return day


@lru_cache(maxsize=65536)
def _workdays_between(start: date, end: date) -> int:
    count = 0
    day = start
    while day < end:
        day += timedelta(days=1)
        if is_workday(day):
            count += 1
    return count


work_calendar.on_change(_add_workdays.cache_clear)
work_calendar.on_change(_workdays_between.cache_clear)


def workdays_left(deadline: date, today: date) -> int:
    """Working days left until ``deadline`` as seen on ``today``; negative when overdue.

    On the deadline: 0. Before it: the working days after today up to the deadline.
    After it: minus the working days since the deadline, and at least -1 as soon as the
    deadline has passed (so a weekend right after a Friday deadline already reads -1).
    """
    if today <= deadline:
        return workdays_between(today, deadline)
    return -max(1, workdays_between(deadline, today))


@dataclass(frozen=True)
class Deadline:
    """A workflow time limit as an inbox shows it."""

    step: str  # 受理 or 审批
    started_on: date  # China date of the event the limit runs from
    limit_workdays: int
    due: date
    days_left: int  # negative when overdue

    @property
    def overdue(self) -> bool:
        return self.days_left < 0

    @property
    def label(self) -> str:
        """Short Chinese text for the inbox column."""
        if self.days_left > 0:
            return f"剩余{self.days_left}个工作日"
        if self.days_left == 0:
            return "今日到期"
        return f"已超期{-self.days_left}个工作日"


def deadline_for(
    step: str, started_at: datetime, limit_workdays: int, *, today: date | None = None
) -> Deadline:
    """The deadline of ``step`` that runs ``limit_workdays`` from the UTC ``started_at``."""
    started_on = china_date(started_at)
    due = add_workdays(started_on, limit_workdays)
    today = today or china_today()
    return Deadline(
        step=step,
        started_on=started_on,
        limit_workdays=limit_workdays,
        due=due,
        days_left=workdays_left(due, today),
    )


def _configured_limit(key: str) -> int:
    from flask import current_app, has_app_context

    if has_app_context():
        return int(current_app.config.get(key, _DEFAULT_LIMITS[key]))
    return _DEFAULT_LIMITS[key]


def acceptance_deadline(
    submitted_at: datetime, *, today: date | None = None, limit: int | None = None
) -> Deadline:
    """受理 is due ACCEPT_LIMIT_WORKDAYS working days after the submission date."""
    if limit is None:
        limit = _configured_limit("ACCEPT_LIMIT_WORKDAYS")
    return deadline_for(ACCEPT_STEP, submitted_at, limit, today=today)


def decision_deadline(
    accepted_at: datetime, *, today: date | None = None, limit: int | None = None
) -> Deadline:
    """审批 is due DECISION_LIMIT_WORKDAYS working days after the 受理 date."""
    if limit is None:
        limit = _configured_limit("DECISION_LIMIT_WORKDAYS")
    return deadline_for(DECISION_STEP, accepted_at, limit, today=today)
