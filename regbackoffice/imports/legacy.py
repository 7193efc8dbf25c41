"""What calamine does not say about .xls and .ods sheets: hidden (or filtered) rows, Excel
error values and, for .ods, formulas without a computed value.

calamine reads an error cell of these formats as an empty cell (so it would be reported as
必填) and says nothing of hidden rows. Each format is scanned for them directly:

- .xls (BIFF8, or BIFF5 from old tools): the workbook stream's records, from the sheet's
  BOF (found through its BOUNDSHEET record) to its EOF. A ROW record with ``fDyZero`` is a
  hidden row (Excel hides filtered-out rows the same way); a BOOLERR record with ``fError``
  and a FORMULA record whose cached result is an error are error cells. A FORMULA record
  always carries a cached result in BIFF, which is what calamine reads; a program that
  does not calculate (xlwt) writes the result "empty string". In a required column that
  formula is named (公式没有计算结果) instead of 必填; elsewhere an empty result is read as
  empty, as Excel shows a formula returning "".
- .ods: the sheet's ``table:table`` in content.xml. A row with ``table:visibility``
  ``collapse`` (hidden) or ``filter`` (filtered out) is hidden, counted with
  ``table:number-rows-repeated``; a cell with ``calcext:value-type="error"`` (LibreOffice),
  or a formula cell showing an error text such as #N/A or Err:502 (older writers), is an
  error cell; a formula cell without ``office:value-type`` (written by a script, never
  calculated) has no computed value; ``table:number-rows-spanned``/``-columns-spanned``
  make a merged range (calamine gives none for .ods).

The scans use expressions, not a full parse, for speed on large sheets (as for .xlsx).
"""

from __future__ import annotations

import html
import io
import re
import struct
import zipfile
from collections.abc import Callable
from typing import Any

import olefile

from .cells import FORMULA_MESSAGE, CellProblem

Mark = Callable[[int, int, CellProblem], None]  # (0-based row, column, problem)

# Rows (1-based) past this are never data rows of an accepted file (MAX_ROWS + header).
ROW_LIMIT = 100_002
ERROR_MESSAGE = "单元格是Excel错误值{shown}，请改正"

# BIFF error codes (BOOLERR and FORMULA results).
_BIFF_ERRORS = {
    0x00: "#NULL!",
    0x07: "#DIV/0!",
    0x0F: "#VALUE!",
    0x17: "#REF!",
    0x1D: "#NAME?",
    0x24: "#NUM!",
    0x2A: "#N/A",
}
_BOF, _EOF, _BOUNDSHEET = 0x0809, 0x000A, 0x0085
_ROW, _BOOLERR, _FORMULA = 0x0208, 0x0205, 0x0006
_ROW_HIDDEN = 0x0020  # fDyZero: the row's height is zero (hidden or filtered out)


def error_problem(shown: str) -> CellProblem:
    return CellProblem(ERROR_MESSAGE.format(shown=shown), shown)


# ----------------------------------------------------------------------------- .xls


def _records(stream: bytes, start: int) -> Any:
    position = start
    while position + 4 <= len(stream):
        kind, length = struct.unpack_from("<HH", stream, position)
        yield position, kind, stream[position + 4 : position + 4 + length]
        position += 4 + length


def _sheet_offsets(stream: bytes) -> list[tuple[str | None, int]]:
    """(name, BOF offset) of each sheet, in the workbook's order."""
    sheets: list[tuple[str | None, int]] = []
    for _, kind, body in _records(stream, 0):
        if kind == _BOUNDSHEET and len(body) >= 8:
            offset = struct.unpack_from("<I", body)[0]
            sheets.append((_sheet_name(body[6:]), offset))
        elif kind == _EOF:
            break
    return sheets


def _sheet_name(body: bytes) -> str | None:
    """A BIFF8 ShortXLUnicodeString (None when it cannot be read: BIFF5 code pages)."""
    if len(body) < 2:
        return None
    count, high = body[0], body[1] & 1
    try:
        if high:
            return body[2 : 2 + 2 * count].decode("utf-16-le")
        return body[2 : 2 + count].decode("latin-1")
    except UnicodeDecodeError:
        return None


def scan_xls(
    data: bytes, sheet_name: str, sheet_index: int, mark: Mark, required: frozenset[int]
) -> set[int]:
    """Mark the error cells of the sheet, and formulas with an empty result in the
    ``required`` columns; return its hidden rows (1-based)."""
    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
        names = {"/".join(p) for p in ole.listdir(streams=True, storages=False)}
        stream = ole.openstream("Workbook" if "Workbook" in names else "Book").read()
    except Exception:  # checked already by the safety module; a scan never refuses alone
        return set()
    sheets = _sheet_offsets(stream)
    offset = next((o for name, o in sheets if name == sheet_name), None)
    if offset is None and sheet_index < len(sheets):
        offset = sheets[sheet_index][1]
    if offset is None:
        return set()
    hidden: set[int] = set()
    for position, kind, body in _records(stream, offset):
        if kind == _EOF:
            break
        if kind == _BOF and position != offset:
            break  # the next sheet: this one had no EOF
        if kind == _ROW and len(body) >= 14:
            row, grbit = struct.unpack_from("<H", body)[0], struct.unpack_from("<H", body, 12)[0]
            if grbit & _ROW_HIDDEN:
                hidden.add(row + 1)
        elif kind == _BOOLERR and len(body) >= 8 and body[7] == 1:
            row, column = struct.unpack_from("<HH", body)
            mark(row, column, error_problem(_BIFF_ERRORS.get(body[6], "#错误")))
        elif kind == _FORMULA and len(body) >= 14 and body[12:14] == b"\xff\xff":
            row, column = struct.unpack_from("<HH", body)
            if body[6] == 2:
                mark(row, column, error_problem(_BIFF_ERRORS.get(body[8], "#错误")))
            elif body[6] == 3 and column in required:  # the result "empty string"
                mark(row, column, CellProblem(FORMULA_MESSAGE, "", counts=False))
    return hidden


# ----------------------------------------------------------------------------- .ods

_TABLE = re.compile(rb"<table:table\b([^>]*)>(.*?)</table:table>", re.DOTALL)
_TABLE_NAME = re.compile(rb'table:name="([^"]*)"')
_ODS_ROW = re.compile(rb"<table:table-row\b([^>]*?)(?:/>|>(.*?)</table:table-row>)", re.DOTALL)
_ODS_CELL = re.compile(
    rb"<table:(?:covered-)?table-cell\b([^>]*?)(?:/>|>(.*?)</table:(?:covered-)?table-cell>)",
    re.DOTALL,
)
_ROWS_REPEATED = re.compile(rb'table:number-rows-repeated="(\d+)"')
_COLUMNS_REPEATED = re.compile(rb'table:number-columns-repeated="(\d+)"')
_ROWS_SPANNED = re.compile(rb'table:number-rows-spanned="(\d+)"')
_COLUMNS_SPANNED = re.compile(rb'table:number-columns-spanned="(\d+)"')
_VISIBILITY = re.compile(rb'table:visibility="(collapse|filter)"')
_TEXT = re.compile(rb"<text:p\b[^>]*>(.*?)</text:p>", re.DOTALL)
_TAGS = re.compile(rb"<[^>]+>")
# What a formula cell shows when its result is an error: Excel's names, LibreOffice's Err:NNN.
_ERROR_TEXT = re.compile(r"^(#NULL!|#DIV/0!|#VALUE!|#REF!|#NAME\?|#NUM!|#N/A|Err:\d{3})$")


def _ods_text(body: bytes) -> str:
    parts = [_TAGS.sub(b"", p) for p in _TEXT.findall(body)]
    return html.unescape(b"\n".join(parts).decode("utf-8", "replace")).strip()


Merged = list[tuple[tuple[int, int], tuple[int, int]]]  # calamine's ((top, left), (bottom, right))


def scan_ods(
    data: bytes, sheet_name: str, sheet_index: int, mark: Mark, columns: int
) -> tuple[set[int], Merged]:
    """Mark error cells and formulas without a value among the first ``columns`` columns;
    return the hidden rows (1-based) and the merged ranges (calamine has none for .ods)."""
    merged: Merged = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            xml = archive.read("content.xml")
    except (KeyError, zipfile.BadZipFile, OSError, NotImplementedError):
        return set(), merged
    if not any(m in xml for m in (b"table:visibility", b"table:formula", b"-spanned=")):
        return set(), merged
    tables = list(_TABLE.finditer(xml))
    wanted = html.escape(sheet_name, quote=True).encode()
    table = next(
        (t for t in tables if (m := _TABLE_NAME.search(t.group(1))) and m.group(1) == wanted),
        tables[sheet_index] if sheet_index < len(tables) else None,
    )
    if table is None:
        return set(), merged
    body = table.group(2)
    scan_cells = b"table:formula" in body or b"-spanned=" in body
    hidden: set[int] = set()
    row = 0  # 0-based index of the next row
    for match in _ODS_ROW.finditer(body):
        attributes, cells = match.group(1), match.group(2) or b""
        repeated = _ROWS_REPEATED.search(attributes)
        count = int(repeated.group(1)) if repeated else 1
        if _VISIBILITY.search(attributes):
            # Bounded: rows past the import's limit are refused anyway (and LibreOffice
            # writes the empty rest of a sheet as one row repeated a million times).
            hidden.update(range(row + 1, min(row + 1 + count, ROW_LIMIT)))
        if scan_cells and (b"table:formula" in cells or b"-spanned=" in cells):
            _scan_ods_row(cells, row, count, mark, columns, merged)
        row += count
    return hidden, merged


def _scan_ods_row(
    cells: bytes, row: int, count: int, mark: Mark, columns: int, merged: Merged
) -> None:
    column = 0
    for cell in _ODS_CELL.finditer(cells):
        if column >= columns:
            return
        attributes, content = cell.group(1), cell.group(2) or b""
        repeated = _COLUMNS_REPEATED.search(attributes)
        width = int(repeated.group(1)) if repeated else 1
        rows_spanned = _ROWS_SPANNED.search(attributes)
        columns_spanned = _COLUMNS_SPANNED.search(attributes)
        height = int(rows_spanned.group(1)) if rows_spanned else 1
        span = int(columns_spanned.group(1)) if columns_spanned else 1
        if height > 1 or span > 1:
            merged.append(((row, column), (min(row + height, ROW_LIMIT) - 1, column + span - 1)))
        if b"table:formula=" in attributes:
            problem = _ods_formula_problem(attributes, content)
            if problem is not None:
                for r in range(row, min(row + count, ROW_LIMIT)):
                    for c in range(column, min(column + width, columns)):
                        mark(r, c, CellProblem(problem.message, problem.shown))
        column += width


def _ods_formula_problem(attributes: bytes, content: bytes) -> CellProblem | None:
    shown = _ods_text(content)
    if b'calcext:value-type="error"' in attributes or _ERROR_TEXT.match(shown):
        return error_problem(shown or "#错误")
    if b"office:value-type=" not in attributes:
        return CellProblem(FORMULA_MESSAGE, "")
    return None
