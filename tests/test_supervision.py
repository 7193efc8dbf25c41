"""监管看板: the city supervisor's read-only dashboard, drill-down and exports (issue 7).

Disabling a user ends the session they hold: see
tests/test_admin.py::test_disabling_a_user_from_the_admin_page_ends_their_session.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlalchemy import select

from regbackoffice import api_records, certificates
from regbackoffice.clock import china_today, format_china
from regbackoffice.extensions import db
from regbackoffice.models import (
    ApplicationStatus,
    AuditLog,
    CylinderStatus,
    Role,
    StatRefresh,
    utcnow,
)
from regbackoffice.stats import summaries, tables

from . import factories

DASHBOARD_URLS = [
    "/supervision/",
    "/supervision/export/status.xlsx",
    "/supervision/districts/500112",
    "/supervision/districts/500112/export.xlsx",
]


class TableCells(HTMLParser):
    """The text of each cell of one <table> inside the element with ``id``."""

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.depth = 0  # >0 while inside the element
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if dict(attrs).get("id") == self.element_id:
            self.depth = 1
        elif self.depth:
            self.depth += 1
        if not self.depth:
            return
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if not self.depth:
            return
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        self.depth -= 1

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def screen_table(html: str, element_id: str) -> list[list[str]]:
    parser = TableCells(element_id)
    parser.feed(html)
    return parser.rows


def xlsx_rows(content: bytes) -> list[list[str]]:
    sheet = load_workbook(io.BytesIO(content)).active
    return [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]


def submitted_in(district: str, *, due: date) -> object:
    application = factories.make_submitted_application(
        factories.make_unit(district), items=1, photos=False
    )
    application.accept_due_on = due
    db.session.flush()
    return application


@pytest.fixture
def supervisor(login_as):
    return login_as(Role.SUPERVISOR, district_code=None)


@pytest.mark.parametrize(
    "role", [Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER, Role.APPLICANT, Role.ADMIN]
)
def test_district_users_applicants_and_admins_are_refused_the_dashboard(client, login_as, role):
    user = login_as(role, district_code="500112")
    for url in DASHBOARD_URLS:
        assert client.get(url).status_code == 403, url
    refusals = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "role_denied", AuditLog.actor_id == user.id)
    ).all()
    assert len(refusals) == len(DASHBOARD_URLS)


def test_every_post_is_refused_for_the_supervisor(app, client, supervisor):
    from .conftest import post_form

    for url in DASHBOARD_URLS:
        response = post_form(client, url, page="/supervision/")
        assert response.status_code == 403, url
    # And every form endpoint of the whole back office, not only the dashboard's pages.
    posting = [
        rule
        for rule in app.url_map.iter_rules()
        if "POST" in rule.methods
        and not rule.endpoint.startswith(("api.", "auth."))
        and not rule.arguments - {"application_id", "user_id", "unit_id", "client_id", "item_id"}
    ]
    assert len(posting) > 10
    for rule in posting:
        url = rule.build(dict.fromkeys(rule.arguments, 1))[1]
        assert post_form(client, url, page="/supervision/").status_code == 403, url
    refused = db.session.scalars(
        select(AuditLog).where(
            AuditLog.action == "read_only_denied", AuditLog.actor_id == supervisor.id
        )
    ).all()
    assert len(refused) == len(DASHBOARD_URLS) + len(posting)


def test_dashboard_counts_states_and_overdue_work_per_district(client, supervisor):
    today = china_today()
    submitted_in("500112", due=today - timedelta(days=3))  # overdue 受理
    submitted_in("500112", due=today + timedelta(days=3))
    accepted = factories.make_accepted_application(factories.make_unit("500105"), items=1)
    accepted.decision_due_on = today - timedelta(days=1)  # overdue 审结
    db.session.flush()

    html = client.get("/supervision/").get_data(as_text=True)
    assert "统计更新于" in html
    status = screen_table(html, "table-status")
    # 待补正 (back with the applicant, the clock paused) has its own column.
    assert status[0][:4] == ["区县", "待受理", "待补正", "待审核"]
    by_name = {row[0]: row for row in status[1:]}
    assert by_name["渝北区"][1] == "2" and by_name["江北区"][3] == "1"
    assert by_name["全市"][1] == "2" and by_name["全市"][-1] == "3"
    overdue = {row[0]: row[1:] for row in screen_table(html, "table-overdue")[1:]}
    assert overdue["渝北区"] == ["1", "0", "1"]
    assert overdue["江北区"] == ["0", "1", "1"]
    assert overdue["全市"] == ["1", "1", "2"]


def medians_after_accepting(client, district: str, days_to_accept: tuple[float, ...]) -> dict:
    """受理 an hour ago after the given days; the dashboard's medians table by district."""
    now = datetime.now(UTC)
    for days in days_to_accept:
        application = factories.make_accepted_application(factories.make_unit(district), items=1)
        application.submitted_at = now - timedelta(days=days, hours=1)
        application.accepted_at = now - timedelta(hours=1)
    db.session.flush()
    summaries.rebuild_summaries()
    html = client.get("/supervision/").get_data(as_text=True)
    return {row[0]: row[1:] for row in screen_table(html, "table-medians")[1:]}


def test_median_days_per_step_by_district(client, supervisor):
    medians = medians_after_accepting(client, "500112", (1, 2, 6))
    assert medians["渝北区"] == ["2.0", "—", "—"]
    assert medians["全市"][0] == "2.0"


def test_median_days_are_rounded_once_from_exact_durations(client, supervisor):
    """5.10 and 5.15 days: the median is 5.125, shown as 5.1 (not 5.2 from rounded buckets)."""
    assert medians_after_accepting(client, "500105", (5.10, 5.15))["江北区"][0] == "5.1"


def report_violation(district: str):
    """A stopped cylinder filled anyway, reported through the API (违规充装)."""
    unit = factories.make_unit(district)
    cylinder = factories.make_cylinder(unit, status=CylinderStatus.STOPPED, medium_code="G13")
    api_client, _secret = factories.make_api_client(unit)
    result = api_records.submit_batch(
        api_client,
        "filling",
        [
            {
                "id": cylinder.id,
                "medium_code": "G13",
                "filler": "王小明",
                "fill_date": "2026-01-10",
                "filling_unit_name": "江北充装站",
            }
        ],
    )
    assert result.accepted == 1
    return unit, cylinder, api_client


def test_summaries_count_registrations_and_api_violations(client, supervisor):
    unit, cylinder, api_client = report_violation("500105")
    factories.make_cylinder(unit)
    summaries.rebuild_summaries()

    html = client.get("/supervision/?start=2025-12-01&end=2026-02-28").get_data(as_text=True)
    monthly = {row[0]: row[1:] for row in screen_table(html, "table-monthly")[1:]}
    assert monthly["2026-01"] == ["0", "2"]  # make_cylinder registers on 2026-01-05
    assert monthly["2025-12"] == ["0", "0"]
    violations = screen_table(html, "table-violations")
    assert "气瓶已停用" in violations[0]
    jiangbei = next(row for row in violations if row[0] == "江北区")
    assert jiangbei[1] == "1"
    recent = screen_table(html, "table-recent_violations")
    assert recent[1] == ["2026-01-10", cylinder.id, "江北充装站", "王小明", "气瓶已停用"]
    platforms = screen_table(html, "table-platforms")
    assert any(row[2] == api_client.app_id and row[3] == "启用" for row in platforms)


def overdue_change_in(district: str):
    """A 停用 request past its 受理 time limit (the table of overdue change requests)."""
    from regbackoffice import change_workflow
    from regbackoffice.models import ChangeKind

    unit = factories.make_unit(district)
    change = change_workflow.submit(
        ChangeKind.SUSPEND,
        unit,
        factories.make_user(Role.APPLICANT, unit=unit),
        [factories.make_cylinder(unit)],
        change_workflow.ChangeFields(reason="检修"),
        {"CHANGE_ACCEPT_LIMIT_WORKDAYS": 5},
    )
    change.due_on = china_today() - timedelta(days=1)
    db.session.flush()
    return change


def test_each_dashboard_export_equals_the_screen_and_is_audited(client, supervisor):
    submitted_in("500112", due=china_today() - timedelta(days=1))
    report_violation("500112")
    overdue_change_in("500112")
    summaries.rebuild_summaries()
    query = "?start=2025-06-01&end=2026-05-31"
    html = client.get(f"/supervision/{query}").get_data(as_text=True)
    for key in tables.TABLE_KEYS:
        response = client.get(f"/supervision/export/{key}.xlsx{query}")
        assert response.status_code == 200
        assert response.mimetype.endswith("spreadsheetml.sheet")
        on_screen = screen_table(html, f"table-{key}")
        assert len(on_screen) > 1 and "暂无数据" not in on_screen[1], key
        assert xlsx_rows(response.data) == on_screen, key
    exports = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "export", AuditLog.actor_id == supervisor.id)
    ).all()
    assert sorted(e.object_id for e in exports) == sorted(tables.TABLE_KEYS)
    assert client.get("/supervision/export/nothing.xlsx").status_code == 404


def test_exports_write_formula_like_text_as_text(client, supervisor):
    unit = factories.make_unit("500112", name='=HYPERLINK("http://evil.example","点我")')
    factories.make_api_client(unit)
    response = client.get("/supervision/export/platforms.xlsx")
    rows = xlsx_rows(response.data)
    assert any(row[0] == '=HYPERLINK("http://evil.example","点我")' for row in rows)
    with zipfile.ZipFile(io.BytesIO(response.data)) as package:
        sheet_xml = package.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml


def test_drill_down_lists_one_districts_applications_and_opens_the_detail(client, supervisor):
    today = china_today()
    late = submitted_in("500112", due=today - timedelta(days=2))
    on_time = submitted_in("500112", due=today + timedelta(days=2))
    elsewhere = submitted_in("500105", due=today - timedelta(days=2))

    html = client.get("/supervision/districts/500112").get_data(as_text=True)
    assert late.number in html and on_time.number in html and elsewhere.number not in html
    only_late = client.get("/supervision/districts/500112?overdue=1").get_data(as_text=True)
    assert late.number in only_late and on_time.number not in only_late
    accepted_only = client.get("/supervision/districts/500112?status=accepted")
    assert late.number not in accepted_only.get_data(as_text=True)
    assert client.get("/supervision/districts/500112?status=bogus").status_code == 400
    assert client.get("/supervision/districts/999999").status_code == 404

    detail = client.get(f"/bureau/applications/{late.id}")
    assert detail.status_code == 200 and late.number in detail.get_data(as_text=True)

    export = client.get("/supervision/districts/500112/export.xlsx?overdue=1")
    rows = xlsx_rows(export.data)
    assert [row[0] for row in rows[1:]] == [late.number]
    audit_row = db.session.scalar(
        select(AuditLog).where(
            AuditLog.action == "export", AuditLog.object_type == "district_applications"
        )
    )
    assert audit_row.object_id == "500112" and audit_row.detail["rows"] == 1


def test_bad_month_range_is_explained_and_the_default_is_used(client, supervisor):
    html = client.get("/supervision/?start=2026-13").get_data(as_text=True)
    assert "起始月份“2026-13”不是有效月份" in html
    html = client.get("/supervision/?start=2026-03&end=2026-01").get_data(as_text=True)
    assert "起始月份晚于截止月份" in html


def test_a_day_range_is_counted_as_whole_months_and_the_page_says_so(client, supervisor):
    """Both figures of a month's row, and every table, count the same whole months."""
    approved = factories.make_approved_application(items=2)
    acceptor = factories.make_user(Role.ACCEPTOR, district_code=approved.district_code)
    certificates.generate(approved, acceptor, approved.version_id, today=date(2026, 11, 24))
    summaries.rebuild_summaries()
    html = client.get("/supervision/?start=2026-10-01&end=2026-11-13").get_data(as_text=True)
    assert "看板按整月统计：截止月份2026-11-13已按整月计为2026-11" in html
    assert "统计范围：2026-10 至 2026-11（按整月）" in html
    monthly = {row[0]: row[1:] for row in screen_table(html, "table-monthly")[1:]}
    assert monthly == {"2026-10": ["0", "0"], "2026-11": ["1", "2"]}
    export = client.get("/supervision/export/monthly.xlsx?start=2026-10&end=2026-11")
    assert "monthly-2026-10-2026-11.xlsx" in export.headers["Content-Disposition"]
    assert xlsx_rows(export.data)[1:] == [["2026-10", "0", "0"], ["2026-11", "1", "2"]]


def test_violations_per_month_have_a_table_equal_to_a_direct_count(client, supervisor):
    report_violation("500112")
    report_violation("500105")
    summaries.rebuild_summaries()
    html = client.get("/supervision/?start=2025-12&end=2026-02").get_data(as_text=True)
    on_screen = {row[0]: row[1] for row in screen_table(html, "table-violations_monthly")[1:]}
    direct = dict(
        db.session.execute(
            sa.text(
                "SELECT to_char(fill_date, 'YYYY-MM'), count(*)::text FROM filling_records"
                " WHERE violation GROUP BY 1"
            )
        ).all()
    )
    assert on_screen == {"2025-12": "0", "2026-01": direct["2026-01"], "2026-02": "0"}
    assert direct["2026-01"] == "2"


def test_applications_in_draft_are_not_the_bureaus_business(client, supervisor):
    unit = factories.make_unit("500112")
    factories.make_application(unit)
    assert tables.status_table().rows == [["全市", *["0"] * len(tables.STATUS_COLUMNS), "0"]]
    factories.make_submitted_application(unit, items=1, photos=False)
    table = tables.status_table()
    assert "草稿" not in table.headers
    submitted = table.headers.index("待受理")
    city = table.rows[-1]
    assert city[0] == "全市" and city[submitted] == "1" and city[-1] == "1"


def test_a_withdrawn_application_is_counted_and_listed_as_withdrawn_not_voided(client, supervisor):
    unit = factories.make_unit("500112")
    voided = factories.make_submitted_application(unit, items=1, photos=False)
    withdrawn = factories.make_submitted_application(unit, items=1, photos=False)
    for application in (voided, withdrawn):
        application.status = ApplicationStatus.VOIDED
        application.voided_at = utcnow()
        application.void_reason = "测试"
    withdrawn.withdrawn_at = withdrawn.voided_at  # 撤回申请 by the applicant in 待补正
    db.session.flush()
    table = tables.status_table()
    city = table.rows[-1]
    assert city[table.headers.index("已作废")] == "1"
    assert city[table.headers.index("已撤回")] == "1"
    assert city[-1] == "2"
    dashboard = client.get("/supervision/").get_data(as_text=True)
    assert "/supervision/districts/500112?status=withdrawn" in dashboard
    listed = {
        status: client.get(f"/supervision/districts/500112?status={status}").get_data(as_text=True)
        for status in ("voided", "withdrawn")
    }
    assert voided.number in listed["voided"] and withdrawn.number not in listed["voided"]
    assert withdrawn.number in listed["withdrawn"] and voided.number not in listed["withdrawn"]
    assert "已撤回" in listed["withdrawn"]


def test_summaries_are_rebuilt_when_stale_and_the_page_says_when(client, supervisor):
    assert "统计更新于 尚未统计" in client.get("/supervision/").get_data(as_text=True)
    assert summaries.refreshed_at() is None
    assert summaries.refresh_if_stale(3600) is True
    stamp = summaries.refreshed_at()
    assert stamp is not None
    assert summaries.refresh_if_stale(3600) is False  # fresh: the worker's sweep leaves it
    assert summaries.refreshed_at() == stamp
    # Two hours later the sweep rebuilds, and the page shows the new time (China time).
    row = db.session.get(StatRefresh, summaries.REFRESH_NAME)
    row.refreshed_at = stamp - timedelta(hours=2)
    db.session.flush()
    assert summaries.refresh_if_stale(3600) is True
    assert summaries.refreshed_at() > stamp - timedelta(hours=2)
    html = client.get("/supervision/").get_data(as_text=True)
    assert f"统计更新于 {format_china(summaries.refreshed_at())}" in html


def test_every_number_of_a_seeded_period_equals_a_direct_count(client, supervisor):
    """Certificates, registrations per month and per medium: the page against own SQL."""
    for district, issued, items in (
        ("500112", date(2026, 9, 30), 2),
        ("500112", date(2026, 10, 1), 3),
        ("500105", date(2026, 10, 31), 1),
        ("500105", date(2026, 11, 1), 2),
    ):
        approved = factories.make_approved_application(factories.make_unit(district), items=items)
        clerk = factories.make_user(Role.ACCEPTOR, district_code=district)
        certificates.generate(approved, clerk, approved.version_id, today=issued)
    summaries.rebuild_summaries()
    html = client.get("/supervision/?start=2026-10&end=2026-10").get_data(as_text=True)

    def sql(statement: str) -> list:
        bounds = {"low": date(2026, 10, 1), "high": date(2026, 11, 1)}
        return db.session.execute(sa.text(statement), bounds).all()

    (certified,) = sql(
        "SELECT count(*) FROM certificates WHERE issue_date >= :low AND issue_date < :high"
    )[0]
    (registered,) = sql(
        "SELECT count(*) FROM cylinders"
        " WHERE registration_date >= :low AND registration_date < :high"
    )[0]
    monthly = screen_table(html, "table-monthly")[1:]
    assert monthly == [["2026-10", str(certified), str(registered)]] == [["2026-10", "2", "4"]]
    per_medium = {
        (medium, district): str(n)
        for medium, district, n in sql(
            "SELECT medium_code, district_code, count(*) FROM cylinders"
            " WHERE registration_date >= :low AND registration_date < :high GROUP BY 1, 2"
        )
    }
    media = screen_table(html, "table-media")
    headers, rows = media[0], media[1:]
    names = {"500112": "渝北区", "500105": "江北区"}
    for (medium, district), count in per_medium.items():
        row = next(r for r in rows if r[0].endswith(f"（{medium}）"))
        assert row[headers.index(names[district])] == count
