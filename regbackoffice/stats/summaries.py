"""The dashboard's summary tables: the write side (rebuilt by a job, read by ``tables``).

The archive (1,000,000 cylinders) and the filling records (10,000,000) are too large to
group on every page view: ``stat_registrations``, ``stat_violations`` and ``stat_step_days``
are rebuilt by ``refresh_dashboard_stats`` (a job enqueued after each certificate
generation, the worker's periodic sweep and ``flask refresh-stats``), and the page shows
when that last happened.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, literal, select, text

from .. import jobs
from ..clock import CHINA_TZ
from ..extensions import db
from ..models import (
    Application,
    RegistrationStat,
    StatRefresh,
    StepDurationStat,
    ViolationStat,
    utcnow,
)

REFRESH_JOB = "refresh_dashboard_stats"
REFRESH_NAME = "dashboard"
ALL_REASONS = "*"  # the stat_violations row counting violating fillings themselves

# (key, label, start column, end column) of each timed step in ``stat_step_days``.
TIMED_STEPS = [
    ("accept", "提交→受理", "submitted_at", "accepted_at"),
    ("approve", "受理→审批", "accepted_at", "approved_at"),
    ("certify", "审批→发证", "approved_at", "certified_at"),
]
# The paused clock: the seconds a step stood still while 待补正 are not its duration.
PAUSED_SECONDS = {"accept": "accept_paused_seconds", "approve": "decision_paused_seconds"}


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
    """Histogram of each step's exact duration (seconds) per month it ended and district."""
    db.session.execute(delete(StepDurationStat))
    if db.engine.dialect.name == "postgresql":
        for key, _label, start, end in TIMED_STEPS:
            paused = PAUSED_SECONDS.get(key, "0")
            db.session.execute(
                text(
                    f"""
                    INSERT INTO stat_step_days (month, district_code, step, seconds, applications)
                    SELECT to_char({end} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'),
                      district_code, :step,
                      CAST(floor(extract(epoch FROM {end} - {start})) AS integer) - {paused},
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
    for key, _label, start_col, end_col in TIMED_STEPS:
        start, end = getattr(Application, start_col), getattr(Application, end_col)
        paused_col = getattr(Application, PAUSED_SECONDS[key]) if key in PAUSED_SECONDS else None
        for code, began, ended, paused in db.session.execute(
            select(
                Application.district_code,
                start,
                end,
                paused_col if paused_col is not None else literal(0),
            ).where(start.is_not(None), end.is_not(None))
        ):
            month = ended.astimezone(CHINA_TZ).strftime("%Y-%m")
            seconds = int((ended - began).total_seconds()) - (paused or 0)
            bucket = (month, code, key, seconds)
            counts[bucket] = counts.get(bucket, 0) + 1
    db.session.add_all(
        StepDurationStat(month=m, district_code=d, step=k, seconds=t, applications=n)
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
