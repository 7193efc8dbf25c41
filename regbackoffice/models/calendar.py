"""The official working-day calendar: the State Council's holiday schedule, year by year.

A year with a row in ``calendar_years`` has an official schedule: its ``calendar_days``
list every 放假 day and every 调休 working weekend day; all other days follow the week
(Monday–Friday work). A year without a row falls back to the statutory holidays (see
``work_calendar``), which are computed, never stored.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import LabeledEnum, Model, UTCDateTime, enum_type
from .users import User


class DayKind(LabeledEnum):
    HOLIDAY = ("holiday", "放假")
    WORKDAY = ("workday", "调休上班")


class ScheduleSource(LabeledEnum):
    CHINESECALENDAR = ("chinesecalendar", "chinesecalendar 数据（国务院办公厅通知）")
    ADMIN = ("admin", "管理员录入（国务院办公厅通知）")
    # Only for computed days of a year without an official schedule; never stored.
    STATUTORY = ("statutory", "法定节日估算")


class CalendarYear(Model):
    """A year whose official schedule is present: where it came from, who entered it."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[ScheduleSource] = mapped_column(
        enum_type(ScheduleSource, "schedule_source"), nullable=False
    )
    # The notice the schedule comes from, e.g. 国办发明电〔2025〕7号 (free text, optional).
    document: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Raised on every replacement: app processes compare it to drop their cached copy.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    entered_by: Mapped[User | None] = relationship()


class CalendarDay(Model):
    """One 放假 day or one 调休 working day of an official schedule."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(
        ForeignKey("calendar_years.year", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[DayKind] = mapped_column(enum_type(DayKind, "calendar_day_kind"), nullable=False)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    source: Mapped[ScheduleSource] = mapped_column(
        enum_type(ScheduleSource, "schedule_source"), nullable=False
    )
