"""Benchmark: the city supervision dashboard (监管看板) at production scale (issue 7).

Builds (once) a PostgreSQL database with 1,000,000 archive cylinders (``flask bench-data``),
10,000,000 filling records (``flask bench-fillings``; 1 in 100 turned into a 违规充装) and
50,000 applications in every state with realistic step times; rebuilds the summary tables
(``stats.summaries.refresh_dashboard_stats``, timed) and times the dashboard page through the WSGI
app in-process (server time, no network), printing the medians.

    .venv/bin/python scripts/bench_dashboard.py [--database-url URL] [--runs 30]
        [--cylinders 1000000] [--fillings 10000000] [--applications 50000]

Sizes only matter when the database is built (the first run with that URL).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_common import bench_app, ensure_database, login, median_ms  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/regbo_bench_dashboard"
PASSWORD = "bench-pass-123"


# Applications in every state; step times vary with n, all in the last 400 days.
_APPLICATIONS_SQL = """
INSERT INTO applications (number, status, unit_id, district_code, unit_name,
  safety_department, contact_name, contact_phone, credit_code, address, created_by_id,
  created_at, submitted_at, accept_due_on, decision_due_on, audit_completed_at,
  audit_completed_by_id, accepted_at, accepted_by_id, reviewed_at, reviewed_by_id,
  approved_at, approved_by_id, certified_at, certificate_no, voided_at, void_reason,
  item_count, version_id)
SELECT 'BD' || lpad(n::text, 8, '0'), s.status, :unit,
  (ARRAY['500112','500105','500103','500106','500107','500108'])[1 + n % 6],
  :name || n, '安全部', '联系人', '023-1', '', '', :user, t.sub, t.sub,
  (t.sub + interval '7 days')::date,
  CASE WHEN s.rank >= 2 THEN (t.acc + interval '21 days')::date END,
  CASE WHEN s.rank >= 2 THEN t.acc END, CASE WHEN s.rank >= 2 THEN :user END,
  CASE WHEN s.rank >= 2 THEN t.acc END, CASE WHEN s.rank >= 2 THEN :user END,
  CASE WHEN s.rank >= 3 THEN t.rev END, CASE WHEN s.rank >= 3 THEN :user END,
  CASE WHEN s.rank >= 4 THEN t.apr END, CASE WHEN s.rank >= 4 THEN :user END,
  CASE WHEN s.rank >= 5 THEN t.cer END, CASE WHEN s.rank >= 5 THEN 'BDC' || n END,
  CASE WHEN s.rank = 0 THEN t.sub END, CASE WHEN s.rank = 0 THEN '基准' END,
  20, 1
FROM generate_series(1, :count) AS n
CROSS JOIN LATERAL (
  SELECT now() - (n % 400) * interval '1 day' - interval '20 days' AS sub) AS b
CROSS JOIN LATERAL (
  SELECT b.sub AS sub,
    b.sub + (1 + n % 4) * interval '1 day' AS acc,
    b.sub + (3 + n % 6) * interval '1 day' AS rev,
    b.sub + (5 + n % 9) * interval '1 day' AS apr,
    b.sub + (6 + n % 11) * interval '1 day' AS cer) AS t
CROSS JOIN LATERAL (
  SELECT CASE
    WHEN n % 20 = 0 THEN 'voided' WHEN n % 20 = 1 THEN 'submitted'
    WHEN n % 20 = 2 THEN 'accepted' WHEN n % 20 = 3 THEN 'reviewed'
    WHEN n % 20 = 4 THEN 'approved' ELSE 'certified' END AS status,
  CASE
    WHEN n % 20 = 0 THEN 0 WHEN n % 20 = 1 THEN 1 WHEN n % 20 = 2 THEN 2
    WHEN n % 20 = 3 THEN 3 WHEN n % 20 = 4 THEN 4 ELSE 5 END AS rank) AS s
"""

_CERTIFICATES_SQL = """
INSERT INTO certificates (application_id, number, district_code, year, serial, issue_date,
  authority, cylinder_count, issued_by_id, created_at, render_state, render_attempts,
  print_count)
SELECT a.id, a.certificate_no, a.district_code, 2026, a.id, (a.certified_at)::date,
  '基准登记机关', 20, :user, a.certified_at, 'queued', 0, 0
FROM applications a WHERE a.status = 'certified' AND a.number LIKE 'BD%'
"""


def build(app, cylinders: int, fillings: int, applications: int) -> None:
    from flask_migrate import upgrade

    from regbackoffice import accounts
    from regbackoffice.benchdata import bench_unit, generate_cylinders, generate_fillings
    from regbackoffice.extensions import db
    from regbackoffice.models import Role

    with app.app_context():
        upgrade()
        print(f"archive: {cylinders:,} cylinders …", flush=True)
        print(f"  {generate_cylinders(cylinders):.0f} s", flush=True)
        print(f"fillings: {fillings:,} records …", flush=True)
        print(f"  {generate_fillings(fillings):.0f} s", flush=True)
        started = time.perf_counter()
        db.session.execute(
            sa.text(
                "UPDATE filling_records SET violation = true,"
                " violation_reasons = CAST(CASE WHEN id % 200 = 0"
                ' THEN \'["STATUS_STOPPED", "INSPECTION_OVERDUE"]\''
                " ELSE '[\"INSPECTION_OVERDUE\"]' END AS json)"
                " WHERE id % 100 = 0"
            )
        )
        db.session.commit()
        print(f"  1 in 100 marked 违规充装: {time.perf_counter() - started:.0f} s", flush=True)
        unit = bench_unit()
        user = accounts.create_user("bench-applicant", PASSWORD, Role.APPLICANT, unit=unit)
        accounts.create_user("bench-city", PASSWORD, Role.SUPERVISOR)
        db.session.commit()
        print(f"applications: {applications:,} …", flush=True)
        params = {"unit": unit.id, "user": user.id, "name": unit.name, "count": applications}
        db.session.execute(sa.text(_APPLICATIONS_SQL), params)
        db.session.execute(sa.text(_CERTIFICATES_SQL), {"user": user.id})
        db.session.commit()
        db.session.commit()
        # What autovacuum does in production after bulk loads: statistics, and the visibility
        # map that lets the per-state counts use an index-only scan.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("REGBO_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--cylinders", type=int, default=1_000_000)
    parser.add_argument("--fillings", type=int, default=10_000_000)
    parser.add_argument("--applications", type=int, default=50_000)
    args = parser.parse_args()

    fresh = ensure_database(args.database_url)
    app = bench_app(args.database_url)
    if fresh:
        build(app, args.cylinders, args.fillings, args.applications)
    with app.app_context():
        from regbackoffice.extensions import db
        from regbackoffice.stats.summaries import refresh_dashboard_stats

        started = time.perf_counter()
        refresh_dashboard_stats()
        refresh_seconds = time.perf_counter() - started
        sizes = {
            table: db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in (
                "cylinders",
                "filling_records",
                "applications",
                "stat_registrations",
                "stat_violations",
            )
        }
    print(", ".join(f"{t}: {n:,}" for t, n in sizes.items()))
    print(f"refresh_dashboard_stats (summary rebuild): {refresh_seconds:.1f} s")

    client = app.test_client()
    login(client, "bench-city", PASSWORD)
    results = {
        "dashboard, default range (last 12 months)": median_ms(client, "/supervision/", args.runs),
        "dashboard, 5-year range": median_ms(
            client, "/supervision/?start=2022-01&end=2026-12", args.runs
        ),
        "drill-down, one district's applications, first page": median_ms(
            client, "/supervision/districts/500112", args.runs
        ),
        "export, median days per step (.xlsx)": median_ms(
            client, "/supervision/export/medians.xlsx", max(5, args.runs // 3)
        ),
    }
    for name, value in results.items():
        print(f"{name}: median {value:.1f} ms over {args.runs} runs")


if __name__ == "__main__":
    main()
