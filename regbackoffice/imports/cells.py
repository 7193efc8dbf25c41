"""Cell parsing: one cell's value as the text a person reads, a month, a date or a number."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

FORMULA_MESSAGE = (
    "公式没有计算结果（文件由程序生成、未在Excel中计算过）：请在Excel或WPS中打开并保存后再导入，"
    "或把公式改为数值"
)


class CellProblem:
    """A cell whose value cannot be taken as typed: an Excel error value, a formula without
    a computed result, a cell inside a merged range. ``shown`` is what the cell shows."""

    __slots__ = ("counts", "message", "shown")

    def __init__(self, message: str, shown: Any = "", *, counts: bool = True) -> None:
        self.message = message
        self.shown = shown
        self.counts = counts  # does it make its row a data row (an empty merged cell: no)

    def __repr__(self) -> str:
        return f"CellProblem({self.message!r}, {self.shown!r})"


class ScientificNumber(float):
    """A number cell formatted to show scientific notation (such as 1.23E+11)."""


def cell_text(value: Any) -> str:
    """A cell as the text a person would read in it (for messages and the error file)."""
    if value is None:
        return ""
    if isinstance(value, CellProblem):
        return cell_text(value.shown)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(Decimal(repr(value)).normalize(), "f")
    if isinstance(value, datetime):
        if value.hour == value.minute == value.second == 0:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return unicodedata.normalize("NFKC", str(value)).strip()


_MONTH_TEXT = re.compile(
    r"^(\d{4})\s*(?:[-/.年])\s*(\d{1,2})\s*(?:月)?"  # year and month
    r"(?:\s*[-/.]?\s*(\d{1,2})\s*日?)?$"  # an optional day
)
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})?$")
# ISO date-times as other tools write them: SheetJS ``t="d"`` cells (2021-05-01T00:00:00.000Z),
# CSV exports (2021-05-01 00:00:00). The date part is the date the cell shows.
_ISO_DATETIME = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?$"
)
# Excel serial day numbers between 1950 and 2099.
_SERIAL_RANGE = (18264, 73051)
_EXCEL_EPOCH = date(1899, 12, 30)


def _serial_to_date(value: float) -> date | None:
    if _SERIAL_RANGE[0] <= value <= _SERIAL_RANGE[1]:
        return _EXCEL_EPOCH + timedelta(days=int(value))
    return None


def parse_month(value: Any) -> str | None:
    """``yyyy-mm`` from a date cell, a serial number, or texts such as 2021-5, 2021/05,
    2021年5月, 202105; None when it cannot be read."""
    if isinstance(value, datetime | date):
        return f"{value.year:04d}-{value.month:02d}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if number.is_integer() and 190001 <= number <= 209912:
            text = str(int(number))
        else:
            day = _serial_to_date(number)
            return f"{day.year:04d}-{day.month:02d}" if day else None
    else:
        text = cell_text(value)
    match = _MONTH_TEXT.match(text) or _COMPACT.match(text) or _ISO_DATETIME.match(text)
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return None
    if match.group(3):  # a full date given: check the day is real too
        try:
            date(year, month, int(match.group(3)))
        except ValueError:
            return None
    return f"{year:04d}-{month:02d}"


def parse_date(value: Any) -> date | None:
    """A date from a date cell, a serial number, or texts such as 2024-5-20, 2024/05/20,
    2024年5月20日, 20240520; None when it cannot be read."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if number.is_integer() and 19000101 <= number <= 20991231:
            value = str(int(number))
        else:
            return _serial_to_date(number)
    text = cell_text(value)
    match = _MONTH_TEXT.match(text) or _COMPACT.match(text) or _ISO_DATETIME.match(text)
    if not match or not match.group(3):
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def parse_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    # A comma is refused, never dropped: "2,1" is 2.1 written the European way, not 21.
    text = cell_text(value)
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def has_decimal_comma(value: Any) -> bool:
    """A number typed with a comma (2,1 / 40，5 / 1,000): refused, as the comma is ambiguous."""
    return isinstance(value, str) and bool(re.fullmatch(r"[+-]?[\d.]*,[\d.,]*", cell_text(value)))


SCIENTIFIC_TEXT = re.compile(r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$")


def add_months(month: str, months: int) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + mon - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"
