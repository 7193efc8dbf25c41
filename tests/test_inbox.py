"""待办事项: tasks per role, by deadline, with working days left."""

from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

import pytest

from regbackoffice import inbox, workflow
from regbackoffice.extensions import db
from regbackoffice.models import ApplicationStatus, Role, utcnow

from . import factories


@pytest.fixture
def yubei_unit():
    return factories.make_unit("500112", name="重庆待办测试燃气有限公司")


def test_acceptor_sees_the_count_of_acceptance_tasks(client, login_as, yubei_unit):
    for _ in range(3):
        factories.make_submitted_application(yubei_unit, items=1, photos=False)
    factories.make_submitted_application(factories.make_unit("500105"), items=1, photos=False)
    login_as(Role.ACCEPTOR, district_code="500112")
    html = client.get("/inbox").get_data(as_text=True)
    assert "您有<strong>3</strong>条使用登记的受理任务需要处理" in html
    assert "您有<strong>0</strong>条使用登记的证书生成任务需要处理" in html


@pytest.mark.parametrize(
    ("role", "status", "label"),
    [
        (Role.REVIEWER, ApplicationStatus.ACCEPTED, "审核"),
        (Role.APPROVER, ApplicationStatus.REVIEWED, "审批"),
    ],
)
def test_reviewer_and_approver_see_their_own_task(
    client, login_as, yubei_unit, role, status, label
):
    application = factories.make_submitted_application(yubei_unit, items=1, photos=False)
    application.status = status
    application.accepted_at = application.audit_completed_at = utcnow()
    application.accepted_by_id = application.created_by_id
    if status is ApplicationStatus.REVIEWED:
        application.reviewed_at, application.reviewed_by_id = utcnow(), application.created_by_id
    application.decision_due_on = date.today() + timedelta(days=20)
    db.session.flush()
    login_as(role, district_code="500112")
    html = client.get("/inbox").get_data(as_text=True)
    assert f"您有<strong>1</strong>条使用登记的{label}任务需要处理" in html
    assert application.number in html
    assert "受理任务" not in html


def test_tasks_are_sorted_by_deadline_and_overdue_is_red(client, login_as, yubei_unit):
    late = factories.make_submitted_application(yubei_unit, items=1, photos=False)
    late.accept_due_on = date.today() - timedelta(days=10)
    soon = factories.make_submitted_application(yubei_unit, items=1, photos=False)
    soon.accept_due_on = date.today() + timedelta(days=10)
    db.session.flush()
    login_as(Role.ACCEPTOR, district_code="500112")
    html = client.get("/inbox").get_data(as_text=True)
    assert html.index(late.number) < html.index(soon.number)
    assert '<span class="overdue">已超期' in html


def test_search_by_unit_name_or_application_number(client, login_as, yubei_unit):
    wanted = factories.make_submitted_application(yubei_unit, items=1, photos=False)
    other = factories.make_submitted_application(
        factories.make_unit("500112", name="别的公司"), items=1, photos=False
    )
    login_as(Role.ACCEPTOR, district_code="500112")
    by_name = client.get("/inbox?task=accept&q=待办测试").get_data(as_text=True)
    assert wanted.number in by_name and other.number not in by_name
    by_number = client.get(f"/inbox?task=accept&q={other.number}").get_data(as_text=True)
    assert other.number in by_number and wanted.number not in by_number


def test_search_wildcards_typed_in_the_box_match_only_themselves(client, login_as, yubei_unit):
    plain = factories.make_submitted_application(yubei_unit, items=1, photos=False)
    percent = factories.make_submitted_application(
        factories.make_unit("500112", name="百分之百_燃气%公司"), items=1, photos=False
    )
    login_as(Role.ACCEPTOR, district_code="500112")
    for typed in ("%", "_", "百%公司"):
        html = client.get(f"/inbox?task=accept&q={quote(typed)}").get_data(as_text=True)
        assert plain.number not in html, typed
    html = client.get(f"/inbox?task=accept&q={quote('_燃气%')}").get_data(as_text=True)
    assert percent.number in html and plain.number not in html


def test_inbox_is_paginated_with_constant_queries(client, login_as, yubei_unit, count_queries):
    for _ in range(25):
        factories.make_submitted_application(yubei_unit, items=1, photos=False)
    login_as(Role.ACCEPTOR, district_code="500112")
    with count_queries() as first_page:
        html = client.get("/inbox").get_data(as_text=True)
    assert "共 25 条" in html
    factories.make_submitted_application(factories.make_unit("500112"), items=1, photos=False)
    with count_queries() as again:
        client.get("/inbox?page=2")
    assert again.count == first_page.count


@pytest.mark.parametrize("role", [Role.APPLICANT, Role.SUPERVISOR, Role.ADMIN])
def test_non_bureau_roles_have_no_inbox(client, login_as, role):
    login_as(role, district_code=None if role in (Role.SUPERVISOR, Role.ADMIN) else "500112")
    assert client.get("/inbox").status_code == 403


def test_days_left_count_official_working_days_across_national_day():
    """Submitted Friday 2025-09-26 (China time): 5 working days skip the 10/1–10/8 holiday
    and count Sunday 9/28 as a working day."""
    application = factories.make_submitted_application(
        factories.make_unit(),
        items=1,
        photos=False,
        submitted_at=datetime(2025, 9, 26, 2, 0, tzinfo=UTC),
    )
    task = workflow.step_for(Role.ACCEPTOR, ApplicationStatus.SUBMITTED)
    assert application.accept_due_on == date(2025, 10, 10)
    assert inbox.days_left(application, task, date(2025, 9, 30)) == 2
    assert inbox.days_left(application, task, date(2025, 10, 10)) == 0
    assert (
        inbox.days_left(application, task, date(2025, 10, 11)) == -1
    )  # 10/11 was a working Saturday


def test_days_left_in_a_year_without_calendar_data_use_monday_to_friday():
    application = factories.make_submitted_application(
        factories.make_unit(),
        items=1,
        photos=False,
        submitted_at=datetime(2040, 3, 2, 2, 0, tzinfo=UTC),  # a Friday
    )
    assert application.accept_due_on == date(2040, 3, 9)


def test_the_first_page_after_login_is_the_users_todo_with_counts(client, login_as, yubei_unit):
    factories.make_submitted_application(yubei_unit, items=1, photos=False)
    factories.make_submitted_application(yubei_unit, items=1, photos=False)
    login_as(Role.ACCEPTOR, district_code="500112")
    html = client.get("/").get_data(as_text=True)
    assert "您有2条使用登记的受理任务需要处理" in html and 'href="/inbox?task=accept"' in html
    assert "暂无使用登记的证书生成任务" in html


def test_the_applicants_first_page_counts_her_drafts(client, login_as):
    applicant = login_as(Role.APPLICANT)
    factories.make_application(applicant.unit, created_by=applicant)
    html = client.get("/").get_data(as_text=True)
    assert "您有1条使用登记的提交申请任务需要处理" in html
