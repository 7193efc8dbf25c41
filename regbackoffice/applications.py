"""Enterprise applications (使用单位申请): create, fill in, edit items, submit, copy.

Plain functions on models: they check the state, mutate, ``flush`` and write the audit row;
the request (or the CLI) commits. Errors are ``ApplicationError`` with a Chinese message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, not_, select, tuple_
from sqlalchemy.exc import IntegrityError

from . import audit, corrections, prereading, storage, workflow
from .archive import CYLINDER_FIELDS, CylinderData
from .clock import china_today
from .credit_code import credit_code_error, normalize_credit_code
from .domain_errors import DomainError
from .extensions import db
from .identity import invisible_characters_message
from .imports.persistence import (
    TAG_LABELS,
    archived_identities,
    claimed_identities,
    item_values,
    live_tag_key,
    tag_reasons,
    tags_in_use,
)
from .imports.rules import CodeTables, validate_row
from .imports.template import COLUMNS
from .models import (
    EDITABLE_STATUSES,
    Application,
    ApplicationItem,
    ApplicationStatus,
    Attachment,
    AttachmentKind,
    District,
    TagType,
    Unit,
    User,
)

MIN_PHOTOS = 2
MAX_PHOTOS = 4
SHORT_KIND_LABELS = {
    AttachmentKind.STAMP: "钢印",
    AttachmentKind.SUPERVISION_CERTIFICATE: "监检证书",
}


class ApplicationError(DomainError):
    """A refused operation; the message (Chinese) says what to do."""


@dataclass(frozen=True)
class UnitInfo:
    """使用单位基本信息 as filled in on an application."""

    unit_name: str
    safety_department: str
    contact_name: str
    contact_phone: str
    credit_code: str
    address: str

    @classmethod
    def from_unit(cls, unit: Unit) -> UnitInfo:
        return cls(
            unit_name=unit.name,
            safety_department=unit.safety_department,
            contact_name=unit.contact_name,
            contact_phone=unit.contact_phone,
            credit_code=unit.credit_code,
            address=unit.address,
        )

    @classmethod
    def from_application(cls, application: Application) -> UnitInfo:
        return cls(**{name: getattr(application, name) for name in UNIT_FIELDS})


# Field → (label, max length), in the order the form shows them.
UNIT_FIELDS: dict[str, tuple[str, int]] = {
    "unit_name": ("使用单位", 100),
    "safety_department": ("安全管理部门", 100),
    "contact_name": ("联系人", 50),
    "contact_phone": ("联系电话", 30),
    "credit_code": ("统一社会信用代码", 18),
    "address": ("地址", 200),
}


# A fixed line with its area code (023-12345678, 02312345678, extension allowed) or a
# mainland mobile number.
PHONE = re.compile(r"^(0\d{2,3}-?\d{7,8}(-\d{1,6})?|1[3-9]\d{9})$")


def unit_info_problems_by_field(info: UnitInfo) -> dict[str, list[str]]:
    """What is missing or wrong in the unit information, per field (empty when complete)."""
    problems: dict[str, list[str]] = {}
    for name, (label, limit) in UNIT_FIELDS.items():
        value = (getattr(info, name) or "").strip()
        if not value:
            problems[name] = [f"{label}未填写"]
        elif len(value) > limit:
            problems[name] = [f"{label}超过{limit}个字"]
        elif message := invisible_characters_message(label, value):
            problems[name] = [message]
    phone = info.contact_phone.strip()
    if phone and "contact_phone" not in problems and not PHONE.match(phone.replace(" ", "")):
        problems["contact_phone"] = [
            f"联系电话“{phone[:30]}”格式不正确：应为带区号的固定电话（如023-12345678）或11位手机号"
        ]
    if info.credit_code.strip() and "credit_code" not in problems:
        error = credit_code_error(info.credit_code)
        if error:
            problems["credit_code"] = [error]
    return problems


def unit_info_problems(info: UnitInfo) -> list[str]:
    """What is missing or wrong in the unit information (empty when complete)."""
    return [p for messages in unit_info_problems_by_field(info).values() for p in messages]


def _require_draft(application: Application) -> None:
    if application.status is not ApplicationStatus.DRAFT:
        raise ApplicationError(f"申请当前状态为“{application.status.label}”，只有草稿可以修改")


def _require_editable(application: Application) -> None:
    """A draft, or 待补正: the applicant corrects with the draft editing paths."""
    if application.status not in EDITABLE_STATUSES:
        raise ApplicationError(
            f"申请当前状态为“{application.status.label}”，只有草稿或待补正的申请可以修改"
        )


def _apply_info(application: Application, info: UnitInfo) -> None:
    for name, (label, limit) in UNIT_FIELDS.items():
        value = (getattr(info, name) or "").strip()
        if len(value) > limit:
            raise ApplicationError(f"{label}超过{limit}个字")
        setattr(application, name, value)
    if application.credit_code and credit_code_error(application.credit_code) is None:
        application.credit_code = normalize_credit_code(application.credit_code)


def create_application(
    unit: Unit, actor: User, *, district_code: str | None = None, info: UnitInfo | None = None
) -> Application:
    """A new draft for ``unit``, prefilled from the unit unless ``info`` is given."""
    district_code = district_code or unit.district_code
    if db.session.get(District, district_code) is None:
        raise ApplicationError("请选择有效的区县")
    application = Application(
        unit_id=unit.id,
        district_code=district_code,
        created_by_id=actor.id,
        status=ApplicationStatus.DRAFT,
        item_count=0,
    )
    _apply_info(application, info or UnitInfo.from_unit(unit))
    db.session.add(application)
    db.session.flush()
    application.number = f"SQ{application.id:08d}"
    audit.record(
        "application_created", object_type="application", object_id=application.id, actor=actor
    )
    db.session.flush()
    return application


def update_application(
    application: Application, info: UnitInfo, *, district_code: str, actor: User
) -> None:
    _require_editable(application)
    if db.session.get(District, district_code) is None:
        raise ApplicationError("请选择有效的区县")
    if application.status is ApplicationStatus.RETURNED and (
        district_code != application.district_code
    ):
        raise ApplicationError("补正时不能更换受理区县：申请已由该区县局审查。")
    application.district_code = district_code
    _apply_info(application, info)
    audit.record(
        "application_updated", object_type="application", object_id=application.id, actor=actor
    )
    db.session.flush()


def photo_kinds_by_item(item_ids: Sequence[int]) -> dict[int, dict[AttachmentKind, int]]:
    counts: dict[int, dict[AttachmentKind, int]] = {}
    if not item_ids:
        return counts
    stmt = (
        select(Attachment.item_id, Attachment.kind, func.count())
        .where(Attachment.item_id.in_(item_ids))
        .group_by(Attachment.item_id, Attachment.kind)
    )
    for item_id, kind, count in db.session.execute(stmt):
        counts.setdefault(item_id, {})[kind] = count
    return counts


def photo_problem(kinds: dict[AttachmentKind, int]) -> str | None:
    """Why an item's photos are not enough (None when they are)."""
    total = sum(kinds.values())
    missing = [SHORT_KIND_LABELS[k] for k in AttachmentKind if not kinds.get(k)]
    if total < MIN_PHOTOS:
        return f"照片{total}张，至少{MIN_PHOTOS}张" + (
            f"（缺{'、'.join(missing)}）" if missing else ""
        )
    if total > MAX_PHOTOS:
        return f"照片{total}张，最多{MAX_PHOTOS}张"
    if missing:
        return f"缺{'、'.join(missing)}照片"
    return None


def photos_complete() -> ColumnElement[bool]:
    """SQL: the cylinder's photos are what submission needs (2–4, a 钢印 and a 监检证书)."""

    def has(kind: AttachmentKind) -> ColumnElement[bool]:
        return exists().where(Attachment.item_id == ApplicationItem.id, Attachment.kind == kind)

    return and_(
        ApplicationItem.attachment_count.between(MIN_PHOTOS, MAX_PHOTOS),
        has(AttachmentKind.STAMP),
        has(AttachmentKind.SUPERVISION_CERTIFICATE),
    )


# 是否上传附件: what the applicant (and the bureau) filter cylinders by.
PHOTO_FILTERS: dict[str, tuple[str, Any]] = {
    "complete": ("齐全（可提交）", photos_complete),
    "incomplete": ("不齐全", lambda: not_(photos_complete())),
    "yes": ("已上传", lambda: ApplicationItem.attachment_count > 0),
    "no": ("未上传", lambda: ApplicationItem.attachment_count == 0),
}


def photo_filter(value: str) -> ColumnElement[bool] | None:
    """The condition of a 是否上传附件 choice (None: 全部 or an unknown value)."""
    entry = PHOTO_FILTERS.get(value)
    return entry[1]() if entry else None


def neighbour_items(item: ApplicationItem) -> tuple[int | None, int | None]:
    """The ids of the cylinders before and after ``item`` in row order (上一只 / 下一只)."""
    here = tuple_(ApplicationItem.row_no, ApplicationItem.id)
    mine = tuple_(literal(item.row_no), literal(item.id))
    same = ApplicationItem.application_id == item.application_id
    before = db.session.scalar(
        select(ApplicationItem.id)
        .where(same, here < mine)
        .order_by(ApplicationItem.row_no.desc(), ApplicationItem.id.desc())
        .limit(1)
    )
    after = db.session.scalar(
        select(ApplicationItem.id)
        .where(same, here > mine)
        .order_by(ApplicationItem.row_no, ApplicationItem.id)
        .limit(1)
    )
    return before, after


def incomplete_items(application: Application) -> list[tuple[int, str, str]]:
    """Every cylinder whose photos stop submission: (item id, 产品编号, why), in row order."""
    items = db.session.execute(
        select(ApplicationItem.id, ApplicationItem.product_no)
        .where(ApplicationItem.application_id == application.id)
        .order_by(ApplicationItem.row_no)
    ).all()
    kinds = photo_kinds_by_item([item_id for item_id, _ in items])
    found = []
    for item_id, product_no in items:
        problem = photo_problem(kinds.get(item_id, {}))
        if problem:
            found.append((item_id, product_no, problem))
    return found


def submission_problems(application: Application, *, limit: int = 20) -> list[str]:
    """Everything that stops submission, naming cylinders by 产品编号."""
    problems = [
        f"单位基本信息：{p}" for p in unit_info_problems(UnitInfo.from_application(application))
    ]
    if not db.session.scalar(
        select(exists().where(ApplicationItem.application_id == application.id))
    ):
        problems.append("尚未导入任何气瓶")
        return problems
    lacking = [
        f"{product_no}（{problem}）" for _, product_no, problem in incomplete_items(application)
    ]
    if lacking:
        shown = "、".join(lacking[:limit])
        more = f" 等{len(lacking)}只" if len(lacking) > limit else ""
        problems.append(f"{len(lacking)}只气瓶照片不全：{shown}{more}")
    return problems


def submit_application(
    application: Application,
    actor: User,
    accept_limit_workdays: int,
    expected_version: int | None,
) -> None:
    """draft → submitted (待受理), only when nothing is missing; starts the 受理 clock.

    待补正 → resubmitted (``workflow.resubmit``): the clock runs on from where it stopped.
    """
    _require_editable(application)
    problems = submission_problems(application)
    if problems:
        raise ApplicationError("不能提交：" + "；".join(problems))
    if application.status is ApplicationStatus.RETURNED:
        workflow.resubmit(application, actor, expected_version)
    else:
        workflow.submit(application, actor, expected_version, accept_limit_workdays)
    # 机器预读 for the clerk (low priority: never ahead of a certificate).
    prereading.enqueue_after_commit(application.id)


def delete_application(application: Application, actor: User) -> None:
    """Delete a draft with its items and photos (the files go after the commit)."""
    _require_draft(application)
    keys = _attachment_keys(
        select(Attachment)
        .join(ApplicationItem, ApplicationItem.id == Attachment.item_id)
        .where(ApplicationItem.application_id == application.id)
    )
    audit.record(
        "application_deleted",
        object_type="application",
        object_id=application.id,
        actor=actor,
        number=application.number,
    )
    db.session.delete(application)
    db.session.flush()
    storage.delete_after_commit(keys)


def _attachment_keys(stmt: Any) -> list[str]:
    keys: list[str] = []
    for attachment in db.session.scalars(stmt):
        keys += [attachment.storage_key, attachment.thumbnail_key]
    return keys


def delete_item(item: ApplicationItem, actor: User) -> None:
    """Remove one cylinder from a draft (its photo files go after the commit)."""
    application = item.application
    _require_editable(application)
    if item.excluded:
        raise ApplicationError(f"气瓶{item.product_no}已被排除，不能删除。")
    corrections.require_cylinder_edits(application, ApplicationError)
    corrections.note_removed(item)
    keys = _attachment_keys(select(Attachment).where(Attachment.item_id == item.id))
    audit.record(
        "application_item_deleted",
        object_type="application",
        object_id=application.id,
        actor=actor,
        product_no=item.product_no,
    )
    db.session.delete(item)
    application.item_count -= 1
    db.session.flush()
    storage.delete_after_commit(keys)


ITEM_FIELDS = {c.key: c.header for c in COLUMNS}


def item_form_values(item: ApplicationItem) -> dict[str, str]:
    """An item as the template's cell texts (for the edit form)."""
    return {
        "variety": item.variety_code,
        "product_no": item.product_no,
        "medium": item.medium_code,
        "manufacturer": item.manufacturer,
        "manufacture_month": item.manufacture_month,
        "pressure": f"{item.nominal_pressure_mpa}",
        "volume": f"{item.volume_l}",
        "last_inspection_date": item.last_inspection_date.isoformat()
        if item.last_inspection_date
        else "",
        "next_inspection_month": item.next_inspection_month or "",
        "internal_no": item.internal_no or "",
        "tag_type": item.tag_type.label if item.tag_type else "",
        "tag_value": item.qr_content or item.rfid_code or "",
        "design_life_years": str(item.design_life_years or ""),
    }


def update_item(
    item: ApplicationItem, values: dict[str, str], actor: User, *, today: date | None = None
) -> list[str]:
    """Edit one cylinder of a draft with the import's rules; returns the reasons it was
    refused (empty when saved)."""
    application = item.application
    _require_editable(application)
    if item.excluded:
        raise ApplicationError(f"气瓶{item.product_no}已被排除，不能修改。")
    corrections.require_cylinder_edits(application, ApplicationError)
    today = today or china_today()
    cells = [values.get(c.key, "") for c in COLUMNS]
    result = validate_row(item.row_no, cells, CodeTables.load(), today)
    if result.reasons or result.data is None:
        return result.reasons
    key = result.data.identity_key
    if result.tag:  # 一瓶一码, as in the import
        used = tags_in_use([result.tag], application_id=application.id)
        refused = tag_reasons(result.tag, {key, item.identity_key}, used)
        if refused:
            return refused
    if key != item.identity_key:
        if key in archived_identities([key]):
            return ["该气瓶已登记，不能重复申请"]
        claimed = claimed_identities([key])
        if key in claimed:
            app_id, number = claimed[key]
            where = "本申请" if app_id == application.id else f"申请{number or app_id}"
            return [f"该气瓶已在{where}中，不能重复申请"]
    fields = item_values(application.id, item.row_no, result.data)
    savepoint = db.session.begin_nested()
    try:
        for name in (*CYLINDER_FIELDS, "identity_key", "live_identity_key", "live_tag_key"):
            setattr(item, name, fields[name])
        db.session.flush()
    except IntegrityError:
        savepoint.rollback()
        return ["该气瓶或其二维码/RFID编码刚被其他申请占用，不能重复申请"]
    savepoint.commit()
    corrections.note_change(item, "data")
    audit.record(
        "application_item_updated",
        object_type="application",
        object_id=application.id,
        actor=actor,
        product_no=item.product_no,
    )
    return []


def _tag_of(item: ApplicationItem) -> tuple[TagType, str] | None:
    value = item.qr_content if item.tag_type is TagType.QR else item.rfid_code
    return (item.tag_type, value) if item.tag_type is not None and value else None


def copy_voided_application(original: Application, actor: User) -> tuple[Application, list[str]]:
    """A new draft with the voided application's unit information, cylinders and photos.

    Cylinders registered or claimed by another live application since are left out; the
    returned notes say which.
    """
    if original.status is not ApplicationStatus.VOIDED:
        raise ApplicationError("只有已作废的申请可以复制为新申请")
    unit = db.session.get_one(Unit, original.unit_id)
    copy = create_application(
        unit,
        actor,
        district_code=original.district_code,
        info=UnitInfo.from_application(original),
    )
    copy.copied_from_id = original.id
    items = list(
        db.session.scalars(
            select(ApplicationItem)
            .where(ApplicationItem.application_id == original.id)
            .order_by(ApplicationItem.row_no)
        )
    )
    keys = [i.identity_key for i in items]
    archived, claimed = archived_identities(keys), claimed_identities(keys)
    used = tags_in_use([t for t in map(_tag_of, items) if t])
    notes: list[str] = []
    for row_no, old in enumerate(items, start=1):
        if old.identity_key in archived or old.identity_key in claimed:
            notes.append(f"{old.product_no}已登记或已在其他申请中，未复制")
            continue
        tag = _tag_of(old)
        if tag and tag_reasons(tag, {old.identity_key}, used):
            notes.append(f"{old.product_no}的{TAG_LABELS[tag[0]]}已用于另一只气瓶，未复制")
            continue
        new = ApplicationItem(
            application_id=copy.id,
            row_no=row_no,
            **{name: getattr(old, name) for name in (*CYLINDER_FIELDS, "identity_key")},
            live_identity_key=old.identity_key,
            live_tag_key=live_tag_key(CylinderData.from_row(old)),
        )
        savepoint = db.session.begin_nested()
        try:
            db.session.add(new)
            db.session.flush()
        except IntegrityError:
            savepoint.rollback()
            notes.append(f"{old.product_no}刚被其他申请占用，未复制")
            continue
        savepoint.commit()
        for photo in db.session.scalars(select(Attachment).where(Attachment.item_id == old.id)):
            _copy_attachment(photo, new, actor)
        copy.item_count += 1
    audit.record(
        "application_copied",
        object_type="application",
        object_id=copy.id,
        actor=actor,
        copied_from=original.id,
        items=copy.item_count,
    )
    db.session.flush()
    prereading.refresh_verdicts(application_id=copy.id)  # the copied photos wait to be read
    prereading.enqueue_after_commit(copy.id)
    return copy, notes


def _copy_attachment(photo: Attachment, item: ApplicationItem, actor: User) -> None:
    # Files are copied, so deleting a photo of the draft never touches the voided original.
    storage_key = storage.new_key("photos", "." + photo.storage_key.rsplit(".", 1)[-1])
    thumbnail_key = storage.new_key("thumbs", ".jpg")
    storage.save_in_transaction(storage_key, storage.read(photo.storage_key))
    storage.save_in_transaction(thumbnail_key, storage.read(photo.thumbnail_key))
    db.session.add(
        Attachment(
            item_id=item.id,
            kind=photo.kind,
            storage_key=storage_key,
            thumbnail_key=thumbnail_key,
            sha256=photo.sha256,
            content_type=photo.content_type,
            width=photo.width,
            height=photo.height,
            size_bytes=photo.size_bytes,
            original_name=photo.original_name,
            uploaded_by_id=actor.id,
        )
    )
    item.attachment_count += 1
