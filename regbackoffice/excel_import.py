"""Importing the cylinder list (导入气瓶信息) into a draft application.

The file is checked before any parser sees it (size, zip entry count, expansion ratio,
DOCTYPE/ENTITY declarations in any XML part), then read with calamine (fast; values come
typed, so dates, numbers and text are all handled below), every row is validated against
DESIGN sections 3 and 5, and the rows that pass are inserted with
``INSERT … ON CONFLICT (live_identity_key) DO NOTHING``: of two concurrent imports of one
cylinder exactly one keeps it, the other reports the row as failed.

Large files (more than ``BACKGROUND_THRESHOLD`` rows) are imported by the rq job
``run_import_job``, which reports progress in Redis.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from python_calamine import CalamineError, CalamineWorkbook
from redis.exceptions import RedisError
from sqlalchemy import func, select

from . import audit, jobs
from .archive import CylinderData
from .clock import china_today
from .excel_template import COLUMNS, HEADERS, NOTICE
from .extensions import db
from .identity import normalize_text, trace_code_year_error
from .models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    Cylinder,
    ImportJob,
    ImportStatus,
    Medium,
    TagType,
    User,
    Variety,
)

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ZIP_ENTRIES = 500
MAX_UNCOMPRESSED_BYTES = 400 * 1024 * 1024
# Worksheet XML compresses about 10–30×; a zip bomb compresses thousands of times.
MAX_EXPANSION_RATIO = 150
MAX_ROWS = 100_000
BACKGROUND_THRESHOLD = 2_000
EARLIEST_MONTH = "1970-01"
MAX_PRESSURE = Decimal("100")
MAX_VOLUME = Decimal("3000")
# Notice 五: cylinders that must carry a permanent electronic mark when made from 2021-01.
ELECTRONIC_MARK_MEDIA = frozenset({"G4", "G11", "G13", "G14", "G18"})
ELECTRONIC_MARK_FROM = "2021-01"

_XML_DANGER = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class ImportRejected(ValueError):
    """The whole file is refused; the message (Chinese) says why. Nothing is stored."""


# ----------------------------------------------------------------------------- file checks


def check_xlsx_safety(data: bytes) -> None:
    """Refuse anything that is not a small, honest .xlsx before a parser touches it."""
    if len(data) > MAX_FILE_BYTES:
        raise ImportRejected(
            f"文件过大（{len(data) / 1024 / 1024:.1f}MB），不能超过20MB，请拆分后分批导入"
        )
    if not data:
        raise ImportRejected("文件是空的")
    if not data.startswith(b"PK\x03\x04") or not zipfile.is_zipfile(io.BytesIO(data)):
        raise ImportRejected("只能导入.xlsx格式的Excel文件（旧版.xls或其他格式请另存为.xlsx）")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ImportRejected("文件已损坏，不是有效的.xlsx文件") from exc
    if len(entries) > MAX_ZIP_ENTRIES:
        raise ImportRejected(f"文件内部结构异常（包含{len(entries)}个部件），已拒绝导入")
    names = {e.filename for e in entries}
    if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
        raise ImportRejected("只能导入.xlsx格式的Excel文件（文件内容不是Excel工作簿）")
    declared = sum(e.file_size for e in entries)
    if declared > MAX_UNCOMPRESSED_BYTES:
        raise ImportRejected("文件解压后过大，疑似压缩炸弹，已拒绝导入")
    for entry in entries:
        if entry.file_size > 1024 * 1024 and entry.file_size > MAX_EXPANSION_RATIO * max(
            entry.compress_size, 1
        ):
            raise ImportRejected("文件压缩比异常，疑似压缩炸弹，已拒绝导入")
    # Read every part for real (sizes in the zip directory can lie), bounded; any part may
    # be a sheet (the workbook's relationships name them), so none is skipped by its name.
    total = 0
    for entry in entries:
        total = _scan_xml_part(archive, entry, total)


def _scan_xml_part(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, total: int) -> int:
    tail = b""
    read = 0
    try:
        with archive.open(entry) as part:
            while chunk := part.read(1024 * 1024):
                read += len(chunk)
                total += len(chunk)
                if total > MAX_UNCOMPRESSED_BYTES or read > MAX_EXPANSION_RATIO * max(
                    entry.compress_size, 8 * 1024
                ):
                    raise ImportRejected("文件解压后过大，疑似压缩炸弹，已拒绝导入")
                if read == len(chunk) and chunk[:2] in (b"\xff\xfe", b"\xfe\xff"):
                    chunk = chunk.decode("utf-16", "ignore").encode()
                if _XML_DANGER.search(tail + chunk):
                    raise ImportRejected(
                        "文件中含有XML实体声明（DOCTYPE/ENTITY），可能是恶意构造的文件，已拒绝导入"
                    )
                tail = chunk[-32:]
    except ImportRejected:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error):
        raise ImportRejected("文件已损坏，不是有效的.xlsx文件") from None
    except RuntimeError:  # zipfile: "File … is encrypted"
        raise ImportRejected("文件已加密或受密码保护，请取消密码后另存为.xlsx再导入") from None
    return total


def read_rows(data: bytes) -> list[list[Any]]:
    """The first sheet's rows as typed Python values (after ``check_xlsx_safety``)."""
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheet = workbook.get_sheet_by_index(0)
        rows = sheet.to_python(skip_empty_area=False)
    except (CalamineError, ValueError, OSError) as exc:
        raise ImportRejected("无法读取该Excel文件，请用模板重新填写后另存为.xlsx") from exc
    return rows


# ----------------------------------------------------------------------------- cell values


def cell_text(value: Any) -> str:
    """A cell as the text a person would read in it (for messages and the error file)."""
    if value is None:
        return ""
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
    match = _MONTH_TEXT.match(text) or _COMPACT.match(text)
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
    match = _MONTH_TEXT.match(text) or _COMPACT.match(text)
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
    text = cell_text(value).replace(",", "")
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _add_months(month: str, months: int) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + mon - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


# ----------------------------------------------------------------------------- row rules


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
_HEADER_BY_KEY = {c.key: c.header for c in COLUMNS}


@dataclass
class RowResult:
    row: int
    values: list[str]
    data: CylinderData | None = None
    reasons: list[str] = field(default_factory=list)
    key: str = ""  # the identity key, once the row's data is valid


def _check_length(reasons: list[str], header: str, text: str, limit: int) -> None:
    if len(text) > limit:
        reasons.append(f"{header}超过{limit}个字（现为{len(text)}个字）")


def validate_row(row_no: int, cells: Sequence[Any], codes: CodeTables, today: date) -> RowResult:
    """Every rule of DESIGN 3 and 5 for one row; all reasons, not only the first."""
    cells = list(cells[: len(COLUMNS)]) + [None] * (len(COLUMNS) - len(cells[: len(COLUMNS)]))
    values = [cell_text(v) for v in cells]
    result = RowResult(row=row_no, values=values)
    reasons = result.reasons
    raw = dict(zip(_KEYS, cells, strict=True))
    text = dict(zip(_KEYS, values, strict=True))
    header = _HEADER_BY_KEY
    this_month = f"{today.year:04d}-{today.month:02d}"

    def required(key: str) -> bool:
        if not text[key]:
            reasons.append(f"{header[key]}必填")
            return False
        return True

    variety = medium = None
    if required("variety"):
        variety = codes.variety(text["variety"])
        if variety is None:
            reasons.append(f"设备品种“{text['variety']}”不在代码表中（2310/2320/23T0）")
    if required("medium"):
        medium = codes.medium(text["medium"])
        if medium is None:
            reasons.append(f"充装介质“{text['medium']}”不在代码表中（G1–G20）")

    product_no = text["product_no"]
    if required("product_no"):
        _check_length(reasons, header["product_no"], product_no, 50)
    manufacturer = text["manufacturer"]
    if required("manufacturer"):
        _check_length(reasons, header["manufacturer"], manufacturer, 100)

    month = None
    if required("manufacture_month"):
        month = parse_month(raw["manufacture_month"])
        if month is None:
            reasons.append(f"制造年月“{text['manufacture_month']}”不是有效的年月（如2021-05）")
        elif month > this_month:
            reasons.append(f"制造年月{month}晚于本月")
            month = None
        elif month < EARLIEST_MONTH:
            reasons.append(f"制造年月{month}早于{EARLIEST_MONTH}，请核对")
            month = None

    def number(key: str, upper: Decimal) -> Decimal | None:
        if not required(key):
            return None
        parsed = parse_decimal(raw[key])
        if parsed is None or not parsed.is_finite():
            reasons.append(f"{header[key]}“{text[key]}”不是数字")
            return None
        if not (0 < parsed <= upper):
            reasons.append(f"{header[key]}{text[key]}超出合理范围（大于0且不超过{upper}）")
            return None
        if parsed != parsed.quantize(Decimal("0.01")):
            reasons.append(f"{header[key]}{text[key]}最多两位小数")
            return None
        return parsed.quantize(Decimal("0.01"))

    pressure = number("pressure", MAX_PRESSURE)
    volume = number("volume", MAX_VOLUME)

    last_date = None
    if text["last_inspection_date"]:
        last_date = parse_date(raw["last_inspection_date"])
        if last_date is None:
            reasons.append(
                f"最近一次检验日期“{text['last_inspection_date']}”不是有效的日期（如2024-05-20）"
            )
        elif last_date > today:
            reasons.append(f"最近一次检验日期{last_date.isoformat()}晚于今天")
            last_date = None
        elif month and last_date.isoformat()[:7] < month:
            reasons.append(f"最近一次检验日期{last_date.isoformat()}早于制造年月{month}")

    next_month = None
    if required("next_inspection_month"):
        next_month = parse_month(raw["next_inspection_month"])
        if next_month is None:
            reasons.append(
                f"下次检验日期“{text['next_inspection_month']}”不是有效的年月（如2028-05）"
            )
        else:
            if last_date and next_month <= last_date.isoformat()[:7]:
                reasons.append(
                    f"下次检验日期{next_month}须晚于最近一次检验日期{last_date.isoformat()}"
                )
            elif month and next_month <= month:
                reasons.append(f"下次检验日期{next_month}须晚于制造年月{month}")
            if next_month < this_month:
                reasons.append(
                    f"下次检验日期{next_month}已过，该气瓶已超期未检，须检验合格后再申请登记"
                )
            if next_month > _add_months(this_month, 120):
                reasons.append(f"下次检验日期{next_month}距今超过10年，请核对")

    internal_no = text["internal_no"] or None
    if internal_no:
        _check_length(reasons, header["internal_no"], internal_no, 50)

    tag_type = None
    tag_value = text["tag_value"]
    if text["tag_type"]:
        tag_type = _TAG_NAMES.get(text["tag_type"].upper().replace(" ", ""))
        if tag_type is None:
            reasons.append(f"信息化管理情况“{text['tag_type']}”只能是 二维码 或 RFID标签")
    elif tag_value:
        reasons.append("填写了二维码（URL）或RFID编码，但未选择信息化管理情况")
    qr_content = rfid_code = None
    if tag_type is TagType.QR:
        if not tag_value:
            reasons.append("信息化管理情况为二维码时，须填写二维码对应的URL")
        elif len(tag_value) > 1000:
            reasons.append(f"二维码URL超过1000个字（现为{len(tag_value)}个字）")
        elif not _is_http_url(tag_value):
            reasons.append(f"二维码“{tag_value[:60]}”不是http://或https://开头的网址")
        else:
            qr_content = tag_value
    elif tag_type is TagType.RFID:
        if not tag_value:
            reasons.append("信息化管理情况为RFID标签时，须填写RFID编码")
        else:
            _check_length(reasons, "RFID编码", tag_value, 50)
            rfid_code = tag_value
    if (
        medium in ELECTRONIC_MARK_MEDIA
        and month is not None
        and month >= ELECTRONIC_MARK_FROM
        and tag_type is None
    ):
        reasons.append(
            f"按{NOTICE}，2021年1月起制造的该介质（{medium}）气瓶须设置永久性电子识读标志，"
            "请填写信息化管理情况及二维码URL或RFID编码"
        )

    if product_no and month:
        year_error = trace_code_year_error(product_no, month)
        if year_error:
            reasons.append(year_error)

    if not reasons:
        result.data = data = CylinderData(
            variety_code=variety or "",
            product_no=product_no,
            medium_code=medium or "",
            manufacturer=manufacturer,
            manufacture_month=month or "",
            nominal_pressure_mpa=pressure or Decimal(0),
            volume_l=volume or Decimal(0),
            last_inspection_date=last_date,
            next_inspection_month=next_month,
            internal_no=internal_no,
            tag_type=tag_type,
            qr_content=qr_content,
            rfid_code=rfid_code,
        )
        result.key = data.identity_key
    return result


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc) and " " not in text


# ----------------------------------------------------------------------------- the import


@dataclass
class ImportOutcome:
    total: int
    imported: int
    failed: list[dict[str, Any]]


Progress = Callable[[int, int], None]


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


def _chunks(items: list[str], size: int = 2000) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def archived_identities(keys: list[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for chunk in _chunks(keys):
        stmt = select(Cylinder.identity_key, Cylinder.certificate_no).where(
            Cylinder.identity_key.in_(chunk)
        )
        found.update(dict(db.session.execute(stmt).tuples().all()))
    return found


def claimed_identities(keys: list[str]) -> dict[str, tuple[int, str | None]]:
    found: dict[str, tuple[int, str | None]] = {}
    for chunk in _chunks(keys):
        stmt = (
            select(ApplicationItem.live_identity_key, Application.id, Application.number)
            .join(Application, Application.id == ApplicationItem.application_id)
            .where(ApplicationItem.live_identity_key.in_(chunk))
        )
        for key, app_id, number in db.session.execute(stmt):
            found[key] = (app_id, number)
    return found


def _insert_claiming(rows: list[dict[str, Any]]) -> set[str]:
    """Insert items, skipping any whose cylinder another live item claims (now or
    concurrently: the unique index decides); returns the keys that were inserted."""
    if not rows:
        return set()
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        return _copy_insert_claiming(rows)
    from sqlalchemy.dialects.sqlite import insert

    table = ApplicationItem.__table__
    inserted: set[str] = set()
    # Sorted by key, so two concurrent imports lock keys in one order (no deadlock).
    rows = sorted(rows, key=lambda r: r["live_identity_key"])
    for start in range(0, len(rows), 1000):
        stmt = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["live_identity_key"])
            .returning(table.c.live_identity_key)
        )
        result = db.session.execute(stmt, rows[start : start + 1000])
        inserted.update(result.scalars().all())
    return inserted


def _copy_insert_claiming(rows: list[dict[str, Any]]) -> set[str]:
    """PostgreSQL: COPY the rows into a temp table, then one INSERT … SELECT … ON CONFLICT
    DO NOTHING RETURNING (a multi-row VALUES statement is far slower to build and send)."""
    columns = list(rows[0])
    column_sql = ", ".join(columns)
    connection = db.session.connection().connection.driver_connection
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE import_items_incoming AS SELECT {column_sql}"
            " FROM application_items WITH NO DATA"
        )
        with cursor.copy(f"COPY import_items_incoming ({column_sql}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([v.value if isinstance(v, TagType) else v for v in row.values()])
        # Ordered by key, so two concurrent imports lock keys in one order (no deadlock).
        cursor.execute(
            f"INSERT INTO application_items ({column_sql})"
            f" SELECT {column_sql} FROM import_items_incoming ORDER BY live_identity_key"
            " ON CONFLICT (live_identity_key) DO NOTHING RETURNING live_identity_key"
        )
        inserted = {key for (key,) in cursor.fetchall()}
        cursor.execute("DROP TABLE import_items_incoming")
    return inserted


def import_rows(
    application: Application,
    rows: Iterable[tuple[int, list[Any]]],
    *,
    today: date | None = None,
    progress: Progress | None = None,
) -> ImportOutcome:
    """Validate ``rows`` and add the good ones to ``application`` (flushes, no commit)."""
    if application.status is not ApplicationStatus.DRAFT:
        raise ImportRejected("申请已提交，不能再导入气瓶")
    today = today or china_today()
    rows = list(rows)
    total = len(rows)
    codes = CodeTables.load()
    results: list[RowResult] = []
    first_row_of: dict[str, int] = {}
    for done, (row_no, cells) in enumerate(rows, start=1):
        result = validate_row(row_no, cells, codes, today)
        if result.data is not None:
            key = result.key
            if key in first_row_of:
                result.reasons.append(
                    f"与第{first_row_of[key]}行是同一只气瓶（制造单位+产品编号+制造年月相同）"
                )
            else:
                first_row_of[key] = row_no
        results.append(result)
        if progress and done % 500 == 0:
            progress(done, total)

    candidates = [r for r in results if r.data is not None and not r.reasons]
    keys = [r.key for r in candidates]
    archived = archived_identities(keys)
    claimed = claimed_identities(keys)
    for result in candidates:
        key = result.key
        if key in archived:
            number = archived[key]
            result.reasons.append(
                "该气瓶已登记" + (f"（使用登记证{number}）" if number else "") + "，不能重复申请"
            )
        elif key in claimed:
            app_id, number = claimed[key]
            where = "本申请" if app_id == application.id else f"申请{number or app_id}"
            result.reasons.append(f"该气瓶已在{where}中，不能重复申请")

    next_row = (
        db.session.scalar(
            select(func.max(ApplicationItem.row_no)).where(
                ApplicationItem.application_id == application.id
            )
        )
        or 0
    )
    to_insert: dict[str, tuple[RowResult, dict[str, Any]]] = {}
    for result in results:
        if result.reasons or result.data is None:
            continue
        next_row += 1
        values = item_values(application.id, next_row, result.data, result.key)
        to_insert[result.key] = (result, values)
    inserted = _insert_claiming([values for _, values in to_insert.values()])
    for key, (result, _) in to_insert.items():
        if key not in inserted:
            result.reasons.append("该气瓶已在其他申请中（同时导入冲突），不能重复申请")
    application.item_count += len(inserted)
    db.session.flush()
    if progress:
        progress(total, total)
    failed = [
        {"row": r.row, "values": r.values, "reasons": r.reasons} for r in results if r.reasons
    ]
    return ImportOutcome(total=total, imported=len(inserted), failed=failed)


def item_values(
    application_id: int, row_no: int, data: CylinderData, key: str | None = None
) -> dict[str, Any]:
    key = key or data.identity_key
    return {
        "application_id": application_id,
        "row_no": row_no,
        "variety_code": data.variety_code,
        "product_no": normalize_text(data.product_no),
        "medium_code": data.medium_code,
        "manufacturer": normalize_text(data.manufacturer),
        "manufacture_month": data.manufacture_month,
        "nominal_pressure_mpa": data.nominal_pressure_mpa,
        "volume_l": data.volume_l,
        "last_inspection_date": data.last_inspection_date,
        "next_inspection_month": data.next_inspection_month,
        "internal_no": data.internal_no,
        "tag_type": data.tag_type,
        "qr_content": data.qr_content,
        "rfid_code": data.rfid_code,
        "identity_key": key,
        "live_identity_key": key,
        "audit_verdict": "pending",
        "excluded": False,
        "attachment_count": 0,
    }


# ----------------------------------------------------------------------------- import jobs


def start_import(application: Application, data: bytes, *, filename: str, actor: User) -> ImportJob:
    """Import now (small files) or store the file and queue the job (large files).

    Raises ImportRejected for a file refused as a whole; then nothing is stored.
    """
    from . import storage

    if application.status is not ApplicationStatus.DRAFT:
        raise ImportRejected("申请已提交，不能再导入气瓶")
    rows = parse_workbook(data)
    job = ImportJob(
        application_id=application.id,
        original_name=filename[:255],
        total_rows=len(rows),
        created_by_id=actor.id,
        failed_rows=[],
    )
    db.session.add(job)
    db.session.flush()
    if len(rows) <= BACKGROUND_THRESHOLD:
        outcome = import_rows(application, rows)
        _finish(job, outcome)
        return job
    job.file_key = storage.new_key("imports", ".xlsx")
    storage.save_in_transaction(job.file_key, data)
    audit.record(
        "application_import_queued",
        object_type="application",
        object_id=application.id,
        rows=len(rows),
        import_job=job.id,
    )
    jobs.enqueue_after_commit(JOB_FUNCTION, job.id, job_id=rq_job_id(job.id))
    return job


JOB_FUNCTION = "run_import"


def rq_job_id(import_job_id: int) -> str:
    return f"regbackoffice-import-{import_job_id}"


def ensure_enqueued(job: ImportJob) -> bool:
    """Send a queued import to the workers again if it never reached Redis (Redis was down
    when the upload committed, or the queue was lost). Returns True when it re-sent it.

    Harmless when the job is in fact queued or running: the job is safe to run twice.
    """
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from .jobs import queue

    if job.status is not ImportStatus.QUEUED:
        return False
    q = queue()
    if q is None:
        return False
    try:
        Job.fetch(rq_job_id(job.id), connection=q.connection)
        return False
    except NoSuchJobError:
        jobs.send(q, JOB_FUNCTION, job.id, job_id=rq_job_id(job.id))
        return True


def _finish(job: ImportJob, outcome: ImportOutcome, actor: User | None = None) -> None:
    job.status = ImportStatus.DONE
    job.total_rows = outcome.total
    job.imported_count = outcome.imported
    job.failed_count = len(outcome.failed)
    job.failed_rows = outcome.failed
    job.finished_at = datetime.now(UTC)
    audit.record(
        "application_import",
        object_type="application",
        object_id=job.application_id,
        actor=actor,
        import_job=job.id,
        imported=outcome.imported,
        failed=len(outcome.failed),
    )


def _progress_key(job_id: int) -> str:
    return f"regbackoffice:import:{job_id}:progress"


def read_progress(job: ImportJob) -> dict[str, Any]:
    """Status for the progress bar: rows processed so far, from Redis while running."""
    from .jobs import redis_connection

    processed = job.total_rows if job.status is ImportStatus.DONE else 0
    if job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING):
        connection = redis_connection()
        if connection is not None:
            try:
                raw = connection.get(_progress_key(job.id))
            except RedisError:  # progress is cosmetic; the status comes from the database
                raw = None
            processed = int(raw) if raw else 0
    return {
        "status": job.status.value,
        "status_label": job.status.label,
        "total": job.total_rows,
        "processed": processed,
        "imported": job.imported_count,
        "failed": job.failed_count,
        "message": job.message,
    }


@jobs.job(JOB_FUNCTION)
def run_import_job(job_id: int) -> None:
    """The rq job: import a stored file. Safe to run twice (a finished job is left alone;
    a concurrent second run waits on the row lock, then sees it finished)."""
    from . import storage
    from .jobs import redis_connection

    job = db.session.get(ImportJob, job_id, with_for_update=True)
    if job is None or job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        db.session.rollback()
        return
    actor = db.session.get(User, job.created_by_id)
    connection = redis_connection()

    def progress(done: int, total: int) -> None:
        if connection is not None:
            connection.set(_progress_key(job_id), done, ex=24 * 3600)

    application = db.session.get(Application, job.application_id)
    try:
        rows = parse_workbook(storage.read(job.file_key or ""))
        outcome = import_rows(application, rows, progress=progress)
    except ImportRejected as exc:
        job.status = ImportStatus.FAILED
        job.message = str(exc)
        job.finished_at = datetime.now(UTC)
    except Exception:
        db.session.rollback()
        job = db.session.get(ImportJob, job_id, with_for_update=True)
        if job is not None and job.status not in (ImportStatus.DONE, ImportStatus.FAILED):
            job.status = ImportStatus.FAILED
            job.message = "导入时发生系统错误，已记录，请稍后重新导入或联系管理员"
            job.finished_at = datetime.now(UTC)
            db.session.commit()
        raise
    else:
        _finish(job, outcome, actor)
    file_key = job.file_key
    job.file_key = None
    db.session.commit()
    if file_key:
        storage.delete(file_key)
    if connection is not None:
        connection.delete(_progress_key(job_id))
