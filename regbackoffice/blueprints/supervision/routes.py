"""监管看板: the city supervisor's read-only dashboard, drill-down and .xlsx exports."""

from __future__ import annotations

import io
import re
from datetime import date

from flask import abort, render_template, request, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy import Select

from ... import audit, workflow
from ...access import roles_required, visible
from ...clock import china_today
from ...exports import XLSX_MIMETYPE, xlsx_bytes
from ...extensions import db
from ...models import Application, ApplicationStatus, District, Role
from ...stats import summaries
from ...stats import tables as figures
from ...svg_charts import bar_chart
from . import bp

APPLICATIONS_PER_PAGE = 50
EXPORT_ROW_CAP = 100_000


MONTH = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


def _parse_month(name: str, label: str, notes: list[str]) -> str | None:
    """A month from ?start= / ?end= (YYYY-MM; a YYYY-MM-DD is widened to its month, saying so)."""
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    match = MONTH.match(raw)
    try:
        if match is None:
            raise ValueError
        date.fromisoformat(f"{match[1]}-{match[2]}-{match[3] or '01'}")
    except ValueError:
        notes.append(f"{label}“{raw[:20]}”不是有效月份，应为 YYYY-MM；已使用默认范围。")
        return None
    month = f"{match[1]}-{match[2]}"
    if match[3]:
        notes.append(f"看板按整月统计：{label}{raw}已按整月计为{month}。")
    return month


def _period() -> tuple[figures.Period, list[str]]:
    """Whole months from ?start=&end= (YYYY-MM), defaulting to the last 12 months."""
    notes: list[str] = []
    default = figures.default_period()
    first = _parse_month("start", "起始月份", notes)
    last = _parse_month("end", "截止月份", notes)
    if any("不是有效月份" in note for note in notes):
        return default, notes
    period = figures.Period(first or default.first_month, last or default.last_month)
    if period.first_month > period.last_month:
        return default, ["起始月份晚于截止月份；已使用默认范围。"]
    if (period.end - period.start).days > 366 * 5:
        return default, ["统计范围不能超过五年；已使用默认范围。"]
    return period, notes


def _charts(tables: dict[str, figures.Table], period: figures.Period) -> dict[str, object]:
    monthly = tables["monthly"]
    months = [row[0] for row in monthly.rows]
    violations = tables["violations_monthly"]
    status = tables["status"]
    district_rows = [row for row in status.rows if row[0] != figures.CITY]
    open_statuses = [
        (i + 1, s.label)
        for i, s in enumerate(figures.SHOWN_STATUSES)
        if s
        in (
            ApplicationStatus.SUBMITTED,
            ApplicationStatus.ACCEPTED,
            ApplicationStatus.REVIEWED,
            ApplicationStatus.APPROVED,
        )
    ]
    return {
        "monthly": bar_chart(
            [m[2:] for m in months],
            [
                ("发证数", [int(row[1]) for row in monthly.rows]),
                ("登记气瓶", [int(row[2]) for row in monthly.rows]),
            ],
            title="每月发证与登记气瓶",
        ),
        "violations": bar_chart(
            [m[2:] for m in months],
            [("违规充装", [int(row[1]) for row in violations.rows])],
            title="每月违规充装",
        ),
        "status": bar_chart(
            [row[0] for row in district_rows],
            [(label, [int(row[i]) for row in district_rows]) for i, label in open_statuses],
            title="各区县在办申请",
        ),
    }


@bp.route("/")
@roles_required(Role.SUPERVISOR)
def dashboard() -> str:
    period, errors = _period()
    tables = figures.dashboard_tables(period)
    districts = figures.district_codes_by_name()
    return render_template(
        "supervision/dashboard.html",
        tables=tables,
        period=period,
        errors=errors,
        charts=_charts(tables, period),
        refreshed_at=summaries.refreshed_at(),
        district_codes=districts,
        city=figures.CITY,
        statuses=figures.STATUS_COLUMNS,
    )


def _xlsx_response(filename: str, content: bytes) -> ResponseReturnValue:
    return send_file(
        io.BytesIO(content), mimetype=XLSX_MIMETYPE, as_attachment=True, download_name=filename
    )


@bp.route("/export/<key>.xlsx")
@roles_required(Role.SUPERVISOR)
def export(key: str) -> ResponseReturnValue:
    if key not in figures.TABLE_KEYS:
        abort(404)
    period, _errors = _period()
    table = figures.one_table(key, period)
    audit.record(
        "export",
        object_type="dashboard",
        object_id=key,
        table=table.title,
        start=period.first_month,
        end=period.last_month,
        rows=len(table.rows),
    )
    filename = f"{key}-{period.first_month}-{period.last_month}.xlsx"
    return _xlsx_response(filename, xlsx_bytes(table.title, table.headers, table.rows))


# --- drill-down: one district's applications ----------------------------------------


def _district_query(code: str) -> Select[tuple[Application]]:
    """Applications of one district, filtered by ?status= and ?overdue=1 (bad values: 400)."""
    query = visible(Application).where(
        Application.district_code == code, Application.status != ApplicationStatus.DRAFT
    )
    raw_status = request.args.get("status", "")
    withdrawn = Application.withdrawn_at.is_not(None)
    if raw_status == figures.WITHDRAWN.value:
        query = query.where(Application.status == ApplicationStatus.VOIDED, withdrawn)
    elif raw_status:
        try:
            status = ApplicationStatus(raw_status)
        except ValueError:
            abort(400, description=f"未知的申请状态“{raw_status[:20]}”。")
        query = query.where(Application.status == status)
        if status is ApplicationStatus.VOIDED:  # the bureau's 作废; 已撤回 is its own filter
            query = query.where(~withdrawn)
    if request.args.get("overdue") == "1":
        query = query.where(workflow.overdue_clause(china_today()))
    return query.order_by(Application.submitted_at.desc().nulls_last(), Application.id.desc())


APPLICATION_HEADERS = [
    "申请编号",
    "使用单位",
    "状态",
    "气瓶数",
    "提交时间",
    "受理期限",
    "审结期限",
    "受理时间",
    "审批时间",
    "发证时间",
    "使用登记证编号",
]


def _application_row(application: Application) -> list[str]:
    local = figures.local_time
    return [
        application.number or "",
        application.unit_name,
        figures.status_label(application),
        str(application.item_count),
        local(application.submitted_at),
        application.accept_due_on.isoformat() if application.accept_due_on else "",
        application.decision_due_on.isoformat() if application.decision_due_on else "",
        local(application.accepted_at),
        local(application.approved_at),
        local(application.certified_at),
        application.certificate_no or "",
    ]


@bp.route("/districts/<code>")
@roles_required(Role.SUPERVISOR)
def district(code: str) -> str:
    district = db.get_or_404(District, code)
    page = db.paginate(_district_query(code), per_page=APPLICATIONS_PER_PAGE, error_out=False)
    today = china_today()
    return render_template(
        "supervision/district.html",
        district=district,
        page=page,
        rows=[(a, _application_row(a), workflow.is_overdue(a, today)) for a in page.items],
        headers=APPLICATION_HEADERS,
        statuses=figures.STATUS_COLUMNS,
        status=request.args.get("status", ""),
        overdue=request.args.get("overdue") == "1",
    )


@bp.route("/districts/<code>/export.xlsx")
@roles_required(Role.SUPERVISOR)
def district_export(code: str) -> ResponseReturnValue:
    district = db.get_or_404(District, code)
    applications = db.session.scalars(_district_query(code).limit(EXPORT_ROW_CAP)).all()
    audit.record(
        "export",
        object_type="district_applications",
        object_id=code,
        status=request.args.get("status", ""),
        overdue=request.args.get("overdue") == "1",
        rows=len(applications),
    )
    return _xlsx_response(
        f"applications-{code}.xlsx",
        xlsx_bytes(
            f"{district.name}申请", APPLICATION_HEADERS, [_application_row(a) for a in applications]
        ),
    )
