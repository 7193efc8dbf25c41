"""Reading the file: the data sheet's rows, its header checked, empty rows dropped.

.xlsx, .xls and .ods are read with calamine (values come typed) from the sheet named
气瓶信息 wherever it stands, or from the first sheet when the workbook has none of that name
and that sheet's header matches (never from 填写示例). For .xlsx the sheet's XML is also
scanned for what calamine does not say: Excel error values, formulas without a computed
value, hidden (or filtered) rows and number cells shown in scientific notation; .xls and
.ods are scanned for the same (``legacy.py``: hidden rows and error cells; formulas without
a value exist only in .ods); cells inside a merged range come from calamine's merged
ranges. A .csv is decoded (UTF-8 with or without BOM, else GB18030, which contains GBK) and
read with the csv module: every value is text.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from posixpath import join, normpath
from typing import Any

from defusedxml import ElementTree
from python_calamine import CalamineError, CalamineWorkbook, PasswordError

from . import ImportRejected
from .cells import FORMULA_MESSAGE, CellProblem, ScientificNumber, cell_text
from .legacy import scan_ods, scan_xls
from .safety import PASSWORD_MESSAGE, file_kind
from .template import COLUMNS, EXAMPLE_SHEET, HEADERS, REQUIRED_COLUMNS, SHEET_NAME

MAX_ROWS = 100_000
# The columns a row cannot go without (their rule says 必填).
REQUIRED_CELLS = frozenset(
    index
    for index, column in enumerate(COLUMNS)
    if column.key
    in {
        "variety",
        "product_no",
        "medium",
        "manufacturer",
        "manufacture_month",
        "pressure",
        "volume",
        "next_inspection_month",
    }
)


class ParsedRows(list[tuple[int, list[Any]]]):
    """The non-empty data rows with their Excel row numbers; ``hidden`` counts those that
    are hidden or filtered out in Excel (they are imported like the others)."""

    hidden: int = 0
    kind: str = "xlsx"  # the file's format: xlsx, xls, ods or csv


def parse_workbook(data: bytes, filename: str = "") -> ParsedRows:
    """Check the file and return its non-empty data rows with their Excel row numbers."""
    kind = file_kind(data, filename)
    hidden: set[int] = set()
    if kind == "csv":
        rows: list[list[Any]] = read_csv(data)
        difference = header_difference(rows[0]) if rows else None
        where = "第1行表头与模板不一致"
    else:
        rows, hidden, where, difference = read_sheet(data, kind)
    if difference is not None:
        raise ImportRejected(
            f"{where}：{difference}。请下载最新模板，不要增删或调整列（应为："
            + "、".join(HEADERS)
            + "）"
        )
    absent = absent_optional_columns(rows[0]) if rows else []
    data_rows = ParsedRows(_data_rows(rows, absent))
    if not data_rows:
        raise ImportRejected("文件中没有气瓶数据（第2行起每只气瓶一行）")
    if len(data_rows) > MAX_ROWS:
        raise ImportRejected(f"一次最多导入{MAX_ROWS}行，本文件有{len(data_rows)}行，请拆分")
    data_rows.kind = kind
    data_rows.hidden = sum(1 for row_no, _ in data_rows if row_no in hidden)
    return data_rows


# ----------------------------------------------------------------------------- header


def _header_text(value: Any) -> str:
    return re.sub(r"[\s\ufeff]+", "", cell_text(value))


_EXPECTED = [re.sub(r"\s+", "", unicodedata.normalize("NFKC", h)) for h in HEADERS]


def _header_cell(row: Sequence[Any], index: int) -> str:
    return _header_text(row[index] if index < len(row) else None)


def _differs(row: Sequence[Any], index: int) -> str:
    shown = cell_text(row[index] if index < len(row) else None)
    actual = f"实为“{shown}”" if shown else "实为空"
    return f"第{index + 1}列应为“{HEADERS[index]}”，{actual}"


def header_difference(row: Sequence[Any]) -> str | None:
    """ "第3列应为“充装介质”，实为“介质”" for the first column that differs, else None.

    The required columns must all be there, in order. An optional column after them (设计
    使用年限) may be missing (an older template, or 错误原因 of an older error file in its
    place); a header that looks like it but is misspelt is named, never silently skipped.
    """
    for index, expected in enumerate(_EXPECTED):
        text = _header_cell(row, index)
        if text == expected:
            continue
        if index < REQUIRED_COLUMNS or "年限" in text:
            return _differs(row, index)
    return None


def absent_optional_columns(row: Sequence[Any]) -> list[int]:
    """The optional columns this file's header does not have (their cells are not read)."""
    return [
        index
        for index in range(REQUIRED_COLUMNS, len(COLUMNS))
        if _header_cell(row, index) != _EXPECTED[index]
    ]


def _data_rows(rows: list[list[Any]], absent: Sequence[int]) -> Iterator[tuple[int, list[Any]]]:
    for index, row in enumerate(rows[1:], start=2):
        cells = row[: len(COLUMNS)]
        for column in absent:
            if column < len(cells):
                cells[column] = None  # another column stands there (错误原因, 备注…)
        if any(v.counts if isinstance(v, CellProblem) else bool(cell_text(v)) for v in cells):
            yield index, cells


# ----------------------------------------------------------------------------- workbooks


def read_sheet(data: bytes, kind: str) -> tuple[list[list[Any]], set[int], str, str | None]:
    """The data sheet's rows (marked cells replaced by ``CellProblem``), its hidden rows,
    and the header check: where it was made and the first difference (None when it matches)."""
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        names = list(workbook.sheet_names)
        if SHEET_NAME in names:
            index = names.index(SHEET_NAME)
            where = "第1行表头与模板不一致"
        elif names and names[0] != EXAMPLE_SHEET:
            index = 0
            where = (
                f"第1行表头与模板不一致（工作簿中没有名为“{SHEET_NAME}”的工作表，"
                f"读的是第一个工作表“{names[0]}”）"
            )
        else:
            raise ImportRejected(
                f"工作簿中没有名为“{SHEET_NAME}”的工作表（“{EXAMPLE_SHEET}”只是示例，不会导入）："
                f"请在模板的“{SHEET_NAME}”工作表中填写后再导入"
            )
        sheet = workbook.get_sheet_by_index(index)
        rows = sheet.to_python(skip_empty_area=False)
        merged = sheet.merged_cell_ranges or []
    except ImportRejected:
        raise
    except PasswordError:
        raise ImportRejected(PASSWORD_MESSAGE) from None
    except (CalamineError, ValueError, OSError) as exc:
        raise ImportRejected("无法读取该文件，请用模板重新填写后另存为.xlsx") from exc
    rows = [list(row) for row in rows]
    difference = header_difference(rows[0]) if rows else "第1列应为“设备品种”，实为空"
    hidden: set[int] = set()
    if difference is None:
        if kind == "xlsx":
            hidden = _mark_xlsx_cells(data, index, rows)
        else:

            def mark(row: int, column: int, problem: CellProblem) -> None:
                _mark(rows, row, column, problem)

            if kind == "xls":
                hidden = scan_xls(data, names[index], index, mark, REQUIRED_CELLS)
            else:
                hidden, ods_merged = scan_ods(data, names[index], index, mark, len(COLUMNS))
                merged = [*merged, *ods_merged]
        _mark_merged(merged, rows)
    return rows, hidden, where, difference


def _mark(rows: list[list[Any]], row: int, column: int, problem: CellProblem) -> None:
    """Replace cell (0-based row, column) of the template's columns by ``problem``."""
    if row < 1 or column >= len(COLUMNS):
        return
    while len(rows) <= row:
        rows.append([])
    cells = rows[row]
    if len(cells) <= column:
        cells.extend([None] * (column + 1 - len(cells)))
    if problem.shown == "" and not isinstance(cells[column], CellProblem):
        problem.shown = cells[column]
    cells[column] = problem


def _mark_merged(merged: list[Any], rows: list[list[Any]]) -> None:
    for (top, left), (bottom, right) in merged:
        ref = f"{_column_letter(left)}{top + 1}:{_column_letter(right)}{bottom + 1}"
        for row in range(max(top, 1), bottom + 1):
            for column in range(left, min(right, len(COLUMNS) - 1) + 1):
                value = _cell(rows, row, column)
                _mark(
                    rows,
                    row,
                    column,
                    CellProblem(
                        f"单元格在合并单元格{ref}中：请取消合并，每只气瓶一行、每格填写自己的值",
                        value,
                        counts=bool(cell_text(value)),
                    ),
                )


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_index(letters: bytes) -> int:
    index = 0
    for char in letters.upper():
        index = index * 26 + char - 64
    return index - 1


# The sheet XML is scanned with expressions, not parsed: a full parse of a 10,000-row sheet
# costs more than the whole import. Each scan runs only when its marker occurs at all.
_ROW_TAG = re.compile(rb"<(?:\w+:)?row\b([^>]*)>")
_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c>)", re.DOTALL)
_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]+)<")
_ATTRIBUTE = re.compile(rb'\b(r|t|s|hidden)="([^"]*)"')
_REF = re.compile(rb"^([A-Za-z]{1,3})(\d+)$")
_SCIENTIFIC_FORMAT = re.compile(r"[eE][+-]")
_SCIENTIFIC_BUILTIN = {11, 48}  # 0.00E+00, ##0.0E+0


def _mark_xlsx_cells(data: bytes, sheet_index: int, rows: list[list[Any]]) -> set[int]:
    """Mark error cells, formulas without a value and scientific number cells; return the
    hidden rows (1-based)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        part = _sheet_part(archive, sheet_index)
        if part is None:
            return set()
        xml = archive.read(part)
        scientific = _scientific_styles(archive)
    hidden: set[int] = set()
    if b"hidden" in xml:
        for match in _ROW_TAG.finditer(xml):
            attributes = dict(_ATTRIBUTE.findall(match.group(1)))
            if attributes.get(b"hidden") in (b"1", b"true") and b"r" in attributes:
                hidden.add(int(attributes[b"r"]))
    if not (b't="e"' in xml or _FORMULA.search(xml) or scientific):
        return hidden
    for match in _CELL.finditer(xml):
        attributes = dict(_ATTRIBUTE.findall(match.group(1)))
        ref = _REF.match(attributes.get(b"r", b""))
        if ref is None:
            continue
        row, column = int(ref.group(2)) - 1, _column_index(ref.group(1))
        body = match.group(2) or b""
        value = _VALUE.search(body)
        kind = attributes.get(b"t", b"n")
        if kind == b"e":
            shown = value.group(1).decode(errors="replace") if value else "#错误"
            _mark(rows, row, column, CellProblem(f"单元格是Excel错误值{shown}，请改正", shown))
        elif _FORMULA.search(body) and value is None:
            _mark(rows, row, column, CellProblem(FORMULA_MESSAGE, ""))
        elif kind == b"n" and value and _style(attributes) in scientific:
            number = _cell(rows, row, column)
            if row >= 1 and isinstance(number, float):
                rows[row][column] = ScientificNumber(number)
    return hidden


def _style(attributes: dict[bytes, bytes]) -> int:
    style = attributes.get(b"s", b"0")
    return int(style) if style.isdigit() else 0


def _cell(rows: list[list[Any]], row: int, column: int) -> Any:
    return rows[row][column] if row < len(rows) and column < len(rows[row]) else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _sheet_part(archive: zipfile.ZipFile, sheet_index: int) -> str | None:
    """The zip path of the workbook's n-th sheet (the order calamine lists them in)."""
    try:
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        return None
    sheets = [e for e in workbook.iter() if _local(e.tag) == "sheet"]
    if sheet_index >= len(sheets):
        return None
    rel_id = next((v for k, v in sheets[sheet_index].attrib.items() if _local(k) == "id"), None)
    for rel in rels:
        if rel.get("Id") == rel_id:
            target = rel.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else join("xl", target)
            path = normpath(path)
            return path if path in archive.namelist() else None
    return None


def _scientific_styles(archive: zipfile.ZipFile) -> set[int]:
    """The cell style indexes whose number format shows scientific notation."""
    try:
        styles = ElementTree.fromstring(archive.read("xl/styles.xml"))
    except (KeyError, ElementTree.ParseError):
        return set()
    custom: set[int] = set()
    for element in styles.iter():
        if _local(element.tag) == "numFmt":
            code = re.sub(r'"[^"]*"', "", element.get("formatCode", ""))
            if _SCIENTIFIC_FORMAT.search(code):
                custom.add(int(element.get("numFmtId", "-1")))
    found: set[int] = set()
    for element in styles.iter():
        if _local(element.tag) == "cellXfs":
            for index, xf in enumerate(e for e in element if _local(e.tag) == "xf"):
                format_id = int(xf.get("numFmtId", "0"))
                if format_id in _SCIENTIFIC_BUILTIN or format_id in custom:
                    found.add(index)
    return found


# ----------------------------------------------------------------------------- csv


def read_csv(data: bytes) -> list[list[Any]]:
    """A .csv file's rows as texts: UTF-8 (with or without BOM), else GB18030/GBK."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportRejected(
            "CSV文件是UTF-16编码（Unicode文本）：请另存为“CSV UTF-8（逗号分隔）”后再导入"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise ImportRejected(
                "无法识别CSV文件的编码（应为UTF-8或GBK/GB18030）："
                "请另存为“CSV UTF-8（逗号分隔）”后再导入"
            ) from None
    if "\x00" in text:
        raise ImportRejected("CSV文件中含有空字符（NUL），不是文本文件：请另存为CSV后再导入")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ImportRejected(f"CSV文件格式有误（{exc}）：请用Excel或WPS另存为CSV后再导入") from None
    if len(rows) > MAX_ROWS + 1:
        raise ImportRejected(f"一次最多导入{MAX_ROWS}行，本文件有{len(rows) - 1}行，请拆分")
    return [list(row) for row in rows]
