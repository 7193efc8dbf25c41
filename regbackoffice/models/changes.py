"""Change applications after registration (变更申请): 停用, 启用, 报废, 注销, 更名, 地址变更,
过户, 补领, with the cylinders each one names (see ``regbackoffice.change_workflow``)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import LabeledEnum, Model, UTCDateTime, created_at_column, enum_type
from .cylinders import CylinderStatus
from .reference import District
from .units import Unit


class ChangeKind(LabeledEnum):
    SUSPEND = ("suspend", "停用")
    RESUME = ("resume", "启用")
    SCRAP = ("scrap", "报废")
    CANCEL = ("cancel", "注销")
    RENAME = ("rename", "使用单位更名")
    ADDRESS = ("address", "使用地址变更")
    TRANSFER = ("transfer", "过户")
    REISSUE = ("reissue", "补领")


class ChangeStatus(LabeledEnum):
    AWAITING_RECEIVER = ("awaiting_receiver", "待接收单位确认")  # 过户 only
    SUBMITTED = ("submitted", "待受理")
    ACCEPTED = ("accepted", "待审批")
    APPROVED = ("approved", "已批准")
    REJECTED = ("rejected", "已驳回")
    WITHDRAWN = ("withdrawn", "已撤回")  # by the unit, before the bureau acted


class ChangeOrigin(LabeledEnum):
    UNIT = ("unit", "使用单位申请")
    INSPECTION = ("inspection", "检验机构判废")


def _in(*statuses: ChangeStatus) -> str:
    return ", ".join(f"'{s.value}'" for s in statuses)


_C = ChangeStatus


class ChangeRequest(Model):
    __tablename__ = "change_requests"
    __table_args__ = (
        CheckConstraint(
            f"status NOT IN ({_in(_C.ACCEPTED)}) OR (accepted_at IS NOT NULL"
            " AND accepted_by_id IS NOT NULL)",
            name="accepted_has_acceptor",
        ),
        CheckConstraint(
            "status <> 'approved' OR (approved_at IS NOT NULL AND approved_by_id IS NOT NULL)",
            name="approved_has_approver",
        ),
        CheckConstraint(
            "status <> 'rejected' OR (rejected_at IS NOT NULL AND reject_reason IS NOT NULL"
            " AND reject_reason <> '')",
            name="rejected_has_reason",
        ),
        CheckConstraint(
            "kind <> 'transfer' OR target_unit_id IS NOT NULL", name="transfer_has_target"
        ),
        CheckConstraint(
            "kind <> 'transfer' OR status IN ('awaiting_receiver', 'rejected', 'withdrawn')"
            " OR (received_at IS NOT NULL AND received_by_id IS NOT NULL)",
            name="transfer_was_received",
        ),
        CheckConstraint(
            "status <> 'withdrawn' OR (withdrawn_at IS NOT NULL AND withdrawn_by_id IS NOT NULL)",
            name="withdrawn_has_actor",
        ),
        CheckConstraint(
            "kind <> 'rename' OR (new_unit_name IS NOT NULL AND new_unit_name <> '')",
            name="rename_has_name",
        ),
        CheckConstraint(
            "kind <> 'address' OR (new_address IS NOT NULL AND new_address <> '')",
            name="address_has_address",
        ),
        CheckConstraint(
            "kind NOT IN ('suspend', 'reissue') OR (reason IS NOT NULL AND reason <> '')",
            name="reason_given",
        ),
        CheckConstraint(
            "kind NOT IN ('scrap', 'cancel') OR proof_photo_key IS NOT NULL"
            " OR inspection_record_id IS NOT NULL",
            name="scrap_has_proof",
        ),
        CheckConstraint(
            "origin <> 'unit' OR created_by_id IS NOT NULL", name="unit_origin_has_applicant"
        ),
        Index("ix_change_requests_inbox", "district_code", "status", "kind", "due_on"),
        Index("ix_change_requests_unit_status", "unit_id", "status"),
        Index("ix_change_requests_target_status", "target_unit_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str | None] = mapped_column(String(30), unique=True)
    kind: Mapped[ChangeKind] = mapped_column(enum_type(ChangeKind, "change_kind"), nullable=False)
    status: Mapped[ChangeStatus] = mapped_column(
        enum_type(ChangeStatus, "change_status"), nullable=False
    )
    origin: Mapped[ChangeOrigin] = mapped_column(
        enum_type(ChangeOrigin, "change_origin"), nullable=False, default=ChangeOrigin.UNIT
    )
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), nullable=False)
    # The district whose bureau handles it: the applying unit's (the cylinders' district).
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), nullable=False)
    unit_name: Mapped[str] = mapped_column(String(100), nullable=False)
    target_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    new_unit_name: Mapped[str | None] = mapped_column(String(100))
    new_address: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(500))
    # The day the change takes effect in the field (停用 from, 报废 on); the approval day
    # when not given.
    effective_on: Mapped[date | None] = mapped_column(Date)
    # 停用 of a year or more, reported more than 30 days after it began (shown as 逾期报停).
    long_stop: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    reported_late: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    proof_photo_key: Mapped[str | None] = mapped_column(String(100))
    proof_thumbnail_key: Mapped[str | None] = mapped_column(String(100))
    proof_photo_sha256: Mapped[str | None] = mapped_column(String(64))
    proof_content_type: Mapped[str | None] = mapped_column(String(20))
    inspection_record_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("inspection_records.id")
    )
    certificate_no: Mapped[str | None] = mapped_column(String(50))  # 补领: which certificate

    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = created_at_column()
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # The open step's time limit (working days), set when the step opens.
    due_on: Mapped[date | None] = mapped_column(Date)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reject_reason: Mapped[str | None] = mapped_column(String(500))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    item_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    version_id: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version_id}  # noqa: RUF012

    unit: Mapped[Unit] = relationship(foreign_keys=[unit_id], lazy="joined")
    target_unit: Mapped[Unit | None] = relationship(foreign_keys=[target_unit_id], lazy="joined")
    district: Mapped[District] = relationship(lazy="joined")


class ChangeItem(Model):
    """One cylinder named by a change request, with what it was before the change."""

    __tablename__ = "change_items"
    __table_args__ = (Index("ix_change_items_change", "change_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    change_id: Mapped[int] = mapped_column(
        ForeignKey("change_requests.id", ondelete="CASCADE"), nullable=False
    )
    cylinder_id: Mapped[str] = mapped_column(ForeignKey("cylinders.id"), nullable=False, index=True)
    # Equals cylinder_id while the request is open: a cylinder is in at most one open
    # change request (the unique index makes two concurrent submissions race-safe).
    live_cylinder_id: Mapped[str | None] = mapped_column(String(50), unique=True)
    previous_status: Mapped[CylinderStatus] = mapped_column(
        enum_type(CylinderStatus, "item_previous_status"), nullable=False
    )
    previous_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), nullable=False)
    # The certificate the cylinder was on (a 过户 moves it to the receiver's).
    previous_certificate_no: Mapped[str | None] = mapped_column(String(50))
    # A 判废 / 不合格 inspection record that arrived while this request held the cylinder:
    # shown as a warning on the request and in the inbox, and its 注销 task is opened when
    # the request ends (``change_workflow.open_held_cancellations``).
    scrap_record_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("inspection_records.id")
    )

    change: Mapped[ChangeRequest] = relationship()
