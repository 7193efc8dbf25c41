"""Periodic-inspection intervals and service life: the rules every door applies.

Plain functions of plain values, so the JSON API (``/inspections``), the Excel import and
the application item form call the same rule and show the same Chinese message:

- ``next_inspection_error(variety, medium, manufacture_month, last_inspection_date,
  next_inspection_month)``: a 下次检验日期 later than the last inspection (or, never
  inspected, the 制造年月) plus the interval of its (设备品种, 充装介质) is refused.
- ``service_life_error(variety, medium, manufacture_month, today, design_life_years,
  last_inspection_date)``: a cylinder past its service life (the interlock's rule, DESIGN
  12) may not be registered.

The tables are configurable (``INSPECTION_INTERVAL_RULES``, ``SERVICE_LIFE_RULES`` in
config.py); each interval row records its source, and ``docs/inspection-rules.md`` says
which rows are assumptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from flask import current_app

# Keyed by 设备品种 and 充装介质 together; the first matching row wins, so the catch-all
# row comes last. ``variety``/``media`` None match anything.
DEFAULT_INSPECTION_INTERVAL_RULES: list[dict[str, Any]] = [
    {
        "variety": None,
        "media": ["G9", "G10"],
        "years": 2,
        "label": "腐蚀性介质（氯、氨）气瓶",
        "source": "TSG 23-2021 附件（盛装腐蚀性气体的气瓶每2年检验一次）；假设，未与标准正文核对",
    },
    {
        "variety": ["2310", "2320"],
        "media": ["G2", "G3"],
        "years": 5,
        "label": "无缝/焊接气瓶盛装压缩惰性气体（氮、氩）",
        "source": "TSG 23-2021 附件（盛装惰性气体的无缝、焊接气瓶每5年检验一次）；假设，未核对",
    },
    {
        "variety": ["23T0"],
        "media": ["G6", "G7", "G8", "G11", "G12"],
        "years": 3,
        "label": "低温绝热气瓶盛装低温液化气体",
        "source": "TSG 23-2021 附件（低温绝热气瓶每3年检验一次）；假设，未核对",
    },
    {
        "variety": ["2320"],
        "media": ["G13", "G14", "G16"],
        "years": 4,
        "label": "焊接气瓶盛装液化石油气、二甲醚（含液化石油气钢瓶装丙烷）",
        "source": "TSG 23-2021 附件与 GB/T 8334（液化石油气钢瓶每4年检验一次）；假设，未核对",
    },
    {
        "variety": None,
        "media": None,
        "years": 3,
        "label": "其他气瓶",
        "source": "TSG 23-2021 附件（其他气瓶每3年检验一次）；假设，未核对",
    },
]


def _rules(kind: str, rules: Sequence[Mapping[str, Any]] | None) -> Sequence[Mapping[str, Any]]:
    """The configured table (from the app when there is one), else the default."""
    if rules is not None:
        return rules
    try:
        return current_app.config[kind]
    except (RuntimeError, KeyError):  # no app context (a script, a unit of the import)
        if kind == "INSPECTION_INTERVAL_RULES":
            return DEFAULT_INSPECTION_INTERVAL_RULES
        return DEFAULT_SERVICE_LIFE_RULES


def _matches(rule: Mapping[str, Any], variety_code: str, medium_code: str) -> bool:
    varieties, media = rule.get("variety"), rule.get("media")
    if varieties is not None and (
        variety_code != varieties if isinstance(varieties, str) else variety_code not in varieties
    ):
        return False
    return media is None or medium_code in media


def interval_rule(
    variety_code: str, medium_code: str, rules: Sequence[Mapping[str, Any]] | None = None
) -> Mapping[str, Any]:
    """The interval row for this (设备品种, 充装介质)."""
    for rule in _rules("INSPECTION_INTERVAL_RULES", rules):
        if _matches(rule, variety_code, medium_code):
            return rule
    raise LookupError("INSPECTION_INTERVAL_RULES has no catch-all row")


def interval_years(
    variety_code: str, medium_code: str, rules: Sequence[Mapping[str, Any]] | None = None
) -> int:
    return int(interval_rule(variety_code, medium_code, rules)["years"])


def add_years_to_month(month: str, years: int) -> str:
    year, mm = map(int, month.split("-"))
    return f"{year + years:04d}-{mm:02d}"


def latest_next_inspection_month(
    variety_code: str,
    medium_code: str,
    manufacture_month: str,
    last_inspection_date: date | None,
    rules: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The latest 下次检验日期 (yyyy-mm) the interval allows."""
    years = interval_years(variety_code, medium_code, rules)
    return _latest_month(manufacture_month, last_inspection_date, years)


def _latest_month(manufacture_month: str, last_inspection_date: date | None, years: int) -> str:
    base = last_inspection_date.strftime("%Y-%m") if last_inspection_date else manufacture_month
    return add_years_to_month(base, years)


def next_inspection_error(
    variety_code: str,
    medium_code: str,
    manufacture_month: str,
    last_inspection_date: date | None,
    next_inspection_month: str | None,
    rules: Sequence[Mapping[str, Any]] | None = None,
) -> str | None:
    """Why this 下次检验日期 is refused (Chinese, naming the interval), or None."""
    if not next_inspection_month:
        return None
    rule = interval_rule(variety_code, medium_code, rules)
    years = int(rule["years"])
    latest = _latest_month(manufacture_month, last_inspection_date, years)
    if next_inspection_month <= latest:
        return None
    if last_inspection_date:
        basis = f"最近一次检验日期{last_inspection_date.isoformat()}"
    else:
        basis = f"制造年月{manufacture_month}（未检验过）"
    return (
        f"下次检验日期{next_inspection_month}超过检验周期：{rule.get('label', '该类气瓶')}"
        f"（设备品种{variety_code}、充装介质{medium_code}）定期检验周期为{years}年，"
        f"自{basis}起最晚为{latest}；请按检验报告填写下次检验日期"
    )


# --- Service life (设计使用年限) ---------------------------------------------------------

DEFAULT_SERVICE_LIFE_RULES: list[dict[str, Any]] = [
    {"variety": "2320", "media": ["G13", "G14"], "design_years": 8, "extended_years": 12}
]

SERVICE_LIFE_MESSAGE = "气瓶已超过设计使用年限{years}年"


def _months_between(first_month: str, day: date) -> int:
    year, month = map(int, first_month.split("-"))
    return (day.year - year) * 12 + (day.month - month)


def service_life_exceeded(
    variety_code: str,
    medium_code: str,
    manufacture_month: str,
    on: date,
    design_life_years: int | None = None,
    last_inspection_date: date | None = None,
    rules: Sequence[Mapping[str, Any]] | None = None,
) -> int | None:
    """The life (years) the cylinder has outlived on ``on``, or None when within it.

    The cylinder's own 设计使用年限 (when given) replaces the table's design years; the
    table's extension (usable to N years after an inspection made once the design life was
    reached) still applies to its row.
    """
    rule = None
    for candidate in _rules("SERVICE_LIFE_RULES", rules):  # a loop: run per record of a batch
        if _matches(candidate, variety_code, medium_code):
            rule = candidate
            break
    if rule is None and design_life_years is None:
        return None
    design = int(design_life_years or rule["design_years"])  # type: ignore[index]
    extended = int(rule.get("extended_years", 0)) if rule else 0
    extended = extended if extended > design else 0
    age_months = _months_between(manufacture_month, on)
    if age_months < design * 12:
        return None
    if extended and age_months < extended * 12:
        # Usable past the design life only after an inspection made after it was reached.
        year, month = map(int, manufacture_month.split("-"))
        design_end = date(year + design, month, 1)
        if last_inspection_date is not None and last_inspection_date >= design_end:
            return None
        return design
    return extended or design


def service_life_error(
    variety_code: str,
    medium_code: str,
    manufacture_month: str,
    today: date,
    design_life_years: int | None = None,
    last_inspection_date: date | None = None,
    rules: Sequence[Mapping[str, Any]] | None = None,
) -> str | None:
    """Why a cylinder may not be registered because of its age (Chinese), or None."""
    years = service_life_exceeded(
        variety_code,
        medium_code,
        manufacture_month,
        today,
        design_life_years,
        last_inspection_date,
        rules,
    )
    if years is None:
        return None
    return (
        SERVICE_LIFE_MESSAGE.format(years=years)
        + f"（制造年月{manufacture_month}，设备品种{variety_code}、充装介质{medium_code}），"
        "不予登记；超过设计使用年限的气瓶应报废"
    )
