"""Reading the workbook: the data sheet's rows, its header checked, empty rows dropped."""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

from python_calamine import CalamineError, CalamineWorkbook

from . import ImportRejected
from .cells import cell_text
from .safety import check_xlsx_safety
from .template import COLUMNS, HEADERS

MAX_ROWS = 100_000


def read_rows(data: bytes) -> list[list[Any]]:
    """The first sheet's rows as typed Python values (after ``check_xlsx_safety``)."""
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheet = workbook.get_sheet_by_index(0)
        rows = sheet.to_python(skip_empty_area=False)
    except (CalamineError, ValueError, OSError) as exc:
        raise ImportRejected("无法读取该Excel文件，请用模板重新填写后另存为.xlsx") from exc
    return rows


def _header_matches(row: Sequence[Any]) -> bool:
    given = [re.sub(r"\s+", "", cell_text(v)) for v in row[: len(HEADERS)]]
    expected = [re.sub(r"\s+", "", unicodedata.normalize("NFKC", h)) for h in HEADERS]
    return given == expected


def _data_rows(rows: list[list[Any]]) -> Iterator[tuple[int, list[Any]]]:
    for index, row in enumerate(rows[1:], start=2):
        cells = row[: len(COLUMNS)]
        if any(cell_text(v) for v in cells):
            yield index, cells


def parse_workbook(data: bytes) -> list[tuple[int, list[Any]]]:
    """Check the file and return its non-empty data rows with their Excel row numbers."""
    check_xlsx_safety(data)
    rows = read_rows(data)
    if not rows or not _header_matches(rows[0]):
        raise ImportRejected(
            "第1行表头与模板不一致，请下载最新模板，不要增删或调整列（应为："
            + "、".join(HEADERS)
            + "）"
        )
    data_rows = list(_data_rows(rows))
    if not data_rows:
        raise ImportRejected("文件中没有气瓶数据（第2行起每只气瓶一行）")
    if len(data_rows) > MAX_ROWS:
        raise ImportRejected(f"一次最多导入{MAX_ROWS}行，本文件有{len(data_rows)}行，请拆分")
    return data_rows
