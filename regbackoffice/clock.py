"""The one China clock: Chongqing works on China Standard Time (UTC+8, no DST).

Timestamps are stored in UTC. Every "today" and every calendar date the rules judge
(制造年月 not after this month, inspection overdue, working-day deadlines, certificate
dates) is the date in China, never the server's local date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


def china_now() -> datetime:
    """The current moment as an aware datetime in China time."""
    return datetime.now(UTC).astimezone(CHINA_TZ)


def china_date(moment: datetime) -> date:
    """The calendar date in China of a timestamp (naive timestamps are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(CHINA_TZ).date()


def china_today(now: datetime | None = None) -> date:
    """Today's date in China (of ``now`` when given, for tests and replays)."""
    return china_date(now or datetime.now(UTC))


def china_day_start(day: date) -> datetime:
    """The UTC instant at which ``day`` begins in China (for day-range filters)."""
    return datetime.combine(day, time(), CHINA_TZ).astimezone(UTC)


def format_china(value: object, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC timestamp as China time text; other values as text, ``None`` as ''."""
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(CHINA_TZ).strftime(fmt)
