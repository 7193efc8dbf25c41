"""The city supervision dashboard (监管看板): the read side, one ``Table`` per figure.

Live figures come from the applications and certificates (tens of thousands of rows,
indexed): applications per state, overdue work, certificates per month, connected
platforms. The large ones come from the summary tables of ``summaries``.

Every table is a ``Table`` (title, headers, rows of strings), so the page and its .xlsx
export are built from the same values. ``TABLES`` lists every table with its builder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, literal, select, union_all

from .. import change_workflow, workflow
from ..clock import china_date, china_day_start, china_today, format_china
from ..extensions import db
from ..models import (
    ApiClient,
    Application,
    ApplicationStatus,
    Certificate,
    ChangeKind,
    ChangeRequest,
    ChangeStatus,
    District,
    Medium,
    RegistrationStat,
    StepDurationStat,
    ViolationStat,
)
from .summaries import ALL_REASONS, TIMED_STEPS

CITY = "全市"

# Statuses shown per district (drafts are the applicant's business, not the bureau's).
SHOWN_STATUSES = [s for s in ApplicationStatus if s is not ApplicationStatus.DRAFT]


@dataclass(frozen=True)
class StatusColumn:
    """A column of the status table and a filter of the district list: a status, or
    已撤回 (voided by the applicant's 撤回申请, told apart from the bureau's 作废)."""

    value: str
    label: str


WITHDRAWN = StatusColumn("withdrawn", "已撤回")
STATUS_COLUMNS = [*(StatusColumn(s.value, s.label) for s in SHOWN_STATUSES), WITHDRAWN]


def status_label(application: Application) -> str:
    """The application's status as the supervisor's lists show it (已撤回 told apart)."""
    return WITHDRAWN.label if application.withdrawn_at else application.status.label


VIOLATION_REASON_LABELS = {
    "STATUS_STOPPED": "气瓶已停用",
    "STATUS_SCRAPPED": "气瓶已报废",
    "STATUS_CANCELLED": "气瓶已注销",
    "INSPECTION_OVERDUE": "超期未检",
    "NOT_OWNER": "非本单位气瓶",
    "SERVICE_LIFE_EXCEEDED": "超过设计使用年限",
    "NOT_REGISTERED": "未登记气瓶",
    "MEDIUM_MISMATCH": "充装介质不符",
}


@dataclass(frozen=True)
class Period:
    """Whole months, first to last (China dates): every figure of the dashboard counts the
    same whole months, never a day range on a month's count."""

    first_month: str  # YYYY-MM
    last_month: str

    @property
    def start(self) -> date:
        return date.fromisoformat(f"{self.first_month}-01")

    @property
    def end(self) -> date:
        """The last day of the last month."""
        year, month = map(int, self.last_month.split("-"))
        following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return following - timedelta(days=1)

    @property
    def label(self) -> str:
        if self.first_month == self.last_month:
            return f"{self.first_month}（整月）"
        return f"{self.first_month} 至 {self.last_month}（按整月）"

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[first day 00:00, day after the last day 00:00) in China time, as UTC instants."""
        return china_day_start(self.start), china_day_start(self.end + timedelta(days=1))


def default_period(today: date | None = None) -> Period:
    """The last twelve months, this one included."""
    today = today or china_today()
    first = (
        date(today.year, 1, 1) if today.month == 12 else date(today.year - 1, today.month + 1, 1)
    )
    return Period(first.strftime("%Y-%m"), today.strftime("%Y-%m"))


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
    # Two counts per district and state, each read from an index alone: every application
    # past 草稿, and those withdrawn (a partial index), which count as 已撤回 instead of
    # their state. One query that also grouped by withdrawn_at read every application's
    # row for it: 48 ms of 50,000 applications, against ≈ 10 ms. One statement, so that
    # both counts see the same moment (a withdrawal between two would count twice).
    past_draft = Application.status != ApplicationStatus.DRAFT
    per_state = (Application.district_code, Application.status, func.count())
    rows = db.session.execute(
        union_all(
            select(*per_state, literal(False).label("withdrawn"))
            .where(past_draft)
            .group_by(Application.district_code, Application.status),
            select(*per_state, literal(True))
            .where(past_draft, Application.withdrawn_at.is_not(None))
            .group_by(Application.district_code, Application.status),
        )
    )
    counts: dict[tuple[str, str], int] = {}
    for district_code, status, n, withdrawn in rows:
        column = status.value
        if withdrawn:  # counted in its state too: moved from there to 已撤回
            counts[district_code, column] = counts.get((district_code, column), 0) - n
            column = WITHDRAWN.value
        counts[district_code, column] = counts.get((district_code, column), 0) + n
    table = Table(
        "status",
        "各区县申请状态（当前）",
        ["区县", *[c.label for c in STATUS_COLUMNS], "合计"],
        note="当前状态，不受日期范围影响。已作废：受理、审核或审批驳回；已撤回：申请人在待补正时撤回。",
    )
    totals = [0] * len(STATUS_COLUMNS)
    for district in _districts():
        values = [counts.get((district.code, c.value), 0) for c in STATUS_COLUMNS]
        if not any(values):
            continue
        totals = [a + b for a, b in zip(totals, values, strict=True)]
        table.rows.append([district.name, *map(str, values), str(sum(values))])
    table.rows.append([CITY, *map(str, totals), str(sum(totals))])
    return table


def overdue_table(today: date | None = None) -> Table:
    today = today or china_today()
    # One count per deadline (status IN the steps that have it, deadline < today): each an
    # index-only scan (of the inbox index for 受理; of one leading with the state and the
    # deadline for 审结, ix_applications_overdue_decision), where one query with both
    # deadlines' OR read the whole table (17 ms of 50,000 applications → 1–3 ms).
    counts: dict[str, dict[str, int]] = {}
    for deadline in ("accept_due_on", "decision_due_on"):
        statuses = [s.status for s in workflow.TASKS if s.deadline_field == deadline]
        rows = db.session.execute(
            select(Application.district_code, func.count())
            .where(Application.status.in_(statuses), getattr(Application, deadline) < today)
            .group_by(Application.district_code)
        )
        counts[deadline] = {code: int(n) for code, n in rows}
    by_district = {
        code: (counts["accept_due_on"].get(code, 0), counts["decision_due_on"].get(code, 0))
        for code in counts["accept_due_on"].keys() | counts["decision_due_on"].keys()
    }
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


def changes_monthly_table(period: Period) -> Table:
    """Approved change requests per month (of approval, China date) and district, per kind."""
    start, end = period.utc_bounds()
    rows = db.session.execute(
        select(ChangeRequest.district_code, ChangeRequest.kind, ChangeRequest.approved_at).where(
            ChangeRequest.status == ChangeStatus.APPROVED,
            ChangeRequest.approved_at >= start,
            ChangeRequest.approved_at < end,
        )
    ).all()
    counts: dict[tuple[str, str], dict[ChangeKind, int]] = {}
    for code, kind, approved_at in rows:
        month = china_date(approved_at).strftime("%Y-%m")
        per_kind = counts.setdefault((month, code), {})
        per_kind[kind] = per_kind.get(kind, 0) + 1
    names = _district_names()
    kinds = list(ChangeKind)
    table = Table(
        "changes_monthly",
        "每月变更办结（按区县）",
        ["月份", "区县", *[k.label for k in kinds], "合计"],
        note="已批准的变更申请，按批准日期所在月份计。",
    )
    totals = [0] * len(kinds)
    for (month, code), per_kind in sorted(counts.items()):
        values = [per_kind.get(k, 0) for k in kinds]
        totals = [a + b for a, b in zip(totals, values, strict=True)]
        table.rows.append([month, names.get(code, code), *map(str, values), str(sum(values))])
    table.rows.append([CITY, "", *map(str, totals), str(sum(totals))])
    return table


def overdue_changes_table(today: date | None = None, limit: int = 200) -> Table:
    """Open change requests past the time limit of their open step, most overdue first."""
    today = today or china_today()
    names = _district_names()
    changes = db.session.scalars(
        select(ChangeRequest)
        .where(change_workflow.overdue_clause(today))
        .order_by(ChangeRequest.due_on, ChangeRequest.id)
        .limit(limit)
    ).all()
    table = Table(
        "overdue_changes",
        "超期未办的变更申请",
        ["区县", "申请编号", "类型", "使用单位", "环节", "办理期限"],
        note=f"以 {today.isoformat()} 计，按工作日时限；最多列出{limit}件。",
    )
    for change in changes:
        step = change_workflow.open_step(change)
        table.rows.append(
            [
                names.get(change.district_code, change.district_code),
                change.number or "",
                change.kind.label,
                change.unit_name,
                step.label if step else change.status.label,
                change.due_on.isoformat() if change.due_on else "",
            ]
        )
    return table


def _days(seconds: float | None) -> str:
    """Days to 0.1, rounded here once (half up), from an exact duration."""
    if seconds is None:
        return "—"
    days = Decimal(str(seconds)) / Decimal(86400)
    return str(days.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _histogram_median(buckets: list[tuple[int, int]]) -> float | None:
    """The median of values given as (seconds, how many), like percentile_cont."""
    total = sum(n for _t, n in buckets)
    if not total:
        return None
    wanted = [(total - 1) // 2, total // 2]  # positions of the middle value(s)
    found: list[int] = []
    seen = 0
    for seconds, n in sorted(buckets):
        while len(found) < 2 and wanted[len(found)] < seen + n:
            found.append(seconds)
        seen += n
    return sum(found) / 2.0


def step_medians(period: Period) -> dict[str, dict[str, float]]:
    """Median seconds of each step per district (and ``CITY``), for steps ending in the
    period's months, read from the ``stat_step_days`` histograms of exact durations."""
    rows = db.session.execute(
        select(
            StepDurationStat.step,
            StepDurationStat.district_code,
            StepDurationStat.seconds,
            func.sum(StepDurationStat.applications),
        )
        .where(StepDurationStat.month.between(period.first_month, period.last_month))
        .group_by(StepDurationStat.step, StepDurationStat.district_code, StepDurationStat.seconds)
    ).all()
    buckets: dict[str, dict[str, list[tuple[int, int]]]] = {key: {} for key, *_ in TIMED_STEPS}
    for step, code, seconds, count in rows:
        if step not in buckets:
            continue
        buckets[step].setdefault(code, []).append((seconds, int(count)))
        buckets[step].setdefault(CITY, []).append((seconds, int(count)))
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
        ["区县", *[label for _key, label, _a, _b in TIMED_STEPS]],
        note="按该环节完成月份落在所选月份内的申请计算，精确到 0.1 天；随统计更新。",
    )
    codes = {code for medians in per_step.values() for code in medians} - {CITY}
    for district in _districts():
        if district.code in codes:
            table.rows.append(
                [district.name, *[_days(per_step[k].get(district.code)) for k, *_ in TIMED_STEPS]]
            )
    table.rows.append([CITY, *[_days(per_step[k].get(CITY)) for k, *_ in TIMED_STEPS]])
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
        .where(Certificate.issue_date.between(period.start, period.end))  # whole months
        .group_by(Certificate.issue_date)
    ):
        month = day.strftime("%Y-%m")
        certificates[month] = certificates.get(month, 0) + count
    cylinders = dict(
        db.session.execute(
            select(RegistrationStat.month, func.sum(RegistrationStat.cylinders))
            .where(RegistrationStat.month.between(period.first_month, period.last_month))
            .group_by(RegistrationStat.month)
        )
        .tuples()
        .all()
    )
    table = Table("monthly", "每月发证与登记气瓶", ["月份", "发证数（份）", "登记气瓶（只）"])
    for month in _months(period):
        table.rows.append(
            [month, str(certificates.get(month, 0)), str(int(cylinders.get(month) or 0))]
        )
    return table


def media_table(period: Period) -> Table:
    names = dict(db.session.execute(select(Medium.code, Medium.name)).tuples().all())
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


def violations_monthly_table(period: Period) -> Table:
    """违规充装 per month (the chart's figures, as a table and export)."""
    counts = violations_by_month(period)
    table = Table("violations_monthly", "每月违规充装（次）", ["月份", "违规充装（次）"])
    for month in _months(period):
        table.rows.append([month, str(counts.get(month, 0))])
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
    from ..api_records import violations

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


# Every table of the dashboard, in page order, with its builder; exports build one by key.
Builder = Callable[[Period, date], Table]
TABLES: dict[str, Builder] = {
    "status": lambda period, today: status_table(),
    "overdue": lambda period, today: overdue_table(today),
    "medians": lambda period, today: medians_table(period),
    "monthly": lambda period, today: monthly_table(period),
    "media": lambda period, today: media_table(period),
    "violations": lambda period, today: violations_table(period),
    "violations_monthly": lambda period, today: violations_monthly_table(period),
    "recent_violations": lambda period, today: recent_violations_table(),
    "platforms": lambda period, today: platforms_table(),
    "changes_monthly": lambda period, today: changes_monthly_table(period),
    "overdue_changes": lambda period, today: overdue_changes_table(today),
}
TABLE_KEYS = tuple(TABLES)


def dashboard_tables(period: Period, today: date | None = None) -> dict[str, Table]:
    today = today or china_today()
    return {key: build(period, today) for key, build in TABLES.items()}


def one_table(key: str, period: Period, today: date | None = None) -> Table:
    """One table by key (exports build only the table asked for)."""
    return TABLES[key](period, today or china_today())
