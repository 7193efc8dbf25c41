"""Every import rule of DESIGN 3 and 5, each broken by its own row; every cell type read."""

import io
from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from regbackoffice.extensions import db
from regbackoffice.imports import ImportRejected
from regbackoffice.imports import job as import_job
from regbackoffice.imports import template as import_template
from regbackoffice.imports.reader import parse_workbook
from regbackoffice.models import ApplicationItem, ApplicationStatus, Medium, TagType, Variety

from . import factories
from .xlsx_helpers import good_row, workbook_bytes

TODAY = date(2026, 11, 26)


def _import(application, rows):
    return factories.import_under_job(
        application, parse_workbook(workbook_bytes(rows)), today=TODAY
    )


def _items(application):
    return db.session.scalars(
        select(ApplicationItem)
        .where(ApplicationItem.application_id == application.id)
        .order_by(ApplicationItem.row_no)
    ).all()


BROKEN = [
    ("variety missing", {"variety": None}, "设备品种必填"),
    ("variety unknown", {"variety": "9999"}, "设备品种“9999”不在代码表中"),
    ("product_no missing", {"product_no": None}, "产品编号（镂空码）必填"),
    ("product_no too long", {"product_no": "X" * 51}, "产品编号（镂空码）超过50个字"),
    ("medium unknown", {"medium": "G99"}, "充装介质“G99”不在代码表中"),
    ("medium ambiguous name", {"medium": "其他"}, "G19和G20都是“其他”，请填写代码G19或G20"),
    ("manufacturer missing", {"manufacturer": "  "}, "制造单位必填"),
    ("manufacturer too long", {"manufacturer": "厂" * 101}, "制造单位超过100个字"),
    ("month unreadable", {"manufacture_month": "去年五月"}, "制造年月“去年五月”不是有效的年月"),
    ("month 13", {"manufacture_month": "2021-13"}, "不是有效的年月"),
    ("month in future", {"manufacture_month": "2027-01"}, "制造年月2027-01晚于本月"),
    ("month implausibly old", {"manufacture_month": "1960-01"}, "早于1970-01"),
    ("pressure not a number", {"pressure": "高压"}, "公称工作压力(MPa)“高压”不是数字"),
    ("pressure zero", {"pressure": 0}, "超出合理范围"),
    ("pressure too high", {"pressure": 150}, "超出合理范围（大于0且不超过100）"),
    ("volume three decimals", {"volume": "35.555"}, "最多两位小数"),
    ("volume negative", {"volume": -1}, "超出合理范围"),
    ("volume missing", {"volume": None}, "容积(L)必填"),
    ("last inspection unreadable", {"last_inspection_date": "2024-02-30"}, "不是有效的日期"),
    ("last inspection in future", {"last_inspection_date": "2027-01-01"}, "晚于今天"),
    (
        "last inspection before manufacture",
        {"last_inspection_date": "2021-01-01"},
        "早于制造年月2022-05",
    ),
    ("next inspection missing", {"next_inspection_month": None}, "下次检验日期必填"),
    (
        "next not after last",
        {"last_inspection_date": "2024-05-20", "next_inspection_month": "2024-05"},
        "须晚于最近一次检验日期",
    ),
    ("overdue", {"next_inspection_month": "2026-10"}, "已超期未检"),
    ("next too far", {"next_inspection_month": "2040-01"}, "距今超过10年"),
    ("internal_no too long", {"internal_no": "N" * 51}, "单位内编号超过50个字"),
    ("tag unknown", {"tag_type": "条形码"}, "只能是 二维码 或 RFID标签"),
    ("qr without url", {"tag_value": None}, "须填写二维码对应的URL"),
    ("qr not http", {"tag_value": "ftp://x.example.com/1"}, "不是http://或https://开头的网址"),
    ("qr javascript", {"tag_value": "javascript:alert(1)"}, "不是http://或https://开头的网址"),
    ("qr too long", {"tag_value": "https://x.example.com/" + "a" * 1000}, "超过1000个字"),
    ("rfid without code", {"tag_type": "RFID标签", "tag_value": None}, "须填写RFID编码"),
    ("rfid too long", {"tag_type": "RFID标签", "tag_value": "R" * 51}, "RFID编码超过50个字"),
    ("value without tag type", {"tag_type": None}, "未选择信息化管理情况"),
    (
        "notice five: LPG from 2021 without tag",
        {"tag_type": None, "tag_value": None, "medium": "G13", "manufacture_month": "2021-01"},
        "渝市监发〔2021〕67号）第五条",
    ),
    (
        "notice five: hydrogen",
        {"tag_type": None, "tag_value": None, "medium": "G4", "manufacture_month": "2022-03"},
        "（G4）气瓶须设置永久性电子识读标志",
    ),
    (
        "notice five: nitrous oxide",
        {"tag_type": None, "tag_value": None, "medium": "G18"},
        "（G18）气瓶须设置永久性电子识读标志",
    ),
    ("decimal comma", {"pressure": "2,1"}, "公称工作压力(MPa)“2,1”含有逗号：小数点请用“.”"),
    ("full-width decimal comma", {"volume": "40，5"}, "容积(L)“40,5”含有逗号"),
    ("thousands separator", {"volume": "1,000"}, "不要用逗号或千位分隔符"),
    ("product_no in scientific text", {"product_no": "1.23457E+11"}, "是科学计数法"),
    ("product_no over 15 digits", {"product_no": 1234567890123456789}, "（超过15位）"),
    ("product_no with a fraction", {"product_no": 12345.5}, "（“12345.5”带小数）"),
    ("internal_no as a lost number", {"internal_no": "1.2E+5"}, "单位内编号被Excel存成了数字"),
    ("bidi override", {"manufacturer": "测试\u202e厂"}, "U+202E 双向文字控制符"),
    ("line break inside a cell", {"internal_no": "NB\n1"}, "U+000A 换行"),
    ("bom inside a cell", {"tag_value": "https://x.example.com/\ufeff1"}, "U+FEFF BOM"),
    (
        "trace code year disagrees",
        {"product_no": "123210000001", "manufacture_month": "2022-05"},
        "镂空码第4-5位年份代码“21”",
    ),
]


@pytest.mark.parametrize(("case", "overrides", "reason"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_rule_refuses_its_own_row(case, overrides, reason):
    application = factories.make_application()
    overrides = dict(overrides)
    product = overrides.pop("product_no", f"BAD-{case[:20]}")
    rows = [good_row("OK-1"), good_row(product, **overrides), good_row("OK-2")]
    outcome = _import(application, rows)
    assert outcome.imported == 2
    assert [f["row"] for f in outcome.failed] == [3]
    assert any(reason in r for r in outcome.failed[0]["reasons"]), outcome.failed[0]["reasons"]
    assert [i.product_no for i in _items(application)] == ["OK-1", "OK-2"]


def test_all_reasons_of_a_row_are_listed_not_only_the_first():
    application = factories.make_application()
    outcome = _import(
        application, [good_row("X", variety="0", volume="x", tag_type="?", medium="G1")]
    )
    assert len(outcome.failed[0]["reasons"]) == 3


def test_notice_five_does_not_apply_before_2021_or_to_other_media():
    application = factories.make_application()
    rows = [
        good_row(
            "OLD",
            tag_type=None,
            tag_value=None,
            manufacture_month="2020-12",
            last_inspection_date="2024-01-01",
            next_inspection_month="2028-01",
        ),
        # Oxygen: a 3-year inspection interval.
        good_row("O2", tag_type=None, tag_value=None, medium="G1", next_inspection_month="2027-05"),
    ]
    assert _import(application, rows).imported == 2


CELL_TYPES = [
    (
        "real date cells",
        {
            "manufacture_month": datetime(2022, 5, 1),
            "last_inspection_date": datetime(2024, 5, 20),
            "next_inspection_month": date(2028, 5, 1),
        },
    ),
    ("text 2022-5", {"manufacture_month": "2022-5"}),
    ("text 2022/05", {"manufacture_month": "2022/05"}),
    ("text 2022年5月", {"manufacture_month": "2022年5月", "next_inspection_month": "2028年5月"}),
    ("text 202205", {"manufacture_month": "202205"}),
    ("number 202205", {"manufacture_month": 202205}),
    ("text dates", {"last_inspection_date": "2024年5月20日"}),
    ("slash date", {"last_inspection_date": "2024/5/20"}),
    (
        "full-width digits",
        {"pressure": "２．１", "volume": "３５．５", "manufacture_month": "２０２２－０５"},
    ),
    ("numbers stored as text", {"pressure": "2.10", "volume": " 35.5 "}),
    ("integers", {"pressure": 2, "volume": 35}),
    (
        "names in coded columns",
        {"variety": "焊接气瓶", "medium": "液化石油气", "tag_type": "二维码"},
    ),
    ("drop-down text", {"variety": "2320 焊接气瓶", "medium": "G13 液化石油气"}),
    ("lower-case code", {"medium": "g13"}),
    ("short variety name", {"variety": "焊接"}),
    ("trace code as a number", {"product_no": 123220000001}),
    ("rfid tag", {"tag_type": "RFID", "tag_value": "E2000017221101441890"}),
    ("iso text with time", {"manufacture_month": "2022-05-01 00:00:00"}),
    ("sheetjs iso text", {"manufacture_month": "2022-05-01T00:00:00.000Z"}),
    ("fifteen-digit number", {"product_no": 123456789012345}),
]


@pytest.mark.parametrize(("case", "overrides"), CELL_TYPES, ids=[c[0] for c in CELL_TYPES])
def test_values_are_read_whatever_the_cell_type(case, overrides):
    application = factories.make_application()
    product = overrides.pop("product_no", f"T-{case[:20]}")
    outcome = _import(application, [good_row(product, **overrides)])
    assert outcome.failed == [] and outcome.imported == 1
    item = _items(application)[0]
    assert item.manufacture_month == "2022-05"
    assert item.variety_code == "2320" and item.medium_code == "G13"
    assert item.nominal_pressure_mpa in (Decimal("2"), Decimal("2.1"))


def test_trace_code_stored_as_number_keeps_all_digits():
    application = factories.make_application()
    _import(application, [good_row(123220000001)])
    item = _items(application)[0]
    assert item.product_no == "123220000001"
    assert item.tag_type is TagType.QR


def test_duplicate_within_file_is_refused_citing_the_first_row():
    application = factories.make_application()
    rows = [good_row("D-1"), good_row(" Ｄ-1 ")]  # same after NFKC and trimming
    outcome = _import(application, rows)
    assert outcome.imported == 1
    assert outcome.failed[0]["row"] == 3
    assert "与第2行是同一只气瓶" in outcome.failed[0]["reasons"][0]


def test_cylinder_in_the_archive_is_refused():
    cylinder = factories.make_cylinder(
        product_no="ARCH-1", manufacturer="测试气瓶制造厂", manufacture_month="2022-05"
    )
    application = factories.make_application()
    outcome = _import(application, [good_row("ARCH-1")])
    assert outcome.imported == 0
    assert "该气瓶已登记" in outcome.failed[0]["reasons"][0]
    assert cylinder.certificate_no in outcome.failed[0]["reasons"][0]


def test_archive_look_ups_find_keys_and_tags_with_quotes_and_backslashes():
    # The look-ups send a chunk's keys as one JSON array (bulk_sql.id_in): characters JSON
    # escapes must come back unchanged, or a registered cylinder would be imported again.
    maker = '渝"北"气瓶厂\\分厂'
    url = 'https://trace.example.com/q/"A\\1"'
    factories.make_cylinder(product_no='Q"1\\2', manufacturer=maker, manufacture_month="2022-05")
    factories.make_cylinder(product_no="TAGGED-1", qr_content=url)
    application = factories.make_application()
    rows = [good_row('Q"1\\2', manufacturer=maker), good_row("NEW-1", tag_value=url)]
    outcome = _import(application, rows)
    assert outcome.imported == 0
    reasons = [failed["reasons"] for failed in outcome.failed]
    assert "该气瓶已登记" in reasons[0][0]
    assert any("已登记气瓶的档案" in reason for reason in reasons[1]), reasons[1]


def test_cylinder_in_another_live_application_is_refused_but_a_voided_one_frees_it():
    other = factories.make_application()
    item = factories.make_item(
        other, product_no="LIVE-1", manufacturer="测试气瓶制造厂", manufacture_month="2022-05"
    )
    application = factories.make_application()
    outcome = _import(application, [good_row("LIVE-1")])
    assert f"该气瓶已在申请{other.number}中" in outcome.failed[0]["reasons"][0]
    # Voiding frees the cylinder (its claim is released).
    item.live_identity_key = None
    db.session.flush()
    assert _import(application, [good_row("LIVE-1")]).imported == 1


def test_reimporting_the_same_row_into_the_same_application_says_so():
    application = factories.make_application()
    _import(application, [good_row("SAME-1")])
    outcome = _import(application, [good_row("SAME-1")])
    assert "该气瓶已在本申请中" in outcome.failed[0]["reasons"][0]
    assert application.item_count == 1


def test_error_file_round_trip_adds_the_fixed_rows():
    application = factories.make_application()
    rows = [
        good_row("RT-1"),
        good_row("RT-2", volume="abc"),
        good_row("RT-3", internal_no='=HYPERLINK("http://evil.example","x")', tag_value="ftp://x"),
    ]
    outcome = _import(application, rows)
    assert outcome.imported == 1 and len(outcome.failed) == 2
    varieties = db.session.scalars(select(Variety)).all()
    media = db.session.scalars(select(Medium)).all()
    error_file = import_template.build_error_file(outcome.failed, varieties, media)

    wb = load_workbook(io.BytesIO(error_file))
    ws = wb[import_template.SHEET_NAME]
    assert ws.cell(1, len(import_template.COLUMNS) + 1).value == "错误原因"
    assert "容积(L)“abc”不是数字" in ws.cell(2, len(import_template.COLUMNS) + 1).value
    formula_cell = ws.cell(3, 10)
    assert formula_cell.value.startswith("=HYPERLINK")
    assert formula_cell.data_type == "s"  # text, never a formula
    assert all(c.data_type == "s" for row in ws.iter_rows(min_row=2) for c in row if c.value)
    # The raw XML has no formula element at all.
    import zipfile

    sheet_xml = zipfile.ZipFile(io.BytesIO(error_file)).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet_xml and b"<f " not in sheet_xml

    # Fix the rows in the downloaded file and import it again.
    ws.cell(2, 7).value = "35.5"
    ws.cell(3, 12).value = "https://trace.example.com/q/RT-3"
    out = io.BytesIO()
    wb.save(out)
    second = factories.import_under_job(application, parse_workbook(out.getvalue()), today=TODAY)
    assert second.failed == [] and second.imported == 2
    assert sorted(i.product_no for i in _items(application)) == ["RT-1", "RT-2", "RT-3"]
    assert _items(application)[2].internal_no.startswith("=HYPERLINK")


def test_wrong_header_is_refused_as_a_whole():
    data = workbook_bytes([good_row("H-1")], header=["品种", "编号"])
    with pytest.raises(ImportRejected, match="第1行表头与模板不一致"):
        parse_workbook(data)


def test_empty_sheet_is_refused():
    with pytest.raises(ImportRejected, match="没有气瓶数据"):
        parse_workbook(workbook_bytes([]))


def test_import_into_a_submitted_application_is_refused():
    application = factories.make_application(
        status=ApplicationStatus.SUBMITTED, submitted_at=datetime(2026, 11, 1).astimezone()
    )
    with pytest.raises(ImportRejected, match="申请已提交"):
        _import(application, [good_row("S-1")])


def test_template_itself_round_trips_its_example_row():
    """The example row, copied into the data sheet as a user would, imports cleanly."""
    varieties = db.session.scalars(select(Variety)).all()
    media = db.session.scalars(select(Medium)).all()
    wb = load_workbook(io.BytesIO(import_template.build_template(varieties, media)))
    width = len(import_template.COLUMNS)
    example = [c.value for c in wb[import_template.EXAMPLE_SHEET][2][:width]]
    ws = wb[import_template.SHEET_NAME]
    for col, value in enumerate(example, start=1):
        ws.cell(2, col).value = value
    out = io.BytesIO()
    wb.save(out)
    application = factories.make_application()
    outcome = factories.import_under_job(application, parse_workbook(out.getvalue()), today=TODAY)
    assert outcome.failed == [] and outcome.imported == 1
    assert import_job.BACKGROUND_THRESHOLD == 2000


def test_a_next_inspection_beyond_the_interval_is_refused_naming_the_interval():
    application = factories.make_application()
    outcome = _import(application, [good_row("IV-1", next_inspection_month="2029-01")])
    (reason,) = outcome.failed[0]["reasons"]
    assert "下次检验日期2029-01超过检验周期" in reason and "定期检验周期为4年" in reason
    assert "最晚为2028-05" in reason


def test_a_cylinder_past_its_service_life_is_refused_at_import_as_at_the_interlock():
    application = factories.make_application()
    outcome = _import(application, [good_row("SL-1", manufacture_month="2013-01")])
    assert any("气瓶已超过设计使用年限" in r for r in outcome.failed[0]["reasons"])
    assert outcome.imported == 0
