"""File safety: refuse anything that is not a small, honest .xlsx before a parser touches it."""

from __future__ import annotations

import io
import re
import zipfile
import zlib

from . import ImportRejected

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ZIP_ENTRIES = 500
MAX_UNCOMPRESSED_BYTES = 400 * 1024 * 1024
# Worksheet XML compresses about 10–30×; a zip bomb compresses thousands of times.
MAX_EXPANSION_RATIO = 150

_XML_DANGER = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


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
