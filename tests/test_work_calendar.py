"""The working-day calendar: official schedules in the database, the statutory fallback, the
admin's entry of a new year (page and CLI), the deadlines it moves, and the warning."""

from __future__ import annotations

import html as html_lib
import io
import re
from datetime import UTC, date, datetime, timedelta

import chinese_calendar
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from regbackoffice import calendar_import, history, work_calendar, workflow
from regbackoffice.extensions import db
from regbackoffice.models import (
    AuditLog,
    CalendarDay,
    CalendarYear,
    DayKind,
    Role,
    ScheduleSource,
)
from regbackoffice.workdays import add_workdays, is_workday, workdays_between

from . import factories
from .conftest import csrf_token_from

D = date.fromisoformat

# An invented 2027 schedule for the tests (NOT the State Council's, which is not out yet):
# 春节 runs 2027-02-05..02-11 and Saturday 02-20 is worked instead.
TEST_2027 = """# invented for tests
2027-01-01,holiday,元旦
2027-01-02,holiday,元旦
2027-01-03,holiday,元旦
2027-02-05,holiday,春节
2027-02-06,holiday,春节
2027-02-07,holiday,春节
2027-02-08,holiday,春节
2027-02-09,holiday,春节
2027-02-10,holiday,春节
2027-02-11,holiday,春节
2027-02-20,workday,春节
2027-04-05,holiday,清明节
2027-05-01,holiday,劳动节
2027-05-02,holiday,劳动节
2027-06-09,holiday,端午节
2027-09-15,holiday,中秋节
2027-10-01,holiday,国庆节
2027-10-02,holiday,国庆节
2027-10-03,holiday,国庆节
"""


def _china(day: str, hour: int = 10) -> datetime:
    """``hour`` o'clock in China on ``day``, as UTC."""
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+08:00").astimezone(UTC)


# ---- the seeded schedule and the fallback ----------------------------------------------------


def test_seeded_schedule_is_chinesecalendar_data_for_2004_to_2026():
    rows = db.session.execute(select(CalendarDay.day, CalendarDay.kind, CalendarDay.source)).all()
    holidays = {day for day, kind, _ in rows if kind is DayKind.HOLIDAY}
    workdays = {day for day, kind, _ in rows if kind is DayKind.WORKDAY}
    # A later package release may add years; the seed is its 1.11.0 data, up to 2026.
    assert holidays == {day for day in chinese_calendar.holidays if day.year <= 2026}
    assert workdays == {day for day in chinese_calendar.workdays if day.year <= 2026}
    assert {source for *_, source in rows} == {ScheduleSource.CHINESECALENDAR}
    years = db.session.scalars(select(CalendarYear.year).order_by(CalendarYear.year)).all()
    assert years == list(range(2004, 2027))


def test_a_2026_adjusted_weekend_day_from_the_seeded_schedule_is_a_working_day():
    assert D("2026-02-28").weekday() == 5  # Saturday worked for 春节 2026
    assert is_workday(D("2026-02-28"))
    assert is_workday(D("2026-10-10"))  # Saturday worked for 国庆节 2026
    assert not is_workday(D("2026-10-07"))  # Wednesday inside 国庆节
    assert not is_workday(D("2026-10-17"))  # an ordinary Saturday


def test_new_years_day_2027_is_not_a_working_day_by_the_statutory_fallback():
    assert not work_calendar.schedule(2027).official
    assert not is_workday(D("2027-01-01"))  # Friday, 元旦
    assert is_workday(D("2027-01-04"))
    # The bug this fixes: Monday–Friday alone made this 受理 deadline 2027-01-01, a day early.
    assert add_workdays(D("2026-12-25"), 5) == D("2027-01-04")


def test_spring_festival_2027_fallback_is_new_years_eve_and_the_first_three_days():
    holidays = work_calendar.statutory_holidays(2027)
    spring = [day for day, name in holidays.items() if name == "春节"]
    assert spring == [D("2027-02-05"), D("2027-02-06"), D("2027-02-07"), D("2027-02-08")]
    assert not is_workday(D("2027-02-05"))  # 除夕, a Friday
    assert not is_workday(D("2027-02-08"))  # 初三, a Monday
    assert is_workday(D("2027-02-09"))  # no 调休 is guessed
    assert not is_workday(D("2027-02-20"))  # a Saturday, off: no 调休 is guessed
    assert holidays == {
        D("2027-01-01"): "元旦",
        **dict.fromkeys(spring, "春节"),
        D("2027-04-05"): "清明节",
        D("2027-05-01"): "劳动节",
        D("2027-05-02"): "劳动节",
        D("2027-06-09"): "端午节",
        D("2027-09-15"): "中秋节",
        D("2027-10-01"): "国庆节",
        D("2027-10-02"): "国庆节",
        D("2027-10-03"): "国庆节",
    }


def test_statutory_days_that_coincide_share_one_day_off():
    holidays = work_calendar.statutory_holidays(2028)
    assert holidays[D("2028-10-03")] == "中秋节、国庆节"
    assert len(holidays) == 12  # 13 statutory days, two on the same date


# ---- entering a year ---------------------------------------------------------------------


def test_entering_2027_changes_working_days_at_once_and_moves_open_deadlines(app):
    admin = factories.make_user(Role.ADMIN, district_code=None)
    # Submitted on Wednesday 2027-02-03: by the fallback 受理 is due on 02-12.
    open_app = factories.make_submitted_application(items=1, submitted_at=_china("2027-02-03"))
    assert open_app.accept_due_on == D("2027-02-12")
    # The same start, but voided: a closed application keeps its date.
    closed = factories.make_submitted_application(items=1, submitted_at=_china("2027-02-03"))
    clerk = factories.make_user(Role.ACCEPTOR, district_code=closed.district_code)
    workflow.void(closed, clerk, "资料不全", closed.version_id, sod=True)
    # Running in 2026 only: no 2027 day can move it.
    untouched = factories.make_submitted_application(items=1, submitted_at=_china("2026-11-02"))
    untouched_due = untouched.accept_due_on
    assert is_workday(D("2027-02-09"))
    assert workdays_between(D("2027-02-04"), D("2027-02-12")) == 4

    result = calendar_import.import_schedule(2027, TEST_2027, admin, document="测试安排")

    assert not is_workday(D("2027-02-09"))  # the same process sees the new days at once
    assert is_workday(D("2027-02-20"))  # the 调休 Saturday
    assert workdays_between(D("2027-02-04"), D("2027-02-12")) == 1
    assert work_calendar.schedule(2027).official
    assert open_app.accept_due_on == D("2027-02-17")
    assert closed.accept_due_on == D("2027-02-12")
    assert untouched.accept_due_on == untouched_due
    assert [(m.application_id, m.step, m.old, m.new) for m in result.moved] == [
        (open_app.id, "受理", D("2027-02-12"), D("2027-02-17"))
    ]
    moved_rows = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "application_deadline_recomputed")
    ).all()
    assert [(r.object_id, r.detail["old_due_on"], r.detail["new_due_on"]) for r in moved_rows] == [
        (str(open_app.id), "2027-02-12", "2027-02-17")
    ]
    assert (
        history.describe_event(moved_rows[0])
        == "环节：受理，原期限：2027-02-12，新期限：2027-02-17"
    )
    summary = db.session.scalar(select(AuditLog).where(AuditLog.action == "work_calendar_entered"))
    assert summary.object_id == "2027" and summary.actor_id == admin.id
    assert summary.detail["deadlines_moved"] == 1 and summary.detail["replaced"] is False
    year = db.session.get(CalendarYear, 2027)
    assert (year.source, year.entered_by_id, year.document) == (
        ScheduleSource.ADMIN,
        admin.id,
        "测试安排",
    )


def test_replacing_a_year_moves_decision_deadlines_and_raises_its_version():
    admin = factories.make_user(Role.ADMIN, district_code=None)
    calendar_import.import_schedule(2027, TEST_2027, admin)
    accepted = factories.make_accepted_application(items=1)
    accepted.accepted_at = _china("2027-02-03")
    accepted.decision_due_on = add_workdays(D("2027-02-03"), 15)
    assert accepted.decision_due_on == D("2027-03-02")  # 02-04, then from 02-12 on (with 02-20)
    without_spring_festival = "\n".join(
        line for line in TEST_2027.splitlines() if "春节" not in line
    )

    result = calendar_import.import_schedule(2027, without_spring_festival, admin)

    assert result.replaced
    assert db.session.get(CalendarYear, 2027).version == 2
    assert accepted.decision_due_on == D("2027-02-24")
    assert [(m.step, m.old, m.new) for m in result.moved] == [
        ("审批", D("2027-03-02"), D("2027-02-24"))
    ]


def test_another_process_entry_is_seen_from_the_next_app_context(app):
    assert is_workday(D("2026-10-10"))
    assert add_workdays(D("2026-10-09"), 1) == D("2026-10-10")
    # What another gunicorn process's commit looks like to this one: new rows, new version.
    db.session.execute(
        sa.update(CalendarDay).where(CalendarDay.day == D("2026-10-10")).values(kind="holiday")
    )
    db.session.execute(sa.update(CalendarYear).where(CalendarYear.year == 2026).values(version=7))
    with app.app_context():
        assert not is_workday(D("2026-10-10"))
        assert add_workdays(D("2026-10-09"), 1) == D("2026-10-12")


# ---- the file format ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2027-13-01,holiday,元旦", "日期“2027-13-01”不是 YYYY-MM-DD 格式的有效日期"),
        ("2027-W01-1,holiday,元旦", "日期“2027-W01-1”不是 YYYY-MM-DD 格式的有效日期"),
        ("20270104,holiday,元旦", "日期“20270104”不是 YYYY-MM-DD 格式的有效日期"),
        ("2027-01-04,rest,元旦", "类型“rest”无效，应为 holiday（放假）或 workday（调休上班）"),
        ("2027-01-04,holiday", "应为“日期,类型,名称”三项"),
        ("2026-12-31,holiday,元旦", "日期 2026-12-31 不在 2027 年内"),
        ("2027-01-06,workday,元旦", "2027-01-06 是星期三，本来就是工作日"),
        ("2027-01-01,holiday,元旦", "日期 2027-01-01 与第2行重复"),
        ("2027-01-04,holiday,", "请填写名称"),
        ("2027-01-04,holiday,元\x00旦", "名称含有控制字符"),
    ],
)
def test_a_malformed_line_is_refused_naming_the_line_and_the_problem(line, message):
    text = f"# 2027\n2027-01-01,holiday,元旦\n{line}\n"
    with pytest.raises(calendar_import.ScheduleError) as refused:
        calendar_import.parse_schedule(text, 2027)
    assert refused.value.errors[0].startswith("第3行：")
    assert message in refused.value.errors[0]


def test_preview_warns_about_statutory_days_missing_from_the_file():
    preview = calendar_import.preview(2027, "2027-01-01,holiday,元旦\n")
    assert preview.holidays == 1 and preview.replaces is None
    assert "法定节日 2027-02-05（春节）未列为放假日，请核对国务院办公厅通知。" in preview.warnings


# ---- the admin page ------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, login_as):
    login_as(Role.ADMIN, district_code=None)
    return client


def _post_import(client, *, file: str | None = None, text: str = "", confirm: str = ""):
    token = csrf_token_from(client.get("/admin/calendar/import").get_data(as_text=True))
    data = {"csrf_token": token, "year": "2027", "document": "测试", "text": text}
    if confirm:
        data["confirm"] = confirm
    if file is not None:
        data["file"] = (io.BytesIO(file.encode()), "2027.csv")
    return client.post("/admin/calendar/import", data=data, content_type="multipart/form-data")


def test_upload_refuses_a_malformed_line_naming_it(admin_client):
    bad = TEST_2027.replace("2027-02-20,workday,春节", "2027-02-30,workday,春节")
    response = _post_import(admin_client, file=bad)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "文件未录入" in html
    assert "第12行：日期“2027-02-30”不是 YYYY-MM-DD 格式的有效日期" in html
    assert db.session.get(CalendarYear, 2027) is None


def _confirmation_fields(html: str) -> dict[str, str]:
    """The fields the preview page's 确认录入 form posts back."""
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)"[^>]*value="([^"]*)"', html))
    fields.update(
        re.findall(r'<input id="([^"]+)" name="[^"]+" type="hidden" value="([^"]*)"', html)
    )
    fields["text"] = html_lib.unescape(
        re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', html, re.S).group(1)
    )
    return fields


def test_upload_previews_the_moves_then_enters_the_year_and_lists_them(admin_client):
    application = factories.make_submitted_application(items=1, submitted_at=_china("2027-02-03"))

    preview = _post_import(admin_client, file=TEST_2027)
    html = preview.get_data(as_text=True)
    assert "确认录入 2027 年节假日安排" in html and "18 个放假日、1 个调休上班日" in html
    assert "将变动的期限（1 项）" in html and application.number in html
    # Nothing entered, nothing moved, nothing audited before the confirmation.
    assert db.session.get(CalendarYear, 2027) is None
    db.session.refresh(application)
    assert application.accept_due_on == D("2027-02-12")
    assert not db.session.scalars(
        select(AuditLog).where(AuditLog.action == "application_deadline_recomputed")
    ).all()
    assert is_workday(D("2027-02-09"))

    fields = _confirmation_fields(html)
    assert fields["confirm"] == "1" and fields["year"] == "2027"
    done = admin_client.post("/admin/calendar/import", data=fields)
    html = done.get_data(as_text=True)
    assert "已录入 2027 年节假日安排" in html and "有 1 项未办结期限变动" in html
    assert application.number in html and "2027-02-12" in html and "2027-02-17" in html
    db.session.refresh(application)
    assert application.accept_due_on == D("2027-02-17")
    entered = db.session.get(CalendarYear, 2027)
    assert entered.source is ScheduleSource.ADMIN and entered.document == "测试"

    listing = admin_client.get("/admin/calendar").get_data(as_text=True)
    assert "管理员录入" in listing
    year_page = admin_client.get("/admin/calendar/2027").get_data(as_text=True)
    assert "2027-02-20" in year_page and "调休上班" in year_page


def test_year_page_without_a_schedule_shows_the_statutory_estimate(admin_client):
    html = admin_client.get("/admin/calendar/2027").get_data(as_text=True)
    assert "尚未录入" in html and "2027-02-05" in html and "除夕" not in html
    assert admin_client.get("/admin/calendar/12345").status_code == 404


# ---- the warning ---------------------------------------------------------------------------

WARNING = "2027年节假日安排尚未录入，期限按法定节日估算"


def _fix_today(monkeypatch, day: str) -> None:
    monkeypatch.setattr(work_calendar, "china_today", lambda: D(day))


def test_warning_shows_to_an_acceptor_from_november_until_the_year_is_entered(
    client, login_as, monkeypatch
):
    login_as(Role.ACCEPTOR)
    _fix_today(monkeypatch, "2026-10-31")
    assert WARNING not in client.get("/inbox").get_data(as_text=True)
    _fix_today(monkeypatch, "2026-11-02")
    assert WARNING in client.get("/inbox").get_data(as_text=True)

    calendar_import.import_schedule(2027, TEST_2027, None)

    assert WARNING not in client.get("/inbox").get_data(as_text=True)


def test_warning_shows_on_admin_pages_and_not_to_applicants(client, login_as, monkeypatch):
    _fix_today(monkeypatch, "2026-12-01")
    login_as(Role.ADMIN, district_code=None)
    assert WARNING in client.get("/admin/users").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/").get_data(True))})
    login_as(Role.APPLICANT)
    assert WARNING not in client.get("/applications/").get_data(as_text=True)


def test_the_current_year_missing_is_warned_about_all_year():
    assert work_calendar.missing_schedule_warnings(D("2027-03-01")) == [WARNING]
    assert work_calendar.missing_schedule_warnings(D("2026-03-01")) == []


# ---- the command line ----------------------------------------------------------------------


def test_cli_imports_and_shows_a_year(app, tmp_path):
    schedule_file = tmp_path / "2027.csv"
    schedule_file.write_text(TEST_2027, encoding="utf-8")
    runner = app.test_cli_runner()

    shown = runner.invoke(args=["calendar-show", "--year", "2027"])
    assert shown.exit_code == 0, shown.output
    assert "未录入" in shown.output and "2027-02-05,holiday,春节" in shown.output

    entered = runner.invoke(args=["calendar-import", "--year", "2027", str(schedule_file), "--yes"])
    assert entered.exit_code == 0, entered.output
    assert "已录入 2027 年安排" in entered.output
    assert db.session.get(CalendarYear, 2027) is not None

    shown = runner.invoke(args=["calendar-show", "--year", "2027"])
    assert "已录入" in shown.output and "2027-02-20,workday,春节" in shown.output


def test_cli_refuses_a_malformed_file_naming_the_line(app, tmp_path):
    schedule_file = tmp_path / "bad.csv"
    schedule_file.write_text("2027-01-01;holiday;元旦\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(
        args=["calendar-import", "--year", "2027", str(schedule_file), "--yes"]
    )
    assert result.exit_code == 1
    assert "第1行：应为“日期,类型,名称”三项" in result.output
    assert db.session.get(CalendarYear, 2027) is None


def test_dates_are_continuous_across_the_year_boundary_with_no_gap():
    # Every day of the boundary weeks is decided by one source or the other.
    days = [D("2026-12-28") + timedelta(days=i) for i in range(10)]
    assert [is_workday(day) for day in days] == [
        True,  # Mon 12-28
        True,
        True,
        True,  # Thu 12-31
        False,  # Fri 01-01 元旦 (statutory)
        False,
        False,
        True,  # Mon 01-04
        True,
        True,
    ]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.builds(
                lambda d, k, n: f"{d},{k},{n}",
                st.dates().map(str),
                st.sampled_from(["holiday", "workday", "HOLIDAY", "rest", ""]),
                st.text(max_size=8),
            ),
        ),
        max_size=8,
    ).map("\n".join)
)
def test_any_text_gives_days_or_line_named_errors_never_a_crash(text):
    try:
        lines = calendar_import.parse_schedule(text, 2027)
    except calendar_import.ScheduleError as refused:
        assert refused.errors
        assert all(e.startswith(("第", "文件中没有", "错误过多")) for e in refused.errors)
    else:
        assert all(line.day.year == 2027 for line in lines)


# ---- SQLite (scripts/run) -------------------------------------------------------------------


@pytest.fixture
def sqlite_app(tmp_path):
    """The demo's setup: a SQLite database migrated from empty, ordinary sessions."""
    from flask_migrate import upgrade

    from regbackoffice import create_app

    bound = db.session
    db.session = db._make_scoped_session({})
    application = create_app(
        {
            "REGBO_ENV": "testing",
            "TESTING": True,
            "SECRET_KEY": "sqlite-test-key",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'calendar.db'}",
            "STORAGE_DIR": str(tmp_path / "files"),
            "REDIS_URL": None,
        }
    )
    try:
        with application.app_context():
            upgrade()
            yield application
            db.session.remove()
            db.engine.dispose()
    finally:
        db.session = bound


def test_the_calendar_is_seeded_and_entered_on_sqlite_too(sqlite_app):
    assert is_workday(D("2026-02-28"))  # seeded 调休 Saturday
    assert not is_workday(D("2027-01-01"))  # statutory fallback
    preview = calendar_import.preview(2027, TEST_2027)
    assert db.session.get(CalendarYear, 2027) is None  # the preview's savepoint rolled back
    assert preview.holidays == 18
    calendar_import.import_schedule(2027, TEST_2027, None)
    db.session.commit()
    assert not is_workday(D("2027-02-09"))
    assert db.session.get(CalendarYear, 2027).source is ScheduleSource.ADMIN
