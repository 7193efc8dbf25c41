"""Building .xlsx files for import tests, with real cell types."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

from openpyxl import Workbook

from regbackoffice.imports.template import HEADERS


def good_row(product_no: str, **overrides: Any) -> list[Any]:
    """A row that passes every rule (tag given, future next inspection)."""
    values = {
        "variety": "2320",
        "product_no": product_no,
        "medium": "G13",
        "manufacturer": "测试气瓶制造厂",
        "manufacture_month": "2022-05",
        "pressure": 2.1,
        "volume": 35.5,
        "last_inspection_date": "2024-05-20",
        "next_inspection_month": "2028-05",
        "internal_no": "NB-1",
        "tag_type": "二维码",
        "tag_value": f"https://trace.example.com/q/{quote(str(product_no))}",
    }
    values.update(overrides)
    return list(values.values())


def workbook_bytes(rows: list[list[Any]], header: list[str] | tuple[str, ...] = HEADERS) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(list(header))
    for row in rows:
        ws.append(row)
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # a text that looks like a formula, as a user typed it
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
