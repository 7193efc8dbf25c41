"""Which cylinders a change request names: a pasted 产品编号 list, an .xlsx with a 产品编号
column, or archive IDs (``?cylinder=<id>`` links from the 气瓶档案), always among the unit's
own registered cylinders. Also the scrap-proof photo (the same checks as every photo)."""

from __future__ import annotations

import io
import re
from collections.abc import Collection, Sequence

from openpyxl import load_workbook
from sqlalchemy import ColumnElement, or_, select

from . import storage
from .domain_errors import DomainError
from .extensions import db
from .identity import normalize_text
from .images import normalise_image
from .models import Cylinder, CylinderStatus, InspectionRecord, Unit

MAX_CYLINDERS = 5000
PRODUCT_HEADER = "产品编号"
_SPLIT = re.compile(r"[\s,，;；、]+")


class SelectionError(DomainError):
    """The list names cylinders that cannot be found or read (message in Chinese)."""


def tokens_from_text(text: str) -> list[str]:
    """产品编号 or archive IDs separated by line breaks, spaces, commas or 、."""
    return [t for t in (normalize_text(p) for p in _SPLIT.split(text or "")) if t]


def tokens_from_xlsx(data: bytes) -> list[str]:
    """The values of the first sheet's 产品编号 column (header in the first 10 rows)."""
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not .xlsx
        raise SelectionError("无法读取上传的文件，请上传含“产品编号”列的 .xlsx 文件。") from exc
    sheet = book.worksheets[0]
    column = None
    found: list[str] = []
    for row in sheet.iter_rows(values_only=True):
        if column is None:
            cells = [normalize_text(str(c)) if c is not None else "" for c in row]
            if PRODUCT_HEADER in cells:
                column = cells.index(PRODUCT_HEADER)
            elif len(found) > 10:
                break
            found.append("")
            continue
        if column < len(row) and row[column] is not None:
            value = normalize_text(str(row[column]))
            if value:
                found.append(value)
    book.close()
    if column is None:
        raise SelectionError("上传的表格中没有“产品编号”列，请在第一行写上列名“产品编号”。")
    return [t for t in found if t]


def resolve(unit: Unit, tokens: Sequence[str]) -> list[Cylinder]:
    """The unit's cylinders named by ``tokens`` (archive ID or 产品编号), in list order."""
    wanted = list(dict.fromkeys(tokens))
    if len(wanted) > MAX_CYLINDERS:
        raise SelectionError(f"一次最多申请{MAX_CYLINDERS}只气瓶，清单中有{len(wanted)}只。")
    rows: list[Cylinder] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows.extend(
            db.session.scalars(
                select(Cylinder).where(
                    Cylinder.use_unit_id == unit.id,
                    or_(Cylinder.id.in_(chunk), Cylinder.product_no.in_(chunk)),
                )
            )
        )
    by_id = {c.id: c for c in rows}
    by_product: dict[str, list[Cylinder]] = {}
    for c in rows:
        by_product.setdefault(c.product_no, []).append(c)
    chosen: dict[str, Cylinder] = {}
    missing: list[str] = []
    for token in wanted:
        if token in by_id:
            chosen[token] = by_id[token]
            continue
        matches = by_product.get(token, [])
        if not matches:
            missing.append(token)
        elif len(matches) > 1:
            raise SelectionError(
                f"产品编号{token}对应本单位{len(matches)}只气瓶（制造单位不同），"
                "请改用气瓶档案ID指明是哪一只。"
            )
        else:
            chosen[matches[0].id] = matches[0]
    if missing:
        shown = "、".join(missing[:5]) + (f"等{len(missing)}个" if len(missing) > 5 else "")
        raise SelectionError(
            f"产品编号{shown}不是本单位已登记的气瓶，请核对清单（只能申请本单位名下的气瓶）。"
        )
    return list(chosen.values())


def all_of_unit(unit: Unit) -> list[Cylinder]:
    """Every registered cylinder of the unit that still has a registration (更名, 地址变更)."""
    return list(
        db.session.scalars(
            select(Cylinder)
            .where(Cylinder.use_unit_id == unit.id, Cylinder.status != CylinderStatus.CANCELLED)
            .order_by(Cylinder.product_no)
        )
    )


def _is_scrap_record() -> ColumnElement[bool]:
    return or_(
        InspectionRecord.inspect_type == "报废处置",
        InspectionRecord.conclusion.contains("不合格"),
        InspectionRecord.conclusion.contains("判废"),
        InspectionRecord.conclusion.contains("报废"),
    )


def scrap_records_of_unit(unit: Unit, limit: int = 50) -> list[InspectionRecord]:
    """The newest 判废 / 不合格 inspection records of the unit's cylinders (the form's
    list): one bounded query, however many cylinders the unit holds."""
    return list(
        db.session.scalars(
            select(InspectionRecord)
            .join(Cylinder, Cylinder.id == InspectionRecord.cylinder_id)
            .where(Cylinder.use_unit_id == unit.id, _is_scrap_record())
            .order_by(InspectionRecord.inspect_date.desc(), InspectionRecord.id.desc())
            .limit(limit)
        )
    )


def scrap_record_of(record_id: str, cylinder_ids: Collection[str]) -> InspectionRecord | None:
    """The 判废 / 不合格 record ``record_id`` if it is one of ``cylinder_ids``' (by its key)."""
    try:
        wanted = int(record_id)
    except ValueError:
        return None
    record = db.session.scalar(
        select(InspectionRecord).where(InspectionRecord.id == wanted, _is_scrap_record())
    )
    return record if record is not None and record.cylinder_id in cylinder_ids else None


def store_proof(data: bytes, filename: str) -> tuple[str, str, str, str]:
    """Check and store the scrap-proof photo (``images.normalise_image``, like every photo)."""
    image = normalise_image(data, name=filename)
    key = storage.new_key("photos", image.suffix)
    thumb = storage.new_key("thumbs", ".jpg")
    storage.save_in_transaction(key, image.data)
    storage.save_in_transaction(thumb, image.thumbnail)
    return key, thumb, image.sha256, image.content_type
