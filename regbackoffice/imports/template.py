"""The cylinder-list Excel template (气瓶信息EXCEL模板) and the error file in its layout.

One sheet ``气瓶信息`` with the Chinese header (a note on every header cell), drop-down lists
for 设备品种, 充装介质 and 信息化管理情况 (from a hidden code sheet), text format for the
number-like identifiers, date and number formats; a second sheet ``填写示例`` with an example
row. The error file (下载错误数据) is the same layout plus a 错误原因 column, every cell
written as a string so that nothing in it is ever evaluated as a formula.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import zip_longest
from typing import IO, cast

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, Cell, MergedCell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from ..models import Medium, TagType, Variety

SHEET_NAME = "气瓶信息"
EXAMPLE_SHEET = "填写示例"
CODE_SHEET = "代码表"
ERROR_HEADER = "错误原因"
# Cells formatted and validated in advance; rows below still import, unformatted.
FORMATTED_ROWS = 2000
NOTICE = "《关于落实气瓶质量安全追溯体系建设要求的通知》（渝市监发〔2021〕67号）第五条"


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    note: str
    width: int
    number_format: str = "General"
    # An optional column stands after the required ones: a file without it (an older
    # template, an older error file with 错误原因 there) still imports.
    optional: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("variety", "设备品种", "必填。下拉选择，或填代码（2310/2320/23T0）或名称。", 16),
    Column(
        "product_no",
        "产品编号（镂空码）",
        "必填，最多50字，本列为文本格式（数字不会丢位）。有镂空码的优先填写12位镂空码"
        "（3位制造单位代码+2位年份+7位序号），其年份须与制造年月一致；恰好12位数字的出厂编号"
        "不是镂空码时，在单位内编号一栏以“非镂空码”开头填写。",
        22,
        "@",
    ),
    Column("medium", "充装介质", "必填。下拉选择，或填代码（G1–G20）或名称。", 22),
    Column("manufacturer", "制造单位", "必填，最多100字，与监检证书一致。", 28),
    Column(
        "manufacture_month",
        "制造年月",
        "必填，年月，如 2021-05、2021/05、2021年5月。不能晚于本月。",
        12,
        "yyyy-mm",
    ),
    Column("pressure", "公称工作压力(MPa)", "必填，大于0且不超过100，最多两位小数。", 16, "0.00"),
    Column("volume", "容积(L)", "必填，大于0且不超过3000，最多两位小数。", 12, "0.00"),
    Column(
        "last_inspection_date",
        "最近一次检验日期",
        "选填，日期，如 2024-05-20。不早于制造年月、不晚于今天。",
        16,
        "yyyy-mm-dd",
    ),
    Column(
        "next_inspection_month",
        "下次检验日期",
        "必填，年月，如 2028-05。须晚于最近一次检验日期和制造年月；已超期未检的气瓶不能登记。",
        14,
        "yyyy-mm",
    ),
    Column(
        "internal_no",
        "单位内编号",
        "选填，最多50字。产品编号是恰好12位数字的出厂编号而非镂空码时，以“非镂空码”开头填写。",
        14,
        "@",
    ),
    Column(
        "tag_type",
        "信息化管理情况",
        "下拉选择 二维码 或 RFID标签。2021年1月起制造的氢气、液化石油气、二甲醚、"
        f"一氧化二氮气瓶（G4/G11/G13/G14/G18）必填（{NOTICE}）。",
        16,
    ),
    Column(
        "tag_value",
        "二维码（URL）或RFID编码",
        "二维码：填写二维码对应的完整URL（http:// 或 https:// 开头，最多1000字）；"
        "RFID标签：填写RFID编码（最多50字）。",
        40,
        "@",
    ),
    # Beyond the seed's template (its column list ends with the tag): added at the end, and
    # optional, so that every template and error file made before still imports.
    Column(
        "design_life_years",
        "设计使用年限（年）",
        "选填，整数1–60（年），按产品合格证或铭牌填写。填写后按本气瓶的设计使用年限核对"
        "是否已超期（超过的不予登记）；不填时按规则表（如焊接气瓶盛装液化石油气8年）。"
        "旧模板没有本列的，仍可导入。",
        14,
        "0",
        optional=True,
    ),
)
HEADERS = tuple(c.header for c in COLUMNS)
REQUIRED_COLUMNS = sum(1 for c in COLUMNS if not c.optional)

EXAMPLE_ROW = (
    "2320 焊接气瓶",
    "123210000001",
    "G13 液化石油气",
    "重庆某某气瓶制造有限公司",
    "2021-05",
    "2.10",
    "35.50",
    "2024-05-20",
    "2028-05",
    "NB-0001",
    TagType.QR.label,
    "https://trace.example.com/q/123210000001",
    "8",
)

_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_ERROR_FILL = PatternFill("solid", fgColor="FCE4E4")


def variety_choices(varieties: Iterable[Variety]) -> list[str]:
    return [f"{v.code} {v.name}" for v in varieties]


def medium_choices(media: Iterable[Medium]) -> list[str]:
    return [f"{m.code} {m.name}" for m in media]


def _header_cells(
    ws: Worksheet,
    cell: Callable[[int, str], Cell],
    *,
    with_notes: bool,
    extra: Sequence[str] = (),
) -> None:
    """The header row, through ``cell(column, value)`` (a sheet's cell, or a write-only
    cell), with the column widths, the frozen header and its height."""
    for index, column in enumerate(COLUMNS, start=1):
        header = cell(index, column.header)
        header.font = Font(bold=True)
        header.fill = _HEADER_FILL
        header.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        if with_notes:
            header.comment = Comment(column.note, "模板说明", width=320, height=120)
        ws.column_dimensions[get_column_letter(index)].width = column.width
    for offset, title in enumerate(extra, start=len(COLUMNS) + 1):
        header = cell(offset, title)
        header.font = Font(bold=True, color="9C0006")
        header.fill = _ERROR_FILL
        ws.column_dimensions[get_column_letter(offset)].width = 60
    ws.freeze_panes = "A2"
    ws.row_dimensions[1].height = 30


def _header(ws: Worksheet, *, with_notes: bool, extra: Sequence[str] = ()) -> None:
    def cell(column: int, value: str) -> Cell:
        return ws.cell(row=1, column=column, value=value)

    _header_cells(ws, cell, with_notes=with_notes, extra=extra)


def _code_lists(varieties: list[str], media: list[str]) -> dict[str, list[str]]:
    return {"variety": varieties, "medium": media, "tag_type": [t.label for t in TagType]}


def _code_ranges(lists: dict[str, list[str]]) -> dict[str, str]:
    ranges = {}
    for index, (key, values) in enumerate(lists.items(), start=1):
        letter = get_column_letter(index)
        ranges[key] = f"'{CODE_SHEET}'!${letter}$2:${letter}${len(values) + 1}"
    return ranges


def _code_sheet(wb: Workbook, varieties: list[str], media: list[str]) -> dict[str, str]:
    ws = wb.create_sheet(CODE_SHEET)
    lists = _code_lists(varieties, media)
    for index, (key, values) in enumerate(lists.items(), start=1):
        ws.cell(row=1, column=index, value=key)
        for row, value in enumerate(values, start=2):
            ws.cell(row=row, column=index, value=value)
    ws.sheet_state = "hidden"
    return _code_ranges(lists)


def _validations(ws: Worksheet, ranges: dict[str, str], last_row: int) -> None:
    for index, column in enumerate(COLUMNS, start=1):
        if column.key not in ranges:
            continue
        letter = get_column_letter(index)
        validation = DataValidation(
            type="list",
            formula1=f"={ranges[column.key]}",
            allow_blank=True,
            showErrorMessage=True,
            # A warning, not a stop: the notes invite codes (2320, G13) as well as the list's
            # "2320 焊接气瓶"; the import reads either and refuses anything else.
            errorStyle="warning",
            errorTitle=column.header,
            error=f"建议从下拉列表中选择{column.header}；也可填写代码或名称，导入时校验",
            showInputMessage=True,
            promptTitle=column.header,
            prompt=column.note[:250],
        )
        validation.add(f"{letter}2:{letter}{last_row}")
        ws.data_validations.append(validation)


def _formats(ws: Worksheet, last_row: int) -> None:
    for index, column in enumerate(COLUMNS, start=1):
        if column.number_format == "General":
            continue
        # The whole column (rows typed below the prepared ones too) and each prepared cell.
        ws.column_dimensions[get_column_letter(index)].number_format = column.number_format
        for row in range(2, last_row + 1):
            ws.cell(row=row, column=index).number_format = column.number_format


def _text_cell(cell: Cell | MergedCell, value: object) -> None:
    """Write ``value`` as a string cell: never a formula, whatever it starts with."""
    # Control characters cannot be stored in .xlsx; the row's 错误原因 already names them.
    cell.value = "" if value is None else ILLEGAL_CHARACTERS_RE.sub("", str(value))
    cell.data_type = "s"


def _write_only_text(ws: WriteOnlyWorksheet, value: object) -> Cell | str:
    """``value`` for a write-only row, as a string cell. openpyxl makes a plain string a
    string cell unless it reads as a formula (``=…``) or an error value (``#N/A``…): only
    those need a cell of their own, forced to text (a cell object per cell costs ~20 %)."""
    text = "" if value is None else ILLEGAL_CHARACTERS_RE.sub("", str(value))
    if not text.startswith("=") and text not in ERROR_CODES:
        return text[:32767]
    cell = WriteOnlyCell(ws)
    _text_cell(cell, text)
    return cell


def _workbook() -> tuple[Workbook, Worksheet]:
    wb = Workbook()
    ws = wb.active
    assert isinstance(ws, Worksheet)  # a new workbook's one sheet
    ws.title = SHEET_NAME
    return wb, ws


def build_template(varieties: Iterable[Variety], media: Iterable[Medium]) -> bytes:
    """The empty template, as .xlsx bytes."""
    variety_list, medium_list = variety_choices(varieties), medium_choices(media)
    wb, ws = _workbook()
    _header(ws, with_notes=True)
    last_row = FORMATTED_ROWS + 1
    _formats(ws, last_row)

    example = wb.create_sheet(EXAMPLE_SHEET)
    _header(example, with_notes=True, extra=("说明",))
    for index, value in enumerate(EXAMPLE_ROW, start=1):
        _text_cell(example.cell(row=2, column=index), value)
    example.cell(
        row=2,
        column=len(COLUMNS) + 1,
        value="示例行，请在“气瓶信息”工作表中填写；每只气瓶一行，表头不要修改。",
    )
    for row, column in enumerate(COLUMNS, start=4):
        example.cell(row=row, column=1, value=column.header).font = Font(bold=True)
        example.cell(row=row, column=2, value=column.note)

    ranges = _code_sheet(wb, variety_list, medium_list)
    _validations(ws, ranges, last_row)
    return _saved(wb)


def write_error_file(
    failed_rows: Iterable[dict],
    varieties: Iterable[Variety],
    media: Iterable[Medium],
    out: IO[bytes],
) -> None:
    """The refused rows in the template's layout with a 错误原因 column, all cells text,
    written to ``out`` as .xlsx.

    ``failed_rows`` items carry ``row`` (the Excel row number), ``values`` (the cell texts,
    template column order) and ``reasons``; they are read one at a time and written as
    they come (openpyxl's write-only mode, rows streamed to a temporary file), so memory
    does not grow with their number. Fixing the rows and importing this file again adds
    them.
    """
    variety_list, medium_list = variety_choices(varieties), medium_choices(media)
    wb = Workbook(write_only=True)
    ws = cast(WriteOnlyWorksheet, wb.create_sheet(SHEET_NAME))
    # A write-only sheet has the dimensions, panes and validations of a sheet (set before
    # its first row, validations before it is saved), not its cells.
    sheet = cast(Worksheet, ws)
    header: dict[int, Cell] = {}

    def cell(column: int, value: str) -> Cell:
        header[column] = WriteOnlyCell(ws, value=value)
        return header[column]

    _header_cells(sheet, cell, with_notes=True, extra=(ERROR_HEADER,))
    ws.append([header[column] for column in sorted(header)])
    last_row = 1
    for failed in failed_rows:
        values = list(failed.get("values", []))[: len(COLUMNS)]
        values += [""] * (len(COLUMNS) - len(values))
        reason = f"第{failed.get('row')}行：" + "；".join(failed.get("reasons", []))
        ws.append([_write_only_text(ws, value) for value in [*values, reason]])
        last_row += 1
    lists = _code_lists(variety_list, medium_list)
    _validations(sheet, _code_ranges(lists), max(last_row, 2) + 200)
    codes = cast(WriteOnlyWorksheet, wb.create_sheet(CODE_SHEET))
    codes.append(list(lists))
    for code_row in zip_longest(*lists.values()):
        codes.append(list(code_row))
    cast(Worksheet, codes).sheet_state = "hidden"
    _save(wb, out)


def build_error_file(
    failed_rows: Iterable[dict], varieties: Iterable[Variety], media: Iterable[Medium]
) -> bytes:
    """``write_error_file`` into memory, as .xlsx bytes (a few rows: the tests)."""
    out = io.BytesIO()
    write_error_file(failed_rows, varieties, media, out)
    return out.getvalue()


# openpyxl's part names for a sheet's comments and their drawing → the usual names.
_PART_NAMES = (
    (re.compile(rb"/?xl/comments/comment(\d+)\.xml"), "xl/comments{}.xml"),
    (re.compile(rb"/?xl/drawings/commentsDrawing(\d+)\.vml"), "xl/drawings/vmlDrawing{}.vml"),
)


def _renamed(name: str) -> str:
    for pattern, usual in _PART_NAMES:
        if match := pattern.fullmatch(name.encode()):
            return usual.format(match.group(1).decode())
    return name


def _rewrite_references(data: bytes, relative: bool) -> bytes:
    for pattern, usual in _PART_NAMES:
        base = "../" + usual.removeprefix("xl/") if relative else "/" + usual
        data = pattern.sub(base.format(r"\1").encode(), data)
    return data


_PLAIN_COMMENT = re.compile(rb"<text><t>(.*?)</t></text>", re.S)
_COMMENT_RUN = rb'<text><r><t xml:space="preserve">\1</t></r></text>'


def _saved(wb: Workbook) -> bytes:
    out = io.BytesIO()
    _save(wb, out)
    return out.getvalue()


def _save(wb: Workbook, out: IO[bytes]) -> None:
    """The workbook as .xlsx into ``out``, with its comment parts where every reader
    finds them.

    openpyxl writes comments to ``xl/comments/commentN.xml`` (and their drawing to
    ``xl/drawings/commentsDrawingN.vml``) with absolute targets; Excel, WPS and LibreOffice
    accept that, but exceljs only reads the usual ``xl/commentsN.xml`` and
    ``xl/drawings/vmlDrawingN.vml`` named relative to the sheet, and reads a comment's
    text only as a run (``<r><t>``), not as plain ``<t>``: both are valid, the run is what
    every reader keeps.

    openpyxl's archive is written uncompressed to a temporary file and its parts copied
    over in pieces (compressed once), so a sheet of 100,000 rows is never held whole.
    """
    wb.properties.modified = datetime.now(tz=UTC).replace(tzinfo=None)  # as wb.save does
    with tempfile.TemporaryFile() as spool:
        with zipfile.ZipFile(spool, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            ExcelWriter(wb, archive).save()
        spool.seek(0)
        with (
            zipfile.ZipFile(spool) as source,
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as target,
        ):
            for entry in source.infolist():
                name = entry.filename
                if name == "[Content_Types].xml" or name.startswith(
                    ("xl/worksheets/_rels/", "xl/comments/")
                ):
                    data = source.read(name)  # small parts: the sheets' own are copied below
                    if name == "[Content_Types].xml":
                        data = _rewrite_references(data, relative=False)
                    elif name.startswith("xl/worksheets/_rels/"):
                        data = _rewrite_references(data, relative=True)
                    else:
                        data = _PLAIN_COMMENT.sub(_COMMENT_RUN, data)
                    target.writestr(_renamed(name), data)
                    continue
                with source.open(entry) as part, target.open(_renamed(name), "w") as copy:
                    shutil.copyfileobj(part, copy, _COPY_BYTES)


_COPY_BYTES = 1 << 20
