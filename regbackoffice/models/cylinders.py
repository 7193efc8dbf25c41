"""The cylinder archive (气瓶基本信息): one row per registered cylinder."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import LabeledEnum, Model, UTCDateTime, created_at_column, enum_type, utcnow


class CylinderStatus(LabeledEnum):
    IN_USE = ("in_use", "在用")
    STOPPED = ("stopped", "停用")
    SCRAPPED = ("scrapped", "报废")
    # 注销: the registration is cancelled (after 报废, or by the bureau); final, like 报废.
    CANCELLED = ("cancelled", "注销")


class TagType(LabeledEnum):
    QR = ("qr", "二维码")
    RFID = ("rfid", "RFID标签")


class Cylinder(Model):
    __tablename__ = "cylinders"
    __table_args__ = (
        Index("ix_cylinders_district_status", "district_code", "status"),
        Index("ix_cylinders_unit", "use_unit_id"),
        Index("ix_cylinders_certificate_no", "certificate_no"),
        # 气瓶档案 lists (``cylinder_archive``): each scope's cylinders in (产品编号, ID) order,
        # paged by keyset; city-wide by the third.
        Index("ix_cylinders_unit_product", "use_unit_id", "product_no", "id"),
        Index("ix_cylinders_district_product", "district_code", "product_no", "id"),
        Index("ix_cylinders_product_no", "product_no", "id"),
        # City-wide by status (停用/报废 are the rare ones 市局 looks for), in list order.
        Index("ix_cylinders_status_product", "status", "product_no", "id"),
        # 下次检验 filters (已超期 / 30日内到期) city-wide and per district.
        Index("ix_cylinders_next_inspection", "next_inspection_month"),
        Index("ix_cylinders_district_next_inspection", "district_code", "next_inspection_month"),
        # Prefix search (LIKE 'text%') under any collation on PostgreSQL.
        Index(
            "ix_cylinders_product_no_prefix",
            "product_no",
            postgresql_ops={"product_no": "varchar_pattern_ops"},
        ),
        Index(
            "ix_cylinders_internal_no_prefix",
            "internal_no",
            postgresql_ops={"internal_no": "varchar_pattern_ops"},
        ),
        # Lookups by the QR URL (API query, tag binding). Hash: a 1000-character URL can
        # exceed a btree entry's size limit.
        Index("ix_cylinders_qr_content", "qr_content", postgresql_using="hash"),
        Index("ix_cylinders_rfid_code", "rfid_code"),
        # The changes feed (``cylinder_changes``): a unit's cylinders in change order.
        Index("ix_cylinders_unit_change_seq", "use_unit_id", "change_seq"),
    )

    # ID（气瓶档案ID）: assigned at registration, stable, the key enterprise systems use.
    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    use_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), nullable=False)
    use_unit_name: Mapped[str] = mapped_column(String(100), nullable=False)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), nullable=False)
    variety_code: Mapped[str] = mapped_column(ForeignKey("varieties.code"), nullable=False)
    product_no: Mapped[str] = mapped_column(String(50), nullable=False)
    medium_code: Mapped[str] = mapped_column(ForeignKey("media.code"), nullable=False)
    manufacturer: Mapped[str] = mapped_column(String(100), nullable=False)
    manufacture_month: Mapped[str] = mapped_column(String(7), nullable=False)  # yyyy-mm
    nominal_pressure_mpa: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    volume_l: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    last_inspection_date: Mapped[date | None] = mapped_column(Date)
    next_inspection_month: Mapped[str | None] = mapped_column(String(7))  # yyyy-mm
    internal_no: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[CylinderStatus] = mapped_column(
        enum_type(CylinderStatus, "cylinder_status"), nullable=False, default=CylinderStatus.IN_USE
    )
    tag_type: Mapped[TagType | None] = mapped_column(enum_type(TagType, "tag_type"))
    info_code: Mapped[str | None] = mapped_column(String(50), unique=True)
    qr_content: Mapped[str | None] = mapped_column(String(1000))
    # Not one of the seed's 20 fields: the RFID code given in the template's last column.
    rfid_code: Mapped[str | None] = mapped_column(String(50))
    certificate_no: Mapped[str | None] = mapped_column(String(50))
    registration_date: Mapped[date | None] = mapped_column(Date)
    registration_authority: Mapped[str | None] = mapped_column(String(200))
    # 制造单位+产品编号+制造年月 after NFKC and trimming (see ``regbackoffice.identity``).
    identity_key: Mapped[str] = mapped_column(String(160), nullable=False, unique=True)
    # 设计使用年限 of this cylinder when known (not one of the seed's 20 fields; filled by
    # the import when the template carries it): replaces the service-life table's years.
    design_life_years: Mapped[int | None] = mapped_column(SmallInteger)
    # Position in the changes feed: assigned at commit from ``cylinder_change_counter``
    # (see ``regbackoffice.cylinder_changes``); None only until the first commit.
    change_seq: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )
    version_id: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version_id}  # noqa: RUF012


class TagBinding(Model):
    """信息化标签绑定: one physical tag (QR URL or RFID code) bound to one cylinder.

    ``tag_sha256`` is the sha256 of ``<tag_type>:<value>`` so that a 1000-character URL can
    carry a unique index; a tag belongs to at most one cylinder and a cylinder to one tag.
    """

    __tablename__ = "tag_bindings"
    __table_args__ = (
        UniqueConstraint("cylinder_id", name="uq_tag_bindings_cylinder_id"),
        UniqueConstraint("tag_sha256", name="uq_tag_bindings_tag_sha256"),
        UniqueConstraint("info_code", name="uq_tag_bindings_info_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cylinder_id: Mapped[str] = mapped_column(ForeignKey("cylinders.id"), nullable=False)
    tag_type: Mapped[TagType] = mapped_column(enum_type(TagType, "tag_type"), nullable=False)
    tag_value: Mapped[str] = mapped_column(String(1000), nullable=False)
    tag_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    info_code: Mapped[str] = mapped_column(String(50), nullable=False)
    stamp_photo_key: Mapped[str] = mapped_column(String(200), nullable=False)
    stamp_photo_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"), nullable=False)
    bound_at: Mapped[datetime] = created_at_column()


class CylinderStatusChange(Model):
    """One change of a cylinder's 使用状态 with the date it took effect.

    A record sent late (a fill dated 11-10 uploaded after a 报废 inspection dated 11-25) is
    judged by the status as of its own date, read from these rows.
    """

    __tablename__ = "cylinder_status_changes"
    __table_args__ = (Index("ix_cylinder_status_changes_cylinder", "cylinder_id", "effective_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # CASCADE: the history belongs to the archive row (removed only by test clean-ups).
    cylinder_id: Mapped[str] = mapped_column(
        ForeignKey("cylinders.id", ondelete="CASCADE"), nullable=False
    )
    previous_status: Mapped[CylinderStatus | None] = mapped_column(
        enum_type(CylinderStatus, "previous_status")
    )
    status: Mapped[CylinderStatus] = mapped_column(
        enum_type(CylinderStatus, "cylinder_status"), nullable=False
    )
    effective_on: Mapped[date] = mapped_column(Date, nullable=False)
    recorded_at: Mapped[datetime] = created_at_column()


class CylinderChangeCounter(Model):
    """The one row whose lock orders the changes feed (see ``cylinder_changes``)."""

    __tablename__ = "cylinder_change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class CylinderDeparture(Model):
    """A cylinder that left a unit by 过户, as the sending unit's changes feed announces it.

    One row per (unit, cylinder): numbered in the feed like a cylinder row (``change_seq``,
    assigned at commit by ``cylinder_changes``), deleted when the cylinder comes back to
    the unit (then its own cylinder row is the newer news). The receiving unit's name and
    certificate are kept as they were at the transfer.
    """

    __tablename__ = "cylinder_departures"
    __table_args__ = (
        UniqueConstraint("unit_id", "cylinder_id", name="uq_cylinder_departures_unit_cylinder"),
        Index("ix_cylinder_departures_unit_change_seq", "unit_id", "change_seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), nullable=False)
    cylinder_id: Mapped[str] = mapped_column(ForeignKey("cylinders.id"), nullable=False)
    change_seq: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    change_request_id: Mapped[int | None] = mapped_column(ForeignKey("change_requests.id"))
    to_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), nullable=False)
    to_unit_name: Mapped[str] = mapped_column(String(100), nullable=False)
    to_district_code: Mapped[str] = mapped_column(String(6), nullable=False)
    to_certificate_no: Mapped[str | None] = mapped_column(String(50))
    to_registration_authority: Mapped[str | None] = mapped_column(String(200))
    left_on: Mapped[date] = mapped_column(Date, nullable=False)
