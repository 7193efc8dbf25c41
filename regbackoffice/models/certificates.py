"""使用登记证: one per certified application, numbered gap-free per district and year."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .applications import Application
from .base import LabeledEnum, Model, UTCDateTime, created_at_column, enum_type
from .users import User


class RenderState(LabeledEnum):
    QUEUED = ("queued", "排队中")
    RENDERING = ("rendering", "生成中")
    READY = ("ready", "已生成")
    FAILED = ("failed", "失败")


class CertificateCounter(Model):
    """Last serial issued per district and year; locked row by row to stay gap-free."""

    __tablename__ = "certificate_counters"

    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_serial: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Certificate(Model):
    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("district_code", "year", "serial", name="uq_certificates_serial"),
        # The dashboard's certificates per month: a range of this index, read alone.
        Index("ix_certificates_issue_date", "issue_date"),
        CheckConstraint(
            "render_state <> 'ready' OR (pdf_key IS NOT NULL AND pdf_sha256 IS NOT NULL)",
            name="ready_has_pdf",
        ),
        CheckConstraint(
            "voided_at IS NULL OR (void_reason IS NOT NULL AND void_reason <> '')",
            name="voided_has_reason",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id"), nullable=False, unique=True
    )
    number: Mapped[str] = mapped_column(String(50), nullable=False, unique=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), nullable=False)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    serial: Mapped[int] = mapped_column(Integer, nullable=False)
    issue_date: Mapped[date] = mapped_column(Date, nullable=False)
    authority: Mapped[str] = mapped_column(String(200), nullable=False)
    cylinder_count: Mapped[int] = mapped_column(Integer, nullable=False)
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    render_state: Mapped[RenderState] = mapped_column(
        enum_type(RenderState, "render_state"), nullable=False, default=RenderState.QUEUED
    )
    render_error: Mapped[str | None] = mapped_column(Text)
    render_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    render_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    pdf_key: Mapped[str | None] = mapped_column(String(100))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    rendered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # 注销: the registration is cancelled; /verify says so and the cylinders are 停用.
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    voided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    void_reason: Mapped[str | None] = mapped_column(String(500))
    print_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_printed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # 换发: after a change the same number is issued again as the next version (版本); the
    # versions before are kept in ``certificate_versions`` and verify as superseded.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    reissued: Mapped[bool] = mapped_column(  # 补发 (补领 of a lost or damaged certificate)
        Boolean, nullable=False, default=False, server_default=false()
    )

    application: Mapped[Application] = relationship()
    last_printed_by: Mapped[User | None] = relationship(foreign_keys=[last_printed_by_id])


class CertificateVersion(Model):
    """A version of a certificate that a later one replaced (superseded), with its PDF."""

    __tablename__ = "certificate_versions"
    __table_args__ = (
        UniqueConstraint("certificate_id", "version", name="uq_certificate_versions_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    reissued: Mapped[bool] = mapped_column(Boolean, nullable=False)
    issue_date: Mapped[date] = mapped_column(Date, nullable=False)
    cylinder_count: Mapped[int] = mapped_column(Integer, nullable=False)
    pdf_key: Mapped[str | None] = mapped_column(String(100))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    superseded_at: Mapped[datetime] = created_at_column()
    # The change request whose approval replaced this version.
    change_request_id: Mapped[int | None] = mapped_column(ForeignKey("change_requests.id"))
