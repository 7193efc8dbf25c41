"""气瓶档案: who sees which cylinders, search, filters, keyset pages, the .xlsx export, and
each cylinder's history — all through the web client."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html import unescape

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from regbackoffice import (
    certificates,
    change_workflow,
    cylinder_archive,
    cylinder_changes,
    tag_binding,
)
from regbackoffice.clock import china_today
from regbackoffice.extensions import db
from regbackoffice.models import (
    AuditLog,
    ChangeItem,
    ChangeKind,
    ChangeRequest,
    Cylinder,
    CylinderStatus,
    Role,
    TagType,
    UnitKind,
    User,
)

from . import factories
from .api_helpers import assert_envelope, png_base64, post_json, token_for
from .conftest import csrf_token_from, login

DISTRICT, OTHER_DISTRICT = "500112", "500105"
ROW = re.compile(
    r'<tr>\s*(?:<td><input[^>]*value="([^"]+)"[^>]*></td>\s*)?'
    r'<td><a href="/archive/cylinders/([^"]+)">([^<]+)</a>'
)


def listed(client, query: str = "") -> list[str]:
    """The 产品编号 of the cylinders the list page shows, in order."""
    response = client.get(f"/archive/{query}")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return [unescape(m[2]) for m in ROW.findall(response.get_data(as_text=True))]


def month_of(days: int) -> str:
    return (china_today() + timedelta(days=days)).strftime("%Y-%m")


@pytest.fixture
def world():
    """Two units in 500112 and one in 500105, with cylinders of each."""
    unit_a = factories.make_unit(DISTRICT, name="重庆档案甲燃气有限公司")
    unit_b = factories.make_unit(DISTRICT, name="重庆档案乙燃气有限公司")
    unit_c = factories.make_unit(OTHER_DISTRICT, name="重庆档案丙气体有限公司")
    cylinders = {
        "a1": factories.make_cylinder(unit_a, product_no="A-0001", internal_no="NB-7"),
        "a2": factories.make_cylinder(unit_a, product_no="A-0002"),
        "b1": factories.make_cylinder(unit_b, product_no="B-0001"),
        "c1": factories.make_cylinder(unit_c, product_no="C-0001"),
    }
    return {"units": (unit_a, unit_b, unit_c), "cylinders": cylinders}


# --- who sees what ----------------------------------------------------------------------


def test_use_unit_applicant_sees_only_its_own_registered_cylinders(client, login_as, world):
    unit_a = world["units"][0]
    login_as(Role.APPLICANT, unit=unit_a)
    assert listed(client) == ["A-0001", "A-0002"]
    own, other = world["cylinders"]["a1"], world["cylinders"]["b1"]
    assert client.get(f"/archive/cylinders/{own.id}").status_code == 200
    assert client.get(f"/archive/cylinders/{other.id}").status_code == 404
    # Another unit's cylinders cannot be reached by the unit filter either.
    assert listed(client, f"?unit={world['units'][1].id}") == ["A-0001", "A-0002"]


@pytest.mark.parametrize("role", [Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER])
def test_district_bureau_users_see_their_districts_cylinders(client, login_as, world, role):
    login_as(role, district_code=DISTRICT)
    assert listed(client) == ["A-0001", "A-0002", "B-0001"]
    assert client.get(f"/archive/cylinders/{world['cylinders']['b1'].id}").status_code == 200
    other_district = world["cylinders"]["c1"]
    assert client.get(f"/archive/cylinders/{other_district.id}").status_code == 404
    assert listed(client, "?q=C-0001") == []


def test_city_supervisor_sees_every_district_read_only(client, login_as, world):
    login_as(Role.SUPERVISOR, district_code=None)
    assert listed(client) == ["A-0001", "A-0002", "B-0001", "C-0001"]
    page = client.get("/archive/").get_data(as_text=True)
    assert "全市（只读）" in page and 'id="cylinder-selection"' not in page
    assert listed(client, f"?district={OTHER_DISTRICT}") == ["C-0001"]
    assert client.get(f"/archive/cylinders/{world['cylinders']['c1'].id}").status_code == 200


def test_the_archive_is_in_the_menu_of_units_bureaus_and_the_city_only(app, world):
    menu_link = '<a class="nav-link" href="/archive/">气瓶档案</a>'
    users = {
        Role.APPLICANT: factories.make_user(Role.APPLICANT, unit=world["units"][0]),
        Role.ACCEPTOR: factories.make_user(Role.ACCEPTOR, district_code=DISTRICT),
        Role.SUPERVISOR: factories.make_user(Role.SUPERVISOR, district_code=None),
        Role.ADMIN: factories.make_user(Role.ADMIN, district_code=None),
    }
    for role, user in users.items():
        http = app.test_client()
        login(http, user)
        shown = menu_link in http.get("/").get_data(as_text=True)
        assert shown is (role is not Role.ADMIN), role
    assert http.get("/archive/").status_code == 403  # the admin


def test_the_units_list_posts_its_selection_to_the_change_applications(client, login_as, world):
    login_as(Role.APPLICANT, unit=world["units"][0])
    html = client.get("/archive/").get_data(as_text=True)
    form = html[
        html.index('<form id="cylinder-selection"') : html.index(
            "</form>", html.index('<form id="cylinder-selection"')
        )
    ]
    ticked = re.findall(r'name="cylinder" value="([^"]+)"', form)
    assert ticked == [world["cylinders"]["a1"].id, world["cylinders"]["a2"].id]
    assert 'name="csrf_token"' in form
    # Each action posts the ticked rows to its change form (blueprints/changes/).
    actions = re.findall(r'formaction="/changes/new/(\w+)"', form)
    assert actions == ["suspend", "resume", "scrap", "cancel", "transfer", "reissue"]
    opened = client.post(
        "/changes/new/suspend",
        data={"csrf_token": csrf_token_from(html), "cylinder": ticked},
    )
    assert opened.status_code == 200
    assert all(c in opened.get_data(as_text=True) for c in ticked)


def test_an_approved_change_request_is_in_the_cylinders_history(client, login_as, world):
    unit_a, cylinder = world["units"][0], world["cylinders"]["a1"]
    applicant = login_as(Role.APPLICANT, unit=unit_a)
    change = change_workflow.submit(
        ChangeKind.SUSPEND,
        unit_a,
        applicant,
        [cylinder],
        change_workflow.ChangeFields(reason="季节性停产"),
        client.application.config,
    )
    db.session.commit()
    html = unescape(client.get(f"/archive/cylinders/{cylinder.id}").get_data(as_text=True))
    assert f"提交停用申请 {change.number}" in html
    assert "申请停用" in html  # the cylinder page's own action


def test_bureau_list_has_no_selection_and_names_the_unit(client, login_as, world):
    login_as(Role.ACCEPTOR, district_code=DISTRICT)
    html = client.get("/archive/").get_data(as_text=True)
    assert 'id="cylinder-selection"' not in html and 'name="cylinder"' not in html
    assert "重庆档案乙燃气有限公司" in html


# --- filters and search -----------------------------------------------------------------


def test_status_filter_shows_each_status_of_the_enum(client, login_as):
    unit = factories.make_unit(DISTRICT)
    made = {}
    for status in CylinderStatus:
        made[status] = factories.make_cylinder(unit, product_no=f"S-{status.value}")
        cylinder_changes.set_status(made[status], status, china_today())
    db.session.flush()
    login_as(Role.APPLICANT, unit=unit)
    for status in CylinderStatus:
        assert listed(client, f"?status={status.value}") == [f"S-{status.value}"], status
    page = client.get("/archive/?status=lost").get_data(as_text=True)
    assert "未知的使用状态“lost”，已忽略" in page
    assert len(listed(client, "?status=lost")) == len(CylinderStatus)


def test_inspection_due_filter_overdue_within_30_days_and_later(client, login_as):
    unit = factories.make_unit(DISTRICT)
    factories.make_cylinder(unit, product_no="D-overdue", next_inspection_month=month_of(-40))
    factories.make_cylinder(unit, product_no="D-this-month", next_inspection_month=month_of(0))
    factories.make_cylinder(unit, product_no="D-later", next_inspection_month=month_of(400))
    login_as(Role.APPLICANT, unit=unit)
    assert listed(client, "?due=overdue") == ["D-overdue"]
    assert listed(client, "?due=soon") == ["D-this-month"]
    assert listed(client, "?due=later") == ["D-later"]
    html = client.get("/archive/?due=overdue").get_data(as_text=True)
    assert "已超期" in html


def test_certificate_number_filter(client, login_as):
    unit = factories.make_unit(DISTRICT)
    first = factories.make_cylinder(unit, product_no="K-1")
    factories.make_cylinder(unit, product_no="K-2")
    first.certificate_no = "瓶渝11200777(26)"
    db.session.flush()
    login_as(Role.APPLICANT, unit=unit)
    assert listed(client, "?certificate_no=瓶渝11200777(26)") == ["K-1"]
    assert listed(client, "?certificate_no=瓶渝11200777") == []  # exact, not a prefix


def test_bureau_filters_by_use_unit_of_its_district_only(client, login_as, world):
    unit_a, unit_b, unit_c = world["units"]
    login_as(Role.REVIEWER, district_code=DISTRICT)
    html = client.get("/archive/").get_data(as_text=True)
    assert unit_a.name in html and unit_b.name in html and unit_c.name not in html
    assert listed(client, f"?unit={unit_b.id}") == ["B-0001"]
    # Another district's unit: ignored, and its name is not echoed back.
    html = client.get(f"/archive/?unit={unit_c.id}").get_data(as_text=True)
    assert "不在管辖范围内" in html and unit_c.name not in html


def test_search_matches_exactly_or_by_prefix_never_inside(client, login_as, world):
    unit_a = world["units"][0]
    cylinder = world["cylinders"]["a2"]
    cylinder.info_code = "CQQ500112ABCDEF1234"
    db.session.flush()
    login_as(Role.APPLICANT, unit=unit_a)
    assert listed(client, "?q=A-000") == ["A-0001", "A-0002"]  # 产品编号 prefix
    assert listed(client, "?q=A-0002") == ["A-0002"]
    assert listed(client, "?q=a-0002") == ["A-0002"]  # typed in lower case
    assert listed(client, "?q=NB-") == ["A-0001"]  # 单位内编号 prefix
    assert listed(client, "?q=CQQ500112ABCDEF1234") == ["A-0002"]  # 气瓶信息码, exact
    assert listed(client, "?q=CQQ500112") == []
    assert listed(client, f"?q={cylinder.id}") == ["A-0002"]  # 档案ID, exact
    assert listed(client, "?q=0001") == []  # not a match inside the number
    assert listed(client, "?q=A%25") == []  # % is a character, not a wildcard
    assert listed(client, "?q=A_0001") == []


@pytest.fixture
def explain_list_queries(app):
    """``with explain_list_queries() as plans:`` the plans of the archive queries the request
    ran (the exact statements and parameters), with sequential scans priced out, so a plan
    still scanning the table means no index can answer the query."""
    from contextlib import contextmanager

    import sqlalchemy as sa

    @contextmanager
    def _explain():
        seen: list[tuple[str, object]] = []

        def _before(_conn, _cursor, statement, parameters, *_args) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "FROM cylinders" in statement:
                seen.append((statement, parameters))

        with app.app_context():  # the app's engine (the test body runs in another app)
            engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", _before)
        plans: list[str] = []
        try:
            yield plans
        finally:
            sa.event.remove(engine, "before_cursor_execute", _before)
        connection = db.session.connection()
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, parameters in seen:
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            plans.append("\n".join(r[0] for r in rows))
        connection.exec_driver_sql("SET LOCAL enable_seqscan = on")

    return _explain


@pytest.mark.parametrize(
    ("role", "query"),
    [
        (Role.APPLICANT, "?q=A-00"),
        (Role.ACCEPTOR, "?q=NB-7&status=in_use"),
        (Role.SUPERVISOR, "?q=cqq500112abcdef1234"),
        (Role.APPLICANT, "?after={cursor}"),
        (Role.ACCEPTOR, "?before={cursor}"),
        (Role.SUPERVISOR, "?after={cursor}&due=overdue"),
        (Role.SUPERVISOR, "?status=scrapped"),
        (Role.ACCEPTOR, "?due=soon"),
    ],
)
def test_search_and_deep_pages_are_answered_from_indexes(
    client, login_as, world, explain_list_queries, role, query
):
    unit_a = world["units"][0]
    kwargs = {
        Role.APPLICANT: {"unit": unit_a},
        Role.ACCEPTOR: {"district_code": DISTRICT},
        Role.SUPERVISOR: {"district_code": None},
    }[role]
    login_as(role, **kwargs)
    cursor = cylinder_archive.encode_cursor(world["cylinders"]["a1"])
    with explain_list_queries() as plans:
        listed(client, query.format(cursor=cursor))
    assert len(plans) == 2  # the capped count and the page
    for plan in plans:
        assert "Seq Scan" not in plan, plan
        assert "Index" in plan, plan


# --- pagination -------------------------------------------------------------------------


def test_pages_walk_every_cylinder_once_in_order_by_keyset(
    client, login_as, monkeypatch, count_queries
):
    monkeypatch.setattr(cylinder_archive, "PER_PAGE", 3)
    unit = factories.make_unit(DISTRICT)
    numbers = [f"P-{n:03d}" for n in range(1, 9)]
    for number in reversed(numbers):
        factories.make_cylinder(unit, product_no=number)
    login_as(Role.APPLICANT, unit=unit)

    seen, url, pages = [], "/archive/?status=in_use", []
    while url:
        with count_queries() as counter:
            html = client.get(url).get_data(as_text=True)
        assert not any("OFFSET" in s.upper() for s in counter.statements)
        assert "共 8条" in html
        rows = [unescape(m[2]) for m in ROW.findall(html)]
        pages.append(rows)
        seen += rows
        found = re.search(r'rel="next" href="([^"#]+)"', html)
        url = unescape(found[1]) if found else None
        if url:
            assert "status=in_use" in url  # the filter goes along
    assert seen == numbers
    assert [len(p) for p in pages] == [3, 3, 2]

    # And back again from the last page.
    back = re.search(r'rel="prev" href="([^"#]+)"', html)
    assert back
    html = client.get(unescape(back[1])).get_data(as_text=True)
    assert [unescape(m[2]) for m in ROW.findall(html)] == numbers[3:6]
    # A cursor not made here gives the first page, not an error.
    assert listed(client, "?after=not-a-cursor") == numbers[:3]


def test_the_total_is_counted_only_up_to_the_cap(client, login_as, monkeypatch):
    monkeypatch.setattr(cylinder_archive, "COUNT_CAP", 2)
    unit = factories.make_unit(DISTRICT)
    for n in range(3):
        factories.make_cylinder(unit, product_no=f"T-{n}")
    login_as(Role.APPLICANT, unit=unit)
    assert "共 2条以上" in client.get("/archive/").get_data(as_text=True)


# --- export -----------------------------------------------------------------------------


def _sheet(response):
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    return load_workbook(io.BytesIO(response.data)).active


def test_export_holds_the_filtered_cylinders_as_text(client, login_as):
    unit = factories.make_unit(DISTRICT, name="重庆导出燃气有限公司")
    kept = factories.make_cylinder(unit, product_no="000123", internal_no="=1+1")
    stopped = factories.make_cylinder(unit, product_no="000124")
    cylinder_changes.set_status(stopped, CylinderStatus.STOPPED, china_today())
    db.session.flush()
    login_as(Role.APPLICANT, unit=unit)

    response = client.get("/archive/export.xlsx?status=in_use")
    assert "%E5%9C%A8%E7%94%A8" in response.headers["Content-Disposition"]  # 在用 in the name
    sheet = _sheet(response)
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert "筛选条件：使用状态：在用" in rows[0][0]
    header = rows[1]
    assert header[:5] == ["气瓶档案ID", "使用单位", "区县", "设备品种", "产品编号"]
    assert len(rows) == 3  # heading, header, the one 在用 cylinder
    values = dict(zip(header, rows[2], strict=True))
    assert values["气瓶档案ID"] == kept.id
    assert values["产品编号"] == "000123"  # leading zeros kept
    assert values["单位内编号"] == "=1+1"  # text, not a formula
    assert values["使用状态"] == "在用"
    assert values["区县"] == "渝北区"
    assert values["最近一次检验日期"] == "2022-05-20"
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.value is None or cell.data_type == "s", (cell.coordinate, cell.value)
    entry = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "export", AuditLog.object_type == "cylinders")
    ).one()
    assert entry.detail == {"filter": "使用状态：在用", "rows": 1}


def test_export_is_scoped_and_capped(client, login_as, monkeypatch, world):
    monkeypatch.setattr(cylinder_archive, "EXPORT_ROW_CAP", 2)
    login_as(Role.ACCEPTOR, district_code=DISTRICT)
    rows = [[c.value for c in r] for r in _sheet(client.get("/archive/export.xlsx")).iter_rows()]
    assert "仅导出前2条" in rows[0][0]
    assert [r[4] for r in rows[2:]] == ["A-0001", "A-0002"]  # of 3 in the district; none of 500105


def test_city_export_of_one_district(app, world):
    http = app.test_client()
    login(http, factories.make_user(Role.SUPERVISOR, district_code=None))
    sheet = _sheet(http.get(f"/archive/export.xlsx?district={OTHER_DISTRICT}"))
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert "全市" in rows[0][0] and "区县：江北区" in rows[0][0]
    assert [(r[1], r[2], r[4]) for r in rows[2:]] == [
        ("重庆档案丙气体有限公司", "江北区", "C-0001")
    ]


# --- one cylinder's page and history ----------------------------------------------------


def _history(client, cylinder_id: str) -> list[list[str]]:
    html = client.get(f"/archive/cylinders/{cylinder_id}").get_data(as_text=True)
    table = html[html.index('id="cylinder-history"') :]
    table = table[: table.index("</table>")]
    return [
        [
            unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr data-kind[^>]*>(.*?)</tr>", table, re.S)
    ]


def cancel_task_number(cylinder: Cylinder) -> str:
    return db.session.scalars(
        select(ChangeRequest.number)
        .join(ChangeItem, ChangeItem.change_id == ChangeRequest.id)
        .where(ChangeItem.cylinder_id == cylinder.id, ChangeRequest.kind == ChangeKind.CANCEL)
    ).one()


def test_history_tells_the_cylinders_life_in_date_order_with_who_acted(client, login_as):
    unit = factories.make_unit(DISTRICT, name="重庆履历燃气有限公司")
    application = factories.make_approved_application(unit, items=1)
    acceptor = db.session.get(User, application.accepted_by_id)
    certificate = certificates.generate(application, acceptor, application.version_id)
    cylinder = db.session.scalars(
        select(Cylinder).where(Cylinder.application_id == application.id)
    ).one()
    platform, _ = factories.make_api_client(unit)
    import base64

    tag_binding.bind(
        platform,
        cylinder,
        TagType.QR,
        "https://trace.example.invalid/q/history-1",
        base64.b64decode(png_base64()),
    )
    body = factories.make_unit(DISTRICT, kind=UnitKind.INSPECTION_BODY)
    inspector, _ = factories.make_api_client(body, scopes=("inspection",))
    record = {
        "id": cylinder.id,
        "inspect_date": china_today().isoformat(),
        "inspection_org": "重庆市特种设备检测研究院",
        "conclusion": "不合格",
        "inspect_type": "定期",
        "record_no": "JY-0001",
    }
    assert_envelope(
        post_json(client, "/api/v1/inspections", {"records": [record]}, token_for(inspector)),
        200,
    )
    certificates.void_certificate(certificate, acceptor, "使用单位申请注销")
    db.session.flush()

    login_as(Role.APPLICANT, unit=unit)
    history = _history(client, cylinder.id)
    titles = [row[1] for row in history]
    assert titles == [
        "提交使用登记申请",
        "受理",
        "审核通过",
        "审批通过",
        "发放使用登记证",
        "登记入档",
        "绑定信息化标签",
        "定期检验",
        "使用状态变更为停用",
        # The 不合格 record opened a 注销 task for the bureau (a change request).
        f"提交注销申请 {cancel_task_number(cylinder)}",
        "注销使用登记证",
    ]
    by_title = {row[1]: row for row in history}
    names = {
        step: db.session.get(User, user_id).display_name
        for step, user_id in (
            ("受理", application.accepted_by_id),
            ("审核通过", application.reviewed_by_id),
            ("审批通过", application.approved_by_id),
        )
    }
    for step, name in names.items():
        assert by_title[step][3] == name
        assert f"申请编号：{application.number}" in by_title[step][2]
    assert by_title["发放使用登记证"][3] == acceptor.display_name
    assert certificate.number in by_title["发放使用登记证"][2]
    assert "登记时使用状态：在用" in by_title["登记入档"][2]
    assert cylinder.info_code in by_title["绑定信息化标签"][2]
    assert by_title["绑定信息化标签"][3] == "重庆履历燃气有限公司（企业平台）"
    assert "检验结论：不合格" in by_title["定期检验"][2]
    assert by_title["定期检验"][3] == "重庆市特种设备检测研究院"
    assert by_title["使用状态变更为停用"][2] == "在用 → 停用"
    assert "使用单位申请注销" in by_title["注销使用登记证"][2]
    dates = [row[0][:10] for row in history]
    assert dates == sorted(dates) and dates[-1] == china_today().isoformat()

    page = client.get(f"/archive/cylinders/{cylinder.id}").get_data(as_text=True)
    assert "重庆履历燃气有限公司" in page and certificate.number in page
    assert "已注销" in page and f'href="/applications/{application.id}"' in page


def test_history_orders_back_dated_events_by_their_own_dates(client, login_as):
    unit = factories.make_unit(DISTRICT)
    cylinder = factories.make_cylinder(unit)  # registered 2026-01-05
    today = china_today()
    cylinder_changes.set_status(cylinder, CylinderStatus.STOPPED, today - timedelta(days=3))
    db.session.flush()
    cylinder_changes.set_status(cylinder, CylinderStatus.IN_USE, today - timedelta(days=1))
    db.session.flush()
    login_as(Role.ACCEPTOR, district_code=DISTRICT)
    history = _history(client, cylinder.id)
    assert [row[1] for row in history] == ["登记入档", "使用状态变更为停用", "使用状态变更为在用"]
    assert history[0][0] == "2026-01-05"
    assert history[1][0] == (today - timedelta(days=3)).isoformat()


def test_a_new_history_source_is_merged_in_date_order(client, login_as, monkeypatch):
    """The hook the change applications use: one function cylinder → entries."""
    unit = factories.make_unit(DISTRICT)
    cylinder = factories.make_cylinder(unit)
    from datetime import date

    def change_requests(c):
        assert c.id == cylinder.id
        yield cylinder_archive.HistoryEntry(
            on=date(2025, 12, 1), kind="change", title="使用单位更名", actor="经办人甲"
        )

    monkeypatch.setattr(cylinder_archive, "HISTORY_SOURCES", [*cylinder_archive.HISTORY_SOURCES])
    cylinder_archive.history_source(change_requests)
    login_as(Role.APPLICANT, unit=unit)
    history = _history(client, cylinder.id)
    assert [row[1] for row in history] == ["使用单位更名", "登记入档"]
    assert history[0][3] == "经办人甲"


def test_cylinder_page_shows_its_data_unit_status_and_next_inspection(client, login_as):
    unit = factories.make_unit(DISTRICT, name="重庆详情燃气有限公司")
    cylinder = factories.make_cylinder(
        unit, product_no="X-9", next_inspection_month=month_of(-40), internal_no="NB-X9"
    )
    login_as(Role.APPROVER, district_code=DISTRICT)
    html = client.get(f"/archive/cylinders/{cylinder.id}").get_data(as_text=True)
    for text in (
        "X-9",
        "NB-X9",
        "测试气瓶制造厂",
        "2022-05",
        "重庆详情燃气有限公司",
        unit.credit_code,
        "渝北区",
        "在用",
        month_of(-40),
        "已超期",
        "瓶渝11200001(26)",
    ):
        assert text in html, text
