"""The city supervision dashboard (监管看板): summary tables and the figures shown.

Two kinds of figures:

- Live, from the applications and certificates (tens of thousands of rows, indexed):
  applications per state, overdue work, median days per step, certificates per month,
  connected enterprise platforms.
- Pre-aggregated, because the archive (1,000,000 cylinders) and the filling records
  (10,000,000) are too large to group on every page view: ``stat_registrations`` and
  ``stat_violations`` are rebuilt by ``refresh_dashboard_stats`` (a job enqueued after each
  certificate generation, the worker's periodic sweep and ``flask refresh-stats``), and the
  page shows when that last happened.

Every table is a ``Table`` (title, headers, rows of strings), so the page and its .xlsx
export are built from the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, select, text

from . import jobs, workflow
from .clock import CHINA_TZ, china_day_start, china_today, format_china
from .extensions import db
from .models import (
    ApiClient,
    Application,
    ApplicationStatus,
    Certificate,
    District,
    Medium,
    RegistrationStat,
    StatRefresh,
    StepDurationStat,
    ViolationStat,
    utcnow,
)

REFRESH_JOB = "refresh_dashboard_stats"
REFRESH_NAME = "dashboard"
ALL_REASONS = "*"  # the stat_violations row counting violating fillings themselves
CITY = "全市"

# Statuses shown per district (drafts are the applicant's business, not the bureau's).
SHOWN_STATUSES = [s for s in ApplicationStatus if s is not ApplicationStatus.DRAFT]

# (key, label, start column, end column) of each timed step.
STEPS = [
    ("accept", "提交→受理", "submitted_at", "accepted_at"),
    ("approve", "受理→审批", "accepted_at", "approved_at"),
    ("certify", "审批→发证", "approved_at", "certified_at"),
]

VIOLATION_REASON_LABELS = {
    "STATUS_STOPPED": "气瓶已停用",
    "STATUS_SCRAPPED": "气瓶已报废",
    "INSPECTION_OVERDUE": "超期未检",
    "NOT_OWNER": "非本单位气瓶",
    "SERVICE_LIFE_EXCEEDED": "超过设计使用年限",
    "NOT_REGISTERED": "未登记气瓶",
    "MEDIUM_MISMATCH": "充装介质不符",
}


# --- the summary tables -------------------------------------------------------------


def _month_sql(column: str) -> str:
    if db.engine.dialect.name == "postgresql":
        return f"to_char({column}, 'YYYY-MM')"
    return f"strftime('%Y-%m', {column})"


def _reasons_from_sql() -> str:
    """A FROM item giving one row ``j.value`` per reason in ``f.violation_reasons``."""
    if db.engine.dialect.name == "postgresql":
        return "json_array_elements_text(f.violation_reasons) AS j(value)"
    return "json_each(f.violation_reasons) AS j"


_VIOLATIONS_SQL = """
INSERT INTO stat_violations (month, district_code, reason, fillings)
SELECT {month}, COALESCE(c.district_code, u.district_code, ''), {reason}, COUNT(*)
FROM filling_records f {reasons_from}
LEFT JOIN cylinders c ON c.id = f.cylinder_id
LEFT JOIN api_clients a ON a.id = f.client_id
LEFT JOIN units u ON u.id = a.unit_id
WHERE f.violation = :yes
GROUP BY 1, 2, 3
"""


def rebuild_summaries() -> None:
    """Recompute the summary tables from the archive and the filling records (flushes)."""
    if db.engine.dialect.name == "postgresql":
        # Two refreshes at once would insert the same keys: the second waits for the first.
        db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('stat_refresh'))"))
    db.session.execute(delete(RegistrationStat))
    db.session.execute(delete(ViolationStat))
    db.session.execute(
        text(
            f"""
            INSERT INTO stat_registrations (month, district_code, medium_code, cylinders)
            SELECT {_month_sql("registration_date")}, district_code, medium_code, COUNT(*)
            FROM cylinders WHERE registration_date IS NOT NULL
            GROUP BY 1, 2, 3
            """
        )
    )
    month = _month_sql("f.fill_date")
    db.session.execute(
        text(_VIOLATIONS_SQL.format(month=month, reason=f"'{ALL_REASONS}'", reasons_from="")),
        {"yes": True},
    )
    db.session.execute(
        text(
            _VIOLATIONS_SQL.format(
                month=month, reason="j.value", reasons_from="CROSS JOIN " + _reasons_from_sql()
            )
        ),
        {"yes": True},
    )
    _rebuild_step_durations()
    stamp = db.session.get(StatRefresh, REFRESH_NAME)
    if stamp is None:
        db.session.add(StatRefresh(name=REFRESH_NAME, refreshed_at=utcnow()))
    else:
        stamp.refreshed_at = utcnow()
    db.session.flush()


def _rebuild_step_durations() -> None:
    """Histogram of each step's duration (tenths of a day) per month it ended and district."""
    db.session.execute(delete(StepDurationStat))
    if db.engine.dialect.name == "postgresql":
        for key, _label, start, end in STEPS:
            db.session.execute(
                text(
                    f"""
                    INSERT INTO stat_step_days (month, district_code, step, tenths, applications)
                    SELECT to_char({end} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'),
                      district_code, :step,
                      CAST(round(extract(epoch FROM {end} - {start}) / 8640.0) AS integer),
                      COUNT(*)
                    FROM applications
                    WHERE {start} IS NOT NULL AND {end} IS NOT NULL
                    GROUP BY 1, 2, 3, 4
                    """
                ),
                {"step": key},
            )
        return
    # SQLite (demo, a few rows): bucket in Python.
    counts: dict[tuple[str, str, str, int], int] = {}
    for key, _label, start_col, end_col in STEPS:
        start, end = getattr(Application, start_col), getattr(Application, end_col)
        for code, began, ended in db.session.execute(
            select(Application.district_code, start, end).where(
                start.is_not(None), end.is_not(None)
            )
        ):
            month = ended.astimezone(CHINA_TZ).strftime("%Y-%m")
            tenths = round((ended - began).total_seconds() / 8640.0)
            bucket = (month, code, key, tenths)
            counts[bucket] = counts.get(bucket, 0) + 1
    db.session.add_all(
        StepDurationStat(month=m, district_code=d, step=k, tenths=t, applications=n)
        for (m, d, k, t), n in counts.items()
    )
    db.session.flush()


@jobs.job(REFRESH_JOB)
def refresh_dashboard_stats() -> None:
    """Job: rebuild the summaries and commit. Safe to run twice (a full rebuild)."""
    rebuild_summaries()
    db.session.commit()


def enqueue_refresh() -> None:
    """Rebuild the summaries once the current transaction has committed."""
    jobs.enqueue_after_commit(REFRESH_JOB, job_id="refresh-dashboard-stats")


def refresh_if_stale(max_age_seconds: float) -> bool:
    """Rebuild (and commit) when the summaries are older than ``max_age_seconds``."""
    last = refreshed_at()
    if last is not None and (utcnow() - last).total_seconds() < max_age_seconds:
        return False
    refresh_dashboard_stats()
    return True


def refreshed_at() -> datetime | None:
    stamp = db.session.get(StatRefresh, REFRESH_NAME)
    return stamp.refreshed_at if stamp else None


# --- filters and tables ---------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """An inclusive range of China dates; the monthly figures use its months."""

    start: date
    end: date

    @property
    def first_month(self) -> str:
        return self.start.strftime("%Y-%m")

    @property
    def last_month(self) -> str:
        return self.end.strftime("%Y-%m")

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start 00:00, day after end 00:00) in China time, as UTC instants."""
        return china_day_start(self.start), china_day_start(self.end + timedelta(days=1))


def default_period(today: date | None = None) -> Period:
    """The last twelve months, this one included."""
    today = today or china_today()
    if today.month == 12:
        return Period(date(today.year, 1, 1), today)
    return Period(date(today.year - 1, today.month + 1, 1), today)


@dataclass
class Table:
    key: str
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def _districts() -> list[District]:
    """The districts, read once per request (several tables need them)."""
    from flask import g, has_app_context

    if has_app_context() and "stat_districts" in g:
        return g.stat_districts
    districts = list(db.session.scalars(select(District).order_by(District.code)))
    if has_app_context():
        g.stat_districts = districts
    return districts


def _district_names() -> dict[str, str]:
    return {d.code: d.name for d in _districts()}


def district_codes_by_name() -> dict[str, str]:
    """For the page's links from a district's name to its drill-down."""
    return {d.name: d.code for d in _districts()}


def _district_label(code: str, names: dict[str, str]) -> str:
    if not code:
        return "未知（未登记气瓶）"
    return names.get(code, code)


def status_table() -> Table:
    rows = db.session.execute(
        select(Application.district_code, Application.status, func.count())
        .where(Application.status != ApplicationStatus.DRAFT)
        .group_by(Application.district_code, Application.status)
    ).all()
    counts: dict[tuple[str, str], int] = {(d, s): n for d, s, n in rows}
    table = Table(
        "status",
        "各区县申请状态（当前）",
        ["区县", *[s.label for s in SHOWN_STATUSES], "合计"],
        note="当前状态，不受日期范围影响。",
    )
    totals = [0] * len(SHOWN_STATUSES)
    for district in _districts():
        values = [counts.get((district.code, s), 0) for s in SHOWN_STATUSES]
        if not any(values):
            continue
        totals = [a + b for a, b in zip(totals, values, strict=True)]
        table.rows.append([district.name, *map(str, values), str(sum(values))])
    table.rows.append([CITY, *map(str, totals), str(sum(totals))])
    return table


def overdue_clause(today: date | None = None) -> Any:
    """Applications past their time limit in working days (``workflow.STEPS``)."""
    return workflow.overdue_clause(today or china_today())


def overdue_table(today: date | None = None) -> Table:
    today = today or china_today()
    rows = db.session.execute(
        select(
            Application.district_code,
            func.sum(case((workflow.overdue_clause(today, "accept_due_on"), 1), else_=0)),
            func.sum(case((workflow.overdue_clause(today, "decision_due_on"), 1), else_=0)),
        )
        .where(overdue_clause(today))
        .group_by(Application.district_code)
    ).all()
    by_district = {code: (int(a or 0), int(d or 0)) for code, a, d in rows}
    table = Table(
        "overdue",
        "超期未办",
        ["区县", "超期未受理", "超期未审结（待审核/待审批）", "合计"],
        note=f"以 {today.isoformat()} 计，按工作日时限。",
    )
    total_a = total_d = 0
    for district in _districts():
        if district.code not in by_district:
            continue
        a, d = by_district[district.code]
        total_a, total_d = total_a + a, total_d + d
        table.rows.append([district.name, str(a), str(d), str(a + d)])
    table.rows.append([CITY, str(total_a), str(total_d), str(total_a + total_d)])
    return table


def _days(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _histogram_median(buckets: list[tuple[int, int]]) -> float | None:
    """The median of values given as (tenths of a day, how many), like percentile_cont."""
    total = sum(n for _t, n in buckets)
    if not total:
        return None
    wanted = [(total - 1) // 2, total // 2]  # positions of the middle value(s)
    found: list[int] = []
    seen = 0
    for tenths, n in sorted(buckets):
        while len(found) < 2 and wanted[len(found)] < seen + n:
            found.append(tenths)
        seen += n
    return sum(found) / 20.0


def step_medians(period: Period) -> dict[str, dict[str, float]]:
    """Median days of each step per district (and ``CITY``), for steps ending in the
    period's months, read from the ``stat_step_days`` histograms (to 0.1 day)."""
    rows = db.session.execute(
        select(
            StepDurationStat.step,
            StepDurationStat.district_code,
            StepDurationStat.tenths,
            func.sum(StepDurationStat.applications),
        )
        .where(StepDurationStat.month.between(period.first_month, period.last_month))
        .group_by(StepDurationStat.step, StepDurationStat.district_code, StepDurationStat.tenths)
    ).all()
    buckets: dict[str, dict[str, list[tuple[int, int]]]] = {key: {} for key, *_ in STEPS}
    for step, code, tenths, count in rows:
        if step not in buckets:
            continue
        buckets[step].setdefault(code, []).append((tenths, int(count)))
        buckets[step].setdefault(CITY, []).append((tenths, int(count)))
    result: dict[str, dict[str, float]] = {}
    for step, by_code in buckets.items():
        medians = {code: _histogram_median(values) for code, values in by_code.items()}
        result[step] = {code: value for code, value in medians.items() if value is not None}
    return result


def medians_table(period: Period) -> Table:
    per_step = step_medians(period)
    table = Table(
        "medians",
        "办理用时中位数（自然日）",
        ["区县", *[label for _key, label, _a, _b in STEPS]],
        note="按该环节完成月份落在日期范围内的申请计算，精确到 0.1 天；随统计更新。",
    )
    codes = {code for medians in per_step.values() for code in medians} - {CITY}
    for district in _districts():
        if district.code in codes:
            table.rows.append(
                [district.name, *[_days(per_step[k].get(district.code)) for k, *_ in STEPS]]
            )
    table.rows.append([CITY, *[_days(per_step[k].get(CITY)) for k, *_ in STEPS]])
    return table


def _months(period: Period) -> list[str]:
    months = []
    year, month = period.start.year, period.start.month
    while (year, month) <= (period.end.year, period.end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def monthly_table(period: Period) -> Table:
    """Certificates issued (live) and cylinders registered (summary) per month."""
    # Grouped by day (a few hundred groups), then by month here: cheaper than formatting
    # every certificate's date in SQL.
    certificates: dict[str, int] = {}
    for day, count in db.session.execute(
        select(Certificate.issue_date, func.count())
        .where(Certificate.issue_date.between(period.start, period.end))
        .group_by(Certificate.issue_date)
    ):
        month = day.strftime("%Y-%m")
        certificates[month] = certificates.get(month, 0) + count
    cylinders = dict(
        db.session.execute(
            select(RegistrationStat.month, func.sum(RegistrationStat.cylinders))
            .where(RegistrationStat.month.between(period.first_month, period.last_month))
            .group_by(RegistrationStat.month)
        ).all()
    )
    table = Table("monthly", "每月发证与登记气瓶", ["月份", "发证数（份）", "登记气瓶（只）"])
    for month in _months(period):
        table.rows.append(
            [month, str(certificates.get(month, 0)), str(int(cylinders.get(month) or 0))]
        )
    return table


def media_table(period: Period) -> Table:
    names = dict(db.session.execute(select(Medium.code, Medium.name)).all())
    rows = db.session.execute(
        select(
            RegistrationStat.medium_code,
            RegistrationStat.district_code,
            func.sum(RegistrationStat.cylinders),
        )
        .where(RegistrationStat.month.between(period.first_month, period.last_month))
        .group_by(RegistrationStat.medium_code, RegistrationStat.district_code)
    ).all()
    districts = _districts()
    counts = {(m, d): int(n) for m, d, n in rows}
    shown = [d for d in districts if any(dc == d.code for _m, dc in counts)]
    table = Table(
        "media", "按充装介质登记气瓶（只）", ["充装介质", *[d.name for d in shown], "合计"]
    )
    for medium in sorted({m for m, _d in counts}):
        values = [counts.get((medium, d.code), 0) for d in shown]
        label = f"{names.get(medium, medium)}（{medium}）"
        table.rows.append([label, *map(str, values), str(sum(values))])
    table.rows.sort(key=lambda row: -int(row[-1]))
    return table


def violations_table(period: Period) -> Table:
    names = _district_names()
    rows = db.session.execute(
        select(ViolationStat.district_code, ViolationStat.reason, func.sum(ViolationStat.fillings))
        .where(ViolationStat.month.between(period.first_month, period.last_month))
        .group_by(ViolationStat.district_code, ViolationStat.reason)
    ).all()
    reasons = sorted({r for _d, r, _n in rows if r != ALL_REASONS})
    counts = {(d, r): int(n) for d, r, n in rows}
    table = Table(
        "violations",
        "违规充装（企业平台上报）",
        ["区县", "违规充装（次）", *[VIOLATION_REASON_LABELS.get(r, r) for r in reasons]],
        note="一次充装可有多个原因。",
    )
    codes = sorted({d for d, _r in counts})
    for code in codes:
        table.rows.append(
            [
                _district_label(code, names),
                str(counts.get((code, ALL_REASONS), 0)),
                *[str(counts.get((code, r), 0)) for r in reasons],
            ]
        )
    table.rows.append(
        [
            CITY,
            str(sum(counts.get((c, ALL_REASONS), 0) for c in codes)),
            *[str(sum(counts.get((c, r), 0) for c in codes)) for r in reasons],
        ]
    )
    return table


def violations_by_month(period: Period) -> dict[str, int]:
    return {
        month: int(n)
        for month, n in db.session.execute(
            select(ViolationStat.month, func.sum(ViolationStat.fillings))
            .where(
                ViolationStat.reason == ALL_REASONS,
                ViolationStat.month.between(period.first_month, period.last_month),
            )
            .group_by(ViolationStat.month)
        )
    }


RECENT_VIOLATIONS = 20


def recent_violations_table() -> Table:
    """The newest 违规充装 records themselves (``api_records.violations``, newest first)."""
    from .api_records import violations

    table = Table(
        "recent_violations",
        f"最近 {RECENT_VIOLATIONS} 条违规充装记录",
        ["充装日期", "气瓶档案ID", "充装单位", "充装人员", "违规原因"],
        note="不受日期范围影响；按充装日期倒序。",
    )
    for record in violations(limit=RECENT_VIOLATIONS):
        reasons = "、".join(VIOLATION_REASON_LABELS.get(r, r) for r in record.violation_reasons)
        table.rows.append(
            [
                record.fill_date.isoformat(),
                record.cylinder_id,
                record.filling_unit_name,
                record.filler,
                reasons,
            ]
        )
    return table


def local_time(moment: datetime | None, empty: str = "") -> str:
    """A UTC timestamp as China time text (tables and their exports)."""
    return empty if moment is None else format_china(moment)


def platforms_table() -> Table:
    names = _district_names()
    clients = db.session.scalars(
        select(ApiClient).order_by(ApiClient.active.desc(), ApiClient.last_data_at.desc())
    ).all()
    table = Table(
        "platforms",
        "接入的企业平台",
        ["企业", "区县", "接口账号", "状态", "最近访问", "最近上报数据"],
        note=f"启用 {sum(1 for c in clients if c.active)} 个，共 {len(clients)} 个。",
    )
    for client in clients:
        table.rows.append(
            [
                client.unit.name,
                _district_label(client.unit.district_code or "", names)
                if client.unit.district_code
                else "—",
                client.app_id,
                "启用" if client.active else "停用",
                local_time(client.last_seen_at, "从未"),
                local_time(client.last_data_at, "从未"),
            ]
        )
    return table


TABLE_KEYS = (
    "status",
    "overdue",
    "medians",
    "monthly",
    "media",
    "violations",
    "recent_violations",
    "platforms",
)


def dashboard_tables(period: Period, today: date | None = None) -> dict[str, Table]:
    return {
        "status": status_table(),
        "overdue": overdue_table(today),
        "medians": medians_table(period),
        "monthly": monthly_table(period),
        "media": media_table(period),
        "violations": violations_table(period),
        "recent_violations": recent_violations_table(),
        "platforms": platforms_table(),
    }


def one_table(key: str, period: Period) -> Table:
    """One table by key (exports build only the table asked for)."""
    builders: dict[str, Any] = {
        "status": status_table,
        "overdue": overdue_table,
        "medians": lambda: medians_table(period),
        "monthly": lambda: monthly_table(period),
        "media": lambda: media_table(period),
        "violations": lambda: violations_table(period),
        "recent_violations": recent_violations_table,
        "platforms": platforms_table,
    }
    return builders[key]()
