"""Factories for test data: small functions that add valid rows and flush."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from regbackoffice import accounts, archive, prereading
from regbackoffice.credit_code import make_credit_code
from regbackoffice.extensions import db
from regbackoffice.imports import persistence, refused
from regbackoffice.models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    Attachment,
    AttachmentKind,
    Cylinder,
    District,
    ImportJob,
    ImportStatus,
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
    }
    values.update(overrides)
    # 一瓶一码: each cylinder its own QR URL (unless one is given).
    values.setdefault("qr_content", f"https://trace.example.invalid/q/{values['product_no']}")
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


_stored_photo: dict[str, tuple] = {}


def _sample_photo() -> tuple:
    """One real JPEG stored once per storage folder and shared by factory photos (fast)."""
    import io

    from flask import current_app
    from PIL import Image

    from regbackoffice import images, storage

    folder = current_app.config["STORAGE_DIR"]
    if folder not in _stored_photo or not storage.exists(_stored_photo[folder][0]):
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), (90, 120, 150)).save(buffer, "JPEG")
        normalised = images.normalise_image(buffer.getvalue())
        key = storage.new_key("photos", normalised.suffix)
        thumb_key = storage.new_key("thumbs", ".jpg")
        storage.save(key, normalised.data)
        storage.save(thumb_key, normalised.thumbnail)
        _stored_photo[folder] = (key, thumb_key, normalised)
    return _stored_photo[folder]


def make_photo(item: ApplicationItem, kind=None, uploaded_by: User | None = None) -> Attachment:
    """A photo row for an item, pointing at a real stored JPEG."""
    key, thumb_key, normalised = _sample_photo()
    photo = Attachment(
        item_id=item.id,
        kind=kind or AttachmentKind.STAMP,
        storage_key=key,
        thumbnail_key=thumb_key,
        sha256=normalised.sha256,
        content_type=normalised.content_type,
        width=normalised.width,
        height=normalised.height,
        size_bytes=len(normalised.data),
        uploaded_by_id=(uploaded_by or db.session.get(User, item.application.created_by_id)).id,
    )
    item.attachment_count += 1
    db.session.add(photo)
    db.session.flush()
    prereading.refresh_verdicts(item_ids=[item.id])  # as photos.add_photo: it waits to be read
    return photo


def make_submitted_application(
    unit: Unit | None = None, *, items: int = 3, photos: bool = True, submitted_at=None
) -> Application:
    """An application waiting for 受理, its cylinders each with a stamp and a certificate photo."""
    from regbackoffice import workflow

    application = make_application(unit)
    for _ in range(items):
        item = make_item(application)
        if photos:
            make_photo(item, AttachmentKind.STAMP)
            make_photo(item, AttachmentKind.SUPERVISION_CERTIFICATE)
    applicant = db.session.get(User, application.created_by_id)
    workflow.submit(application, applicant, application.version_id, 5)
    if submitted_at is not None:  # back-dated, for deadline tests
        application.submitted_at = submitted_at
        workflow.start_acceptance_clock(application, 5)
        db.session.flush()
    return application


def make_accepted_application(
    unit: Unit | None = None, *, accepted_by: User | None = None, items: int = 2
) -> Application:
    """An application past 受理 (attachment audit complete, every cylinder 正确)."""
    from regbackoffice import attachment_audit, workflow
    from regbackoffice.models import AuditVerdict

    application = make_submitted_application(unit, items=items, photos=False)
    accepted_by = accepted_by or make_user(Role.ACCEPTOR, district_code=application.district_code)
    entries = [
        attachment_audit.VerdictEntry(item.id, AuditVerdict.CORRECT, "", 0)
        for item in db.session.scalars(
            select(ApplicationItem).where(ApplicationItem.application_id == application.id)
        )
    ]
    attachment_audit.save_verdicts(application, accepted_by, entries)
    attachment_audit.complete(application, accepted_by, application.version_id)
    workflow.accept(application, accepted_by, application.version_id, 15)
    return application


def make_approved_application(unit: Unit | None = None, *, items: int = 2) -> Application:
    """An application through 受理, 审核 and 审批 by three different people."""
    from regbackoffice import workflow

    application = make_accepted_application(unit, items=items)
    district = application.district_code
    workflow.review(
        application, make_user(Role.REVIEWER, district_code=district), application.version_id, True
    )
    workflow.approve(
        application, make_user(Role.APPROVER, district_code=district), application.version_id, True
    )
    return application


ALL_API_SCOPES = ("query", "bind", "filling", "inspection", "trace")


def make_api_client(unit: Unit | None = None, scopes=None, **kw):
    """An active API client of ``unit``; returns (client, secret).

    By default every scope the unit may hold: ``inspection`` only for inspection bodies.
    """
    from regbackoffice import api_clients

    unit = unit or make_unit()
    if scopes is None:
        scopes = [
            s for s in ALL_API_SCOPES if s != "inspection" or unit.kind is UnitKind.INSPECTION_BODY
        ]
    return api_clients.issue_client(unit, scopes, **kw)


@dataclass
class Imported:
    """An import's outcome, with its job and its refused rows as the table keeps them."""

    job: ImportJob
    job_id: int
    total: int
    imported: int
    failed: list[dict[str, Any]]  # {"row", "values", "reasons"}, read back in row order


def import_under_job(
    application: Application, rows: Iterable[tuple[int, list[Any]]], **kw: Any
) -> Imported:
    """``persistence.import_rows`` under a new import job (flushes, no commit), as
    start_import runs it; the refused rows are read back from ``import_failed_rows``."""
    job = ImportJob(
        application_id=application.id,
        created_by_id=application.created_by_id,
        status=ImportStatus.DONE,
        original_name="清单.xlsx",
    )
    db.session.add(job)
    db.session.flush()
    outcome = persistence.import_rows(application, rows, job=job, **kw)
    job.total_rows, job.imported_count = outcome.total, outcome.imported
    job.failed_count = outcome.failed
    failed = list(refused.every(job.id))
    assert len(failed) == outcome.failed
    return Imported(job, job.id, outcome.total, outcome.imported, failed)
