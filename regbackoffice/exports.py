"""Tables exported to .xlsx: every cell is text, never a formula."""

from __future__ import annotations

import io
from collections.abc import Sequence

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_bytes(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """One sheet: header row, then the rows, each value written as a string cell.

    openpyxl turns a string starting with '=' into a formula; forcing the cell type back to
    's' keeps it text, so a unit name like ``=HYPERLINK(...)`` cannot run in Excel.
    """
    workbook = Workbook()
    sheet = workbook.active
    assert isinstance(sheet, Worksheet)  # a new workbook starts with one ordinary sheet
    sheet.title = title[:31]
    for row_index, values in enumerate([headers, *rows], start=1):
        for column_index, value in enumerate(values, start=1):
            cell = sheet.cell(row=row_index, column=column_index)
            cell.value = "" if value is None else str(value)
            cell.data_type = "s"
            if row_index == 1:
                cell.font = Font(bold=True)
    for column_index, header in enumerate(headers, start=1):
        sheet.column_dimensions[get_column_letter(column_index)].width = max(10, 2 * len(header))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
