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
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from posixpath import join, normpath
from typing import IO, Any

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


# A change to one cell, applied when its row is read: the cell's value → its new value.
CellChange = Callable[[Any], Any]
Marks = dict[int, list[tuple[int, CellChange]]]  # 0-based row → (column, change), in order


class ParsedRows:
    """The non-empty data rows with their Excel row numbers, read lazily: iterating yields
    ``(row_no, cells)`` one row at a time from the sheet (calamine keeps it compactly,
    outside Python objects), with the marks of the XML scans applied, so a 100,000-row
    file is never held as Python rows. Can be iterated more than once.

    ``hidden`` counts the rows hidden or filtered out in Excel (they are imported like the
    others); ``kind`` is the file's format: xlsx, xls, ods or csv.
    """

    def __init__(
        self,
        source: Callable[[], Iterable[Sequence[Any]]],
        marks: Marks,
        absent: Sequence[int],
        kind: str,
        hidden: set[int],
    ) -> None:
        self._source = source
        self._marks = marks
        self._absent = list(absent)
        self.kind = kind
        # The 0-based indexes of the non-empty data rows (a compact array, not the rows).
        self._indexes = array("l", (index for index, _ in self._scan(None)))
        self.hidden = sum(1 for index in self._indexes if index + 1 in hidden)

    def __len__(self) -> int:
        return len(self._indexes)

    def __bool__(self) -> bool:
        return bool(self._indexes)

    def __iter__(self) -> Iterator[tuple[int, list[Any]]]:
        for index, cells in self._scan(self._indexes):
            yield index + 1, cells

    def _sheet_rows(self) -> Iterator[tuple[int, list[Any]]]:
        """Every sheet row after the header (0-based index, cells with marks applied), up
        to the last marked row (a mark may stand below the sheet's last value)."""
        last_marked = max(self._marks, default=0)
        last = 0
        for index, row in enumerate(self._source()):
            if index == 0:
                continue
            last = index
            yield index, self._marked(index, list(row))
        for below in range(last + 1, last_marked + 1):
            yield below, self._marked(below, [])

    def _marked(self, index: int, cells: list[Any]) -> list[Any]:
        for column, change in self._marks.get(index, ()):
            if len(cells) <= column:
                cells.extend([None] * (column + 1 - len(cells)))
            cells[column] = change(cells[column])
        return cells

    def _scan(self, wanted: array[int] | None) -> Iterator[tuple[int, list[Any]]]:
        """The non-empty data rows; only those at ``wanted`` indexes when given (ascending:
        the first scan found them, so no second emptiness check)."""
        position = 0
        for index, row in self._sheet_rows():
            if wanted is not None:
                if position >= len(wanted):
                    return
                if index != wanted[position]:
                    continue
                position += 1
            cells = row[: len(COLUMNS)]
            for column in self._absent:
                if column < len(cells):
                    cells[column] = None  # another column stands there (错误原因, 备注…)
            if wanted is not None or _non_empty(cells):
                yield index, cells


def _non_empty(cells: Sequence[Any]) -> bool:
    return any(v.counts if isinstance(v, CellProblem) else bool(cell_text(v)) for v in cells)


def parse_workbook(data: bytes, filename: str = "") -> ParsedRows:
    """Check the file and return its non-empty data rows with their Excel row numbers."""
    kind = file_kind(data, filename)
    hidden: set[int] = set()
    marks: Marks = {}
    if kind == "csv":
        csv_rows = read_csv(data)
        first: Sequence[Any] | None = csv_rows[0] if csv_rows else None

        def source() -> Iterable[Sequence[Any]]:
            return csv_rows

        difference = header_difference(first) if first is not None else None
        where = "第1行表头与模板不一致"
    else:
        source, first, marks, hidden, where, difference = read_sheet(data, kind)
    if difference is not None:
        raise ImportRejected(
            f"{where}：{difference}。请下载最新模板，不要增删或调整列（应为："
            + "、".join(HEADERS)
            + "）"
        )
    absent = absent_optional_columns(first) if first is not None else []
    data_rows = ParsedRows(source, marks, absent, kind, hidden)
    if not data_rows:
        raise ImportRejected("文件中没有气瓶数据（第2行起每只气瓶一行）")
    if len(data_rows) > MAX_ROWS:
        raise ImportRejected(f"一次最多导入{MAX_ROWS}行，本文件有{len(data_rows)}行，请拆分")
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


# ----------------------------------------------------------------------------- workbooks


def read_sheet(
    data: bytes, kind: str
) -> tuple[
    Callable[[], Iterable[Sequence[Any]]], Sequence[Any] | None, Marks, set[int], str, str | None
]:
    """The data sheet's rows (a function returning them afresh, one at a time), its header
    row, the marks of the cells to replace by ``CellProblem`` (or ``ScientificNumber``), its
    hidden rows, and the header check: where it was made and the first difference (None
    when it matches)."""
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
        merged = sheet.merged_cell_ranges or []
        # iter_rows yields the rows from the first (as to_python(skip_empty_area=False)
        # does) but the columns only from the sheet's first used one: pad them back.
        start = sheet.start
        pad = [""] * (start[1] if start else 0)

        def source() -> Iterator[list[Any]]:
            for row in sheet.iter_rows():
                yield [*pad, *row] if pad else list(row)

        first = next(iter(source()), None)
    except ImportRejected:
        raise
    except PasswordError:
        raise ImportRejected(PASSWORD_MESSAGE) from None
    except (CalamineError, ValueError, OSError) as exc:
        raise ImportRejected("无法读取该文件，请用模板重新填写后另存为.xlsx") from exc
    difference = header_difference(first) if first else "第1列应为“设备品种”，实为空"
    hidden: set[int] = set()
    marks: Marks = {}
    if difference is None:
        if kind == "xlsx":
            hidden = _mark_xlsx_cells(data, index, marks)
        else:

            def mark(row: int, column: int, problem: CellProblem) -> None:
                _mark(marks, row, column, problem)

            if kind == "xls":
                hidden = scan_xls(data, names[index], index, mark, REQUIRED_CELLS)
            else:
                hidden, ods_merged = scan_ods(data, names[index], index, mark, len(COLUMNS))
                merged = [*merged, *ods_merged]
        _mark_merged(merged, marks)
    return source, first, marks, hidden, where, difference


def _add(marks: Marks, row: int, column: int, change: CellChange) -> None:
    marks.setdefault(row, []).append((column, change))


def _placed(problem: CellProblem, current: Any) -> CellProblem:
    """``problem`` in the place of a cell's ``current`` value: it shows that value unless
    it says what to show (or the cell is already a problem)."""
    if problem.shown == "" and not isinstance(current, CellProblem):
        problem.shown = current
    return problem


def _mark(marks: Marks, row: int, column: int, problem: CellProblem) -> None:
    """Replace cell (0-based row, column) of the template's columns by ``problem``."""
    if row < 1 or column >= len(COLUMNS):
        return
    _add(marks, row, column, lambda current: _placed(problem, current))


def _mark_merged(merged: list[Any], marks: Marks) -> None:
    for (top, left), (bottom, right) in merged:
        ref = f"{_column_letter(left)}{top + 1}:{_column_letter(right)}{bottom + 1}"
        message = f"单元格在合并单元格{ref}中：请取消合并，每只气瓶一行、每格填写自己的值"

        def change(current: Any, message: str = message) -> CellProblem:
            return _placed(CellProblem(message, current, counts=bool(cell_text(current))), current)

        for row in range(max(top, 1), bottom + 1):
            for column in range(left, min(right, len(COLUMNS) - 1) + 1):
                _add(marks, row, column, change)


def _scientific(current: Any) -> Any:
    return ScientificNumber(current) if isinstance(current, float) else current


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


def _mark_xlsx_cells(data: bytes, sheet_index: int, marks: Marks) -> set[int]:
    """Mark error cells, formulas without a value and scientific number cells; return the
    hidden rows (1-based). The sheet XML is read piece by piece (whole rows), never whole:
    a 100,000-row sheet is ~70 MB of XML."""
    hidden: set[int] = set()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        part = _sheet_part(archive, sheet_index)
        if part is None:
            return hidden
        scientific = _scientific_styles(archive)
        with archive.open(part) as stream:
            for piece in _whole_rows(stream):
                _scan_piece(piece, scientific, marks, hidden)
    return hidden


_ROW_START = re.compile(rb"<(?:\w+:)?row\b")
_PIECE_BYTES = 4 * 1024 * 1024


def _whole_rows(stream: IO[bytes]) -> Iterator[bytes]:
    """The XML in pieces that each end just before a ``<row`` tag (the last piece: at the
    end), so every row element and its cells lie whole inside one piece."""
    rest = b""
    while chunk := stream.read(_PIECE_BYTES):
        buffer = rest + chunk
        tail = max(0, len(buffer) - 65536)
        starts = [m.start() for m in _ROW_START.finditer(buffer, tail)] or [
            m.start() for m in _ROW_START.finditer(buffer)
        ]
        cut = starts[-1] if starts else 0
        if cut > 0:
            yield buffer[:cut]
        rest = buffer[cut:]
    if rest:
        yield rest


def _scan_piece(xml: bytes, scientific: set[int], marks: Marks, hidden: set[int]) -> None:
    if b"hidden" in xml:
        for match in _ROW_TAG.finditer(xml):
            attributes = dict(_ATTRIBUTE.findall(match.group(1)))
            if attributes.get(b"hidden") in (b"1", b"true") and b"r" in attributes:
                hidden.add(int(attributes[b"r"]))
    if not (b't="e"' in xml or _FORMULA.search(xml) or scientific):
        return
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
            _mark(marks, row, column, CellProblem(f"单元格是Excel错误值{shown}，请改正", shown))
        elif _FORMULA.search(body) and value is None:
            _mark(marks, row, column, CellProblem(FORMULA_MESSAGE, ""))
        elif kind == b"n" and value and _style(attributes) in scientific and row >= 1:
            _add(marks, row, column, _scientific)


def _style(attributes: dict[bytes, bytes]) -> int:
    style = attributes.get(b"s", b"0")
    return int(style) if style.isdigit() else 0


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
