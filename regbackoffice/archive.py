"""The cylinder archive: adding registered cylinders with their stable archive IDs."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal

from .extensions import db
from .identity import identity_key, normalize_text
from .models import Cylinder, CylinderStatus, District, TagType, Unit


def new_archive_id(district_code: str) -> str:
    """ID（气瓶档案ID）: ``CQ`` + district code + 10 random hex digits; never reused."""
    return f"CQ{district_code}{secrets.token_hex(5).upper()}"


@dataclass(frozen=True)
class CylinderData:
    """The product data of one cylinder, as imported or sent (section 3 keys)."""

    variety_code: str
    product_no: str
    medium_code: str
    manufacturer: str
    manufacture_month: str
    nominal_pressure_mpa: Decimal
    volume_l: Decimal
    last_inspection_date: date | None = None
    next_inspection_month: str | None = None
    internal_no: str | None = None
    tag_type: TagType | None = None
    qr_content: str | None = None
    rfid_code: str | None = None
    design_life_years: int | None = None  # 设计使用年限 where given; else the rule table

    @property
    def identity_key(self) -> str:
        return identity_key(self.manufacturer, self.product_no, self.manufacture_month)

    @classmethod
    def from_row(cls, row: object) -> CylinderData:
        """The product data of anything holding these columns (an ApplicationItem, a Cylinder)."""
        return cls(**{name: getattr(row, name) for name in CYLINDER_FIELDS})


# The product-data columns shared by the archive, application items and imports.
CYLINDER_FIELDS = tuple(f.name for f in fields(CylinderData))


def register_cylinders(
    datas: list[CylinderData],
    *,
    unit: Unit,
    unit_name: str,
    district: District,
    certificate_no: str,
    registration_date: date,
    application_id: int,
) -> list[Cylinder]:
    """Write a certificate's cylinders into the archive (status 在用) in one flush."""
    cylinders = [
        _cylinder(
            data,
            unit_id=unit.id,
            unit_name=unit_name,
            district=district,
            certificate_no=certificate_no,
            registration_date=registration_date,
            application_id=application_id,
            status=CylinderStatus.IN_USE,
        )
        for data in datas
    ]
    db.session.add_all(cylinders)
    db.session.flush()
    return cylinders


def register_cylinder(
    data: CylinderData,
    *,
    unit: Unit,
    district: District,
    certificate_no: str | None,
    registration_date: date,
    application_id: int | None = None,
    status: CylinderStatus = CylinderStatus.IN_USE,
) -> Cylinder:
    """Write one registered cylinder into the archive (flushes; the caller commits)."""
    cylinder = _cylinder(
        data,
        unit_id=unit.id,
        unit_name=unit.name,
        district=district,
        certificate_no=certificate_no,
        registration_date=registration_date,
        application_id=application_id,
        status=status,
    )
    db.session.add(cylinder)
    db.session.flush()
    return cylinder


def _cylinder(
    data: CylinderData,
    *,
    unit_id: int,
    unit_name: str,
    district: District,
    certificate_no: str | None,
    registration_date: date,
    application_id: int | None,
    status: CylinderStatus,
) -> Cylinder:
    return Cylinder(
        id=new_archive_id(district.code),
        use_unit_id=unit_id,
        use_unit_name=unit_name,
        district_code=district.code,
        variety_code=data.variety_code,
        product_no=normalize_text(data.product_no),
        medium_code=data.medium_code,
        manufacturer=normalize_text(data.manufacturer),
        manufacture_month=data.manufacture_month,
        nominal_pressure_mpa=data.nominal_pressure_mpa,
        volume_l=data.volume_l,
        last_inspection_date=data.last_inspection_date,
        next_inspection_month=data.next_inspection_month,
        internal_no=data.internal_no,
        status=status,
        tag_type=data.tag_type,
        qr_content=data.qr_content,
        rfid_code=data.rfid_code,
        design_life_years=data.design_life_years,
        certificate_no=certificate_no,
        registration_date=registration_date,
        registration_authority=district.authority,
        identity_key=data.identity_key,
        application_id=application_id,
    )
