"""``seed-demo``: the same demo data every time, created through the domain operations."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from werkzeug.security import check_password_hash

from . import (
    accounts,
    api_clients,
    applications,
    archive,
    attachment_audit,
    certificates,
    photos,
    workflow,
)
from .clock import CHINA_TZ, china_date, china_today
from .credit_code import make_credit_code
from .extensions import db
from .identity import identity_key
from .imports.job import import_now
from .imports.reader import parse_workbook
from .models import (
    ApiClient,
    Application,
    ApplicationItem,
    AttachmentKind,
    AuditVerdict,
    Certificate,
    Cylinder,
    CylinderStatus,
    District,
    Role,
    TagType,
    Unit,
    UnitKind,
    User,
)
from .reference_data import load_reference_data
from .workdays import add_workdays


@dataclass(frozen=True)
class DemoDistrict:
    code: str
    unit_name: str
    credit_prefix: str  # 17 characters; the check digit is computed


DEMO_DISTRICTS = (
    DemoDistrict("500112", "重庆渝北燃气有限公司", "91500112MA5U00001"),
    DemoDistrict("500105", "重庆江北工业气体有限公司", "91500105MA5U00002"),
)
INSPECTION_BODY = DemoDistrict("500112", "重庆市特种设备检测研究院气瓶检验站", "12500000MB1A00003")
DEMO_MANUFACTURER = "重庆演示气瓶制造有限公司"

# One registered cylinder per interlock case (see the API's /fillings/check).
INTERLOCK_CASES: dict[str, dict[str, Any]] = {
    "fillable": {"status": CylinderStatus.IN_USE, "next_inspection": +2},
    "overdue": {"status": CylinderStatus.IN_USE, "next_inspection": -1},
    "stopped": {"status": CylinderStatus.STOPPED, "next_inspection": +2},
    "scrapped": {"status": CylinderStatus.SCRAPPED, "next_inspection": +2},
    "cancelled": {"status": CylinderStatus.CANCELLED, "next_inspection": +2},
}


def _demo_secret(password: str, app_id: str) -> str:
    """Deterministic per password, so ``--json-out`` is right on every run."""
    return hashlib.sha256(f"{password}:{app_id}".encode()).hexdigest()[:40]


def _ensure_unit(spec: DemoDistrict, kind: UnitKind) -> Unit:
    credit_code = make_credit_code(spec.credit_prefix)
    unit = db.session.scalar(select(Unit).where(Unit.credit_code == credit_code))
    if unit is None:
        unit = Unit(
            kind=kind,
            name=spec.unit_name,
            credit_code=credit_code,
            district_code=spec.code,
            address=f"重庆市{db.session.get_one(District, spec.code).name}演示路1号",
            safety_department="安全管理部",
            contact_name="张安全",
            contact_phone="023-67000000",
        )
        db.session.add(unit)
        db.session.flush()
    return unit


def _ensure_user(
    username: str,
    password: str,
    role: Role,
    *,
    district: str | None = None,
    unit: Unit | None = None,
) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        return accounts.create_user(
            username, password, role, display_name=username, district_code=district, unit=unit
        )
    if not check_password_hash(user.password_hash, password):
        accounts.set_password(user, password)
    if not user.active:
        accounts.set_active(user, True)
    return user


def _ensure_client(app_id: str, unit: Unit, scopes: list[str], password: str) -> dict[str, Any]:
    secret = _demo_secret(password, app_id)
    client = db.session.scalar(select(ApiClient).where(ApiClient.app_id == app_id))
    if client is None:
        client, _ = api_clients.issue_client(
            unit, scopes, description="演示接口客户端", app_id=app_id, secret=secret
        )
    elif not api_clients.secret_matches(client, secret):
        api_clients.rotate_secret(client, secret)
    if not client.active:
        api_clients.set_client_active(client, True)
    return {
        "app_id": app_id,
        "app_secret": secret,
        "unit_credit_code": unit.credit_code,
        "scopes": client.scopes.split(","),
    }


def _add_months(day: date, months: int) -> str:
    index = day.year * 12 + day.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _ensure_interlock_cylinders(unit: Unit, district: District, today: date) -> dict[str, str]:
    ids: dict[str, str] = {}
    for number, (case, spec) in enumerate(INTERLOCK_CASES.items(), start=1):
        product_no = f"YS{district.code}{number:04d}"
        month = "2022-03"
        key = identity_key(DEMO_MANUFACTURER, product_no, month)
        existing = db.session.scalar(select(Cylinder).where(Cylinder.identity_key == key))
        if existing is None:
            data = archive.CylinderData(
                variety_code="2320",
                product_no=product_no,
                medium_code="G13",
                manufacturer=DEMO_MANUFACTURER,
                manufacture_month=month,
                nominal_pressure_mpa=Decimal("2.10"),
                volume_l=Decimal("35.50"),
                last_inspection_date=date(2022, 3, 15),
                next_inspection_month=_add_months(today, spec["next_inspection"] * 12)
                if spec["next_inspection"] > 0
                else _add_months(today, -2),
                internal_no=f"NB-{number:03d}",
                tag_type=TagType.QR,
                qr_content=f"https://trace.example.invalid/q/{product_no}",
            )
            existing = archive.register_cylinder(
                data,
                unit=unit,
                district=district,
                certificate_no=None,
                registration_date=date(2022, 4, 1),
                status=spec["status"],
            )
        ids[case] = existing.id
    return ids


DEMO_APPLICATION_CYLINDERS = 3


def demo_photo(
    product_no: str, kind: AttachmentKind, twist: str = "", month: str = "2023-06"
) -> bytes:
    """A stand-in photo drawn with Pillow (no real photos ship with the demo).

    The 机器预读 reads them: plain ones read 一致 (certificates surely, stamps mostly);
    ``twist`` "wrong" shows another number (不一致), "blurred" an unreadable snapshot (未识别).
    """
    from . import sample_photos

    shown = product_no[:-1] + ("7" if product_no[-1:] != "7" else "1")
    number = shown if twist == "wrong" else product_no
    distortion = sample_photos.Distortion(rotate=1.5, quality=80)
    if twist == "blurred":
        distortion = sample_photos.Distortion(rotate=8, blur=5, light=0.5, quality=50)
    if kind is AttachmentKind.STAMP:
        return sample_photos.stamp(number, distortion, seed=len(product_no), depth=1.8)
    return sample_photos.certificate(
        number, DEMO_MANUFACTURER, month, distortion, seed=len(product_no)
    )


# Which demo photos go wrong, by (series, row, kind), so the audit shows every badge.
DEMO_PHOTO_TWISTS: dict[tuple[str, int, AttachmentKind], str] = {
    ("YSAPP", 2, AttachmentKind.SUPERVISION_CERTIFICATE): "wrong",
    ("YSAUD", 3, AttachmentKind.STAMP): "blurred",
    ("YSAUD", 3, AttachmentKind.SUPERVISION_CERTIFICATE): "blurred",
}


def _recent_inspection(today: date) -> tuple[str, str]:
    """A periodic inspection half a year ago and the next one 3 years after it: within the
    interval of every demo cylinder (TSG 23: 3 years, 4 for LPG), never overdue."""
    return f"{_add_months(today, -6)}-20", _add_months(today, 30)


def _demo_rows(district: District, today: date, series: str) -> list[list[Any]]:
    last_inspection, next_month = _recent_inspection(today)
    return [
        [
            "2320",
            f"{series}{district.code}{number:03d}",
            "G13",
            DEMO_MANUFACTURER,
            "2023-06",
            "2.10",
            "35.50",
            last_inspection,
            next_month,
            f"SQ-{number:03d}",
            "二维码",
            f"https://trace.example.invalid/q/{series}{district.code}{number:03d}",
        ]
        for number in range(1, DEMO_APPLICATION_CYLINDERS + 1)
    ]


def _ensure_demo_application(
    unit: Unit, applicant: User, district: District, today: date, series: str = "YSAPP"
) -> tuple[Application, bool]:
    """A submitted application with photos, waiting for 受理, made through the domain ops.

    Returns it and whether it was created now (False: it existed, in whatever state).
    """
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

    from .imports.template import HEADERS

    rows = _demo_rows(district, today, series)
    key = identity_key(DEMO_MANUFACTURER, rows[0][1], "2023-06")
    claimed = db.session.scalar(
        select(ApplicationItem).where(ApplicationItem.live_identity_key == key)
    )
    if claimed is not None:
        return db.session.get_one(Application, claimed.application_id), False
    application = applications.create_application(unit, applicant)
    workbook = Workbook()
    sheet = workbook.active
    assert isinstance(sheet, Worksheet)  # a new workbook's one sheet
    sheet.append(list(HEADERS))
    for row in rows:
        sheet.append(row)
    data = io.BytesIO()
    workbook.save(data)
    parsed = parse_workbook(data.getvalue())
    import_now(application, parsed, filename="气瓶清单.xlsx", actor=applicant, today=today)
    for item in db.session.scalars(
        select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    ):
        for kind in AttachmentKind:
            photos.add_photo(
                item,
                kind,
                demo_photo(
                    item.product_no, kind, DEMO_PHOTO_TWISTS.get((series, item.row_no, kind), "")
                ),
                filename=f"{item.product_no}_{kind.label[:2]}.jpg",
                actor=applicant,
            )
    applications.submit_application(application, applicant, 5, application.version_id)
    return application, True


def _audit_all(application: Application, clerk: User, wrong_rows: dict[int, str]) -> None:
    """The 审核附件 pager's work: every cylinder 正确 except ``wrong_rows`` (row → note)."""
    entries = [
        attachment_audit.VerdictEntry(
            item.id,
            AuditVerdict.WRONG if item.row_no in wrong_rows else AuditVerdict.CORRECT,
            wrong_rows.get(item.row_no, ""),
            item.audit_revision,
        )
        for item in db.session.scalars(
            select(ApplicationItem)
            .where(ApplicationItem.application_id == application.id)
            .order_by(ApplicationItem.row_no)
        )
    ]
    attachment_audit.save_verdicts(application, clerk, entries)


def _ensure_mid_audit_application(
    unit: Unit, applicant: User, district: District, today: date, clerk: User
) -> None:
    """An application whose attachment audit is under way (one cylinder already 错误)."""
    application, created = _ensure_demo_application(unit, applicant, district, today, "YSAUD")
    if created:
        _audit_all(application, clerk, {2: "钢印照片模糊，无法辨认产品编号"})
        # Leave the last cylinder unaudited: the audit is still in progress.
        last = db.session.scalars(
            select(ApplicationItem)
            .where(ApplicationItem.application_id == application.id)
            .order_by(ApplicationItem.row_no.desc())
        ).first()
        assert last is not None  # the demo application has cylinders
        last.audit_verdict, last.audited_by_id, last.audited_at = AuditVerdict.PENDING, None, None
        db.session.flush()


def _ensure_certified_application(
    unit: Unit, applicant: User, district: District, today: date, staff: dict[Role, User]
) -> None:
    """An application taken through 受理, 审核, 审批 and 证书生成 (PDF rendered by the job)."""
    application, created = _ensure_demo_application(unit, applicant, district, today, "YSCRT")
    if not created:
        return
    acceptor = staff[Role.ACCEPTOR]
    _audit_all(application, acceptor, {})
    attachment_audit.complete(application, acceptor, application.version_id)
    workflow.accept(application, acceptor, application.version_id, 15)
    workflow.review(application, staff[Role.REVIEWER], application.version_id, True)
    workflow.approve(application, staff[Role.APPROVER], application.version_id, True)
    certificates.generate(application, acceptor, application.version_id, today=today)


def seed_demo(password: str, today: date | None = None) -> dict[str, Any]:
    """Create (or bring back to the demo state) all demo data; returns the JSON summary."""
    today = today or china_today()
    load_reference_data()
    users: dict[str, str] = {}
    clients: list[dict[str, Any]] = []
    cylinders: dict[str, dict[str, str]] = {}
    demo_applications: dict[str, int] = {}

    for spec in DEMO_DISTRICTS:
        district = db.session.get_one(District, spec.code)
        unit = _ensure_unit(spec, UnitKind.USE_UNIT)
        staff: dict[Role, User] = {}
        for prefix, role in (
            ("accept", Role.ACCEPTOR),
            ("review", Role.REVIEWER),
            ("approve", Role.APPROVER),
        ):
            staff[role] = _ensure_user(f"{prefix}-{spec.code}", password, role, district=spec.code)
            users[f"{prefix}-{spec.code}"] = role.value
        applicant = _ensure_user(f"applicant-{spec.code}", password, Role.APPLICANT, unit=unit)
        users[f"applicant-{spec.code}"] = Role.APPLICANT.value
        clients.append(
            _ensure_client(
                f"demo-{spec.code}", unit, ["bind", "filling", "query", "trace"], password
            )
        )
        cylinders[spec.code] = _ensure_interlock_cylinders(unit, district, today)
        submitted, _ = _ensure_demo_application(unit, applicant, district, today)
        demo_applications[spec.code] = submitted.id
        _ensure_mid_audit_application(unit, applicant, district, today, staff[Role.ACCEPTOR])
        # The past certificates first: numbers then rise with their issue dates.
        _ensure_dashboard_history(spec, unit, applicant, district, today, password)
        _ensure_certified_application(unit, applicant, district, today, staff)

    inspection_body = _ensure_unit(INSPECTION_BODY, UnitKind.INSPECTION_BODY)
    clients.append(
        _ensure_client(
            "demo-inspection", inspection_body, ["inspection", "query", "trace"], password
        )
    )
    for spec in DEMO_DISTRICTS:
        _ensure_inspections(spec, today)
    for username, role in (("city", Role.SUPERVISOR), ("admin", Role.ADMIN)):
        _ensure_user(username, password, role)
        users[username] = role.value
    changes = _ensure_change_tasks(today, password)
    users["applicant-movers"] = Role.APPLICANT.value

    db.session.flush()
    return {
        "password": password,
        "users": users,
        "api_clients": clients,
        "cylinders": cylinders,
        "applications": demo_applications,
        "change_requests": changes,
    }


# --- One pending change request of each kind (变更申请) -------------------------------

# A small unit of its own for 使用地址变更: a whole-unit request claims every cylinder.
ADDRESS_UNIT = DemoDistrict("500112", "重庆渝北演示搬迁燃气有限公司", "91500112MA5U00004")


def _change_cylinder(unit: Unit, district: District, n: int, status: CylinderStatus) -> Cylinder:
    product_no = f"YSBG{district.code}{n:03d}"
    key = identity_key(DEMO_MANUFACTURER, product_no, "2023-06")
    existing = db.session.scalar(select(Cylinder).where(Cylinder.identity_key == key))
    if existing is not None:
        return existing
    return archive.register_cylinder(
        archive.CylinderData(
            variety_code="2320",
            product_no=product_no,
            medium_code="G13",
            manufacturer=DEMO_MANUFACTURER,
            manufacture_month="2023-06",
            nominal_pressure_mpa=Decimal("2.10"),
            volume_l=Decimal("35.50"),
            last_inspection_date=date(2023, 6, 10),
            next_inspection_month="2027-06",
            tag_type=TagType.QR,
            qr_content=f"https://trace.example.invalid/q/{product_no}",
        ),
        unit=unit,
        district=district,
        certificate_no=None,
        registration_date=date(2023, 7, 1),
        status=status,
    )


def _ensure_change_tasks(today: date, password: str) -> dict[str, int]:
    """Every kind pending once (in 渝北区, the 过户 to 江北区's demo unit), idempotently."""
    from flask import current_app

    from . import change_selection, change_workflow
    from .models import ChangeItem, ChangeKind, ChangeRequest

    district = db.session.get_one(District, "500112")
    unit = _ensure_unit(DEMO_DISTRICTS[0], UnitKind.USE_UNIT)
    other = _ensure_unit(DEMO_DISTRICTS[1], UnitKind.USE_UNIT)
    movers = _ensure_unit(ADDRESS_UNIT, UnitKind.USE_UNIT)
    applicant = _ensure_user("applicant-500112", password, Role.APPLICANT, unit=unit)
    other_applicant = _ensure_user("applicant-500105", password, Role.APPLICANT, unit=other)
    movers_applicant = _ensure_user("applicant-movers", password, Role.APPLICANT, unit=movers)
    acceptor = _ensure_user("accept-500112", password, Role.ACCEPTOR, district="500112")
    limits = current_app.config
    done: dict[str, int] = {}

    def photo() -> tuple[str, str, str, str]:
        data = demo_photo("报废证明", AttachmentKind.SUPERVISION_CERTIFICATE)
        return change_selection.store_proof(data, "报废证明.jpg")

    Fields = change_workflow.ChangeFields
    own = db.session.scalar(
        select(Certificate)
        .join(Application, Application.id == Certificate.application_id)
        .where(Application.unit_id == unit.id)
        .order_by(Certificate.id)
    )
    plans: list[tuple[ChangeKind, Unit, User, list[Cylinder], Any]] = [
        (ChangeKind.SUSPEND, unit, applicant,
         [_change_cylinder(unit, district, 1, CylinderStatus.IN_USE)],
         lambda: Fields(reason="季节性停产，停用检修")),
        (ChangeKind.RESUME, unit, applicant,
         [_change_cylinder(unit, district, 2, CylinderStatus.STOPPED)], Fields),
        (ChangeKind.SCRAP, unit, applicant,
         [_change_cylinder(unit, district, 3, CylinderStatus.IN_USE)],
         lambda: Fields(reason="瓶体严重腐蚀", proof=photo())),
        (ChangeKind.CANCEL, unit, applicant,
         [_change_cylinder(unit, district, 4, CylinderStatus.SCRAPPED)],
         lambda: Fields(reason="已报废，申请注销", proof=photo())),
        (ChangeKind.TRANSFER, unit, applicant,
         [_change_cylinder(unit, district, 5, CylinderStatus.IN_USE)],
         lambda: Fields(reason="整体转让", target_unit=other)),
        (ChangeKind.RENAME, other, other_applicant, [], lambda: Fields(
            new_unit_name="重庆江北工业气体集团有限公司")),
        (ChangeKind.ADDRESS, movers, movers_applicant,
         [_change_cylinder(movers, district, 6, CylinderStatus.IN_USE)],
         lambda: Fields(new_address="重庆市渝北区演示新址路18号")),
    ]  # fmt: skip
    if own is not None:
        cylinder = db.session.scalar(
            select(Cylinder)
            .where(
                Cylinder.certificate_no == own.number,
                # not one the demo inspections already put into a 注销 task
                ~select(ChangeItem.id)
                .join(ChangeRequest, ChangeRequest.id == ChangeItem.change_id)
                .where(
                    ChangeItem.live_cylinder_id == Cylinder.id,
                    ChangeRequest.kind != ChangeKind.REISSUE,
                )
                .exists(),
            )
            .order_by(Cylinder.product_no)
            .limit(1)
        )
        if cylinder is not None:
            plans.append(
                (ChangeKind.REISSUE, unit, applicant, [cylinder],
                 lambda: Fields(reason="证书遗失", certificate_no=own.number))
            )  # fmt: skip
    for kind, who, user, cylinders, fields in plans:
        existing = db.session.scalar(
            select(ChangeRequest).where(ChangeRequest.unit_id == who.id, ChangeRequest.kind == kind)
        )
        if existing is not None:
            done[kind.value] = existing.id
            continue
        if not cylinders:  # 更名: every cylinder of the unit
            cylinders = change_selection.all_of_unit(who)
        change = change_workflow.submit(kind, who, user, cylinders, fields(), limits)
        if kind is ChangeKind.CANCEL:  # one waiting for 审批, too
            change_workflow.accept(change, acceptor, change.version_id, limits)
        done[kind.value] = change.id
    return done


# --- Several months of activity for the city dashboard (监管看板) ---------------------

# (months ago, last step reached) for the past applications of each demo district.
HISTORY_PLAN: tuple[tuple[int, str], ...] = (
    # Three certificates per district: each renders a PDF (inline without Redis), which
    # is most of seed-demo's time.
    (6, "certified"),
    (4, "certified"),
    (2, "certified"),
    (2, "approved"),
    (1, "reviewed"),
    (1, "accepted"),
    (0, "submitted"),  # submitted three weeks ago: past its 受理 limit
    (0, "returned"),  # 退回补正: waiting on the applicant, its clock paused
)
HISTORY_CYLINDERS = 2


def _months_ago(today: date, months: int, day: int) -> date:
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    return date(year, month + 1, min(day, 28))


def _history_workbook(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

    from .imports.template import HEADERS

    workbook = Workbook()
    sheet = workbook.active
    assert isinstance(sheet, Worksheet)  # a new workbook's one sheet
    sheet.append(list(HEADERS))
    for row in rows:
        sheet.append(row)
    data = io.BytesIO()
    workbook.save(data)
    return data.getvalue()


def _history_application(
    unit: Unit, applicant: User, district: District, today: date, index: int
) -> Any | None:
    """A new submitted application of the history, or None when it exists already."""
    product_nos = [f"YSH{district.code}{index:02d}{n}" for n in range(1, HISTORY_CYLINDERS + 1)]
    key = identity_key(DEMO_MANUFACTURER, product_nos[0], "2024-03")
    if db.session.scalar(select(Cylinder.id).where(Cylinder.identity_key == key)) or (
        db.session.scalar(select(ApplicationItem.id).where(ApplicationItem.identity_key == key))
    ):
        return None
    last_inspection, next_month = _recent_inspection(today)
    rows = [
        [
            "2320",
            product_no,
            "G13" if n % 2 else "G20",
            DEMO_MANUFACTURER,
            "2024-03",
            "2.10",
            "35.50",
            last_inspection,
            next_month,
            f"H-{index:02d}{n}",
            "二维码",
            f"https://trace.example.invalid/q/{product_no}",
        ]
        for n, product_no in enumerate(product_nos, start=1)
    ]
    application = applications.create_application(unit, applicant)
    parsed = parse_workbook(_history_workbook(rows))
    import_now(application, parsed, filename="气瓶清单.xlsx", actor=applicant, today=today)
    for item in db.session.scalars(
        select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    ):
        for kind in AttachmentKind:
            photos.add_photo(
                item,
                kind,
                demo_photo(item.product_no, kind, month="2024-03"),
                filename=f"{item.product_no}.jpg",
                actor=applicant,
            )
    applications.submit_application(application, applicant, 5, application.version_id)
    return application


def _walk_to(application: Any, stage: str, code: str, issued_on: date) -> None:
    """Take a submitted application through the real transitions up to ``stage``."""
    from . import attachment_audit, certificates, workflow
    from .models import AuditVerdict

    def staff(prefix: str) -> User:
        return db.session.scalars(select(User).where(User.username == f"{prefix}-{code}")).one()

    if stage == "submitted":
        return
    acceptor = staff("accept")
    entries = [
        attachment_audit.VerdictEntry(item.id, AuditVerdict.CORRECT, "", item.audit_revision)
        for item in db.session.scalars(
            select(ApplicationItem).where(ApplicationItem.application_id == application.id)
        )
    ]
    if stage == "returned":  # one cylinder's photos do not match: 退回补正 with it
        first = entries[0]
        entries[0] = attachment_audit.VerdictEntry(
            first.item_id, AuditVerdict.WRONG, "钢印照片不清晰，请重新拍摄", first.revision
        )
    attachment_audit.save_verdicts(application, acceptor, entries)
    attachment_audit.complete(application, acceptor, application.version_id)
    if stage == "returned":
        from . import corrections

        items = [*corrections.gathered_items(application), "请核对安全管理部门名称"]
        workflow.request_correction(
            application, acceptor, items, application.version_id, max_rounds=1
        )
        return
    workflow.accept(application, acceptor, application.version_id, 15)
    if stage == "accepted":
        return
    workflow.review(application, staff("review"), application.version_id, True)
    if stage == "reviewed":
        return
    workflow.approve(application, staff("approve"), application.version_id, True)
    if stage == "approved":
        return
    certificates.generate(application, acceptor, application.version_id, today=issued_on)


def _schedule(submitted_on: date, index: int) -> dict[str, datetime]:
    """When each step of a past application happened (a few days apart, varying)."""
    moment = datetime.combine(submitted_on, time(9), CHINA_TZ).astimezone(UTC)
    times = {"submitted_at": moment}
    for column, gap_days in (
        ("accepted_at", 1 + index % 3),
        ("reviewed_at", 2 + index % 2),
        ("approved_at", 1 + index % 4),
        ("certified_at", 1),
    ):
        moment = moment + timedelta(days=gap_days, hours=index % 5)
        times[column] = moment
    return times


def _backdate(application: Any, times: dict[str, datetime]) -> None:
    """Move the transitions' times into the past (a demo has no history of its own)."""
    # Created (and the cylinder list imported) the working day before it was submitted.
    application.created_at = times["submitted_at"] - timedelta(days=1, hours=2)
    application.submitted_at = times["submitted_at"]
    application.accept_due_on = add_workdays(china_date(times["submitted_at"]), 5)
    for column in ("accepted_at", "reviewed_at", "approved_at", "certified_at"):
        if getattr(application, column) is not None:
            setattr(application, column, times[column])
    if application.accepted_at is not None:
        application.audit_completed_at = times["accepted_at"]
        application.decision_due_on = add_workdays(china_date(times["accepted_at"]), 15)
    if application.certified_at is not None:
        certificate = db.session.scalars(
            select(Certificate).where(Certificate.application_id == application.id)
        ).one()
        certificate.created_at = times["certified_at"]


def _ensure_dashboard_history(
    spec: DemoDistrict, unit: Unit, applicant: User, district: District, today: date, password: str
) -> None:
    """Past applications in every state, certificates, fillings (some 违规) and trace events.

    Made through the real operations, then dated back; skipped when already there.
    """
    offset = 3 if spec.code == "500112" else 10
    for index, (months, stage) in enumerate(HISTORY_PLAN, start=1):
        application = _history_application(unit, applicant, district, today, index)
        if application is None:
            continue
        if months == 0:
            submitted_on = today - timedelta(days=21)
        else:
            submitted_on = _months_ago(today, months, offset + index)
        times = _schedule(submitted_on, index)
        issued_on = min(china_date(times["certified_at"]), today)
        _walk_to(application, stage, spec.code, issued_on)
        _backdate(application, times)
        db.session.flush()
    _ensure_api_activity(spec, unit, district, today, password)


def _ensure_api_activity(
    spec: DemoDistrict, unit: Unit, district: District, today: date, password: str
) -> None:
    """Fillings over six months on the interlock cylinders (violations included), trace events
    and a bound tag on the fillable cylinder, all through the API's domain operations."""
    from . import api_records, tag_binding

    client = db.session.scalars(
        select(ApiClient).where(ApiClient.app_id == f"demo-{spec.code}")
    ).one()
    cases = {
        case: db.session.scalars(
            select(Cylinder).where(
                Cylinder.identity_key
                == identity_key(DEMO_MANUFACTURER, f"YS{district.code}{number:04d}", "2022-03")
            )
        ).one()
        for number, case in enumerate(INTERLOCK_CASES, start=1)
    }
    fillers = ("张伟", "王芳", "李强")
    fillings = []
    for months in range(6, -1, -1):
        for day, case in ((5, "fillable"), (12, "fillable"), (18, "overdue"), (25, "stopped")):
            fill_date = _months_ago(today, months, day)
            if fill_date >= today or (case == "stopped" and months % 2):
                continue
            fillings.append(
                {
                    "record_no": f"DEMO-F-{district.code}-{fill_date.isoformat()}-{case}",
                    "id": cases[case].id,
                    "medium_code": "G13",
                    "filler": fillers[(months + day) % len(fillers)],
                    "fill_date": fill_date.isoformat(),
                    "filling_unit_name": f"{district.name}演示充装站",
                }
            )
    api_records.submit_batch(client, "filling", fillings)
    fillable = cases["fillable"]
    events = [
        ("充装", f"{district.name}演示充装站", 3),
        ("配送", "刘建国", 2),
        ("使用", unit.name[:10], 1),
    ]
    api_records.submit_batch(
        client,
        "trace",
        [
            {
                "record_no": f"DEMO-T-{district.code}-{node}",
                "id": fillable.id,
                "time": f"{(today - timedelta(days=days)).isoformat()} 09:30:00",
                "node": node,
                "actor": actor,
            }
            for node, actor, days in events
        ],
    )
    if fillable.info_code is None:
        tag_binding.bind(
            client,
            fillable,
            TagType.QR,
            fillable.qr_content or f"https://trace.example.invalid/q/{fillable.product_no}",
            demo_photo(fillable.product_no, AttachmentKind.STAMP),
        )


def _ensure_inspections(spec: DemoDistrict, today: date) -> None:
    """Inspection records from the demo inspection body, for the 气瓶档案 history: a passed
    periodic inspection of the fillable cylinder, a failed one of the stopped cylinder, and
    a failed one that stops a cylinder of the oldest certificate (a status change after
    registration). Idempotent by record number."""
    from . import api_records

    client = db.session.scalars(
        select(ApiClient).where(ApiClient.app_id == "demo-inspection")
    ).one()

    def cylinder(product_no: str, month: str) -> Cylinder | None:
        key = identity_key(DEMO_MANUFACTURER, product_no, month)
        return db.session.scalar(select(Cylinder).where(Cylinder.identity_key == key))

    org = INSPECTION_BODY.unit_name
    plan = [
        (cylinder(f"YS{spec.code}0001", "2022-03"), 30, "合格"),
        (cylinder(f"YS{spec.code}0003", "2022-03"), 45, "不合格"),
        (cylinder(f"YSH{spec.code}011", "2024-03"), 10, "不合格"),
    ]
    records = []
    for target, days_ago, conclusion in plan:
        if target is None:
            continue
        inspected = today - timedelta(days=days_ago)
        record: dict[str, Any] = {
            "record_no": f"DEMO-I-{target.product_no}",
            "id": target.id,
            "inspect_date": inspected.isoformat(),
            "inspection_org": org,
            "conclusion": conclusion,
            "inspect_type": "定期",
        }
        if conclusion == "合格":
            # 2320 + G13 (液化石油气钢瓶): every 4 years.
            record["next_inspection_month"] = _add_months(inspected, 48)
        records.append(record)
    api_records.submit_batch(client, "inspection", records)
