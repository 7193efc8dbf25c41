"""Import fidelity (issue 13): a value is imported exactly as the applicant meant it, or its
row is refused naming the cell, the problem and the fix. Through the web import where the
behaviour shows there."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import pytest
import sqlalchemy as sa
import sqlalchemy.orm
from msoffcrypto.format.ooxml import OOXMLFile
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from regbackoffice import applications
from regbackoffice.archive import CylinderData
from regbackoffice.extensions import db
from regbackoffice.imports import ImportRejected
from regbackoffice.imports import template as import_template
from regbackoffice.imports.cells import FORMULA_MESSAGE
from regbackoffice.imports.persistence import live_tag_key
from regbackoffice.imports.reader import parse_workbook
from regbackoffice.models import (
    ApplicationItem,
    ImportStatus,
    Medium,
    Role,
    TagType,
    Unit,
    User,
    Variety,
)

from . import factories
from .conftest import post_form, post_import, sqlite_demo_app
from .xlsx_helpers import (
    HEADERS,
    csv_bytes,
    good_row,
    libreoffice_saved,
    ods_bytes,
    rewrite_part,
    set_cell_xml,
    workbook_bytes,
    xls_bytes,
)

TODAY = date(2026, 11, 26)


@pytest.fixture
def draft(client, login_as):
    applicant = login_as(Role.APPLICANT)
    return factories.make_application(applicant.unit, created_by=applicant)


def _upload(client, application, data: bytes, name: str = "list.xlsx"):
    """POST the file to the import page; the page the applicant then sees."""
    response = post_import(client, application, data, name)
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    return location, client.get(location).get_data(as_text=True)


def _refused(client, application, data: bytes, name: str = "list.xlsx") -> str:
    """POST a file refused as a whole; the page with the flashed message."""
    return post_import(client, application, data, name, follow_redirects=True).get_data(
        as_text=True
    )


def _item_form(product_no: str, **overrides: str) -> dict[str, str]:
    """The item edit form of a valid cylinder, with ``overrides``."""
    form = {
        "variety": "2320",
        "product_no": product_no,
        "medium": "G13",
        "manufacturer": "测试气瓶制造厂",
        "manufacture_month": "2022-05",
        "pressure": "2.1",
        "volume": "35.5",
        "last_inspection_date": "",
        "next_inspection_month": "2028-05",
        "internal_no": "",
        "tag_type": "",
        "tag_value": "",
        "design_life_years": "",
    }
    return {**form, **overrides}


def _import(application, data: bytes, name: str = "list.xlsx"):
    return factories.import_under_job(application, parse_workbook(data, name), today=TODAY)


def _products(application) -> list[str]:
    return db.session.scalars(
        select(ApplicationItem.product_no)
        .where(ApplicationItem.application_id == application.id)
        .order_by(ApplicationItem.row_no)
    ).all()


def _reasons(outcome, row: int) -> list[str]:
    return next(f["reasons"] for f in outcome.failed if f["row"] == row)


def _sheet(rows, *, title="气瓶信息", decorate=None) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = title
    ws.append(list(HEADERS))
    for row in rows:
        ws.append(row)
    if decorate:
        decorate(wb, ws)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ----------------------------------------------------------------------------- numbers


def test_product_number_cell_shown_in_scientific_notation_is_refused(client, draft):
    def scientific(_wb, ws):
        ws["B2"].number_format = "0.00E+00"

    data = _sheet([good_row(123220000001), good_row("SCI-OK")], decorate=scientific)
    _url, page = _upload(client, draft, data)
    assert "产品编号（镂空码）被Excel存成了数字，已丢失位数（单元格显示为科学计数法）" in page
    assert "请把该列设为文本后重新填写" in page
    assert _products(draft) == ["SCI-OK"]


def test_eleven_digit_number_that_lost_the_leading_zero_of_a_trace_code_is_refused():
    application = factories.make_application()
    rows = [
        good_row(12210000001, manufacture_month="2021-05"),  # 012210000001 is a 镂空码
        good_row(12345678901),  # 012345678901: year "23" ≠ 2022, an ordinary number
    ]
    outcome = _import(application, workbook_bytes(rows))
    assert "开头的0已丢失：“12210000001”应为“012210000001”" in _reasons(outcome, 2)[0]
    assert _products(application) == ["12345678901"]


def test_template_formats_identifier_columns_as_text_for_the_whole_column():
    varieties = db.session.scalars(select(Variety)).all()
    media = db.session.scalars(select(Medium)).all()
    wb = load_workbook(io.BytesIO(import_template.build_template(varieties, media)))
    ws = wb[import_template.SHEET_NAME]
    assert ws.column_dimensions["B"].number_format == "@"  # 产品编号
    assert ws.column_dimensions["J"].number_format == "@"  # 单位内编号
    assert ws.column_dimensions["L"].number_format == "@"  # 二维码/RFID


def test_decimal_comma_is_refused_in_the_item_edit_form(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    item = factories.make_item(application, product_no="COMMA-1")
    url = f"/applications/{application.id}/items/{item.id}/edit"
    form = _item_form("COMMA-1", pressure="2,1", volume="40，5")
    page = post_form(client, url, form, page=url)
    text = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "公称工作压力(MPa)“2,1”含有逗号" in text and "容积(L)“40,5”含有逗号" in text
    db.session.refresh(item)
    assert item.nominal_pressure_mpa == factories.cylinder_data().nominal_pressure_mpa


# ----------------------------------------------------------------------------- dates


def test_sheetjs_date_cells_and_iso_date_texts_are_read_as_dates(client, draft):
    data = workbook_bytes([good_row("ISO-1")])
    data = set_cell_xml(data, "E2", '<c r="E2" t="d"><v>2022-05-01T00:00:00.000Z</v></c>')
    data = set_cell_xml(data, "I2", '<c r="I2" t="d"><v>2028-05-01T00:00:00Z</v></c>')
    data = set_cell_xml(
        data, "H2", '<c r="H2" t="inlineStr"><is><t>2024-05-20 00:00:00</t></is></c>'
    )
    _url, page = _upload(client, draft, data)
    assert "成功导入 <strong>1</strong> 行，失败 <strong>0</strong> 行" in page
    item = db.session.scalar(select(ApplicationItem).where(ApplicationItem.product_no == "ISO-1"))
    assert item.manufacture_month == "2022-05" and item.next_inspection_month == "2028-05"
    assert item.last_inspection_date == date(2024, 5, 20)


# ----------------------------------------------------------------------------- cell kinds


def test_formula_without_a_cached_value_is_refused_never_read_as_zero(client, draft):
    data = workbook_bytes([good_row("F-1"), good_row("F-2")])
    data = set_cell_xml(data, "G2", '<c r="G2"><f>35+0.5</f><v>35.5</v></c>')  # computed
    data = set_cell_xml(data, "G3", '<c r="G3"><f>35+0.5</f></c>')  # written by a script
    _url, page = _upload(client, draft, data)
    assert "容积(L)：公式没有计算结果" in page and "容积(L)必填" not in page
    assert _products(draft) == ["F-1"]


def test_excel_error_cells_are_named_not_reported_as_required():
    application = factories.make_application()
    data = set_cell_xml(
        workbook_bytes([good_row("ERR-1")]), "D2", '<c r="D2" t="e"><v>#N/A</v></c>'
    )
    outcome = _import(application, data)
    assert _reasons(outcome, 2) == ["制造单位：单元格是Excel错误值#N/A，请改正"]


def test_cells_inside_a_merged_range_are_named():
    application = factories.make_application()

    def merge(_wb, ws):
        ws.merge_cells("D2:D3")  # one 制造单位 for two cylinders

    outcome = _import(application, _sheet([good_row("M-1"), good_row("M-2")], decorate=merge))
    assert outcome.imported == 0
    for row in (2, 3):
        assert any("在合并单元格D2:D3中" in r for r in _reasons(outcome, row))
        assert not any("制造单位必填" in r for r in _reasons(outcome, row))


def test_hidden_and_filtered_rows_are_imported_and_counted(client, draft):
    def hide(_wb, ws):
        ws.row_dimensions[3].hidden = True

    _url, page = _upload(client, draft, _sheet([good_row("H-1"), good_row("H-2")], decorate=hide))
    assert "成功导入 <strong>2</strong> 行" in page
    assert "其中<strong>1</strong>行在Excel中被隐藏" in page


def _hidden_and_errors_sheet() -> bytes:
    """Four rows: two hidden (one of them good), an #N/A 产品编号, a #REF! 公称工作压力."""

    def decorate(_wb, ws):
        ws["B3"] = "=NA()"
        ws["F4"] = "=#REF!"
        ws.row_dimensions[4].hidden = True
        ws.row_dimensions[5].hidden = True

    rows = [good_row("LH-1"), good_row("LH-2"), good_row("LH-3"), good_row("LH-4")]
    return _sheet(rows, decorate=decorate)


@pytest.mark.parametrize("kind", ["xls", "ods"])
def test_xls_and_ods_saved_by_libreoffice_count_hidden_rows_and_name_error_cells(
    client, draft, tmp_path, kind
):
    data = libreoffice_saved(_hidden_and_errors_sheet(), kind, tmp_path)
    _url, page = _upload(client, draft, data, f"list.{kind}")
    assert "成功导入 <strong>2</strong> 行，失败 <strong>2</strong> 行" in page
    assert "其中<strong>2</strong>行在Excel中被隐藏" in page
    assert "产品编号（镂空码）：单元格是Excel错误值#N/A，请改正" in page
    assert "公称工作压力(MPa)：单元格是Excel错误值#REF!，请改正" in page
    assert "产品编号（镂空码）必填" not in page and "公称工作压力(MPa)必填" not in page
    assert _products(draft) == ["LH-1", "LH-4"]


@pytest.mark.parametrize("kind", ["xls", "ods"])
def test_xls_and_ods_cells_inside_a_merged_range_are_named(tmp_path, kind):
    def merge(_wb, ws):
        ws.merge_cells("D2:D3")  # one 制造单位 for two cylinders

    data = _sheet([good_row("LM-1"), good_row("LM-2"), good_row("LM-3")], decorate=merge)
    outcome = _import(
        factories.make_application(), libreoffice_saved(data, kind, tmp_path), f"l.{kind}"
    )
    for row in (2, 3):
        assert _reasons(outcome, row) == [
            "制造单位：单元格在合并单元格D2:D3中：请取消合并，每只气瓶一行、每格填写自己的值"
        ]
    assert outcome.imported == 1


def test_xls_hidden_rows_written_by_xlwt_are_counted():
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet("气瓶信息")
    for col, title in enumerate(HEADERS):
        ws.write(0, col, title)
    for r, row in enumerate([good_row("XH-1"), good_row("XH-2"), good_row("XH-3")], start=1):
        for col, value in enumerate(row):
            ws.write(r, col, value)
    ws.row(2).hidden = True  # Excel row 3
    out = io.BytesIO()
    book.save(out)
    rows = parse_workbook(out.getvalue(), "list.xls")
    assert [row_no for row_no, _ in rows] == [2, 3, 4]
    assert rows.hidden == 1


def test_xls_formulas_a_program_never_calculated_are_named_in_required_columns():
    """xlwt writes a formula's result as "empty string": in 容积 (required) it is named, not
    reported as 必填; in 单位内编号 (optional) it reads as empty, as Excel would show it."""
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet("气瓶信息")
    for col, title in enumerate(HEADERS):
        ws.write(0, col, title)
    rows = [
        good_row("XF-1", volume=xlwt.Formula("35+0.5")),
        good_row("XF-2", internal_no=xlwt.Formula('"NB-"&"2"')),
    ]
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            ws.write(r, col, value)
    out = io.BytesIO()
    book.save(out)
    outcome = _import(factories.make_application(), out.getvalue(), "list.xls")
    assert _reasons(outcome, 2) == [f"容积(L)：{FORMULA_MESSAGE}"]
    assert outcome.imported == 1


def test_ods_filtered_and_repeated_hidden_rows_are_counted_and_uncalculated_formulas_refused():
    application = factories.make_application()
    data = ods_bytes([good_row("OF-1"), good_row("OF-2"), good_row("OF-3")])

    def change(xml: str) -> str:
        head, header, row2, row3, row4 = xml.split("<table:table-row>")
        empty = (
            '<table:table-row table:number-rows-repeated="2"><table:table-cell/></table:table-row>'
        )
        tail = (
            '<table:table-row table:visibility="collapse" table:number-rows-repeated="9000">'
            "<table:table-cell/></table:table-row>"
        )
        row4 = row4.replace("</table:table>", tail + "</table:table>")
        # A script's formula in 容积 of row 2: no computed value.
        row2 = row2.replace(
            '<table:table-cell office:value-type="float" office:value="35.5"><text:p>35.5'
            "</text:p></table:table-cell>",
            '<table:table-cell table:formula="of:=35+0.5"/>',
        )
        return (
            f"{head}<table:table-row>{header}<table:table-row>{row2}"
            f'<table:table-row table:visibility="filter">{row3}{empty}'
            f'<table:table-row table:visibility="collapse">{row4}'
        )

    rows = parse_workbook(rewrite_part(data, "content.xml", change), "list.ods")
    assert [row_no for row_no, _ in rows] == [2, 3, 6]  # the repeated empty rows count
    assert rows.hidden == 2  # the filtered row 3 and the hidden row 6, not the empty ones
    outcome = factories.import_under_job(application, rows, today=TODAY)
    assert _reasons(outcome, 2) == [f"容积(L)：{FORMULA_MESSAGE}"]
    assert outcome.imported == 2


# ----------------------------------------------------------------------------- sheets, header


def test_data_are_read_from_the_sheet_named_like_the_template_wherever_it_stands():
    def add_sheets(wb, ws):
        notes = wb.create_sheet("说明", 0)
        notes.append(["这里是说明"])
        example = wb.create_sheet(import_template.EXAMPLE_SHEET, 0)
        example.append(list(HEADERS))
        example.append(good_row("EXAMPLE-1"))

    application = factories.make_application()
    outcome = _import(application, _sheet([good_row("NAMED-1")], decorate=add_sheets))
    assert outcome.imported == 1 and _products(application) == ["NAMED-1"]


def test_without_a_sheet_named_like_the_template_the_first_sheet_is_read_if_its_header_matches():
    application = factories.make_application()
    outcome = _import(application, _sheet([good_row("FIRST-1")], title="Sheet1"))
    assert outcome.imported == 1 and _products(application) == ["FIRST-1"]
    header = list(HEADERS)
    header[2] = "介质"
    other = workbook_bytes([good_row("FIRST-2")], header=header)  # its sheet is named Sheet
    with pytest.raises(ImportRejected, match=r"读的是第一个工作表“Sheet”.*第3列应为“充装介质”"):
        parse_workbook(other)


def test_the_example_sheet_is_never_read():
    data = _sheet([good_row("EXAMPLE-1")], title=import_template.EXAMPLE_SHEET)
    with pytest.raises(ImportRejected, match="没有名为“气瓶信息”的工作表"):
        parse_workbook(data)


def test_header_message_names_the_first_column_that_differs(client, draft):
    header = list(HEADERS)
    header[2] = "介质"
    page = _refused(client, draft, workbook_bytes([good_row("HD-1")], header=header))
    assert "第3列应为“充装介质”，实为“介质”" in page


def test_password_protected_file_says_so(client, draft):
    encrypted = io.BytesIO()
    OOXMLFile(io.BytesIO(workbook_bytes([good_row("PW-1")]))).encrypt("secret", encrypted)
    page = _refused(client, draft, encrypted.getvalue())
    assert "文件设置了打开密码" in page and "取消密码" in page


def test_password_protected_xls_says_so(client, draft):
    """A BIFF workbook with a FILEPASS record (as Excel writes an encrypted .xls)."""
    import olefile

    data = bytearray(xls_bytes([good_row("PWX-1")]))
    ole = olefile.OleFileIO(bytes(data))
    stream = bytearray(ole.openstream("Workbook").read())
    # Turn the first record after the globals' BOF into a FILEPASS of the same length.
    bof_length = int.from_bytes(stream[2:4], "little")
    stream[4 + bof_length : 4 + bof_length + 2] = (0x002F).to_bytes(2, "little")
    path = io.BytesIO(bytes(data))
    writer = olefile.OleFileIO(path, write_mode=True)
    writer.write_stream("Workbook", bytes(stream))
    writer.close()
    page = _refused(client, draft, path.getvalue(), "list.xls")
    assert "文件设置了打开密码" in page and "取消密码" in page


# ----------------------------------------------------------------------------- 一瓶一码


def test_the_same_qr_url_on_two_rows_is_refused_on_the_second():
    application = factories.make_application()
    url = "https://trace.example.com/q/SAME"
    rows = [good_row("Q-1", tag_value=url), good_row("Q-2", tag_value=f" {url} ")]
    outcome = _import(application, workbook_bytes(rows))
    assert _reasons(outcome, 3) == ["二维码与第2行相同：一瓶一码，同一二维码不能用于两只气瓶"]
    assert _products(application) == ["Q-1"]


def test_the_same_rfid_code_after_nfkc_is_refused():
    application = factories.make_application()
    rows = [
        good_row("R-1", tag_type="RFID标签", tag_value="E200001722"),
        good_row("R-2", tag_type="RFID标签", tag_value="Ｅ２００００１７２２"),  # full width
    ]
    outcome = _import(application, workbook_bytes(rows))
    assert "RFID编码与第2行相同" in _reasons(outcome, 3)[0]


def test_a_qr_url_in_the_archive_or_in_another_live_application_is_refused():
    factories.make_cylinder(qr_content="https://trace.example.com/q/ARCHIVED")
    other = factories.make_application()
    factories.make_item(other, qr_content="https://trace.example.com/q/CLAIMED")
    application = factories.make_application()
    rows = [
        good_row("T-1", tag_value="https://trace.example.com/q/ARCHIVED"),
        good_row("T-2", tag_value="https://trace.example.com/q/CLAIMED"),
    ]
    outcome = _import(application, workbook_bytes(rows))
    assert (
        "已用于已登记气瓶的档案（使用登记证瓶渝11200001(26)）中的另一只气瓶"
        in (_reasons(outcome, 2)[0])
    )
    assert f"已用于申请{other.number}中的另一只气瓶" in _reasons(outcome, 3)[0]
    assert outcome.imported == 0


def test_voiding_an_application_releases_its_tags_for_another_application():
    """The tag's claim (the unique live_tag_key) is released with the cylinder when the
    application is 驳回（退件）, so the tag can be imported again elsewhere."""
    from regbackoffice import workflow
    from regbackoffice.models import AttachmentKind

    url = "https://trace.example.com/q/VOIDED-TAG"
    first = factories.make_application()
    assert _import(first, workbook_bytes([good_row("VT-1", tag_value=url)])).imported == 1
    [item] = db.session.scalars(
        select(ApplicationItem).where(ApplicationItem.application_id == first.id)
    ).all()
    assert item.live_tag_key  # claimed while live
    for kind in (AttachmentKind.STAMP, AttachmentKind.SUPERVISION_CERTIFICATE):
        factories.make_photo(item, kind)
    workflow.submit(first, db.session.get(User, first.created_by_id), first.version_id, 5)
    acceptor = factories.make_user(Role.ACCEPTOR, district_code=first.district_code)
    workflow.void(first, acceptor, "照片模糊，请重新申请", first.version_id, sod=True)
    second = factories.make_application()
    outcome = _import(second, workbook_bytes([good_row("VT-2", tag_value=url)]))
    assert outcome.imported == 1, outcome.failed


def test_a_cylinder_excluded_at_acceptance_releases_its_tag():
    """受理 excludes the cylinders audited 错误: their tags are free for another application."""
    from regbackoffice import attachment_audit, workflow
    from regbackoffice.models import AuditVerdict

    url = "https://trace.example.com/q/EXCLUDED-TAG"
    first = factories.make_submitted_application(items=1, photos=False)
    wrong = factories.make_item(first, product_no="EX-1", qr_content=url)
    wrong.live_tag_key = live_tag_key(CylinderData.from_row(wrong))  # as the import claims it
    db.session.flush()
    acceptor = factories.make_user(Role.ACCEPTOR, district_code=first.district_code)
    entries = [
        attachment_audit.VerdictEntry(item.id, AuditVerdict.WRONG, "钢印照片与产品编号不符", 0)
        if item.id == wrong.id
        else attachment_audit.VerdictEntry(item.id, AuditVerdict.CORRECT, "", 0)
        for item in db.session.scalars(
            select(ApplicationItem).where(ApplicationItem.application_id == first.id)
        )
    ]
    attachment_audit.save_verdicts(first, acceptor, entries)
    attachment_audit.complete(first, acceptor, first.version_id)
    second = factories.make_application()
    assert _import(second, workbook_bytes([good_row("EX-2", tag_value=url)])).imported == 0
    workflow.accept(first, acceptor, first.version_id, 15)
    db.session.refresh(wrong)
    assert wrong.excluded and wrong.live_tag_key is None
    assert _import(second, workbook_bytes([good_row("EX-2", tag_value=url)])).imported == 1


def test_a_tag_bound_through_the_api_is_refused_at_import():
    from regbackoffice.models import TagBinding
    from regbackoffice.tag_binding import tag_digest

    cylinder = factories.make_cylinder(qr_content=None, tag_type=None)
    api_client, _secret = factories.make_api_client(db.session.get(Unit, cylinder.use_unit_id))
    db.session.add(
        TagBinding(
            cylinder_id=cylinder.id,
            tag_type=TagType.RFID,
            tag_value="E2000017BOUND",
            tag_sha256=tag_digest(TagType.RFID, "E2000017BOUND"),
            info_code="CQR500112ABCDEF0123",
            stamp_photo_key="stamps/x.png",
            stamp_photo_sha256="0" * 64,
            client_id=api_client.id,
        )
    )
    db.session.flush()
    application = factories.make_application()
    row = good_row("BOUND-1", tag_type="RFID标签", tag_value="E2000017BOUND")
    outcome = _import(application, workbook_bytes([row]))
    assert "RFID编码“E2000017BOUND”已用于已登记气瓶的档案" in _reasons(outcome, 2)[0]


def test_a_row_lists_all_its_reasons_including_the_archive():
    factories.make_cylinder(
        product_no="ALL-1", manufacturer="测试气瓶制造厂", manufacture_month="2022-05"
    )
    application = factories.make_application()
    outcome = _import(application, workbook_bytes([good_row("ALL-1", volume="abc")]))
    reasons = _reasons(outcome, 2)
    assert any("容积(L)“abc”不是数字" in r for r in reasons)
    assert any("该气瓶已登记" in r for r in reasons)


# ----------------------------------------------------------------------------- invisible


def test_look_alike_with_a_zero_width_space_cannot_register_a_cylinder_twice():
    application = factories.make_application()
    rows = [good_row("ZW-1"), good_row("ZW\u200b-1")]
    outcome = _import(application, workbook_bytes(rows))
    assert outcome.imported == 1
    assert "产品编号（镂空码）含有不可见字符（U+200B 零宽空格）" in _reasons(outcome, 3)[0]


def test_nul_in_a_cell_is_a_clear_refusal_and_the_error_file_downloads(client, draft):
    data = set_cell_xml(
        workbook_bytes([good_row("NUL-1")]),
        "J2",
        '<c r="J2" t="inlineStr"><is><t>NB_x0000_1</t></is></c>',
    )
    url, page = _upload(client, draft, data)
    assert "单位内编号含有不可见字符（U+0000 空字符NUL）" in page
    errors = client.get(f"{url}/errors.xlsx")
    assert errors.status_code == 200
    ws = load_workbook(io.BytesIO(errors.data))[import_template.SHEET_NAME]
    assert ws.cell(2, 2).value == "NUL-1"


def test_web_forms_refuse_bidi_overrides_and_zero_width_characters(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    url = f"/applications/{application.id}/edit"
    unit_form = {
        "unit_name": "某某燃气\u202e公司",
        "safety_department": "安全科",
        "contact_name": "张三",
        "contact_phone": "023-12345678",
        "credit_code": application.credit_code,
        "address": "重庆市渝北区某路1号",
        "district_code": application.district_code,
    }
    page = post_form(client, url, unit_form, page=url).get_data(as_text=True)
    assert "使用单位含有不可见字符（U+202E 双向文字控制符）" in page
    db.session.refresh(application)
    assert "\u202e" not in application.unit_name

    item = factories.make_item(application, product_no="VIS-1")
    item_url = f"/applications/{application.id}/items/{item.id}/edit"
    response = post_form(client, item_url, _item_form("VIS\u200b-1"), page=item_url)
    assert response.status_code == 400
    assert "含有不可见字符（U+200B 零宽空格）" in response.get_data(as_text=True)
    db.session.refresh(item)
    assert item.product_no == "VIS-1"


# ----------------------------------------------------------------------------- 12 digits


def test_a_twelve_digit_manufacturer_number_is_registered_with_the_documented_mark():
    application = factories.make_application()
    rows = [
        good_row("123210000009", manufacture_month="2022-05"),  # year digits say 2021
        good_row("123210000008", manufacture_month="2022-05", internal_no="非镂空码 NB-8"),
    ]
    outcome = _import(application, workbook_bytes(rows))
    message = _reasons(outcome, 2)[0]
    assert "镂空码第4-5位年份代码“21”" in message
    assert "请在单位内编号一栏以“非镂空码”开头填写" in message
    assert _products(application) == ["123210000008"]


# ----------------------------------------------------------------------------- file types


def _fixable(prefix: str) -> list[list]:
    return [good_row(f"{prefix}-1"), good_row(f"{prefix}-2", volume="abc")]


FILES = {
    "xls": lambda rows: (xls_bytes(rows), "list.xls"),
    "ods": lambda rows: (ods_bytes(rows), "list.ods"),
    "csv utf-8": lambda rows: (csv_bytes(rows), "list.csv"),
    "csv utf-8 bom": lambda rows: (csv_bytes(rows, encoding="utf-8-sig"), "list.csv"),
    "csv gbk": lambda rows: (csv_bytes(rows, encoding="gbk"), "list.csv"),
    "csv gb18030": lambda rows: (csv_bytes(rows, encoding="gb18030"), "list.csv"),
}


@pytest.mark.parametrize("kind", list(FILES))
def test_other_file_types_import_with_the_same_rules_and_error_file_round_trip(client, draft, kind):
    data, name = FILES[kind](_fixable(kind[:3].upper()))
    url, page = _upload(client, draft, data, name)
    assert "成功导入 <strong>1</strong> 行，失败 <strong>1</strong> 行" in page
    assert "容积(L)“abc”不是数字" in page
    wb = load_workbook(io.BytesIO(client.get(f"{url}/errors.xlsx").data))
    ws = wb[import_template.SHEET_NAME]
    ws.cell(2, 7).value = "35.5"
    fixed = io.BytesIO()
    wb.save(fixed)
    _url, again = _upload(client, draft, fixed.getvalue(), "错误数据.xlsx")
    assert "成功导入 <strong>1</strong> 行，失败 <strong>0</strong> 行" in again
    assert sorted(_products(draft)) == [f"{kind[:3].upper()}-1", f"{kind[:3].upper()}-2"]


def test_csv_header_rule_is_the_same():
    header = list(HEADERS)
    header[0] = "品种"
    with pytest.raises(ImportRejected, match="第1列应为“设备品种”，实为“品种”"):
        parse_workbook(csv_bytes([good_row("CH-1")], header=header), "list.csv")


def test_csv_in_an_unknown_encoding_or_utf16_is_refused_with_the_fix():
    utf16 = csv_bytes([good_row("U16")], encoding="utf-16")
    with pytest.raises(ImportRejected, match=r"UTF-16编码.*CSV UTF-8"):
        parse_workbook(utf16, "list.csv")


def test_ods_without_its_content_is_refused_by_its_zip_check():
    def drop_content(data: bytes) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
            for info in source.infolist():
                if info.filename != "content.xml":
                    target.writestr(info, source.read(info.filename))
        return out.getvalue()

    with pytest.raises(ImportRejected, match=r"不是有效的\.ods表格（缺少content\.xml）"):
        parse_workbook(drop_content(ods_bytes([good_row("ODS-1")])), "list.ods")


def _central_directory_patched(data: bytes, offset: int, value: bytes) -> bytes:
    """The zip with ``value`` written at ``offset`` of every central directory header."""
    blob = bytearray(data)
    at = blob.find(b"PK\x01\x02")
    while at != -1:
        blob[at + offset : at + offset + len(value)] = value
        at = blob.find(b"PK\x01\x02", at + 4)
    return bytes(blob)


@pytest.mark.parametrize("kind", ["xlsx", "ods"])
def test_a_zip_python_cannot_read_is_refused_as_damaged_not_a_system_error(kind):
    if kind == "xlsx":
        data, name, what = workbook_bytes([good_row("ZV-1")]), "list.xlsx", r"\.xlsx文件"
    else:
        data, name, what = ods_bytes([good_row("ZV-1")]), "list.ods", r"\.ods表格"
    # "version needed to extract" 8.4 (found by the fuzz test): zipfile raises
    # NotImplementedError, which must read as a damaged file.
    too_new = _central_directory_patched(data, 6, (84).to_bytes(2, "little"))
    with pytest.raises(ImportRejected, match=rf"文件已损坏，不是有效的{what}$"):
        parse_workbook(too_new, name)
    # A compression method no office program writes (99: AES), named with the fix.
    odd = _central_directory_patched(data, 10, (99).to_bytes(2, "little"))
    with pytest.raises(ImportRejected, match=r"压缩方式无法读取）：请用Excel、WPS或LibreOffice"):
        parse_workbook(odd, name)


def test_a_control_character_in_a_csv_cell_is_refused_naming_it():
    application = factories.make_application()
    data = csv_bytes([good_row("CTRL-1", manufacturer="测试\x07厂"), good_row("CTRL-2")])
    outcome = _import(application, data, "list.csv")
    assert any("U+0007 控制字符" in r for r in _reasons(outcome, 2))
    assert _products(application) == ["CTRL-2"]


def test_damaged_xls_is_refused_by_its_ole2_check():
    with pytest.raises(ImportRejected, match=r"不是有效的\.xls文件"):
        parse_workbook(xls_bytes([good_row("D-1")])[:3000], "list.xls")


# ----------------------------------------------------------------------------- 设计使用年限 (16)

# 2310/G1 has no service-life row in the table: only the cylinder's own design life decides.
_NO_TABLE_ROW = {"variety": "2310", "medium": "G1", "next_inspection_month": "2027-05"}


def _with_life(product_no: str, life, **overrides) -> list:
    return [*good_row(product_no, **overrides), life]


def test_design_life_column_is_imported_and_used_by_the_service_life_rule():
    application = factories.make_application()
    rows = [
        # Made 2018-05, own design life 5 years: past it, refused like at the interlock.
        _with_life("DL-1", 5, manufacture_month="2018-05", **_NO_TABLE_ROW),
        # The same without a design life: no table row, registered.
        _with_life("DL-2", None, manufacture_month="2018-05", **_NO_TABLE_ROW),
        # LPG made 2017-05 (over the table's 8 years) with its own 15 years: registered.
        _with_life("DL-3", "15", manufacture_month="2017-05", last_inspection_date="2024-05-20"),
        # LPG made 2017-05 without one: the table's 8 years refuse it.
        _with_life("DL-4", None, manufacture_month="2017-05", last_inspection_date="2024-05-20"),
        _with_life("DL-5", "8.5"),
        _with_life("DL-6", 0),
    ]
    outcome = _import(application, workbook_bytes(rows))
    assert _reasons(outcome, 2) == [
        "气瓶已超过设计使用年限5年（制造年月2018-05，设备品种2310、充装介质G1），"
        "不予登记；超过设计使用年限的气瓶应报废"
    ]
    assert "气瓶已超过设计使用年限8年" in _reasons(outcome, 5)[0]
    assert _reasons(outcome, 6) == ["设计使用年限“8.5”应为整数年（如8）"]
    assert _reasons(outcome, 7) == ["设计使用年限0年超出合理范围（1–60年），请核对"]
    lives = dict(
        db.session.execute(
            select(ApplicationItem.product_no, ApplicationItem.design_life_years).where(
                ApplicationItem.application_id == application.id
            )
        )
        .tuples()
        .all()
    )
    assert lives == {"DL-2": None, "DL-3": 15}


def test_templates_and_error_files_without_the_design_life_column_still_import():
    application = factories.make_application()
    old_template = workbook_bytes([good_row("OLD-1")], header=HEADERS[:-1])
    assert _import(application, old_template).imported == 1
    # An error file made before the column: 错误原因 stands where 设计使用年限 now is.
    old_error_file = workbook_bytes(
        [[*good_row("OLD-2"), "第2行：容积(L)“abc”不是数字"]], header=[*HEADERS[:-1], "错误原因"]
    )
    outcome = _import(application, old_error_file)
    assert outcome.imported == 1, outcome.failed
    misspelt = workbook_bytes([_with_life("OLD-3", 8)], header=[*HEADERS[:-1], "设计年限"])
    with pytest.raises(ImportRejected, match="第13列应为“设计使用年限（年）”，实为“设计年限”"):
        parse_workbook(misspelt)


def test_the_template_offers_the_design_life_column_last(client, login_as):
    login_as(Role.APPLICANT)
    wb = load_workbook(io.BytesIO(client.get("/applications/template.xlsx").data))
    header = [c.value for c in wb[import_template.SHEET_NAME][1]]
    assert header[-1] == "设计使用年限（年）" and header[:-1] == list(HEADERS[:-1])


def test_design_life_goes_from_the_item_to_the_archive_and_the_interlock():
    from regbackoffice import certificates, inspection_rules, interlock
    from regbackoffice.models import Cylinder

    approved = factories.make_approved_application(items=1)
    [item] = db.session.scalars(
        select(ApplicationItem).where(ApplicationItem.application_id == approved.id)
    ).all()
    assert item.manufacture_month == "2022-05"
    item.variety_code, item.medium_code = "2310", "G1"  # no row in the rule table
    item.design_life_years = 5
    db.session.flush()
    certificates.generate(approved, factories.make_user(Role.ACCEPTOR), approved.version_id)
    cylinder = db.session.scalar(select(Cylinder).where(Cylinder.application_id == approved.id))
    assert cylinder.design_life_years == 5
    rules = inspection_rules.DEFAULT_SERVICE_LIFE_RULES
    unit_id = cylinder.use_unit_id
    assert interlock.check(cylinder, "G1", unit_id, date(2027, 4, 30), rules) == []
    refused = interlock.check(cylinder, "G1", unit_id, date(2027, 5, 1), rules)
    assert [(r.code, r.message) for r in refused] == [
        ("SERVICE_LIFE_EXCEEDED", "气瓶已超过设计使用年限5年，不得充装")
    ]


def test_design_life_in_the_item_edit_form(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    item = factories.make_item(application, product_no="DLF-1")
    url = f"/applications/{application.id}/items/{item.id}/edit"
    assert 'name="design_life_years"' in client.get(url).get_data(as_text=True)
    page = post_form(client, url, _item_form("DLF-1", design_life_years="abc"), page=url)
    assert page.status_code == 400
    assert "设计使用年限“abc”应为整数年（如8）" in page.get_data(as_text=True)
    too_old = _item_form("DLF-1", design_life_years="3", manufacture_month="2022-05")
    page = post_form(client, url, too_old, page=url)
    assert "气瓶已超过设计使用年限3年" in page.get_data(as_text=True)
    valid = _item_form(
        "DLF-1",
        design_life_years="15",
        last_inspection_date="2024-05-20",
        tag_type="二维码",
        tag_value="https://trace.example.com/q/DLF-1",
    )
    saved = post_form(client, url, valid, page=url)
    assert saved.status_code == 302, saved.get_data(as_text=True)
    db.session.refresh(item)
    assert item.design_life_years == 15


def test_a_next_inspection_beyond_the_interval_is_refused_in_the_item_edit_form(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    item = factories.make_item(application, product_no="IV-1")
    url = f"/applications/{application.id}/items/{item.id}/edit"
    form = _item_form(
        "IV-1",
        last_inspection_date="2024-05-20",
        next_inspection_month="2029-01",  # LPG in a welded cylinder: 4 years, so 2028-05
        tag_type="二维码",
        tag_value="https://trace.example.com/q/IV-1",
    )
    page = post_form(client, url, form, page=url)
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    assert "下次检验日期2029-01超过检验周期" in text and "定期检验周期为4年" in text
    assert "最晚为2028-05" in text
    db.session.refresh(item)
    assert item.next_inspection_month == "2030-05"  # unchanged


# ----------------------------------------------------------------------------- SQLite demo


def test_sqlite_enforces_foreign_keys_and_never_reuses_application_ids(tmp_path_factory):
    with sqlite_demo_app(tmp_path_factory):
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        first = factories.make_application()
        factories.make_item(first, product_no="SQ-1")
        first_id = first.id
        db.session.commit()
        # Deleting the draft takes its cylinders with it (ON DELETE CASCADE is enforced) …
        applications.delete_application(first, db.session.get(User, first.created_by_id))
        db.session.commit()
        assert db.session.scalar(select(sa.func.count()).select_from(ApplicationItem)) == 0
        # … and the next draft gets a new id, never the deleted one.
        second = factories.make_application()
        assert second.id > first_id


def test_tag_type_is_kept_for_rfid_rows():
    application = factories.make_application()
    rows = [good_row("RF-1", tag_type="RFID标签", tag_value="E2000017221101441890")]
    _import(application, workbook_bytes(rows))
    item = db.session.scalar(select(ApplicationItem).where(ApplicationItem.product_no == "RF-1"))
    assert item.tag_type is TagType.RFID and item.rfid_code == "E2000017221101441890"


def test_a_large_csv_is_stored_and_read_again_as_csv_by_the_job(monkeypatch):
    from regbackoffice.imports import job as import_job
    from regbackoffice.imports import refused as import_refused

    monkeypatch.setattr(import_job, "BACKGROUND_THRESHOLD", 1)  # every file goes to the job
    application = factories.make_application()
    applicant = db.session.get(User, application.created_by_id)
    data = csv_bytes([good_row("JOB-1"), good_row("JOB-2", volume="2,5")], encoding="gbk")
    job = import_job.start_import(application, data, filename="list.csv", actor=applicant)
    assert job.status is ImportStatus.QUEUED and job.file_key.endswith(".csv")
    db.session.commit()
    import_job.run_import_job(job.id)
    db.session.expire_all()
    assert (job.status, job.imported_count, job.failed_count) == (ImportStatus.DONE, 1, 1)
    [(refused,)] = [row["reasons"] for row in import_refused.first(job.id)]
    assert "容积(L)“2,5”含有逗号" in refused
