"""调用单位: enterprise platforms allowed to call the JSON API, and their bearer tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Model, UTCDateTime, created_at_column
from .units import Unit

API_SCOPES = ("query", "bind", "filling", "inspection", "trace")


class ApiClient(Model):
    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    secret_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), nullable=False, index=True)
    scopes: Mapped[str] = mapped_column(String(100), nullable=False)  # comma separated
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    description: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    created_at: Mapped[datetime] = created_at_column()
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_data_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    unit: Mapped[Unit] = relationship(lazy="joined")

    @property
    def scope_set(self) -> frozenset[str]:
        return scope_set(self.scopes)


def scope_set(scopes: str) -> frozenset[str]:
    """The comma-separated ``api_clients.scopes`` as a set."""
    return frozenset(s for s in scopes.split(",") if s)


class ApiCaller(NamedTuple):
    """The token's client as most API calls need it (query, check, trail, changes, filling
    and trace batches): a plain row of ``api_clients``, no ORM object or unit of work per
    call."""

    id: int
    app_id: str
    unit_id: int
    scopes: str
    last_seen_at: datetime | None
    last_data_at: datetime | None

    @property
    def scope_set(self) -> frozenset[str]:
        return scope_set(self.scopes)


class ApiToken(Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiRecordKey(Model):
    """One row per (client, kind, record_no) ever stored: the idempotency of batch records.

    Inserted before the record itself; a second insert of the same key (a retry, or a
    concurrent duplicate waiting on the first one's lock) conflicts and is answered as a
    duplicate. Partitioned record tables cannot carry this unique constraint themselves.
    """

    __tablename__ = "api_record_keys"

    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # filling/inspection/trace
    record_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = created_at_column()
    # The first answer to this record (code, message, violation, reasons): a re-sent
    # record is answered with it, so a platform that lost the reply still learns it.
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ApiIdempotencyKey(Model):
    """A request sent with an ``Idempotency-Key`` header, its body hash and its answer."""

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (
        UniqueConstraint("client_id", "key", name="uq_api_idempotency_keys_client_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"), nullable=False)
    key: Mapped[str] = mapped_column(String(100), nullable=False)
    path: Mapped[str] = mapped_column(String(100), nullable=False)
    body_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = created_at_column()
