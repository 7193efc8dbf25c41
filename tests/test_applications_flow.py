import io
import re

from openpyxl import load_workbook
from sqlalchemy import select

from regbackoffice import applications
from regbackoffice.extensions import db
from regbackoffice.imports.template import HEADERS
from regbackoffice.models import Application, ApplicationItem, ApplicationStatus, Role

from . import factories
from .conftest import post_form, post_import
from .xlsx_helpers import good_row, workbook_bytes


def test_applicant_creates_application_prefilled_from_unit(client, login_as):
    applicant = login_as(Role.APPLICANT)
    page = client.get("/applications/new").get_data(as_text=True)
    assert applicant.unit.name in page and applicant.unit.credit_code in page
    response = post_form(
        client,
        "/applications/new",
        {
            "unit_name": applicant.unit.name,
            "safety_department": "安全部",
            "contact_name": "王五",
            "contact_phone": "13800000000",
            "credit_code": applicant.unit.credit_code,
            "address": "重庆市渝北区某路1号",
            "district_code": "500105",
        },
        page="/applications/new",
    )
    assert response.status_code == 302
    application = db.session.scalar(
        select(Application).where(Application.unit_id == applicant.unit_id)
    )
    assert application.district_code == "500105" and application.contact_name == "王五"
    assert application.status is ApplicationStatus.DRAFT and application.number.startswith("SQ")
    listing = client.get("/applications/").get_data(as_text=True)
    assert application.number in listing and "草稿" in listing


def test_the_unit_form_shows_every_problem_at_once_beside_its_field(client, login_as):
    applicant = login_as(Role.APPLICANT)
    response = post_form(
        client,
        "/applications/new",
        {
            "unit_name": applicant.unit.name,
            "safety_department": "",
            "contact_name": "王五",
            "contact_phone": "12345",
            "credit_code": "91500112MA00000000",
            "address": "重庆市渝北区某路1号",
            "district_code": "500105",
        },
        page="/applications/new",
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)

    def feedback(name: str) -> str:
        block = html[html.index(f'for="{name}"') :].split('<div class="col-md-6">')[0]
        return " ".join(re.findall(r'<div class="invalid-feedback">([^<]*)</div>', block))

    assert "请填写安全管理部门" in feedback("safety_department")
    assert "联系电话“12345”格式不正确" in feedback("contact_phone")
    assert "统一社会信用代码" in feedback("credit_code")
    assert (
        db.session.scalar(select(Application).where(Application.unit_id == applicant.unit_id))
        is None
    )
    for phone in ("023-12345678", "02312345678", "13800000000", "023-1234567-801"):
        assert not applications.unit_info_problems_by_field(
            applications.UnitInfo(**{**BLANK_INFO, "contact_phone": phone})
        ).get("contact_phone"), phone


BLANK_INFO = dict.fromkeys(
    ("unit_name", "safety_department", "contact_name", "contact_phone", "credit_code", "address"),
    "x",
)


def test_template_has_headers_notes_dropdowns_and_example(client, login_as):
    login_as(Role.APPLICANT)
    response = client.get("/applications/template.xlsx")
    assert response.status_code == 200
    wb = load_workbook(io.BytesIO(response.data))
    ws = wb["气瓶信息"]
    assert tuple(c.value for c in ws[1][: len(HEADERS)]) == HEADERS
    assert all(c.comment and c.comment.text for c in ws[1][: len(HEADERS)])
    lists = {str(dv.sqref).split(":")[0]: dv.formula1 for dv in ws.data_validations.dataValidation}
    assert set(lists) == {"A2", "C2", "K2"}
    # Warnings, not stops: the codes the notes invite (2320, G13) may be typed too.
    assert {dv.errorStyle for dv in ws.data_validations.dataValidation} == {"warning"}
    assert ws["B2"].number_format == "@" and ws["F2"].number_format == "0.00"
    assert ws["H2"].number_format == "yyyy-mm-dd"
    assert wb["填写示例"]["B2"].value == "123210000001"
    assert wb["代码表"].sheet_state == "hidden"


def test_import_through_the_page_adds_rows_and_lists_failures(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    data = workbook_bytes([good_row("A-1"), good_row("A-2", volume="abc")])
    response = post_form(
        client,
        f"/applications/{application.id}/import",
        {"file": (io.BytesIO(data), "list.xlsx")},
        page=f"/applications/{application.id}",
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    result = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "成功导入 <strong>1</strong> 行，失败 <strong>1</strong> 行" in result
    assert "第3行" in result and "容积(L)“abc”不是数字" in result
    db.session.refresh(application)
    assert application.item_count == 1
    products = db.session.scalars(
        select(ApplicationItem.product_no).where(ApplicationItem.application_id == application.id)
    ).all()
    assert products == ["A-1"]


def _post_file(client, application, data, name="list.xlsx"):
    response = post_import(client, application, data, name)
    assert response.status_code == 302
    return response.headers["Location"]


def test_download_error_data_fix_and_reimport_through_the_pages(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    result_url = _post_file(
        client,
        application,
        workbook_bytes([good_row("E-1"), good_row("E-2", next_inspection_month="2001-01")]),
    )
    assert "下载错误数据" in client.get(result_url).get_data(as_text=True)
    download = client.get(f"{result_url}/errors.xlsx")
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(download.data))
    ws = wb["气瓶信息"]
    assert ws.cell(2, 2).value == "E-2" and "已超期未检" in ws.cell(2, len(HEADERS) + 1).value
    ws.cell(2, 9).value = "2028-05"  # 4 years after the last inspection (LPG, TSG 23)
    fixed = io.BytesIO()
    wb.save(fixed)
    second = _post_file(client, application, fixed.getvalue(), name="错误数据.xlsx")
    assert "成功导入 <strong>1</strong> 行，失败 <strong>0</strong> 行" in client.get(
        second
    ).get_data(as_text=True)
    db.session.refresh(application)
    assert application.item_count == 2
