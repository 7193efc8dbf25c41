"""Entering a year's State Council holiday schedule, and moving the deadlines it changes.

The file (uploaded, pasted, or given to ``flask calendar-import``) has one line per day::

    2027-01-01,holiday,元旦
    2027-02-20,workday,春节

``holiday`` is a 放假 day (weekend days inside a holiday period included), ``workday`` a
调休 working day (a Saturday or Sunday). Blank lines and lines starting with ``#`` are
skipped; the file is UTF-8 (a BOM is fine). Every date must lie in the year being entered.
See docs/calendar.md.

Entering a schedule replaces that year's days as one change; then every open deadline that
the new days affect is recomputed from its start (提交 for 受理, 受理 for 审批) with the
configured limits, each change audited with the old and the new date, plus one summary row.
The working days finished 补正 rounds stood still are counted again too (the progress page
shows them), whatever state their application is in now.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from flask import current_app
from sqlalchemy import and_, delete, or_, select

from . import audit, corrections, transaction, work_calendar, workflow
from .clock import china_date, china_day_start
from .extensions import db
from .models import (
    Application,
    ApplicationStatus,
    CalendarDay,
    CalendarYear,
    CorrectionRound,
    DayKind,
    ScheduleSource,
    User,
    utcnow,
)
from .workdays import ACCEPT_STEP, DECISION_STEP, add_workdays, workdays_between

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
KIND_WORDS = {"holiday": DayKind.HOLIDAY, "workday": DayKind.WORKDAY}
MAX_ERRORS = 50
MAX_NAME = 60
WEEKDAYS = "一二三四五六日"
YEAR_RANGE = (2000, 2100)  # the lunar library's safe range, and far beyond any use
# The states whose open step runs on each deadline (workflow.STEPS).
ACCEPT_PENDING = tuple(s.status for s in workflow.TASKS if s.deadline_field == "accept_due_on")
DECISION_PENDING = tuple(s.status for s in workflow.TASKS if s.deadline_field == "decision_due_on")


class ScheduleError(ValueError):
    """The file cannot be entered; ``errors`` name each line and what is wrong."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("；".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True)
class ScheduleLine:
    line_no: int
    day: date
    kind: DayKind
    name: str


@dataclass
class Preview:
    """What entering the file would do, for the confirmation page and the CLI."""

    year: int
    lines: list[ScheduleLine]
    replaces: CalendarYear | None
    warnings: list[str] = field(default_factory=list)
    # The open deadlines entering the file would move (worked out, then rolled back).
    moves: list[MovedDeadline] = field(default_factory=list)

    @property
    def holidays(self) -> int:
        return sum(1 for line in self.lines if line.kind is DayKind.HOLIDAY)

    @property
    def workdays(self) -> int:
        return sum(1 for line in self.lines if line.kind is DayKind.WORKDAY)


@dataclass(frozen=True)
class MovedDeadline:
    application_id: int
    number: str | None
    step: str
    old: date | None
    new: date


@dataclass
class ImportResult:
    year: int
    replaced: bool
    holidays: int
    workdays: int
    moved: list[MovedDeadline]


def _weekday(day: date) -> str:
    return "星期" + WEEKDAYS[day.weekday()]


def check_year(year: int) -> None:
    low, high = YEAR_RANGE
    if not low <= year <= high:
        raise ScheduleError([f"年份 {year} 超出可录入范围（{low}–{high}）。"])


def parse_schedule(text: str, year: int) -> list[ScheduleLine]:
    """The file's days, or ``ScheduleError`` naming every bad line (up to 50)."""
    check_year(year)
    errors: list[str] = []
    lines: list[ScheduleLine] = []
    seen: dict[date, int] = {}
    raw_lines = text.lstrip("\ufeff").splitlines()
    for line_no, raw in enumerate(raw_lines, start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        line_errors: list[str] = []
        fields = [part.strip() for part in next(csv.reader([stripped]), [])]
        if len(fields) != 3:
            errors.append(
                f"第{line_no}行：应为“日期,类型,名称”三项（英文逗号分隔），"
                f"实际为{len(fields)}项：{stripped[:60]}"
            )
            continue
        raw_day, raw_kind, name = fields
        try:
            if not ISO_DAY.fullmatch(raw_day):  # fromisoformat would take 20270101, 2027-W01-1
                raise ValueError(raw_day)
            day = date.fromisoformat(raw_day)
        except ValueError:
            day = None
            line_errors.append(f"日期“{raw_day}”不是 YYYY-MM-DD 格式的有效日期（如 {year}-01-01）")
        kind = KIND_WORDS.get(raw_kind.lower())
        if kind is None:
            line_errors.append(f"类型“{raw_kind}”无效，应为 holiday（放假）或 workday（调休上班）")
        if not name:
            line_errors.append("请填写名称（如 元旦、春节）")
        elif len(name) > MAX_NAME:
            line_errors.append(f"名称超过{MAX_NAME}个字")
        elif not name.isprintable():
            line_errors.append("名称含有控制字符，请只用文字")
        if day is not None:
            if day.year != year:
                line_errors.append(f"日期 {day} 不在 {year} 年内；每个文件只录入一年的安排")
            elif day in seen:
                line_errors.append(f"日期 {day} 与第{seen[day]}行重复")
            elif kind is DayKind.WORKDAY and day.weekday() < 5:
                line_errors.append(
                    f"{day} 是{_weekday(day)}，本来就是工作日；调休上班日应为星期六或星期日"
                )
            seen.setdefault(day, line_no)
        if line_errors:
            errors.append(f"第{line_no}行：" + "；".join(line_errors) + "。")
        elif day is not None and kind is not None:
            lines.append(ScheduleLine(line_no, day, kind, name))
        if len(errors) >= MAX_ERRORS:
            errors.append(f"错误过多，仅显示前{MAX_ERRORS}处。")
            break
    if not errors and not any(line.kind is DayKind.HOLIDAY for line in lines):
        errors.append(f"文件中没有 {year} 年的放假日期（holiday），请检查是否选错了文件。")
    if errors:
        raise ScheduleError(errors)
    return sorted(lines, key=lambda line: line.day)


def preview(year: int, text: str) -> Preview:
    """Parse, compare with the statutory holidays, and list the deadlines that would move.

    Nothing is changed: the entry is tried inside a savepoint that is rolled back.
    """
    lines = parse_schedule(text, year)
    listed = {line.day for line in lines if line.kind is DayKind.HOLIDAY}
    warnings = [
        f"法定节日 {day}（{name}）未列为放假日，请核对国务院办公厅通知。"
        for day, name in work_calendar.statutory_holidays(year).items()
        if day not in listed
    ]
    savepoint = db.session.begin_nested()
    try:
        moves = import_schedule(year, text, None).moved
    finally:
        savepoint.rollback()
        work_calendar.invalidate()
    replaces = db.session.get(CalendarYear, year)  # as it is, after the rollback
    return Preview(year, lines, replaces, warnings, moves)


def import_schedule(
    year: int,
    text: str,
    actor: User | None,
    *,
    document: str = "",
    accept_limit: int | None = None,
    decision_limit: int | None = None,
) -> ImportResult:
    """Enter (or replace) ``year``'s official schedule and recompute the open deadlines."""
    lines = parse_schedule(text, year)
    row = db.session.get(CalendarYear, year, with_for_update=True)
    replaced = row is not None
    if row is None:
        row = CalendarYear(year=year, version=1)
        db.session.add(row)
    else:
        row.version += 1
        db.session.execute(delete(CalendarDay).where(CalendarDay.year == year))
    row.source = ScheduleSource.ADMIN
    row.document = document.strip()[:200]
    row.entered_by_id = actor.id if actor else None
    row.entered_at = utcnow()
    db.session.flush()
    db.session.add_all(
        CalendarDay(day=line.day, year=year, kind=line.kind, name=line.name, source=row.source)
        for line in lines
    )
    db.session.flush()
    # This process reads the new days at once; if the change rolls back, forget them again.
    work_calendar.invalidate()
    transaction.on_rollback(work_calendar.invalidate)

    moved = recompute_open_deadlines(
        year, actor, accept_limit=accept_limit, decision_limit=decision_limit
    )
    paused = recompute_paused_workdays(year)
    holidays = sum(1 for line in lines if line.kind is DayKind.HOLIDAY)
    audit.record(
        "work_calendar_entered",
        object_type="calendar_year",
        object_id=year,
        actor=actor,
        replaced=replaced,
        version=row.version,
        document=row.document,
        holidays=holidays,
        workdays=len(lines) - holidays,
        deadlines_moved=len(moved),
        paused_rounds_recounted=paused,
    )
    return ImportResult(year, replaced, holidays, len(lines) - holidays, moved)


def _limit(key: str, given: int | None) -> int:
    return int(given if given is not None else current_app.config[key])


def recompute_open_deadlines(
    year: int,
    actor: User | None,
    *,
    accept_limit: int | None = None,
    decision_limit: int | None = None,
) -> list[MovedDeadline]:
    """Recompute the 受理/审批 deadlines still running that ``year``'s days can change.

    A deadline can only move if its count of working days reaches into ``year``: it started
    before the end of the year and is due on or after its first day (or has no date yet).
    """
    accept_limit = _limit("ACCEPT_LIMIT_WORKDAYS", accept_limit)
    decision_limit = _limit("DECISION_LIMIT_WORKDAYS", decision_limit)
    first, after = date(year, 1, 1), china_day_start(date(year + 1, 1, 1))
    candidates = db.session.scalars(
        select(Application)
        .where(
            or_(
                and_(
                    Application.status.in_(ACCEPT_PENDING),
                    Application.submitted_at < after,
                    or_(Application.accept_due_on.is_(None), Application.accept_due_on >= first),
                ),
                and_(
                    Application.status.in_(DECISION_PENDING),
                    Application.accepted_at < after,
                    or_(
                        Application.decision_due_on.is_(None), Application.decision_due_on >= first
                    ),
                ),
            )
        )
        .order_by(Application.id)
    ).all()
    moved: list[MovedDeadline] = []
    for application in candidates:
        # The query selected only applications whose clock has started. A 补正 round adds
        # the working days it stood still (counted with the new schedule too).
        if application.status in ACCEPT_PENDING:
            assert application.submitted_at is not None
            step, attr = ACCEPT_STEP, "accept_due_on"
            paused = corrections.paused_workdays(application, ApplicationStatus.SUBMITTED)
            new = add_workdays(china_date(application.submitted_at), accept_limit + paused)
        else:
            assert application.accepted_at is not None
            step, attr = DECISION_STEP, "decision_due_on"
            paused = corrections.paused_workdays(application, ApplicationStatus.ACCEPTED)
            new = add_workdays(china_date(application.accepted_at), decision_limit + paused)
        old = getattr(application, attr)
        if old == new:
            continue
        setattr(application, attr, new)
        moved.append(MovedDeadline(application.id, application.number, step, old, new))
        audit.record(
            "application_deadline_recomputed",
            object_type="application",
            object_id=application.id,
            actor=actor,
            step=step,
            old_due_on=old.isoformat() if old else None,
            new_due_on=new.isoformat(),
            calendar_year=year,
        )
    db.session.flush()
    return moved


def recompute_paused_workdays(year: int) -> int:
    """Count again, with the new days, the working days finished 补正 rounds stood still.

    The progress page and the clerk's audit show ``correction_rounds.paused_workdays`` and
    ``applications.paused_workdays`` is their sum; both were counted at resubmission with
    the calendar of that day. Only rounds whose pause reaches into ``year`` can change,
    whatever the application's state now (a certified one still shows its round). Returns
    how many rounds changed.
    """
    first, after = china_day_start(date(year, 1, 1)), china_day_start(date(year + 1, 1, 1))
    rounds = db.session.scalars(
        select(CorrectionRound)
        .where(
            CorrectionRound.resubmitted_at.is_not(None),
            CorrectionRound.requested_at < after,
            CorrectionRound.resubmitted_at >= first,
        )
        .order_by(CorrectionRound.id)
    ).all()
    changed = 0
    for correction in rounds:
        assert correction.resubmitted_at is not None  # the query's condition
        new = workdays_between(
            china_date(correction.requested_at), china_date(correction.resubmitted_at)
        )
        old = correction.paused_workdays or 0
        if new == old:
            continue
        application = db.session.get_one(Application, correction.application_id)
        application.paused_workdays += new - old
        correction.paused_workdays = new
        changed += 1
    db.session.flush()
    return changed
