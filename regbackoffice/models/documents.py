"""Licensing documents (受理通知书, 补正告知书, 不予受理/驳回决定书) and 补正 rounds."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .applications import ApplicationStatus
from .base import LabeledEnum, Model, UTCDateTime, created_at_column, enum_type


class DocumentKind(LabeledEnum):
    ACCEPTANCE_NOTICE = ("acceptance_notice", "受理通知书")
    CORRECTION_NOTICE = ("correction_notice", "补正告知书")
    REFUSAL_DECISION = ("refusal_decision", "不予受理决定书")  # 驳回 at 受理
    REJECTION_DECISION = ("rejection_decision", "驳回决定书")  # 驳回 at 审核 / 审批


class LicensingDocument(Model):
    """One written notice or decision, numbered, as issued; rendered to PDF on demand."""

    __tablename__ = "licensing_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id"), nullable=False, index=True
    )
    kind: Mapped[DocumentKind] = mapped_column(
        enum_type(DocumentKind, "document_kind"), nullable=False
    )
    number: Mapped[str] = mapped_column(String(30), nullable=False, unique=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), nullable=False)
    authority: Mapped[str] = mapped_column(String(200), nullable=False)
    issue_date: Mapped[date] = mapped_column(Date, nullable=False)
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    # The addressee as on the day of issue (the applicant may correct the unit later).
    unit_name: Mapped[str] = mapped_column(String(100), nullable=False)
    credit_code: Mapped[str] = mapped_column(String(18), nullable=False)
    # The numbered items of a 补正告知书; the reason of a decision.
    items: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    reason: Mapped[str | None] = mapped_column(Text)
    # Every value the paper prints, frozen at issue (``documents.paper_for``): a stamped
    # paper reads the same forever, whatever settings or names change later. None only on
    # a row issued before revision 0022 until it is first opened.
    printed: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CorrectionRound(Model):
    """One 退回补正: the notice's items, the paused clock, and what came back."""

    __tablename__ = "correction_rounds"
    __table_args__ = (UniqueConstraint("application_id", "round_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), nullable=False)
    round_no: Mapped[int] = mapped_column(Integer, nullable=False)
    # The state it was returned from and goes back to (待受理, or 待审核 when configured).
    from_status: Mapped[ApplicationStatus] = mapped_column(
        enum_type(ApplicationStatus, "correction_from_status"), nullable=False
    )
    document_id: Mapped[int] = mapped_column(ForeignKey("licensing_documents.id"), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    items: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    # Working days the open step had left when the clock stopped (negative: overdue).
    remaining_workdays: Mapped[int] = mapped_column(Integer, nullable=False)
    # 使用单位基本信息 at the notice, to show what the applicant changed.
    unit_info: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    removed: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    resubmitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paused_workdays: Mapped[int | None] = mapped_column(Integer)
