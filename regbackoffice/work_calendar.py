"""Which days are working days: the official schedule in the database, else the statutory rule.

Sources, in order:

1. A year with a row in ``calendar_years`` has the State Council's schedule (seeded from the
   ``chinesecalendar`` package for 2004–2026 by migration 0008; later years entered by the
   admin, page 节假日安排 or ``flask calendar-import``). Its ``calendar_days`` are the 放假
   days and the 调休 working weekend days; every other day follows the week.
2. A year without one falls back to the statutory holidays of 《全国年节及纪念日放假办法》
   (as amended in 2024, in force since 2025): 元旦 1 day, 春节 4 days (除夕 and 正月初一至初三),
   清明节 1 day (the solar term), 劳动节 2 days (5月1日、2日), 端午节 1 day, 中秋节 1 day,
   国庆节 3 days (10月1日至3日). Weekends are days off; no 调休 is guessed. The lunar dates and
   the solar term come from ``lunar_python``.

Caching (several gunicorn processes): each process keeps the years it has read, with the
``version`` of each official year. Once per app context (a request, a CLI command, a job)
the first calendar question reads ``SELECT year, version FROM calendar_years`` (about 25
rows); if anything differs from what the process holds, it forgets every cached year and
clears the working-day lru caches. So an admin's entry is seen by the process that made it
at once (it invalidates directly) and by every other process from its next request on,
without a TTL to wait for. The same snapshot serves the missing-schedule warning, so a page
pays at most this one query for the calendar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType

from flask import g, has_app_context
from sqlalchemy import select

from .clock import china_today
from .extensions import db
from .models import CalendarDay, CalendarYear, DayKind, ScheduleSource

# Statutory rule in force (国务院令第795号, from 2025-01-01); applied to every year that has
# no official schedule. Years before 2004 are not used by the workflow.
STATUTORY_RULE = "《全国年节及纪念日放假办法》（2024年修订）"
WARNING_FROM_MONTH = 11  # the coming year's schedule is missing: warn from 1 November on


@dataclass(frozen=True)
class YearSchedule:
    """One year's days off and 调休 working days, and whether they are official."""

    year: int
    official: bool
    holidays: Mapping[date, str]
    workdays: Mapping[date, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def source(self) -> ScheduleSource | None:
        return None if self.official else ScheduleSource.STATUTORY

    def is_workday(self, day: date) -> bool:
        if day in self.holidays:
            return False
        if day in self.workdays:
            return True
        return day.weekday() < 5

    def name_of(self, day: date) -> str:
        return self.holidays.get(day) or self.workdays.get(day) or ""


def statutory_holidays(year: int) -> dict[date, str]:
    """The statutory days off of ``year`` (no 调休), names joined when two fall together."""
    from lunar_python import Lunar  # a pure-Python library; imported only when needed

    new_year = Lunar.fromYmd(year, 1, 1)
    spring = _to_date(new_year.getSolar())
    qingming = _to_date(new_year.getJieQiTable()["清明"])
    entries = [
        (date(year, 1, 1), "元旦"),
        *((spring + timedelta(days=offset), "春节") for offset in (-1, 0, 1, 2)),  # 除夕..初三
        (qingming, "清明节"),
        (date(year, 5, 1), "劳动节"),
        (date(year, 5, 2), "劳动节"),
        (_to_date(Lunar.fromYmd(year, 5, 5).getSolar()), "端午节"),
        (_to_date(Lunar.fromYmd(year, 8, 15).getSolar()), "中秋节"),
        *((date(year, 10, day), "国庆节") for day in (1, 2, 3)),
    ]
    days: dict[date, str] = {}
    for day, name in entries:
        if day.year != year:  # cannot happen for 1901–2099 (春节 is 21 Jan at the earliest)
            raise ValueError(f"{name} of {year} computed as {day}")
        days[day] = f"{days[day]}、{name}" if day in days and name not in days[day] else name
    return dict(sorted(days.items()))


def _to_date(solar: object) -> date:
    return date(solar.getYear(), solar.getMonth(), solar.getDay())  # type: ignore[attr-defined]


# ---- the per-process cache ----------------------------------------------------------------

_lock = threading.Lock()
_versions: dict[int, int] | None = None  # official years → version, as last read
_years: dict[int, YearSchedule] = {}
_listeners: list[Callable[[], None]] = []
_G_KEY = "_work_calendar_versions"


def on_change(callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever cached calendar data is dropped (lru caches of workdays)."""
    _listeners.append(callback)


def _forget() -> None:
    global _versions
    with _lock:
        _versions = None
        _years.clear()
        for callback in _listeners:
            callback()


def invalidate() -> None:
    """Drop this process's cached calendar at once (after an admin changed a year)."""
    _forget()
    if has_app_context():
        g.pop(_G_KEY, None)


def official_versions() -> Mapping[int, int]:
    """Years with an official schedule → version; read once per app context."""
    global _versions
    if not has_app_context():
        raise RuntimeError(
            "working days come from the database: call them inside an app context "
            "(a request, `flask` command or job)"
        )
    snapshot = g.get(_G_KEY)
    if snapshot is not None:
        return snapshot
    rows = dict(db.session.execute(select(CalendarYear.year, CalendarYear.version)).tuples().all())
    if rows != _versions:
        _forget()
        with _lock:
            _versions = rows
    snapshot = MappingProxyType(rows)
    g.setdefault(_G_KEY, snapshot)
    return snapshot


def schedule(year: int) -> YearSchedule:
    """The schedule that decides the working days of ``year`` (cached per process)."""
    official = year in official_versions()
    cached = _years.get(year)
    if cached is not None and cached.official == official:
        return cached
    loaded = _load(year) if official else _estimate(year)
    with _lock:
        _years[year] = loaded
    return loaded


def _load(year: int) -> YearSchedule:
    rows = db.session.execute(
        select(CalendarDay.day, CalendarDay.kind, CalendarDay.name).where(CalendarDay.year == year)
    ).all()
    holidays = {day: name for day, kind, name in rows if kind is DayKind.HOLIDAY}
    workdays = {day: name for day, kind, name in rows if kind is DayKind.WORKDAY}
    return YearSchedule(
        year, True, MappingProxyType(dict(sorted(holidays.items()))), MappingProxyType(workdays)
    )


def _estimate(year: int) -> YearSchedule:
    return YearSchedule(year, False, MappingProxyType(statutory_holidays(year)))


# ---- the warning ---------------------------------------------------------------------------


def missing_years(today: date | None = None) -> list[int]:
    """Years whose deadlines are estimated now: this year, and from November the next."""
    today = today or china_today()
    official = official_versions()
    years = [today.year] if today.year not in official else []
    if today.month >= WARNING_FROM_MONTH and today.year + 1 not in official:
        years.append(today.year + 1)
    return years


def missing_schedule_warnings(today: date | None = None) -> list[str]:
    """The banner shown to clerks and admins while a schedule that matters is missing."""
    return [f"{year}年节假日安排尚未录入，期限按法定节日估算" for year in missing_years(today)]
