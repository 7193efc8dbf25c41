"""Records sent by enterprise platforms: fillings, inspections and trace events.

These are large append-only tables; the ``cylinder_id`` is kept as sent, without a foreign
key, because a record may name a cylinder the archive does not know (黑气瓶), and the
regulator keeps it anyway.

On PostgreSQL ``filling_records`` (by ``fill_date``) and ``trace_events`` (by
``event_time``) are partitioned by month (migration 0003, ``regbackoffice.partitions``).
A partitioned table's primary key and unique constraints must contain the partition key,
so there the primary key is ``(id, <date>)`` while the model maps ``id`` alone (it is still
unique: one sequence feeds it), and idempotency by ``record_no`` is enforced by the small
``api_record_keys`` table instead of a unique constraint here.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Model, UTCDateTime, created_at_column

# BIGINT on PostgreSQL, INTEGER (so it autoincrements) on SQLite.
BigId = BigInteger().with_variant(Integer, "sqlite")


class FillingRecord(Model):
    __tablename__ = "filling_records"
    __table_args__ = (
        Index("ix_filling_records_cylinder_date", "cylinder_id", "fill_date"),
        Index("ix_filling_records_violation_date", "violation", "fill_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"), nullable=False)
    record_no: Mapped[str | None] = mapped_column(String(64))
    cylinder_id: Mapped[str] = mapped_column(String(50), nullable=False)
    medium_code: Mapped[str] = mapped_column(String(3), nullable=False)
    filler: Mapped[str] = mapped_column(String(10), nullable=False)
    fill_date: Mapped[date] = mapped_column(Date, nullable=False)
    filling_unit_name: Mapped[str] = mapped_column(String(100), nullable=False)
    # 违规充装: stored anyway, with the interlock reasons that refused it.
    violation: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    violation_reasons: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    received_at: Mapped[datetime] = created_at_column()


class InspectionRecord(Model):
    __tablename__ = "inspection_records"
    __table_args__ = (
        UniqueConstraint("client_id", "record_no", name="uq_inspection_records_client_record_no"),
        Index("ix_inspection_records_cylinder_date", "cylinder_id", "inspect_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"), nullable=False)
    record_no: Mapped[str | None] = mapped_column(String(64))
    cylinder_id: Mapped[str] = mapped_column(String(50), nullable=False)
    inspect_date: Mapped[date] = mapped_column(Date, nullable=False)
    inspection_org: Mapped[str] = mapped_column(String(100), nullable=False)
    next_inspection_month: Mapped[str | None] = mapped_column(String(7))
    conclusion: Mapped[str] = mapped_column(String(10), nullable=False)
    inspect_type: Mapped[str] = mapped_column(String(10), nullable=False)
    received_at: Mapped[datetime] = created_at_column()


class TraceEvent(Model):
    __tablename__ = "trace_events"
    __table_args__ = (Index("ix_trace_events_cylinder_time", "cylinder_id", "event_time"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"), nullable=False)
    record_no: Mapped[str | None] = mapped_column(String(64))
    cylinder_id: Mapped[str] = mapped_column(String(50), nullable=False)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    node: Mapped[str] = mapped_column(String(10), nullable=False)
    actor: Mapped[str] = mapped_column(String(10), nullable=False)
    received_at: Mapped[datetime] = created_at_column()
