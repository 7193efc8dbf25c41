"""Change requests after registration (变更申请): the table of steps and one function per
transition, modelled on ``workflow.py`` (see docs/workflow.md, "Change requests").

A use unit applies for 停用 / 启用 / 报废 / 注销 / 使用单位更名 / 使用地址变更 / 过户 / 补领
for one or many of its registered cylinders; an inspection body's 判废 or 不合格 record opens
a 注销 request by itself (``open_from_inspection``). The district bureau 受理s and 审批s
(``CHANGE_APPROVAL_STEPS``: 2 = 受理 then 审批 by another person; 1 = the 受理 decides), or
驳回s with a reason. A 过户 first waits for the receiving unit's applicant (接收确认). Until
the bureau 受理s, the unit may 撤回 (withdraw) its own request.

Each transition checks the state and the version the user saw, changes state, time and
actor, and writes the audit row; the effects on the archive happen at approval
(``_apply``), through the ORM, so the status history and the changes feed follow
(``cylinder_changes``). They only flush; the request commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.exc import IntegrityError

from . import audit, certificates, cylinder_changes
from .clock import CHINA_TZ, china_today
from .domain_errors import DomainError
from .extensions import db
from .models import (
    Certificate,
    ChangeItem,
    ChangeKind,
    ChangeOrigin,
    ChangeRequest,
    ChangeStatus,
    Cylinder,
    CylinderStatus,
    InspectionRecord,
    Role,
    Unit,
    UnitKind,
    User,
    utcnow,
)
from .workdays import add_workdays

_C = ChangeStatus
_K = ChangeKind
_CS = CylinderStatus

# A stop of a year or more is reported within this many days of its start (TSG 08-2017).
LONG_STOP_REPORT_DAYS = 30


@dataclass(frozen=True)
class ChangeStep:
    """One step of a change request: who acts in which state, and the time limit."""

    key: str
    label: str
    status: ChangeStatus  # the state in which the step is open
    role: Role  # who acts
    limit_config: str  # config key: the step's time limit in working days (``due_on``)
    done_at: str
    done_by: str
    kinds: frozenset[ChangeKind] = field(default_factory=lambda: frozenset(ChangeKind))
    two_step_only: bool = False  # open only when CHANGE_APPROVAL_STEPS = 2


STEPS: tuple[ChangeStep, ...] = (
    ChangeStep("receive", "接收确认", _C.AWAITING_RECEIVER, Role.APPLICANT,
               "CHANGE_RECEIVE_LIMIT_WORKDAYS", "received_at", "received_by_id",
               kinds=frozenset({_K.TRANSFER})),
    ChangeStep("accept", "受理", _C.SUBMITTED, Role.ACCEPTOR,
               "CHANGE_ACCEPT_LIMIT_WORKDAYS", "accepted_at", "accepted_by_id"),
    ChangeStep("approve", "审批", _C.ACCEPTED, Role.APPROVER,
               "CHANGE_DECISION_LIMIT_WORKDAYS", "approved_at", "approved_by_id",
               two_step_only=True),
)  # fmt: skip

FINAL_STATUSES = frozenset({_C.APPROVED, _C.REJECTED, _C.WITHDRAWN})
# Nobody at the bureau has acted yet: the unit may still 撤回 (``withdraw``).
WITHDRAWABLE = frozenset({_C.AWAITING_RECEIVER, _C.SUBMITTED})
OPEN_STATUSES = frozenset(ChangeStatus) - FINAL_STATUSES


@dataclass(frozen=True)
class ChangeTask:
    """A 待办事项 task kind: one step of one kind of change (停用申请的受理任务, …)."""

    kind: ChangeKind
    step: ChangeStep
    deadline_field: str = "due_on"

    @property
    def key(self) -> str:
        return f"{self.kind.value}-{self.step.key}"

    @property
    def label(self) -> str:
        return f"{self.kind.label}{self.step.label}"

    @property
    def prompt(self) -> str:
        return f"{self.kind.label}申请的{self.step.label}任务"

    @property
    def status(self) -> ChangeStatus:
        return self.step.status


def steps(approval_steps: int) -> list[ChangeStep]:
    """The steps in force (``CHANGE_APPROVAL_STEPS`` is 1 or 2)."""
    return [s for s in STEPS if approval_steps == 2 or not s.two_step_only]


def tasks_for(role: Role, approval_steps: int) -> list[ChangeTask]:
    """The change tasks of ``role``: one per kind and step, in kind order (for applicants:
    the 过户 waiting for their unit's 接收确认)."""
    return [
        ChangeTask(kind, step)
        for step in steps(approval_steps)
        if step.role is role
        for kind in ChangeKind
        if kind in step.kinds
    ]


def open_step(change: ChangeRequest) -> ChangeStep | None:
    return next((s for s in STEPS if s.status is change.status), None)


def overdue_clause(today: date) -> ColumnElement[bool]:
    """Open change requests past the time limit of their open step."""
    return and_(ChangeRequest.status.in_(OPEN_STATUSES), ChangeRequest.due_on < today)


def is_overdue(change: ChangeRequest, today: date) -> bool:
    return change.status in OPEN_STATUSES and change.due_on is not None and change.due_on < today


# --- refusals ----------------------------------------------------------------------------


class ChangeError(DomainError):
    """A change request the rules refuse; the message is shown to the user."""


class StaleChange(ChangeError):
    status_code = 409


STALE_MESSAGE = (
    "该变更申请已被处理或已被他人修改（可能是重复点击），本次操作未执行。请刷新页面查看最新状态。"
)


def check_version(change: ChangeRequest, expected_version: int | None) -> None:
    if expected_version is None or change.version_id != expected_version:
        raise StaleChange(STALE_MESSAGE)


def require_status(change: ChangeRequest, *allowed: ChangeStatus) -> None:
    if change.status not in allowed:
        names = "、".join(s.label for s in allowed)
        raise StaleChange(
            f"该变更申请当前状态为“{change.status.label}”，只有“{names}”状态才能执行此操作"
            "（可能已被处理或是重复点击）。请刷新页面查看最新状态。"
        )


def check_separation_of_duties(change: ChangeRequest, user: User, enforce: bool) -> None:
    """One person may not both 受理 and 审批 (or 驳回 at 审批) the same change request."""
    if enforce and change.accepted_by_id == user.id:
        raise ChangeError(
            "您已办理过该变更申请的“受理”环节。按岗位分离要求，同一人员不能办理同一申请的两个环节，"
            "请由其他人员办理。"
        )


def _record(action: str, change: ChangeRequest, **detail: object) -> None:
    audit.record(
        action,
        object_type="change_request",
        object_id=change.id,
        change_kind=change.kind.value,
        **detail,
    )


# --- what each kind may start from, and what it does -------------------------------------

# The statuses a cylinder may be in for each kind (checked at submission and at approval).
ALLOWED_FROM: dict[ChangeKind, frozenset[CylinderStatus]] = {
    _K.SUSPEND: frozenset({_CS.IN_USE}),
    _K.RESUME: frozenset({_CS.STOPPED}),
    _K.SCRAP: frozenset({_CS.IN_USE, _CS.STOPPED}),
    _K.CANCEL: frozenset({_CS.IN_USE, _CS.STOPPED, _CS.SCRAPPED}),
    _K.RENAME: frozenset({_CS.IN_USE, _CS.STOPPED, _CS.SCRAPPED}),
    _K.ADDRESS: frozenset({_CS.IN_USE, _CS.STOPPED, _CS.SCRAPPED}),
    _K.TRANSFER: frozenset({_CS.IN_USE, _CS.STOPPED}),
    _K.REISSUE: frozenset({_CS.IN_USE, _CS.STOPPED, _CS.SCRAPPED}),
}
# The status a kind leaves the cylinder in.
RESULT_STATUS: dict[ChangeKind, CylinderStatus] = {
    _K.SUSPEND: _CS.STOPPED,
    _K.RESUME: _CS.IN_USE,
    _K.SCRAP: _CS.SCRAPPED,
    _K.CANCEL: _CS.CANCELLED,
}


def inspection_overdue(cylinder: Cylinder, today: date) -> bool:
    """The interlock's rule: "2026-05" is overdue from 2026-06-01 on."""
    month = cylinder.next_inspection_month
    return bool(month and month < today.strftime("%Y-%m"))


def check_cylinders(kind: ChangeKind, cylinders: Sequence[Cylinder], today: date) -> None:
    """Refuse cylinders whose state the kind cannot start from (names the first few)."""
    allowed = ALLOWED_FROM[kind]
    wrong = [c for c in cylinders if c.status not in allowed]
    if wrong:
        names = "、".join(f"{c.product_no}（{c.status.label}）" for c in wrong[:5])
        more = f"等{len(wrong)}只" if len(wrong) > 5 else ""
        states = "、".join(s.label for s in CylinderStatus if s in allowed)
        raise ChangeError(
            f"气瓶{names}{more}的使用状态不能申请{kind.label}：{kind.label}只适用于“{states}”的气瓶。"
            "请从清单中去掉这些气瓶后重新提交。"
        )
    if kind is _K.RESUME:
        overdue = [c for c in cylinders if inspection_overdue(c, today)]
        if overdue:
            c = overdue[0]
            more = f"等{len(overdue)}只气瓶" if len(overdue) > 1 else ""
            raise ChangeError(
                f"气瓶{c.product_no}{more}的下次检验日期{c.next_inspection_month}已过，"
                "检验合格前不能启用。请先送检，检验机构上传合格的检验记录后再申请启用。"
            )


# 更名 and 地址变更 change the unit, not a cylinder's state: they list every cylinder for
# the record but claim none, so a pending 停用 or 注销 of one cylinder never blocks them.
UNIT_WIDE = frozenset({_K.RENAME, _K.ADDRESS})


def _open_claims(cylinders: Sequence[Cylinder]) -> None:
    ids = [c.id for c in cylinders]
    taken = db.session.execute(
        select(ChangeItem.cylinder_id, ChangeRequest.number, ChangeRequest.kind)
        .join(ChangeRequest, ChangeRequest.id == ChangeItem.change_id)
        .where(ChangeItem.live_cylinder_id.in_(ids))
    ).first()
    if taken is not None:
        cylinder = next(c for c in cylinders if c.id == taken.cylinder_id)
        raise ChangeError(
            f"气瓶{cylinder.product_no}已在办理中的{taken.kind.label}申请{taken.number}中，"
            "同一气瓶同时只能有一项变更申请。请待该申请办结后再提交。"
        )


@dataclass(frozen=True)
class ChangeFields:
    """What the unit filled in; which fields a kind needs is checked in ``submit``."""

    reason: str = ""
    effective_on: date | None = None
    long_stop: bool = False
    new_unit_name: str = ""
    new_address: str = ""
    target_unit: Unit | None = None
    certificate_no: str = ""
    proof: tuple[str, str, str, str] | None = None  # storage key, thumbnail, sha256, type
    inspection_record: InspectionRecord | None = None


def _check_fields(kind: ChangeKind, unit: Unit, f: ChangeFields, today: date) -> None:
    if kind in (_K.SUSPEND, _K.REISSUE) and not f.reason.strip():
        raise ChangeError(f"请填写{kind.label}原因。")
    if len(f.reason) > 500:
        raise ChangeError("原因不能超过500字。")
    if f.effective_on is not None and f.effective_on > today:
        raise ChangeError(
            f"生效日期{f.effective_on.isoformat()}晚于今天，请在{kind.label}发生后再申请。"
        )
    if kind is _K.RENAME:
        name = f.new_unit_name.strip()
        if not name:
            raise ChangeError("请填写使用单位的新名称。")
        if name == unit.name:
            raise ChangeError(f"新名称“{name}”与现名称相同，无需更名。")
    if kind is _K.ADDRESS and not f.new_address.strip():
        raise ChangeError("请填写新的使用地址。")
    if kind in (_K.SCRAP, _K.CANCEL) and f.proof is None and f.inspection_record is None:
        raise ChangeError(
            f"{kind.label}须附报废证明照片，或选择检验机构的判废检验记录。请上传照片后重新提交。"
        )
    if kind is _K.TRANSFER:
        target = f.target_unit
        if target is None:
            raise ChangeError("请填写接收单位的统一社会信用代码。")
        if target.id == unit.id:
            raise ChangeError("接收单位不能是本单位。")
        if target.kind is not UnitKind.USE_UNIT or not target.active:
            raise ChangeError(
                f"统一社会信用代码{target.credit_code}不是已登记的在用使用单位，不能过户给该单位。"
            )
        if certificates.current_certificate(target.id) is None:
            raise ChangeError(
                f"接收单位{target.name}尚无有效的使用登记证：过户的气瓶记入接收单位的使用登记证，"
                "请接收单位先办理使用登记。"
            )
    if kind is _K.REISSUE and f.certificate_no.strip():
        number = f.certificate_no.strip()
        certificate = db.session.scalar(select(Certificate).where(Certificate.number == number))
        if certificate is None or certificate.application.unit_id != unit.id:
            raise ChangeError(f"使用登记证{number}不是本单位的使用登记证，请核对编号。")


def submit(
    kind: ChangeKind,
    unit: Unit,
    user: User,
    cylinders: Sequence[Cylinder],
    fields: ChangeFields,
    limits: dict[str, Any],
) -> ChangeRequest:
    """A unit's change request for its ``cylinders`` (checked: the unit's own, non-empty)."""
    today = china_today()
    if not cylinders:
        raise ChangeError("请至少选择一只气瓶。")
    foreign = [c for c in cylinders if c.use_unit_id != unit.id]
    if foreign:
        raise ChangeError(f"气瓶{foreign[0].product_no}不是本单位的气瓶，不能申请{kind.label}。")
    _check_fields(kind, unit, fields, today)
    check_cylinders(kind, cylinders, today)
    if kind not in UNIT_WIDE:
        _open_claims(cylinders)
    long_stop = kind is _K.SUSPEND and fields.long_stop
    started = fields.effective_on or today
    change = ChangeRequest(
        kind=kind,
        origin=ChangeOrigin.UNIT,
        status=_C.AWAITING_RECEIVER if kind is _K.TRANSFER else _C.SUBMITTED,
        unit_id=unit.id,
        district_code=unit.district_code,
        unit_name=unit.name,
        target_unit_id=fields.target_unit.id if fields.target_unit else None,
        new_unit_name=fields.new_unit_name.strip() or None,
        new_address=fields.new_address.strip() or None,
        reason=fields.reason.strip() or None,
        effective_on=fields.effective_on,
        long_stop=long_stop,
        reported_late=long_stop and (today - started) > timedelta(days=LONG_STOP_REPORT_DAYS),
        inspection_record_id=fields.inspection_record.id if fields.inspection_record else None,
        certificate_no=fields.certificate_no.strip() or None,
        created_by_id=user.id,
        submitted_at=utcnow(),
        item_count=len(cylinders),
    )
    if fields.proof is not None:
        (
            change.proof_photo_key,
            change.proof_thumbnail_key,
            change.proof_photo_sha256,
            change.proof_content_type,
        ) = fields.proof
    _start_step(change, limits, today)
    db.session.add(change)
    db.session.flush()
    change.number = f"BG{change.id:08d}"
    # A concurrent request for the same cylinder wins the unique claim: refuse, don't fail.
    savepoint = db.session.begin_nested()
    try:
        _add_items(change, cylinders, claim=kind not in UNIT_WIDE)
        db.session.flush()
    except IntegrityError:
        savepoint.rollback()
        raise ChangeError(
            "所选气瓶刚被另一项变更申请占用（同一气瓶同时只能有一项变更申请）。请刷新后重新选择。",
            409,
        ) from None
    savepoint.commit()
    _record(
        "change_submitted",
        change,
        actor=user,
        items=len(cylinders),
        number=change.number,
        reported_late=change.reported_late,
    )
    return change


def _add_items(change: ChangeRequest, cylinders: Iterable[Cylinder], *, claim: bool) -> None:
    db.session.add_all(
        ChangeItem(
            change_id=change.id,
            cylinder_id=c.id,
            live_cylinder_id=c.id if claim else None,
            previous_status=c.status,
            previous_unit_id=c.use_unit_id,
            previous_certificate_no=c.certificate_no,
        )
        for c in cylinders
    )


def _start_step(change: ChangeRequest, limits: dict[str, Any], today: date) -> None:
    step = open_step(change)
    change.due_on = add_workdays(today, int(limits[step.limit_config])) if step else None


def receive(
    change: ChangeRequest, user: User, expected_version: int | None, limits: dict[str, Any]
) -> None:
    """接收确认 (过户): the receiving unit's applicant accepts the cylinders; → 待受理."""
    require_status(change, _C.AWAITING_RECEIVER)
    check_version(change, expected_version)
    if user.role is not Role.APPLICANT or user.unit_id != change.target_unit_id:
        raise ChangeError("只有接收单位的经办人才能确认接收过户气瓶。")
    change.status = _C.SUBMITTED
    change.received_at = utcnow()
    change.received_by_id = user.id
    _start_step(change, limits, china_today())
    db.session.flush()
    _record("change_received", change, actor=user)


def accept(
    change: ChangeRequest,
    user: User,
    expected_version: int | None,
    limits: dict[str, Any],
) -> None:
    """受理: with two steps → 待审批; with one step the 受理 approves (effects at once)."""
    require_status(change, _C.SUBMITTED)
    check_version(change, expected_version)
    now = utcnow()
    change.accepted_at = now
    change.accepted_by_id = user.id
    if int(limits["CHANGE_APPROVAL_STEPS"]) == 1:
        _approve(change, user)
        return
    change.status = _C.ACCEPTED
    _start_step(change, limits, china_today())
    db.session.flush()
    _record("change_accepted", change, actor=user)


def approve(change: ChangeRequest, user: User, expected_version: int | None, sod: bool) -> None:
    """审批 passed: the change takes effect on the archive."""
    require_status(change, _C.ACCEPTED)
    check_version(change, expected_version)
    check_separation_of_duties(change, user, sod)
    _approve(change, user)


def _approve(change: ChangeRequest, user: User) -> None:
    affected = _certificates_affected(change)
    changed = _apply(change)
    change.status = _C.APPROVED
    change.approved_at = utcnow()
    change.approved_by_id = user.id
    change.due_on = None
    db.session.execute(
        update(ChangeItem).where(ChangeItem.change_id == change.id).values(live_cylinder_id=None)
    )
    db.session.flush()
    # The certificates follow: each one the change touched is issued again (换发 / 补发).
    for certificate in affected:
        certificates.issue_new_version(
            certificate,
            user,
            change_request_id=change.id,
            reissued=change.kind is _K.REISSUE,
        )
    _record(
        "change_approved",
        change,
        actor=user,
        cylinders=changed,
        numbers=[c.number for c in affected],
    )
    open_held_cancellations(change)


def _certificates_affected(change: ChangeRequest) -> list[Certificate]:
    """The valid certificates a change touches (before it takes effect)."""
    numbers = set(
        db.session.scalars(
            select(ChangeItem.previous_certificate_no)
            .where(
                ChangeItem.change_id == change.id, ChangeItem.previous_certificate_no.is_not(None)
            )
            .distinct()
        )
    )
    if change.kind is _K.REISSUE and change.certificate_no:
        numbers = {change.certificate_no}
    found = list(
        db.session.scalars(
            select(Certificate)
            .where(Certificate.number.in_(numbers), Certificate.voided_at.is_(None))
            .order_by(Certificate.number)
        )
    )
    if change.kind is _K.TRANSFER and change.target_unit_id is not None:
        receiver = certificates.current_certificate(change.target_unit_id)
        if receiver is None:
            raise ChangeError("接收单位尚无有效的使用登记证，不能批准过户。请驳回该申请。")
        found.append(receiver)
    return found


def reject(
    change: ChangeRequest,
    user: User,
    reason: str,
    expected_version: int | None,
    *,
    sod: bool,
) -> None:
    """驳回 with a reason, finally; the cylinders are free for a new request.

    Who rejects where: the receiving unit's applicant (过户, 接收确认), the acceptor (受理),
    the approver (审批, not the one who accepted). For a request opened by an inspection
    record, the acceptor's 驳回 sends the case back to the unit (退回使用单位).
    """
    step = open_step(change)
    if step is None:
        require_status(change, *OPEN_STATUSES)  # raises: final
        return
    check_version(change, expected_version)
    if user.role is not step.role:
        raise ChangeError(f"该变更申请在“{step.label}”环节，您的角色不能驳回。")
    if step.key == "receive" and user.unit_id != change.target_unit_id:
        raise ChangeError("只有接收单位的经办人才能拒绝接收过户气瓶。")
    if step.key == "approve":
        check_separation_of_duties(change, user, sod)
    reason = (reason or "").strip()
    if not reason:
        raise ChangeError("请填写驳回原因。")
    if len(reason) > 500:
        raise ChangeError("驳回原因不能超过500字。")
    previous = change.status
    db.session.execute(
        update(ChangeItem).where(ChangeItem.change_id == change.id).values(live_cylinder_id=None)
    )
    change.status = _C.REJECTED
    change.rejected_at = utcnow()
    change.rejected_by_id = user.id
    change.reject_reason = reason
    change.due_on = None
    db.session.flush()
    _record("change_rejected", change, actor=user, from_change_status=previous.value, reason=reason)
    open_held_cancellations(change)


def withdraw(change: ChangeRequest, user: User, expected_version: int | None) -> None:
    """撤回: the applying unit takes back its own request while nobody at the bureau has
    acted on it (待接收单位确认 or 待受理); final, and the cylinders are free again."""
    if user.role is not Role.APPLICANT or user.unit_id != change.unit_id:
        raise ChangeError("只有提出申请的使用单位经办人才能撤回该变更申请。")
    if change.origin is not ChangeOrigin.UNIT:
        raise ChangeError(
            "该注销任务由检验机构的判废检验记录生成，不是本单位提出的申请，不能撤回；"
            "如有异议，请联系区县局退回使用单位。"
        )
    if change.status is _C.ACCEPTED or (change.status is _C.APPROVED and change.accepted_at):
        raise ChangeError(
            f"该变更申请已于{_local(change.accepted_at)}由区县局受理，不能再撤回。"
            "如需撤销，请联系区县局在审批环节驳回。"
        )
    if change.status not in WITHDRAWABLE:
        raise ChangeError(
            f"该变更申请当前状态为“{change.status.label}”，已办结，不能撤回。请刷新页面查看最新状态。"
        )
    check_version(change, expected_version)
    previous = change.status
    db.session.execute(
        update(ChangeItem).where(ChangeItem.change_id == change.id).values(live_cylinder_id=None)
    )
    change.status = _C.WITHDRAWN
    change.withdrawn_at = utcnow()
    change.withdrawn_by_id = user.id
    change.due_on = None
    db.session.flush()
    _record("change_withdrawn", change, actor=user, from_change_status=previous.value)
    open_held_cancellations(change)


def _local(moment: datetime | None) -> str:
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def cylinders_of(change: ChangeRequest) -> list[Cylinder]:
    return list(
        db.session.scalars(
            select(Cylinder)
            .join(ChangeItem, ChangeItem.cylinder_id == Cylinder.id)
            .where(ChangeItem.change_id == change.id)
            .order_by(ChangeItem.id)
        )
    )


def _apply(change: ChangeRequest) -> int:
    """The change's effect on the archive (and the unit); returns the cylinders changed."""
    today = china_today()
    cylinders = cylinders_of(change)
    kind = change.kind
    # The archive may have moved since submission (an inspection's 报废, another change);
    # 更名 and 地址变更 concern the unit and whichever cylinders it holds at approval.
    moved = [c for c in cylinders if c.use_unit_id != change.unit_id]
    if kind not in UNIT_WIDE:
        check_cylinders(kind, cylinders, today)
    if moved and kind not in UNIT_WIDE:
        raise ChangeError(
            f"气瓶{moved[0].product_no}已不在{change.unit_name}名下，不能批准。请驳回该申请。"
        )
    if kind in RESULT_STATUS:
        effective = change.effective_on or today
        if kind in (_K.RESUME, _K.CANCEL):
            effective = today  # in use again / cancelled from the bureau's decision
        for cylinder in cylinders:
            cylinder_changes.set_status(cylinder, RESULT_STATUS[kind], effective)
    elif kind is _K.RENAME:
        assert change.new_unit_name
        unit = change.unit
        unit.name = change.new_unit_name
        # Every cylinder of the unit carries the new name, not only those listed.
        for cylinder in db.session.scalars(select(Cylinder).where(Cylinder.use_unit_id == unit.id)):
            cylinder.use_unit_name = change.new_unit_name
    elif kind is _K.ADDRESS:
        assert change.new_address
        change.unit.address = change.new_address
    elif kind is _K.TRANSFER:
        target = change.target_unit
        assert target is not None
        receiver = certificates.current_certificate(target.id)
        assert receiver is not None  # checked by _certificates_affected
        for cylinder in cylinders:
            # The archive ID, tag and history stay; the owner, its district and the
            # certificate the cylinder is registered on become the receiver's.
            sender = cylinder.use_unit_id
            cylinder.use_unit_id = target.id
            cylinder.use_unit_name = target.name
            cylinder.district_code = target.district_code
            cylinder.certificate_no = receiver.number
            cylinder.registration_authority = receiver.authority
            # The sender's feed announces that it left (its terminals drop it).
            cylinder_changes.record_departure(cylinder, sender, change.id, today)
    db.session.flush()
    return len(cylinders) if kind is not _K.REISSUE else 0


# --- from the inspection bodies ----------------------------------------------------------


def open_from_inspection(cylinder: Cylinder, record: InspectionRecord) -> ChangeRequest | None:
    """A 判废 / 不合格 inspection record puts a 注销 task into the district's 待办事项.

    While the cylinder is held by another open request (a pending 停用, 过户, …) the record is
    not dropped: it is kept on that request's item (``scrap_record_id``), shown there and in
    the inbox as 检验机构已判废, and the 注销 task is opened when that request ends
    (``open_held_cancellations``). Safe to call twice for one cylinder and record.
    """
    if cylinder.status is _CS.CANCELLED:
        return None
    claim = db.session.execute(
        select(ChangeItem, ChangeRequest)
        .join(ChangeRequest, ChangeRequest.id == ChangeItem.change_id)
        .where(ChangeItem.live_cylinder_id == cylinder.id)
    ).first()
    if claim is not None:
        item, holder = claim._tuple()
        if holder.origin is ChangeOrigin.INSPECTION or item.scrap_record_id is not None:
            return None  # already the 注销 task, or already told
        item.scrap_record_id = record.id
        db.session.flush()
        _record(
            "change_scrap_record_held",
            holder,
            cylinder=cylinder.id,
            record_no=record.record_no or f"#{record.id}",
            conclusion=record.conclusion,
        )
        return None
    return _open_cancellation(cylinder, record)


def open_held_cancellations(change: ChangeRequest) -> list[ChangeRequest]:
    """The request ended: the 判废 records it held open their 注销 tasks now."""
    held = (
        db.session.execute(
            select(Cylinder, InspectionRecord)
            .join(ChangeItem, ChangeItem.cylinder_id == Cylinder.id)
            .join(InspectionRecord, InspectionRecord.id == ChangeItem.scrap_record_id)
            .where(ChangeItem.change_id == change.id)
            .order_by(ChangeItem.id)
        )
        .tuples()
        .all()
    )
    opened = [open_from_inspection(cylinder, record) for cylinder, record in held]
    return [o for o in opened if o is not None]


def held_scrap_records(change_ids: Sequence[int]) -> dict[int, list[tuple[str, InspectionRecord]]]:
    """Per open request: the (cylinder id, 判废 record) pairs it holds (the warning)."""
    found: dict[int, list[tuple[str, InspectionRecord]]] = {}
    if not change_ids:
        return found
    rows = db.session.execute(
        select(ChangeItem.change_id, ChangeItem.cylinder_id, InspectionRecord)
        .join(InspectionRecord, InspectionRecord.id == ChangeItem.scrap_record_id)
        .where(ChangeItem.change_id.in_(list(change_ids)))
        .order_by(ChangeItem.change_id, ChangeItem.id)
    ).tuples()
    for change_id, cylinder_id, record in rows:
        found.setdefault(change_id, []).append((cylinder_id, record))
    return found


def _open_cancellation(cylinder: Cylinder, record: InspectionRecord) -> ChangeRequest:
    today = china_today()
    change = ChangeRequest(
        kind=_K.CANCEL,
        origin=ChangeOrigin.INSPECTION,
        status=_C.SUBMITTED,
        unit_id=cylinder.use_unit_id,
        district_code=cylinder.district_code,
        unit_name=cylinder.use_unit_name,
        reason=f"检验机构{record.inspection_org}{record.inspect_date.isoformat()}"
        f"{record.inspect_type}检验结论：{record.conclusion}",
        effective_on=record.inspect_date,
        inspection_record_id=record.id,
        submitted_at=utcnow(),
        item_count=1,
    )
    _start_step(change, current_app.config, today)
    db.session.add(change)
    db.session.flush()
    change.number = f"BG{change.id:08d}"
    _add_items(change, [cylinder], claim=True)
    db.session.flush()
    _record(
        "change_opened_by_inspection",
        change,
        number=change.number,
        cylinder=cylinder.id,
        conclusion=record.conclusion,
    )
    return change
