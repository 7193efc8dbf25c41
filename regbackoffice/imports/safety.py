"""File safety: refuse anything that is not a small, honest spreadsheet before a parser
touches it, with the checks that fit its format.

- .xlsx and .ods (zip): entry count, declared and real expansion ratio, every part read and
  scanned for DOCTYPE/ENTITY declarations; the parts that make it a workbook of that kind;
- .xls (OLE2 compound file): the compound-file structure read with olefile, a ``Workbook``
  stream, entry count; an encrypted OOXML package (a password-protected .xlsx is an OLE2
  file too) or a BIFF ``FILEPASS`` record is a password-protected file;
- .csv: size only here; the reader decodes it (UTF-8 with or without BOM, GB18030).
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib

import olefile

from . import ImportRejected

ACCEPTED_TYPES = ".xlsx、.xls、.ods或.csv"
ACCEPTED_SUFFIXES = (".xlsx", ".xls", ".ods", ".csv")
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ZIP_ENTRIES = 500
MAX_UNCOMPRESSED_BYTES = 400 * 1024 * 1024
# Worksheet XML compresses about 10–30×; a zip bomb compresses thousands of times.
MAX_EXPANSION_RATIO = 150
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
PASSWORD_MESSAGE = (
    "文件设置了打开密码（已加密），系统无法读取：请在Excel或WPS中取消密码后保存，再导入"
)

_XML_DANGER = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def file_kind(data: bytes, filename: str = "") -> str:
    """``xlsx``, ``xls``, ``ods`` or ``csv``, after the checks that fit the file's format.

    The binary formats are known by their content, whatever the file is called; text is
    read as CSV only when the file is called .csv.
    """
    if len(data) > MAX_FILE_BYTES:
        raise ImportRejected(
            f"文件过大（{len(data) / 1024 / 1024:.1f}MB），不能超过20MB，请拆分后分批导入"
        )
    if not data:
        raise ImportRejected("文件是空的")
    if data.startswith(OLE2_MAGIC):
        check_ole2_safety(data)
        return "xls"
    if data.startswith(b"PK\x03\x04") and data[30:38] == b"mimetype" and ODS_MIMETYPE in data[:200]:
        check_zip_safety(data, "ods")
        return "ods"
    if filename.lower().endswith(".csv") and not data.startswith(b"PK\x03\x04"):
        return "csv"
    check_xlsx_safety(data)
    return "xlsx"


def check_xlsx_safety(data: bytes) -> None:
    """Refuse anything that is not a small, honest .xlsx before a parser touches it."""
    if len(data) > MAX_FILE_BYTES:
        raise ImportRejected(
            f"文件过大（{len(data) / 1024 / 1024:.1f}MB），不能超过20MB，请拆分后分批导入"
        )
    if not data:
        raise ImportRejected("文件是空的")
    check_zip_safety(data, "xlsx")


# Excel, WPS and LibreOffice store their parts stored or deflated; anything else is damage.
READABLE_COMPRESSION = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})


def check_zip_safety(data: bytes, kind: str) -> None:
    """A zip-based workbook (.xlsx or .ods): its structure, expansion and XML parts."""
    if not data.startswith(b"PK\x03\x04") or not zipfile.is_zipfile(io.BytesIO(data)):
        raise ImportRejected(
            f"只能导入{ACCEPTED_TYPES}格式的文件：该文件的内容不是Excel/WPS工作簿、"
            "OpenDocument表格或CSV文本（CSV文件的扩展名须为.csv）"
        )
    what = "有效的.ods表格" if kind == "ods" else "有效的.xlsx文件"
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        # NotImplementedError: a zip feature Python cannot read (e.g. "zip file version 8.4")
        raise ImportRejected(f"文件已损坏，不是{what}") from exc
    unreadable = [e.filename for e in entries if e.compress_type not in READABLE_COMPRESSION]
    if unreadable:
        raise ImportRejected(
            f"文件已损坏，不是{what}（部件{unreadable[0][:60]}的压缩方式无法读取）："
            "请用Excel、WPS或LibreOffice重新保存后导入"
        )
    if len(entries) > MAX_ZIP_ENTRIES:
        raise ImportRejected(f"文件内部结构异常（包含{len(entries)}个部件），已拒绝导入")
    names = {e.filename for e in entries}
    if kind == "ods":
        if "content.xml" not in names:
            raise ImportRejected("文件已损坏，不是有效的.ods表格（缺少content.xml）")
    elif "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
        raise ImportRejected(
            f"只能导入{ACCEPTED_TYPES}格式的文件：该文件是zip压缩包，但不是Excel工作簿"
        )
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
        raise ImportRejected(PASSWORD_MESSAGE) from None
    return total


def check_ole2_safety(data: bytes) -> None:
    """An OLE2 compound file: a legacy .xls workbook, or a password-protected .xlsx."""
    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
        streams = ole.listdir(streams=True, storages=False)
        names = {"/".join(path) for path in streams}
        if len(streams) > MAX_ZIP_ENTRIES:
            raise ImportRejected(f"文件内部结构异常（包含{len(streams)}个部件），已拒绝导入")
        if "EncryptedPackage" in names or "EncryptionInfo" in names:
            raise ImportRejected(PASSWORD_MESSAGE)
        book = "Workbook" if "Workbook" in names else "Book" if "Book" in names else None
        if book is None:
            raise ImportRejected(
                f"只能导入{ACCEPTED_TYPES}格式的文件：该文件不是Excel工作簿（如Word文档）"
            )
        if ole.get_size(book) > MAX_UNCOMPRESSED_BYTES:
            raise ImportRejected("文件内部结构异常（工作簿过大），已拒绝导入")
        head = ole.openstream(book).read(64 * 1024)
    except ImportRejected:
        raise
    except Exception:  # olefile raises many kinds on a damaged file; each means "damaged"
        raise ImportRejected("文件已损坏，不是有效的.xls文件") from None
    if _biff_is_encrypted(head):
        raise ImportRejected(PASSWORD_MESSAGE)


def _biff_is_encrypted(stream: bytes) -> bool:
    """A FILEPASS record (0x002F) among the first records of the workbook globals."""
    position = 0
    for _ in range(64):
        if position + 4 > len(stream):
            return False
        record, length = struct.unpack_from("<HH", stream, position)
        if record == 0x002F:
            return True
        if record == 0x000A:  # EOF of the globals: no FILEPASS
            return False
        position += 4 + length
    return False
