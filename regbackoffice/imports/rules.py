"""Row rules: every rule of DESIGN sections 3 and 5 for one row, one function per rule.

``validate_row`` runs the functions of ``RULES`` in order on a ``Row``; each reads the cells
(and what earlier rules parsed), adds its reasons and records the value it accepted. A row
gets all its reasons, not only the first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from .. import inspection_rules
from ..archive import CylinderData
from ..extensions import db
from ..identity import (
    identity_key,
    invisible_characters_message,
    is_trace_code,
    normalize_text,
    qr_url_error,
    trace_code_year_error,
)
from ..models import Medium, TagType, Variety
from .cells import (
    SCIENTIFIC_TEXT,
    CellProblem,
    ScientificNumber,
    add_months,
    cell_text,
    has_decimal_comma,
    parse_date,
    parse_decimal,
    parse_month,
)
from .template import COLUMNS, NOTICE

EARLIEST_MONTH = "1970-01"
MAX_PRESSURE = Decimal("100")
MAX_VOLUME = Decimal("3000")
# Notice 五: cylinders that must carry a permanent electronic mark when made from 2021-01.
ELECTRONIC_MARK_MEDIA = frozenset({"G4", "G11", "G13", "G14", "G18"})
ELECTRONIC_MARK_FROM = "2021-01"
# A 12-digit 产品编号 is read as a 镂空码 (its year digits must agree with 制造年月), unless
# 单位内编号 starts with this mark: then it is a manufacturer's number that merely has 12 digits.
NOT_TRACE_CODE_MARK = "非镂空码"
# Excel keeps 15 significant digits of a number; more are lost when the cell is typed.
MAX_NUMBER_DIGITS = 15
# 设计使用年限: whole years; beyond this range it is a typing error, not a cylinder.
MIN_DESIGN_LIFE, MAX_DESIGN_LIFE = 1, 60


@dataclass
class CodeTables:
    """Codes and names of the coded columns, for reading either."""

    varieties: dict[str, str]  # normalised code or name → code
    media: dict[str, str]

    @classmethod
    def load(cls) -> CodeTables:
        varieties: dict[str, str] = {}
        for variety in db.session.scalars(select(Variety)):
            varieties[variety.code.upper()] = variety.code
            varieties[normalize_text(variety.name)] = variety.code
            varieties[normalize_text(variety.name).removesuffix("气瓶")] = variety.code
        media: dict[str, str] = {}
        names: dict[str, list[str]] = {}
        for medium in db.session.scalars(select(Medium)):
            media[medium.code.upper()] = medium.code
            names.setdefault(normalize_text(medium.name), []).append(medium.code)
        for name, codes in names.items():
            if len(codes) == 1:  # "其他" is G19 and G20: only the code says which
                media[name] = codes[0]
        return cls(varieties, media)

    @staticmethod
    def _lookup(table: dict[str, str], text: str) -> str | None:
        if not text:
            return None
        key = text.upper() if text.isascii() else text
        if key in table:
            return table[key]
        # "2320 焊接气瓶" / "G13 液化石油气" as offered by the drop-down lists.
        head, _, rest = text.partition(" ")
        code = table.get(head.upper())
        if code and (not rest or table.get(normalize_text(rest)) in (code, None)):
            return code
        return None

    def variety(self, text: str) -> str | None:
        return self._lookup(self.varieties, text)

    def medium(self, text: str) -> str | None:
        return self._lookup(self.media, text)


_TAG_NAMES = {
    "二维码": TagType.QR,
    "QR": TagType.QR,
    "QRCODE": TagType.QR,
    "RFID": TagType.RFID,
    "RFID标签": TagType.RFID,
    "电子标签": TagType.RFID,
}


_KEYS = tuple(c.key for c in COLUMNS)
HEADER_BY_KEY = {c.key: c.header for c in COLUMNS}


@dataclass
class RowResult:
    row: int
    values: list[str]
    data: CylinderData | None = None
    reasons: list[str] = field(default_factory=list)
    key: str = ""  # the identity key, once 制造单位, 产品编号 and 制造年月 are valid
    tag: tuple[TagType, str] | None = None  # the QR URL or RFID code, once valid


@dataclass
class Row:
    """One row under validation: its cells, the reasons so far and the values accepted."""

    raw: dict[str, Any]
    text: dict[str, str]
    codes: CodeTables
    today: date
    reasons: list[str]
    # Cells already refused as a whole (an Excel error, invisible characters): no other rule
    # reads them, so they are not also reported as 必填 or unreadable.
    skip: set[str] = field(default_factory=set)
    variety: str | None = None
    medium: str | None = None
    product_no: str = ""
    manufacturer: str = ""
    month: str | None = None
    pressure: Decimal | None = None
    volume: Decimal | None = None
    last_date: date | None = None
    next_month: str | None = None
    internal_no: str | None = None
    tag_type: TagType | None = None
    qr_content: str | None = None
    rfid_code: str | None = None
    design_life_years: int | None = None

    @property
    def this_month(self) -> str:
        return f"{self.today.year:04d}-{self.today.month:02d}"

    def given(self, key: str) -> bool:
        return bool(self.text[key]) and key not in self.skip

    def required(self, key: str) -> bool:
        if key in self.skip:
            return False
        if not self.text[key]:
            self.reasons.append(f"{HEADER_BY_KEY[key]}必填")
            return False
        return True

    def check_length(self, header: str, text: str, limit: int) -> None:
        if len(text) > limit:
            self.reasons.append(f"{header}超过{limit}个字（现为{len(text)}个字）")


Rule = Callable[[Row], None]


def rule_cell_problems(row: Row) -> None:
    for key, value in row.raw.items():
        if isinstance(value, CellProblem):
            row.reasons.append(f"{HEADER_BY_KEY[key]}：{value.message}")
            row.skip.add(key)


def rule_invisible_characters(row: Row) -> None:
    """A look-alike must never register one cylinder twice: refused, never cleaned."""
    for key, text in row.text.items():
        if key in row.skip:
            continue
        message = invisible_characters_message(HEADER_BY_KEY[key], text)
        if message:
            row.reasons.append(message)
            row.skip.add(key)


def rule_variety(row: Row) -> None:
    if row.required("variety"):
        row.variety = row.codes.variety(row.text["variety"])
        if row.variety is None:
            row.reasons.append(f"设备品种“{row.text['variety']}”不在代码表中（2310/2320/23T0）")


def rule_medium(row: Row) -> None:
    if row.required("medium"):
        row.medium = row.codes.medium(row.text["medium"])
        if row.medium is None and normalize_text(row.text["medium"]) == "其他":
            row.reasons.append("充装介质“其他”对应两个代码：G19和G20都是“其他”，请填写代码G19或G20")
        elif row.medium is None:
            row.reasons.append(f"充装介质“{row.text['medium']}”不在代码表中（G1–G20）")


def _lost_digits(row: Row, key: str) -> bool:
    """An identifier typed into a number cell that lost digits (refused, with the fix)."""
    value, text = row.raw[key], row.text[key]
    lost = ""
    if isinstance(value, str):
        if SCIENTIFIC_TEXT.match(text):
            lost = f"（“{text}”是科学计数法）"
    elif isinstance(value, int | float) and not isinstance(value, bool):
        digits = text.lstrip("-")
        if isinstance(value, ScientificNumber):
            lost = "（单元格显示为科学计数法）"
        elif isinstance(value, float) and not value.is_integer():
            lost = f"（“{text}”带小数）"
        elif abs(value) >= 10**MAX_NUMBER_DIGITS:
            lost = f"（超过{MAX_NUMBER_DIGITS}位）"
        elif len(digits) == 11 and _is_trace_code_for(row, "0" + digits):
            lost = f"（开头的0已丢失：“{text}”应为“0{text}”）"
    if lost:
        row.reasons.append(
            f"{HEADER_BY_KEY[key]}被Excel存成了数字，已丢失位数{lost}：请把该列设为文本后重新填写"
        )
    return bool(lost)


def _is_trace_code_for(row: Row, code: str) -> bool:
    """Would ``code`` be a valid 镂空码 of this row (its year digits agree with 制造年月)?"""
    month = parse_month(row.raw["manufacture_month"])
    return is_trace_code(code) and (month is None or code[3:5] == month[2:4])


def rule_product_no(row: Row) -> None:
    if not row.required("product_no") or _lost_digits(row, "product_no"):
        return
    text = row.text["product_no"]
    row.check_length(HEADER_BY_KEY["product_no"], text, 50)
    if len(text) <= 50:
        row.product_no = text


def rule_manufacturer(row: Row) -> None:
    if row.required("manufacturer"):
        text = row.text["manufacturer"]
        row.check_length(HEADER_BY_KEY["manufacturer"], text, 100)
        if len(text) <= 100:
            row.manufacturer = text


def rule_manufacture_month(row: Row) -> None:
    if not row.required("manufacture_month"):
        return
    month = parse_month(row.raw["manufacture_month"])
    if month is None:
        row.reasons.append(f"制造年月“{row.text['manufacture_month']}”不是有效的年月（如2021-05）")
    elif month > row.this_month:
        row.reasons.append(f"制造年月{month}晚于本月")
    elif month < EARLIEST_MONTH:
        row.reasons.append(f"制造年月{month}早于{EARLIEST_MONTH}，请核对")
    else:
        row.month = month


def _number(row: Row, key: str, upper: Decimal) -> Decimal | None:
    if not row.required(key):
        return None
    header, text = HEADER_BY_KEY[key], row.text[key]
    if has_decimal_comma(row.raw[key]):
        row.reasons.append(
            f"{header}“{text}”含有逗号：小数点请用“.”（如2.1），不要用逗号或千位分隔符"
        )
        return None
    parsed = parse_decimal(row.raw[key])
    if parsed is None or not parsed.is_finite():
        row.reasons.append(f"{header}“{text}”不是数字")
        return None
    if not (0 < parsed <= upper):
        row.reasons.append(f"{header}{text}超出合理范围（大于0且不超过{upper}）")
        return None
    if parsed != parsed.quantize(Decimal("0.01")):
        row.reasons.append(f"{header}{text}最多两位小数")
        return None
    return parsed.quantize(Decimal("0.01"))


def rule_pressure(row: Row) -> None:
    row.pressure = _number(row, "pressure", MAX_PRESSURE)


def rule_volume(row: Row) -> None:
    row.volume = _number(row, "volume", MAX_VOLUME)


def rule_last_inspection(row: Row) -> None:
    text = row.text["last_inspection_date"]
    if not row.given("last_inspection_date"):
        return
    last_date = parse_date(row.raw["last_inspection_date"])
    if last_date is None:
        row.reasons.append(f"最近一次检验日期“{text}”不是有效的日期（如2024-05-20）")
        return
    if last_date > row.today:
        row.reasons.append(f"最近一次检验日期{last_date.isoformat()}晚于今天")
        return
    row.last_date = last_date
    if row.month and last_date.isoformat()[:7] < row.month:
        row.reasons.append(f"最近一次检验日期{last_date.isoformat()}早于制造年月{row.month}")


def rule_next_inspection(row: Row) -> None:
    if not row.required("next_inspection_month"):
        return
    next_month = parse_month(row.raw["next_inspection_month"])
    if next_month is None:
        row.reasons.append(
            f"下次检验日期“{row.text['next_inspection_month']}”不是有效的年月（如2028-05）"
        )
        return
    row.next_month = next_month
    last_date, month, this_month = row.last_date, row.month, row.this_month
    if last_date and next_month <= last_date.isoformat()[:7]:
        row.reasons.append(f"下次检验日期{next_month}须晚于最近一次检验日期{last_date.isoformat()}")
    elif month and next_month <= month:
        row.reasons.append(f"下次检验日期{next_month}须晚于制造年月{month}")
    if next_month < this_month:
        row.reasons.append(
            f"下次检验日期{next_month}已过，该气瓶已超期未检，须检验合格后再申请登记"
        )
    if next_month > add_months(this_month, 120):
        row.reasons.append(f"下次检验日期{next_month}距今超过10年，请核对")


def rule_inspection_interval(row: Row) -> None:
    """下次检验日期 within the periodic-inspection interval of its 设备品种 and 充装介质."""
    if row.variety and row.medium and row.month and row.next_month:
        error = inspection_rules.next_inspection_error(
            row.variety, row.medium, row.month, row.last_date, row.next_month
        )
        if error:
            row.reasons.append(error)


def rule_design_life(row: Row) -> None:
    """设计使用年限 (optional): a whole number of years, as on the nameplate."""
    if not row.given("design_life_years"):
        return
    value, text = row.raw["design_life_years"], row.text["design_life_years"]
    number = parse_decimal(value)
    if number is None or not number.is_finite() or number != number.to_integral_value():
        row.reasons.append(f"设计使用年限“{text}”应为整数年（如8）")
    elif not MIN_DESIGN_LIFE <= number <= MAX_DESIGN_LIFE:
        row.reasons.append(
            f"设计使用年限{text}年超出合理范围（{MIN_DESIGN_LIFE}–{MAX_DESIGN_LIFE}年），请核对"
        )
    else:
        row.design_life_years = int(number)


def rule_service_life(row: Row) -> None:
    """A cylinder past its service life is not registered (the interlock's rule): its own
    设计使用年限 where given, the rule table otherwise."""
    if row.variety and row.medium and row.month:
        error = inspection_rules.service_life_error(
            row.variety,
            row.medium,
            row.month,
            row.today,
            design_life_years=row.design_life_years,
            last_inspection_date=row.last_date,
        )
        if error:
            row.reasons.append(error)


def rule_internal_no(row: Row) -> None:
    if not row.given("internal_no") or _lost_digits(row, "internal_no"):
        return
    row.internal_no = row.text["internal_no"]
    row.check_length(HEADER_BY_KEY["internal_no"], row.internal_no, 50)


def rule_tag(row: Row) -> None:
    if {"tag_type", "tag_value"} & row.skip:
        return
    tag_value = row.text["tag_value"]
    if row.text["tag_type"]:
        row.tag_type = _TAG_NAMES.get(row.text["tag_type"].upper().replace(" ", ""))
        if row.tag_type is None:
            row.reasons.append(f"信息化管理情况“{row.text['tag_type']}”只能是 二维码 或 RFID标签")
    elif tag_value:
        row.reasons.append("填写了二维码（URL）或RFID编码，但未选择信息化管理情况")
    if row.tag_type is TagType.QR:
        if not tag_value:
            row.reasons.append("信息化管理情况为二维码时，须填写二维码对应的URL")
        elif len(tag_value) > 1000:
            row.reasons.append(f"二维码URL超过1000个字（现为{len(tag_value)}个字）")
        elif error := qr_url_error(tag_value):
            row.reasons.append(error)
        else:
            row.qr_content = tag_value
    elif row.tag_type is TagType.RFID:
        if not tag_value:
            row.reasons.append("信息化管理情况为RFID标签时，须填写RFID编码")
        else:
            row.check_length("RFID编码", tag_value, 50)
            row.rfid_code = tag_value


def rule_electronic_mark(row: Row) -> None:
    if (
        row.medium in ELECTRONIC_MARK_MEDIA
        and row.month is not None
        and row.month >= ELECTRONIC_MARK_FROM
        and row.tag_type is None
    ):
        row.reasons.append(
            f"按{NOTICE}，2021年1月起制造的该介质（{row.medium}）气瓶须设置永久性电子识读标志，"
            "请填写信息化管理情况及二维码URL或RFID编码"
        )


def rule_trace_code_year(row: Row) -> None:
    if not (row.product_no and row.month):
        return
    if (row.internal_no or "").startswith(NOT_TRACE_CODE_MARK):
        return  # the applicant says: a manufacturer's number that merely has 12 digits
    year_error = trace_code_year_error(row.product_no, row.month)
    if year_error:
        row.reasons.append(
            f"{year_error}。如该编号不是镂空码，而是恰好为12位数字的出厂编号，"
            f"请在单位内编号一栏以“{NOT_TRACE_CODE_MARK}”开头填写（如“{NOT_TRACE_CODE_MARK}”"
            f"或“{NOT_TRACE_CODE_MARK} NB-0001”），该行将不按镂空码核对年份"
        )


# In this order: a row's reasons read left to right like its columns.
RULES: tuple[Rule, ...] = (
    rule_cell_problems,
    rule_invisible_characters,
    rule_variety,
    rule_medium,
    rule_product_no,
    rule_manufacturer,
    rule_manufacture_month,
    rule_pressure,
    rule_volume,
    rule_last_inspection,
    rule_next_inspection,
    rule_inspection_interval,
    rule_design_life,
    rule_service_life,
    rule_internal_no,
    rule_tag,
    rule_electronic_mark,
    rule_trace_code_year,
)


def validate_row(row_no: int, cells: Sequence[Any], codes: CodeTables, today: date) -> RowResult:
    """Every rule of DESIGN 3 and 5 for one row; all reasons, not only the first."""
    cells = list(cells[: len(COLUMNS)]) + [None] * (len(COLUMNS) - len(cells[: len(COLUMNS)]))
    values = [cell_text(v) for v in cells]
    result = RowResult(row=row_no, values=values)
    row = Row(
        raw=dict(zip(_KEYS, cells, strict=True)),
        text=dict(zip(_KEYS, values, strict=True)),
        codes=codes,
        today=today,
        reasons=result.reasons,
    )
    for rule in RULES:
        rule(row)
    if not result.reasons:
        result.data = CylinderData(
            variety_code=row.variety or "",
            product_no=row.product_no,
            medium_code=row.medium or "",
            manufacturer=row.manufacturer,
            manufacture_month=row.month or "",
            nominal_pressure_mpa=row.pressure or Decimal(0),
            volume_l=row.volume or Decimal(0),
            last_inspection_date=row.last_date,
            next_inspection_month=row.next_month,
            internal_no=row.internal_no,
            tag_type=row.tag_type,
            qr_content=row.qr_content,
            rfid_code=row.rfid_code,
            design_life_years=row.design_life_years,
        )
    if row.product_no and row.manufacturer and row.month:
        # Known even when other cells are wrong, so the archive and other-application checks
        # run on every row and its result lists all its reasons.
        result.key = identity_key(row.manufacturer, row.product_no, row.month)
    if row.qr_content:
        result.tag = (TagType.QR, row.qr_content)
    elif row.rfid_code and len(row.rfid_code) <= 50:
        result.tag = (TagType.RFID, row.rfid_code)
    return result
