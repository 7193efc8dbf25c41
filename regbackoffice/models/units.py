"""Enterprise use units (使用单位) and inspection bodies (检验检测单位)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, validates

from ..credit_code import credit_code_error, normalize_credit_code
from .base import LabeledEnum, Model, created_at_column, enum_type


class UnitKind(LabeledEnum):
    USE_UNIT = ("use_unit", "使用单位")
    INSPECTION_BODY = ("inspection_body", "检验检测单位")


class Unit(Model):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[UnitKind] = mapped_column(enum_type(UnitKind, "unit_kind"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    credit_code: Mapped[str] = mapped_column(String(18), nullable=False, unique=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), nullable=False)
    address: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    safety_department: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    contact_name: Mapped[str] = mapped_column(String(50), nullable=False, default="")
    contact_phone: Mapped[str] = mapped_column(String(30), nullable=False, default="")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = created_at_column()

    @validates("credit_code")
    def _validate_credit_code(self, _key: str, value: str) -> str:
        error = credit_code_error(value)
        if error:
            raise ValueError(error)
        return normalize_credit_code(value)
