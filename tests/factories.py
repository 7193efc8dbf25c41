"""Factories for test data: small functions that add valid rows and flush."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from regbackoffice import accounts, archive
from regbackoffice.credit_code import make_credit_code
from regbackoffice.extensions import db
from regbackoffice.models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    Cylinder,
    District,
    Role,
    TagType,
    Unit,
    UnitKind,
    User,
)

PASSWORD = "correct-horse-9"
_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter):05d}"


def make_unit(district_code: str = "500112", kind: UnitKind = UnitKind.USE_UNIT, **kw) -> Unit:
    n = next(_counter)
    unit = Unit(
        kind=kind,
        name=kw.pop("name", f"测试燃气有限公司{n}"),
        credit_code=make_credit_code(f"91{district_code}MA{n:07d}"),
        district_code=district_code,
        address="重庆市测试路1号",
        safety_department="安全部",
        contact_name="李四",
        contact_phone="023-60000000",
        **kw,
    )
    db.session.add(unit)
    db.session.flush()
    return unit


def make_user(
    role: Role = Role.ACCEPTOR,
    *,
    district_code: str | None = "500112",
    unit: Unit | None = None,
    password: str = PASSWORD,
    username: str | None = None,
) -> User:
    if role is Role.APPLICANT and unit is None:
        unit = make_unit(district_code or "500112")
    return accounts.create_user(
        username or unique(role.value + "-"),
        password,
        role,
        district_code=district_code if role.is_district_role else None,
        unit=unit,
    )


def cylinder_data(**overrides) -> archive.CylinderData:
    values = {
        "variety_code": "2320",
        "product_no": unique("P"),
        "medium_code": "G13",
        "manufacturer": "测试气瓶制造厂",
        "manufacture_month": "2022-05",
        "nominal_pressure_mpa": Decimal("2.10"),
        "volume_l": Decimal("35.50"),
        "last_inspection_date": date(2022, 5, 20),
        "next_inspection_month": "2030-05",
        "internal_no": None,
        "tag_type": TagType.QR,
        "qr_content": "https://trace.example.invalid/q/1",
    }
    values.update(overrides)
    return archive.CylinderData(**values)


def make_cylinder(unit: Unit | None = None, **overrides) -> Cylinder:
    unit = unit or make_unit()
    district = db.session.get(District, unit.district_code)
    status = overrides.pop("status", None)
    extra = {"status": status} if status is not None else {}
    return archive.register_cylinder(
        cylinder_data(**overrides),
        unit=unit,
        district=district,
        certificate_no="瓶渝11200001(26)",
        registration_date=date(2026, 1, 5),
        **extra,
    )


def make_application(
    unit: Unit | None = None, *, created_by: User | None = None, **kw
) -> Application:
    unit = unit or make_unit()
    created_by = created_by or make_user(Role.APPLICANT, unit=unit)
    application = Application(
        unit_id=unit.id,
        district_code=kw.pop("district_code", unit.district_code),
        unit_name=unit.name,
        credit_code=unit.credit_code,
        address=unit.address,
        safety_department=unit.safety_department,
        contact_name=unit.contact_name,
        contact_phone=unit.contact_phone,
        created_by_id=created_by.id,
        status=kw.pop("status", ApplicationStatus.DRAFT),
        **kw,
    )
    db.session.add(application)
    db.session.flush()
    application.number = f"SQ{application.id:08d}"
    db.session.flush()
    return application


def make_item(application: Application, **overrides) -> ApplicationItem:
    data = cylinder_data(**overrides)
    item = ApplicationItem(
        application_id=application.id,
        row_no=application.item_count + 2,
        variety_code=data.variety_code,
        product_no=data.product_no,
        medium_code=data.medium_code,
        manufacturer=data.manufacturer,
        manufacture_month=data.manufacture_month,
        nominal_pressure_mpa=data.nominal_pressure_mpa,
        volume_l=data.volume_l,
        last_inspection_date=data.last_inspection_date,
        next_inspection_month=data.next_inspection_month,
        tag_type=data.tag_type,
        qr_content=data.qr_content,
        identity_key=data.identity_key,
        live_identity_key=data.identity_key,
    )
    application.item_count += 1
    db.session.add(item)
    db.session.flush()
    return item


ALL_API_SCOPES = ("query", "bind", "filling", "inspection", "trace")


def make_api_client(unit: Unit | None = None, scopes=ALL_API_SCOPES, **kw):
    """An active API client of ``unit``; returns (client, secret)."""
    from regbackoffice import api_clients

    unit = unit or make_unit()
    return api_clients.issue_client(unit, scopes, **kw)
