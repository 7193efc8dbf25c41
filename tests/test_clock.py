"""One China clock: every "today" is the date in China, whatever the server's time zone."""

import time
from datetime import UTC, date, datetime

import pytest

from regbackoffice import clock
from regbackoffice.imports.reader import parse_workbook

from . import factories
from .xlsx_helpers import good_row, workbook_bytes

# 2027-01-31 20:00 UTC is already 2027-02-01 04:00 in Chongqing.
MOMENT = datetime(2027, 1, 31, 20, 0, tzinfo=UTC)


@pytest.fixture
def utc_host_at_month_turn(monkeypatch):
    """A server whose local zone is UTC, in the first hours of a China month."""

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return MOMENT if tz is None else MOMENT.astimezone(tz)

    monkeypatch.setattr(clock, "datetime", FrozenDatetime)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_china_today_is_the_china_date_on_a_utc_host(utc_host_at_month_turn):
    assert clock.china_today() == date(2027, 2, 1)
    assert clock.china_now().utcoffset().total_seconds() == 8 * 3600


def test_import_on_a_utc_host_judges_months_by_china_date(utc_host_at_month_turn):
    application = factories.make_application()
    rows = [
        # Made this (China) month: accepted, although the server's own date is January.
        good_row("CLK-1", manufacture_month="2027-02", last_inspection_date=None),
        # Inspection month just passed in China: refused, although it is January in UTC.
        good_row("CLK-2", next_inspection_month="2027-01"),
    ]
    outcome = factories.import_under_job(application, parse_workbook(workbook_bytes(rows)))
    assert outcome.imported == 1
    (refused,) = outcome.failed
    assert refused["row"] == 3
    assert any(r.startswith("下次检验日期2027-01已过") for r in refused["reasons"])


def test_day_start_is_midnight_in_china():
    assert clock.china_day_start(date(2026, 12, 1)) == datetime(2026, 11, 30, 16, tzinfo=UTC)
