"""Building .xlsx files for import tests, with real cell types."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

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


def rewrite_part(data: bytes, name: str, change: Callable[[str], str]) -> bytes:
    """The .xlsx with one part's XML text changed (as other tools write it)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == name:
                content = change(content.decode()).encode()
            # Each part as it was stored (an .ods's mimetype must stay uncompressed).
            target.writestr(info.filename, content, info.compress_type)
    return out.getvalue()


def set_cell_xml(data: bytes, ref: str, cell_xml: str) -> bytes:
    """Replace cell ``ref`` of the first sheet by raw XML (``<c r="E2" t="d">…</c>``)."""

    def change(xml: str) -> str:
        pattern = re.compile(rf'<c r="{ref}"[^>]*?(?:/>|>.*?</c>)', re.DOTALL)
        assert pattern.search(xml), ref
        return pattern.sub(cell_xml, xml, count=1)

    return rewrite_part(data, "xl/worksheets/sheet1.xml", change)


def csv_bytes(
    rows: list[list[Any]], *, encoding: str = "utf-8", header: Sequence[str] = HEADERS
) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(list(header))
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue().encode(encoding)


def xls_bytes(rows: list[list[Any]], *, sheet: str = "气瓶信息") -> bytes:
    """A legacy .xls (BIFF8, as WPS and old Excel save) written with xlwt."""
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet(sheet)
    for col, title in enumerate(HEADERS):
        ws.write(0, col, title)
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            if value is not None:
                ws.write(r, col, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_ODS_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
)


def _ods_cell(value: Any) -> str:
    if value is None:
        return "<table:table-cell/>"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (
            f'<table:table-cell office:value-type="float" office:value="{value}">'
            f"<text:p>{value}</text:p></table:table-cell>"
        )
    return (
        f'<table:table-cell office:value-type="string"><text:p>{escape(str(value))}</text:p>'
        "</table:table-cell>"
    )


def ods_bytes(rows: list[list[Any]], *, sheet: str = "气瓶信息") -> bytes:
    """A minimal OpenDocument spreadsheet (.ods), as LibreOffice saves one."""
    body = "".join(
        "<table:table-row>" + "".join(_ods_cell(v) for v in row) + "</table:table-row>"
        for row in [list(HEADERS), *rows]
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODS_NS} '
        f'office:version="1.2"><office:body><office:spreadsheet>'
        f'<table:table table:name="{sheet}">{body}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def libreoffice_saved(data: bytes, kind: str, workdir: Any) -> bytes:
    """The .xlsx ``data`` opened and saved by LibreOffice as ``kind`` (xls, ods or xlsx):
    formulas computed, hidden rows and error values written as LibreOffice (and WPS) write
    them."""
    import pathlib
    import subprocess

    workdir = pathlib.Path(workdir)
    source = workdir / "source.xlsx"
    source.write_bytes(data)
    out = workdir / "out"
    filters = {"xls": "xls:MS Excel 97", "ods": "ods:calc8", "xlsx": "xlsx:Calc MS Excel 2007 XML"}
    result = subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{workdir / 'profile'}",
            "--headless",
            "--convert-to",
            filters[kind],
            "--outdir",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    saved = out / f"source.{kind}"
    assert result.returncode == 0 and saved.exists(), result.stderr
    return saved.read_bytes()
