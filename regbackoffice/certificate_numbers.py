"""使用登记证编号: formatting from the configured pattern and gap-free serial allocation.

The pattern (config ``CERTIFICATE_NO_FORMAT``, default ``瓶渝{district:3}{serial:05d}({yy})``)
is a ``str.format`` pattern over these fields:

- ``district``: the 6-digit district code; a bare number as format spec means the LAST that
  many digits (``{district:3}`` of ``500112`` is ``112``), anything else is a normal spec;
- ``serial``: the serial within district and year (an int: ``{serial:05d}`` → ``00023``);
- ``yy``: the last two digits of the year (``26``); ``year``: the full year (``2026``).

Serials are allocated from ``CertificateCounter`` (one row per district and year) under a
row lock, so concurrent generations queue on the row and a rolled-back transaction gives
its serial back: the sequence stays gap-free.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .extensions import db
from .models import CertificateCounter

DEFAULT_FORMAT = "瓶渝{district:3}{serial:05d}({yy})"
NUMBER_MAX_LENGTH = 50  # Certificate.number is String(50)
_FIELDS = frozenset({"district", "serial", "yy", "year"})


class CertificateNumberFormatError(ValueError):
    """The configured certificate number format cannot be used."""


class _DistrictCode(str):
    """A district code whose bare-number format spec takes the last N digits."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        if spec.isdigit():
            return str(self)[-int(spec) :]
        return format(str(self), spec)


def check_format(pattern: str) -> None:
    """Raise ``CertificateNumberFormatError`` unless ``pattern`` only uses known fields."""
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise CertificateNumberFormatError(f"证书编号格式无法解析：{exc}") from exc
    used = set()
    for _literal, field, _spec, _conversion in parsed:
        if field is None:
            continue
        if field not in _FIELDS:
            raise CertificateNumberFormatError(
                f"证书编号格式中的字段 {{{field}}} 不受支持，可用字段：district、serial、yy、year"
            )
        used.add(field)
    if "serial" not in used:
        raise CertificateNumberFormatError("证书编号格式必须包含流水号 {serial}")


def format_certificate_number(
    district_code: str, serial: int, year: int, pattern: str = DEFAULT_FORMAT
) -> str:
    """``瓶渝11200023(26)`` for district 500112, serial 23, year 2026 (default pattern)."""
    check_format(pattern)
    if serial < 1:
        raise ValueError("serials start at 1")
    try:
        number = pattern.format(
            district=_DistrictCode(district_code), serial=serial, yy=f"{year % 100:02d}", year=year
        )
    except (ValueError, TypeError) as exc:
        raise CertificateNumberFormatError(f"证书编号格式无法使用：{exc}") from exc
    if len(number) > NUMBER_MAX_LENGTH:
        raise CertificateNumberFormatError(f"证书编号超过{NUMBER_MAX_LENGTH}个字符：{number}")
    return number


def allocate_serial(district_code: str, year: int, session: Session | None = None) -> int:
    """The next serial for (district, year), locking the counter row until commit.

    Flushes only: the caller's transaction commits (or rolls back, returning the serial).
    """
    session = session or db.session()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Create the row if missing without failing when a concurrent transaction races us;
    # whoever loses waits on the row lock below and then sees the winner's row.
    session.execute(
        insert(CertificateCounter)
        .values(district_code=district_code, year=year, last_serial=0)
        .on_conflict_do_nothing(index_elements=["district_code", "year"])
    )
    counter = session.execute(
        select(CertificateCounter)
        .where(CertificateCounter.district_code == district_code, CertificateCounter.year == year)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    counter.last_serial += 1
    session.flush()
    return counter.last_serial


@dataclass(frozen=True)
class AllocatedNumber:
    number: str
    district_code: str
    year: int
    serial: int


def allocate_certificate_number(
    district_code: str, year: int, pattern: str | None = None, session: Session | None = None
) -> AllocatedNumber:
    """Allocate the next serial and format it with the configured (or given) pattern."""
    if pattern is None:
        from flask import current_app

        pattern = current_app.config.get("CERTIFICATE_NO_FORMAT", DEFAULT_FORMAT)
    check_format(pattern)  # before taking a serial, so a bad pattern wastes nothing
    serial = allocate_serial(district_code, year, session=session)
    return AllocatedNumber(
        number=format_certificate_number(district_code, serial, year, pattern),
        district_code=district_code,
        year=year,
        serial=serial,
    )
