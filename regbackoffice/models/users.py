"""Back-office accounts and their server-side login sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import LabeledEnum, Model, UTCDateTime, created_at_column, enum_type
from .reference import District
from .units import Unit


class Role(LabeledEnum):
    APPLICANT = ("applicant", "使用单位经办人")
    ACCEPTOR = ("acceptor", "受理人员")
    REVIEWER = ("reviewer", "审核人员")
    APPROVER = ("approver", "审批人员")
    SUPERVISOR = ("supervisor", "市局监管人员")
    ADMIN = ("admin", "系统管理员")

    @property
    def is_district_role(self) -> bool:
        return self in DISTRICT_ROLES


DISTRICT_ROLES = frozenset({Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER})
CITY_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})


class User(Model):
    __tablename__ = "users"
    __table_args__ = (
        # The scope a role works in must be set, and only that one.
        CheckConstraint(
            "(role <> 'applicant') OR (unit_id IS NOT NULL AND district_code IS NULL)",
            name="applicant_has_unit",
        ),
        CheckConstraint(
            "(role NOT IN ('acceptor', 'reviewer', 'approver'))"
            " OR (district_code IS NOT NULL AND unit_id IS NULL)",
            name="district_role_has_district",
        ),
        CheckConstraint(
            "(role NOT IN ('supervisor', 'admin')) OR (district_code IS NULL AND unit_id IS NULL)",
            name="city_role_unscoped",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(50), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(String(50), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[Role] = mapped_column(enum_type(Role, "user_role"), nullable=False)
    district_code: Mapped[str | None] = mapped_column(ForeignKey("districts.code"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set at login when the typed password fails today's rules (hashes cannot be judged):
    # every page then leads to the password change until a good one is chosen.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    created_at: Mapped[datetime] = created_at_column()

    district: Mapped[District | None] = relationship(lazy="joined")
    unit: Mapped[Unit | None] = relationship(lazy="joined")

    # Flask-Login protocol. ``get_id`` is the session row's token, not the user id, so
    # that a session can be ended on the server (see ``regbackoffice.accounts``).
    is_anonymous = False

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:  # pragma: no cover - sessions are loaded by token
        raise NotImplementedError("sessions are identified by UserSession tokens")

    @property
    def scope_label(self) -> str:
        if self.unit is not None:
            return self.unit.name
        if self.district is not None:
            return self.district.name
        return "全市"


class UserSession(Model):
    """One login. The cookie carries only the token; ending the row ends the session."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    created_at: Mapped[datetime] = created_at_column()
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(20))
    ip: Mapped[str | None] = mapped_column(String(45))

    user: Mapped[User] = relationship(lazy="joined")
