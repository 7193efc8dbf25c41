"""Shared column helpers for the models."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ..extensions import Base, db

if TYPE_CHECKING:
    from flask_sqlalchemy.model import Model as _FlaskModel

    # A type checker cannot use the instance attribute ``db.Model`` as a base class; this is
    # what it is at run time (Flask-SQLAlchemy's mixin over our declarative Base).
    class Model(_FlaskModel, Base):
        __abstract__ = True

else:
    Model = db.Model


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite drops the offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class LabeledEnum(enum.StrEnum):
    """A string enum whose members carry the Chinese label shown to users.

    ``Member = ("key", "中文")``: the key is stored (and CHECK-constrained), the label shown.
    """

    _value_: str
    label: str

    if TYPE_CHECKING:
        # What a call does once the class is built: ``Role("city_admin")`` looks a member up
        # by its key. The two-argument ``__new__`` below only runs while members are made.
        def __new__(cls, value: str) -> Self: ...

    else:

        def __new__(cls, value: str, label: str) -> LabeledEnum:
            member = str.__new__(cls, value)
            member._value_ = value
            member.label = label
            return member

    @classmethod
    def from_label(cls, label: str) -> Self | None:
        for member in cls:
            if member.label == label:
                return member
        return None


def enum_type(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    """A VARCHAR enum with a named CHECK constraint on every backend."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda cls: [m.value for m in cls],
    )


def created_at_column() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)
