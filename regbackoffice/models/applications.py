"""Registration applications (使用登记申请), their cylinder items and photos."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import LabeledEnum, Model, UTCDateTime, created_at_column, enum_type
from .cylinders import TagType
from .photo_readings import ReadingVerdict
from .reference import District
from .units import Unit


class ApplicationStatus(LabeledEnum):
    DRAFT = ("draft", "草稿")
    SUBMITTED = ("submitted", "待受理")
    # 退回补正: back with the applicant, who fixes and resubmits; the clock stands still.
    RETURNED = ("returned", "待补正")
    ACCEPTED = ("accepted", "待审核")
    REVIEWED = ("reviewed", "待审批")
    APPROVED = ("approved", "待发证")
    CERTIFIED = ("certified", "已发证")
    VOIDED = ("voided", "已作废")


# Statuses in which the applicant edits: a draft, and 待补正 (the draft editing paths).
EDITABLE_STATUSES = frozenset({ApplicationStatus.DRAFT, ApplicationStatus.RETURNED})
# Statuses in which an application still claims its cylinders.
LIVE_STATUSES = frozenset(ApplicationStatus) - {ApplicationStatus.VOIDED}


def _statuses_sql(*statuses: ApplicationStatus) -> str:
    return ", ".join(f"'{s.value}'" for s in statuses)


_S = ApplicationStatus
_AFTER_ACCEPT = (_S.ACCEPTED, _S.REVIEWED, _S.APPROVED, _S.CERTIFIED)


class Application(Model):
    __tablename__ = "applications"
    __table_args__ = (
        CheckConstraint(
            "status = 'draft' OR status = 'voided' OR submitted_at IS NOT NULL",
            name="submitted_has_time",
        ),
        CheckConstraint(
            f"status NOT IN ({_statuses_sql(*_AFTER_ACCEPT)})"
            " OR (accepted_at IS NOT NULL AND accepted_by_id IS NOT NULL"
            " AND audit_completed_at IS NOT NULL)",
            name="accepted_has_acceptor",
        ),
        CheckConstraint(
            f"status NOT IN ({_statuses_sql(_S.REVIEWED, _S.APPROVED, _S.CERTIFIED)})"
            " OR (reviewed_at IS NOT NULL AND reviewed_by_id IS NOT NULL)",
            name="reviewed_has_reviewer",
        ),
        CheckConstraint(
            f"status NOT IN ({_statuses_sql(_S.APPROVED, _S.CERTIFIED)})"
            " OR (approved_at IS NOT NULL AND approved_by_id IS NOT NULL)",
            name="approved_has_approver",
        ),
        CheckConstraint(
            "status <> 'certified' OR (certified_at IS NOT NULL AND certificate_no IS NOT NULL)",
            name="certified_has_certificate",
        ),
        CheckConstraint(
            "status <> 'voided' OR (voided_at IS NOT NULL AND void_reason IS NOT NULL"
            " AND void_reason <> '')",
            name="voided_has_reason",
        ),
        Index("ix_applications_district_status", "district_code", "status"),
        Index("ix_applications_unit_status", "unit_id", "status"),
        # The inbox lists a district's tasks by deadline.
        Index("ix_applications_inbox_accept", "district_code", "status", "accept_due_on"),
        Index("ix_applications_inbox_decision", "district_code", "status", "decision_due_on"),
        # The dashboard's 超期未审结: the overdue of two states, whatever the district.
        Index("ix_applications_overdue_decision", "status", "decision_due_on", "district_code"),
        # The dashboard's 已撤回 counts: the few withdrawn applications, read alone.
        Index(
            "ix_applications_withdrawn",
            "district_code",
            "status",
            postgresql_where=text("withdrawn_at IS NOT NULL"),
            sqlite_where=text("withdrawn_at IS NOT NULL"),
        ),
        # SQLite (the demo) would otherwise reuse a deleted draft's id for the next one.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str | None] = mapped_column(String(30), unique=True)
    status: Mapped[ApplicationStatus] = mapped_column(
        enum_type(ApplicationStatus, "application_status"),
        nullable=False,
        default=ApplicationStatus.DRAFT,
    )
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), nullable=False)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), nullable=False)
    # Unit basic information as filled in on this application (may differ from the unit row).
    unit_name: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    safety_department: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    contact_name: Mapped[str] = mapped_column(String(50), nullable=False, default="")
    contact_phone: Mapped[str] = mapped_column(String(30), nullable=False, default="")
    credit_code: Mapped[str] = mapped_column(String(18), nullable=False, default="")
    address: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    # The clerk's confirmation that the name / credit code typed here, though different from
    # the unit's registered ones, belong on the certificate (``unit_identity``). Kept as the
    # confirmed values: an edit after the confirmation is not covered by it.
    identity_confirmed_name: Mapped[str | None] = mapped_column(String(100))
    identity_confirmed_code: Mapped[str | None] = mapped_column(String(18))
    identity_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    identity_confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    copied_from_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resubmitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # after 补正
    # Time limits in official working days (see ``workdays``), fixed when the clock starts.
    accept_due_on: Mapped[date | None] = mapped_column(Date)
    decision_due_on: Mapped[date | None] = mapped_column(Date)
    audit_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    audit_completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    certified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    certificate_no: Mapped[str | None] = mapped_column(String(50))
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    voided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    void_reason: Mapped[str | None] = mapped_column(String(500))
    # 撤回申请: the applicant withdrew it while 待补正 (status voided, voided_by the applicant).
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The paused clock (退回补正): working days spent 待补正, and the calendar seconds
    # the 受理 and 审核/审批 steps stood still, which the dashboard's medians leave out.
    paused_workdays: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    accept_paused_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    decision_paused_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Cached count for lists and the inbox; kept by the item operations.
    item_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    version_id: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version_id}  # noqa: RUF012

    unit: Mapped[Unit] = relationship(lazy="joined")
    district: Mapped[District] = relationship(lazy="joined")


class AuditVerdict(LabeledEnum):
    PENDING = ("pending", "未审核")
    CORRECT = ("correct", "正确")
    WRONG = ("wrong", "错误")


class ApplicationItem(Model):
    """One cylinder in an application, as imported from the Excel list."""

    __tablename__ = "application_items"
    __table_args__ = (
        CheckConstraint(
            "audit_verdict <> 'wrong' OR (audit_note IS NOT NULL AND audit_note <> '')",
            name="wrong_has_note",
        ),
        CheckConstraint("NOT excluded OR audit_verdict = 'wrong'", name="excluded_was_wrong"),
        Index("ix_application_items_app_row", "application_id", "row_no"),
        Index("ix_application_items_app_product", "application_id", "product_no"),
        # 机器预读 counts, filter and order per application (prereading.refresh_verdicts).
        Index("ix_application_items_app_machine", "application_id", "machine_verdict", "row_no"),
        # 一瓶一码: an import looks up every QR URL and RFID code among the live items.
        Index("ix_application_items_qr_content", "qr_content", postgresql_using="hash"),
        Index("ix_application_items_rfid_code", "rfid_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), nullable=False
    )
    row_no: Mapped[int] = mapped_column(Integer, nullable=False)
    variety_code: Mapped[str] = mapped_column(ForeignKey("varieties.code"), nullable=False)
    product_no: Mapped[str] = mapped_column(String(50), nullable=False)
    medium_code: Mapped[str] = mapped_column(ForeignKey("media.code"), nullable=False)
    manufacturer: Mapped[str] = mapped_column(String(100), nullable=False)
    manufacture_month: Mapped[str] = mapped_column(String(7), nullable=False)
    nominal_pressure_mpa: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    volume_l: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    last_inspection_date: Mapped[date | None] = mapped_column(Date)
    next_inspection_month: Mapped[str | None] = mapped_column(String(7))
    internal_no: Mapped[str | None] = mapped_column(String(50))
    tag_type: Mapped[TagType | None] = mapped_column(enum_type(TagType, "item_tag_type"))
    qr_content: Mapped[str | None] = mapped_column(String(1000))
    rfid_code: Mapped[str | None] = mapped_column(String(50))
    # 设计使用年限 (years) where the applicant gave it (the template's optional last column);
    # carried into cylinders.design_life_years. None: the service-life rule table decides.
    design_life_years: Mapped[int | None] = mapped_column(SmallInteger)
    identity_key: Mapped[str] = mapped_column(String(160), nullable=False)
    # Equals identity_key while the item claims its cylinder (application live, item not
    # excluded); NULL otherwise. The unique index makes concurrent imports race-safe.
    live_identity_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    # 一瓶一码 under concurrency: the sha256 of the item's QR URL or RFID code (as
    # ``tag_binding.tag_digest``) while the item is live, set and cleared with
    # live_identity_key. The unique index makes two imports of one new tag into two
    # applications race-safe: the second waits for the first and is refused.
    live_tag_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    audit_verdict: Mapped[AuditVerdict] = mapped_column(
        enum_type(AuditVerdict, "audit_verdict"), nullable=False, default=AuditVerdict.PENDING
    )
    audit_note: Mapped[str | None] = mapped_column(String(200))
    audited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    audited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Bumped on every verdict change; the audit pager's forms carry it to detect a
    # concurrent change by another clerk (optimistic locking per cylinder).
    audit_revision: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    excluded: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # What the applicant changed while 待补正 (``corrections.CHANGE_LABELS`` keys, joined
    # by commas: data, photos, new); cleared by the next 补正 notice.
    correction_change: Mapped[str | None] = mapped_column(String(20))
    cylinder_id: Mapped[str | None] = mapped_column(ForeignKey("cylinders.id"))
    attachment_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # 机器预读 of the cylinder, derived from its photos' current readings and kept by
    # prereading.refresh_verdicts whenever a reading is stored or a photo replaced/deleted,
    # so the audit pager counts, filters and orders by a plain indexed column.
    machine_verdict: Mapped[ReadingVerdict] = mapped_column(
        enum_type(ReadingVerdict, "item_machine_verdict"),
        nullable=False,
        default=ReadingVerdict.UNREAD,
        server_default=ReadingVerdict.UNREAD.value,
    )
    # Its photos still waiting for the reader (no reading of their present content).
    photos_unread: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )

    application: Mapped[Application] = relationship()


class AttachmentKind(LabeledEnum):
    STAMP = ("stamp", "钢印（产品编码或镂空码）")
    SUPERVISION_CERTIFICATE = ("supervision_certificate", "监检证书")


class Attachment(Model):
    """A photo of one item, stored under a generated name and served only through views."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("application_items.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[AttachmentKind] = mapped_column(
        enum_type(AttachmentKind, "attachment_kind"), nullable=False
    )
    storage_key: Mapped[str] = mapped_column(String(100), nullable=False)
    thumbnail_key: Mapped[str] = mapped_column(String(100), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    content_type: Mapped[str] = mapped_column(String(20), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    original_name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    uploaded_at: Mapped[datetime] = created_at_column()
    note: Mapped[str | None] = mapped_column(Text)

    item: Mapped[ApplicationItem] = relationship()
