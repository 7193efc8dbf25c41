"""充装联锁校验: may this cylinder be filled with this medium by this unit, today?

Reasons (DESIGN 8), each with a Chinese message:
``NOT_REGISTERED`` (unknown ID or 信息化编码: possibly a 黑气瓶), ``STATUS_STOPPED``,
``STATUS_SCRAPPED``, ``STATUS_CANCELLED`` (注销), ``INSPECTION_OVERDUE`` (the next
inspection month has passed),
``MEDIUM_MISMATCH``, ``NOT_OWNER`` (registered to another unit) and
``SERVICE_LIFE_EXCEEDED`` (by the configurable ``SERVICE_LIFE_RULES``, DESIGN 12: e.g.
LPG/DME welded cylinders, 8 years of design life, usable to 12 years only after an
inspection after year 8; the rule itself lives in ``inspection_rules``, shared with
registration).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

from . import inspection_rules
from .models import CylinderStatus


class CylinderFacts(Protocol):
    """What the check reads of a cylinder: a ``Cylinder`` or a row of those columns."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> CylinderStatus: ...
    @property
    def next_inspection_month(self) -> str | None: ...
    @property
    def medium_code(self) -> str: ...
    @property
    def use_unit_id(self) -> int: ...
    @property
    def variety_code(self) -> str: ...
    @property
    def manufacture_month(self) -> str: ...
    @property
    def design_life_years(self) -> int | None: ...
    @property
    def last_inspection_date(self) -> date | None: ...


MESSAGES = {
    "NOT_REGISTERED": "气瓶未在使用登记系统中登记（可能为黑气瓶），不得充装",
    "STATUS_STOPPED": "气瓶已停用，不得充装",
    "STATUS_SCRAPPED": "气瓶已报废，不得充装",
    "STATUS_CANCELLED": "气瓶已注销使用登记，不得充装",
    "INSPECTION_OVERDUE": "气瓶超过下次检验日期{month}未检验，不得充装",
    "MEDIUM_MISMATCH": "充装介质{given}与登记的充装介质{registered}不一致，不得充装",
    "NOT_OWNER": "气瓶登记在其他使用单位名下，本单位不得充装",
    # The same words as at registration (inspection_rules.service_life_error).
    "SERVICE_LIFE_EXCEEDED": inspection_rules.SERVICE_LIFE_MESSAGE + "，不得充装",
}
REASON_CODES = tuple(MESSAGES)


class Reason(NamedTuple):
    # A tuple, not a frozen dataclass: a batch of 500 fillings builds about 1,000 of them.
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@lru_cache(maxsize=4096)
def _reason(code: str, **values: Any) -> Reason:
    # Kept: a batch's cylinders share their months, media and ages, and a Reason is a tuple.
    return Reason(code, MESSAGES[code].format(**values))


@lru_cache(maxsize=64)
def _month_of(day: date) -> str:
    """yyyy-mm of ``day``, once per distinct day (a batch's records share their dates)."""
    return f"{day.year:04d}-{day.month:02d}"


# The reasons whose message names no value, built once.
_FIXED = {
    code: Reason(code, MESSAGES[code])
    for code in (
        "NOT_REGISTERED",
        "STATUS_STOPPED",
        "STATUS_SCRAPPED",
        "STATUS_CANCELLED",
        "NOT_OWNER",
    )
}
_STATUS_REASONS = {
    CylinderStatus.STOPPED: _FIXED["STATUS_STOPPED"],
    CylinderStatus.SCRAPPED: _FIXED["STATUS_SCRAPPED"],
    CylinderStatus.CANCELLED: _FIXED["STATUS_CANCELLED"],
}


def check(
    cylinder: CylinderFacts | None,
    medium_code: str,
    unit_id: int,
    on: date,
    service_life_rules: Sequence[Mapping[str, Any]],
    status: CylinderStatus | None = None,
) -> list[Reason]:
    """Every reason the fill is refused; empty when the cylinder may be filled.

    ``status`` is the cylinder's status as of ``on`` when judging a record sent late (a
    fill dated before a later 报废 was not a fill of a scrapped cylinder); default: now.
    """
    if cylinder is None:
        return [_FIXED["NOT_REGISTERED"]]
    reasons: list[Reason] = []
    refused_for_status = _STATUS_REASONS.get(cylinder.status if status is None else status)
    if refused_for_status is not None:
        reasons.append(refused_for_status)
    # "2026-05" is overdue from 2026-06-01 on: the month itself is still allowed.
    if cylinder.next_inspection_month and cylinder.next_inspection_month < _month_of(on):
        reasons.append(_reason("INSPECTION_OVERDUE", month=cylinder.next_inspection_month))
    if medium_code != cylinder.medium_code:
        reasons.append(
            _reason("MEDIUM_MISMATCH", given=medium_code, registered=cylinder.medium_code)
        )
    if cylinder.use_unit_id != unit_id:
        reasons.append(_FIXED["NOT_OWNER"])
    years = inspection_rules.service_life_exceeded(
        cylinder.variety_code,
        cylinder.medium_code,
        cylinder.manufacture_month,
        on,
        cylinder.design_life_years,
        cylinder.last_inspection_date,
        service_life_rules,
    )
    if years is not None:
        reasons.append(_reason("SERVICE_LIFE_EXCEEDED", years=years))
    return reasons
