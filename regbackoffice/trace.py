"""追溯信息展示: what the public trace page shows about one cylinder.

Only the seed's fields are shown (product data, 使用单位, 使用登记证编号, status, inspection
dates, fillings, trace timeline), and personal names are masked: 充装人员 always, and trace
actors (单位名称或姓名) unless they read as a unit name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from .extensions import db
from .identity import normalize_text
from .models import (
    Cylinder,
    FillingRecord,
    InspectionRecord,
    Medium,
    TagBinding,
    TraceEvent,
    Variety,
)

RECENT_FILLINGS = 10
RECENT_INSPECTIONS = 5
TIMELINE_EVENTS = 20
SEARCH_LIMIT = 20

# Words that mark an organisation's name; anything else is taken as a person (masked),
# so a doubtful actor is hidden rather than shown.
_UNIT_WORDS = re.compile(
    r"公司|集团|站|厂|中心|所|院|局|店|部|处|队|门市|有限|股份|协会|燃气|气体|物流|配送|"
    r"供应|检验|检测|市场|单位|学校|医院|酒店|饭店|餐厅"
)


def mask_name(name: str) -> str:
    """Keep the first character of a person's name and hide the rest: 张三丰 → 张**."""
    name = (name or "").strip()
    if not name:
        return ""
    return name[0] + "*" * max(1, len(name) - 1)


def looks_like_unit(actor: str) -> bool:
    return bool(_UNIT_WORDS.search(actor or ""))


def public_actor(actor: str) -> str:
    """A trace actor as shown publicly: unit names stay, personal names are masked."""
    actor = (actor or "").strip()
    return actor if looks_like_unit(actor) else mask_name(actor)


def find_by_info_code(info_code: str) -> Cylinder | None:
    code = normalize_text(info_code)[:50]
    if not code:
        return None
    cylinder = db.session.scalar(select(Cylinder).where(Cylinder.info_code == code))
    if cylinder is None:
        binding = db.session.scalar(select(TagBinding).where(TagBinding.info_code == code))
        if binding is not None:
            cylinder = db.session.get(Cylinder, binding.cylinder_id)
    return cylinder


def search(manufacturer: str, product_no: str, manufacture_month: str = "") -> list[Cylinder]:
    """Cylinders by 制造单位 + 产品编号 (NFKC, trimmed); several when only the month differs."""
    manufacturer, product_no = normalize_text(manufacturer), normalize_text(product_no)
    if not manufacturer or not product_no:
        return []
    query = select(Cylinder).where(
        Cylinder.product_no == product_no, Cylinder.manufacturer == manufacturer
    )
    if manufacture_month:
        query = query.where(Cylinder.manufacture_month == normalize_text(manufacture_month))
    return list(
        db.session.scalars(query.order_by(Cylinder.manufacture_month.desc()).limit(SEARCH_LIMIT))
    )


@dataclass(frozen=True)
class FillingLine:
    fill_date: date
    medium: str
    filling_unit_name: str
    filler: str  # masked


@dataclass(frozen=True)
class TimelineLine:
    when: Any
    node: str
    actor: str  # masked when a person


def inspection_overdue(cylinder: Cylinder, today: date) -> bool:
    """Past the month of the next inspection (that month itself still counts as in time)."""
    month = cylinder.next_inspection_month
    if not month:
        return False
    return month < today.strftime("%Y-%m")


def view(cylinder: Cylinder, today: date) -> dict[str, Any]:
    """Everything the trace page shows, names already masked."""
    media = dict(db.session.execute(select(Medium.code, Medium.name)).tuples().all())
    variety = db.session.get(Variety, cylinder.variety_code)
    fillings = db.session.scalars(
        select(FillingRecord)
        .where(FillingRecord.cylinder_id == cylinder.id)
        .order_by(FillingRecord.fill_date.desc(), FillingRecord.id.desc())
        .limit(RECENT_FILLINGS)
    )
    inspections = db.session.scalars(
        select(InspectionRecord)
        .where(InspectionRecord.cylinder_id == cylinder.id)
        .order_by(InspectionRecord.inspect_date.desc(), InspectionRecord.id.desc())
        .limit(RECENT_INSPECTIONS)
    ).all()
    events = db.session.scalars(
        select(TraceEvent)
        .where(TraceEvent.cylinder_id == cylinder.id)
        .order_by(TraceEvent.event_time.desc(), TraceEvent.id.desc())
        .limit(TIMELINE_EVENTS)
    )
    return {
        "cylinder": cylinder,
        "variety_name": variety.name if variety else cylinder.variety_code,
        "medium_name": media.get(cylinder.medium_code, cylinder.medium_code),
        "overdue": inspection_overdue(cylinder, today),
        "fillings": [
            FillingLine(
                f.fill_date,
                media.get(f.medium_code, f.medium_code),
                f.filling_unit_name,
                mask_name(f.filler),
            )
            for f in fillings
        ],
        "inspections": inspections,
        "timeline": [TimelineLine(e.event_time, e.node, public_actor(e.actor)) for e in events],
    }
