from datetime import UTC, date, datetime, timedelta

import pytest

from regbackoffice.clock import china_date
from regbackoffice.workdays import (
    Deadline,
    acceptance_deadline,
    add_workdays,
    decision_deadline,
    is_workday,
    workdays_between,
    workdays_left,
)

D = date.fromisoformat


def test_national_day_2025_is_off_and_the_adjusted_weekends_are_working_days():
    for offset in range(8):
        assert not is_workday(D("2025-10-01") + timedelta(days=offset))
    assert is_workday(D("2025-09-28"))  # Sunday, 调休
    assert is_workday(D("2025-10-11"))  # Saturday, 调休
    assert is_workday(D("2025-10-09"))
    assert not is_workday(D("2025-10-12"))  # an ordinary Sunday


def test_ordinary_weekends_are_not_working_days():
    assert is_workday(D("2025-11-14"))  # Friday
    assert not is_workday(D("2025-11-15"))
    assert not is_workday(D("2025-11-16"))
    assert is_workday(D("2025-11-17"))


def test_years_without_a_schedule_count_monday_to_friday_less_the_statutory_holidays():
    assert is_workday(D("2040-01-06"))  # Friday
    assert not is_workday(D("2040-01-07"))
    assert not is_workday(D("2040-01-01"))  # New Year's Day, a Sunday: no 补休 is guessed
    assert is_workday(D("2040-01-02"))
    assert not is_workday(D("2040-10-01"))  # 国庆节 (a Monday), statutory
    assert not is_workday(D("2040-10-03"))
    assert is_workday(D("2040-10-04"))  # a Thursday: only the 3 statutory days are off
    assert add_workdays(D("2040-01-06"), 1) == D("2040-01-09")
    assert add_workdays(D("2040-01-06"), 5) == D("2040-01-13")


def test_add_workdays_steps_over_national_day_and_onto_adjusted_weekends():
    friday = D("2025-09-26")
    assert add_workdays(friday, 1) == D("2025-09-28")  # working Sunday
    assert add_workdays(friday, 2) == D("2025-09-29")
    assert add_workdays(friday, 3) == D("2025-09-30")
    assert add_workdays(friday, 4) == D("2025-10-09")
    assert add_workdays(friday, 5) == D("2025-10-10")
    assert add_workdays(friday, 6) == D("2025-10-11")  # working Saturday
    assert add_workdays(friday, 7) == D("2025-10-13")


def test_the_start_day_never_counts_even_when_it_is_a_holiday():
    assert add_workdays(D("2025-10-03"), 1) == D("2025-10-09")
    assert add_workdays(D("2025-10-03"), 0) == D("2025-10-03")
    assert add_workdays(D("2025-11-15"), 1) == D("2025-11-17")  # Saturday start


def test_add_workdays_crosses_from_the_official_schedule_into_a_year_without_one():
    last_data_year = D("2026-12-31")  # Thursday
    assert add_workdays(last_data_year, 1) == D("2027-01-04")  # 元旦 Friday, then a weekend
    assert add_workdays(last_data_year, 2) == D("2027-01-05")


def test_add_workdays_refuses_negative_counts():
    with pytest.raises(ValueError):
        add_workdays(D("2025-10-09"), -1)


def test_workdays_between_is_half_open():
    assert workdays_between(D("2025-09-26"), D("2025-10-10")) == 5
    assert workdays_between(D("2025-10-10"), D("2025-10-10")) == 0
    assert workdays_between(D("2025-10-10"), D("2025-09-26")) == 0


def test_workdays_left_counts_down_to_zero_on_the_deadline_and_negative_after():
    deadline = D("2025-10-14")  # Tuesday
    assert workdays_left(deadline, D("2025-09-30")) == 5  # 10-09, 10, 11, 13, 14
    assert workdays_left(deadline, D("2025-10-13")) == 1
    assert workdays_left(deadline, D("2025-10-14")) == 0
    assert workdays_left(deadline, D("2025-10-15")) == -1
    assert workdays_left(deadline, D("2025-10-17")) == -3


def test_a_weekend_right_after_a_friday_deadline_is_already_overdue():
    friday = D("2025-11-14")
    assert workdays_left(friday, D("2025-11-15")) == -1
    assert workdays_left(friday, D("2025-11-16")) == -1
    assert workdays_left(friday, D("2025-11-17")) == -1
    assert workdays_left(friday, D("2025-11-18")) == -2


def test_submission_time_is_taken_in_china_time():
    # 17:00 UTC on 30 September is 01:00 on 1 October in Chongqing.
    late = datetime(2025, 9, 30, 17, 0, tzinfo=UTC)
    assert china_date(late) == D("2025-10-01")
    assert china_date(datetime(2025, 9, 30, 15, 59, tzinfo=UTC)) == D("2025-09-30")
    assert china_date(datetime(2025, 9, 30, 17, 0)) == D("2025-10-01")  # naive means UTC


def test_acceptance_deadline_is_five_working_days_after_the_china_date_of_submission():
    submitted = datetime(2025, 9, 30, 17, 0, tzinfo=UTC)  # 1 October in China
    deadline = acceptance_deadline(submitted, today=D("2025-10-09"))
    assert deadline == Deadline(
        step="受理",
        started_on=D("2025-10-01"),
        limit_workdays=5,
        due=D("2025-10-14"),
        days_left=4,
    )
    assert not deadline.overdue
    assert deadline.label == "剩余4个工作日"

    # Thursday evening in UTC is already Friday in China: the deadline moves a working day.
    thursday_utc = datetime(2025, 9, 25, 17, 0, tzinfo=UTC)
    assert acceptance_deadline(thursday_utc, today=D("2025-10-09")).due == D("2025-10-10")
    thursday_china = datetime(2025, 9, 25, 15, 0, tzinfo=UTC)
    assert acceptance_deadline(thursday_china, today=D("2025-10-09")).due == D("2025-10-09")


def test_overdue_and_due_today_labels():
    submitted = datetime(2025, 11, 3, 2, 0, tzinfo=UTC)  # Monday
    due_today = acceptance_deadline(submitted, today=D("2025-11-10"))
    assert due_today.due == D("2025-11-10")
    assert due_today.label == "今日到期"
    assert not due_today.overdue
    late = acceptance_deadline(submitted, today=D("2025-11-12"))
    assert late.overdue
    assert late.days_left == -2
    assert late.label == "已超期2个工作日"


def test_decision_deadline_uses_the_configured_limit(app):
    accepted = datetime(2025, 9, 25, 2, 0, tzinfo=UTC)  # Thursday
    assert decision_deadline(accepted, today=D("2025-09-25")).due == add_workdays(
        D("2025-09-25"), 15
    )
    # 15 working days from Thursday 25 September, skipping National Day, using 调休 days.
    assert decision_deadline(accepted, today=D("2025-09-25")).due == D("2025-10-22")
    with app.app_context():
        app.config["ACCEPT_LIMIT_WORKDAYS"] = 3
        try:
            assert acceptance_deadline(accepted, today=D("2025-09-25")).due == D("2025-09-29")
        finally:
            app.config["ACCEPT_LIMIT_WORKDAYS"] = 5
    assert decision_deadline(accepted, today=D("2025-09-25"), limit=1).due == D("2025-09-26")
