"""Maintaining units (使用单位, 检验检测单位) from the admin pages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from . import audit
from .credit_code import credit_code_error, normalize_credit_code
from .domain_errors import DomainError
from .extensions import db
from .models import District, Unit, UnitKind


class UnitError(DomainError):
    """A user-facing reason a unit could not be saved (Chinese)."""


@dataclass(frozen=True)
class UnitData:
    kind: UnitKind
    name: str
    credit_code: str
    district_code: str
    address: str = ""
    safety_department: str = ""
    contact_name: str = ""
    contact_phone: str = ""


def _check(data: UnitData, existing: Unit | None) -> str:
    error = credit_code_error(data.credit_code)
    if error:
        raise UnitError(error)
    code = normalize_credit_code(data.credit_code)
    other = db.session.scalar(select(Unit).where(Unit.credit_code == code))
    if other is not None and other is not existing:
        raise UnitError(f"统一社会信用代码 {code} 已登记为“{other.name}”")
    if db.session.get(District, data.district_code) is None:
        raise UnitError(f"区县代码 {data.district_code} 不存在")
    if not data.name.strip():
        raise UnitError("请填写单位名称")
    return code


def save_unit(data: UnitData, unit: Unit | None = None) -> Unit:
    """Create a unit, or update ``unit``; raises UnitError with the reason."""
    code = _check(data, unit)
    created = unit is None
    unit = unit or Unit()
    unit.kind = data.kind
    unit.name = data.name.strip()
    unit.credit_code = code
    unit.district_code = data.district_code
    unit.address = data.address.strip()
    unit.safety_department = data.safety_department.strip()
    unit.contact_name = data.contact_name.strip()
    unit.contact_phone = data.contact_phone.strip()
    db.session.add(unit)
    db.session.flush()
    audit.record(
        "unit_created" if created else "unit_updated", object_type="unit", object_id=unit.id
    )
    return unit
