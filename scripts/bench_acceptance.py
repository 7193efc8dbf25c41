"""Benchmark: the 审核附件 pager and the 待办事项 inbox at production scale (issue 4).

Builds (once) a PostgreSQL database with 1,000,000 archive cylinders, one application of
10,000 cylinders with 2 photos each, and 50,000 applications; then times pages through the
WSGI app in-process (server time, no network) and prints the medians.

    .venv/bin/python scripts/bench_acceptance.py [--database-url URL] [--runs 50]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_common import bench_app, ensure_database, login, median_ms  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/regbo_bench_acceptance"
PASSWORD = "bench-pass-123"


def build(app) -> None:
    from flask_migrate import upgrade

    from regbackoffice import accounts
    from regbackoffice.benchdata import bench_unit, generate_cylinders
    from regbackoffice.extensions import db
    from regbackoffice.models import Role

    with app.app_context():
        upgrade()
        print("archive: 1,000,000 cylinders …", flush=True)
        generate_cylinders(1_000_000)
        unit = bench_unit()
        applicant = accounts.create_user("bench-applicant", PASSWORD, Role.APPLICANT, unit=unit)
        accounts.create_user("bench-accept", PASSWORD, Role.ACCEPTOR, district_code="500112")
        db.session.commit()
        print("applications: 50,000 + one of 10,000 cylinders …", flush=True)
        params = {"unit": unit.id, "user": applicant.id, "name": unit.name}
        db.session.execute(
            sa.text(
                """
                INSERT INTO applications (number, status, unit_id, district_code, unit_name,
                  safety_department, contact_name, contact_phone, credit_code, address,
                  created_by_id, created_at, submitted_at, accept_due_on, voided_at,
                  void_reason, item_count, version_id)
                SELECT 'BQ' || lpad(n::text, 8, '0'),
                  CASE WHEN n % 5 = 0 THEN 'submitted' ELSE 'voided' END,
                  :unit, (ARRAY['500112','500105','500103','500106'])[1 + n % 4], :name || n,
                  '安全部', '联系人', '023-1', '', '', :user, now(),
                  now() - (n % 30) * interval '1 day',
                  CURRENT_DATE + (n % 40) - 10,
                  CASE WHEN n % 5 = 0 THEN NULL ELSE now() END,
                  CASE WHEN n % 5 = 0 THEN NULL ELSE '基准' END, 20, 1
                FROM generate_series(1, 50000) AS n
                """
            ),
            params,
        )
        app_id = db.session.execute(
            sa.text(
                """
                INSERT INTO applications (number, status, unit_id, district_code, unit_name,
                  safety_department, contact_name, contact_phone, credit_code, address,
                  created_by_id, created_at, submitted_at, accept_due_on, item_count, version_id)
                VALUES ('BQ-BIG', 'submitted', :unit, '500112', :name, '安全部', '联系人',
                  '023-1', '', '', :user, now(), now(), CURRENT_DATE + 5, 10000, 1)
                RETURNING id
                """
            ),
            params,
        ).scalar_one()
        db.session.execute(
            sa.text(
                """
                INSERT INTO application_items (application_id, row_no, variety_code, product_no,
                  medium_code, manufacturer, manufacture_month, nominal_pressure_mpa, volume_l,
                  last_inspection_date, next_inspection_month, identity_key, live_identity_key,
                  audit_verdict, excluded, attachment_count, audit_revision)
                SELECT :app, n + 1, '2320', 'BIG' || n, 'G13', '基准大批量制造厂', '2024-01',
                  2.1, 35.5, DATE '2024-02-01', '2028-02',
                  '基准大批量制造厂' || chr(31) || 'BIG' || n || chr(31) || '2024-01',
                  '基准大批量制造厂' || chr(31) || 'BIG' || n || chr(31) || '2024-01',
                  CASE WHEN n < 5000 THEN 'correct' ELSE 'pending' END, false, 2, 0
                FROM generate_series(1, 10000) AS n
                """
            ),
            {"app": app_id},
        )
        db.session.execute(
            sa.text(
                """
                INSERT INTO attachments (item_id, kind, storage_key, thumbnail_key, sha256,
                  content_type, width, height, size_bytes, original_name, uploaded_by_id,
                  uploaded_at)
                SELECT i.id, k.kind, 'photos/00/bench.jpg', 'thumbs/00/bench.jpg', repeat('0', 64),
                  'image/jpeg', 64, 48, 1000, '', :user, now()
                FROM application_items i
                CROSS JOIN (VALUES ('stamp'), ('supervision_certificate')) AS k(kind)
                WHERE i.application_id = :app
                """
            ),
            {"app": app_id, "user": applicant.id},
        )
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()


def add_readings(app) -> None:
    """机器预读 (issue 21) of the big application, once: 94 % of its photos read (certificates
    mostly 一致, a few 不一致; stamps mostly 未识别), 6 % still waiting, as after a real run."""
    from regbackoffice.extensions import db

    with app.app_context():
        has_table = db.session.execute(sa.text("SELECT to_regclass('photo_readings')")).scalar()
        if has_table is None:
            return  # a commit before issue 21: no readings to store
        if db.session.execute(sa.text("SELECT EXISTS (SELECT 1 FROM photo_readings)")).scalar():
            return
        print("photo readings: 18,800 …", flush=True)
        db.session.execute(
            sa.text(
                """
                INSERT INTO photo_readings (attachment_id, sha256, engine, verdict, confidence,
                  product_no_read, read_at)
                SELECT a.id, a.sha256, 'bench',
                  CASE WHEN a.kind = 'stamp' THEN
                         CASE WHEN a.id % 5 = 0 THEN 'match' ELSE 'unread' END
                       WHEN a.id % 97 = 0 THEN 'mismatch'
                       WHEN a.id % 9 = 0 THEN 'unread' ELSE 'match' END,
                  90, i.product_no, now()
                FROM attachments a
                JOIN application_items i ON i.id = a.item_id
                JOIN applications p ON p.id = i.application_id
                WHERE p.number = 'BQ-BIG' AND a.id % 17 <> 0
                """
            )
        )
        try:  # since migration 0023 each cylinder keeps its verdict, written with the readings
            from regbackoffice.prereading import refresh_verdicts
        except ImportError:
            pass
        else:
            big = db.session.execute(
                sa.text("SELECT id FROM applications WHERE number = 'BQ-BIG'")
            ).scalar_one()
            refresh_verdicts(application_id=big)
        db.session.commit()
        # As autovacuum would in production after such a bulk write (visibility map, stats).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("application_items", "attachments", "photo_readings"):
                conn.execute(sa.text(f"VACUUM ANALYZE {table}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("REGBO_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    fresh = ensure_database(args.database_url)
    app = bench_app(args.database_url)
    if fresh:
        build(app)
    add_readings(app)
    with app.app_context():
        from regbackoffice.extensions import db

        big = db.session.execute(
            sa.text("SELECT id FROM applications WHERE number = 'BQ-BIG'")
        ).scalar_one()
    client = app.test_client()
    login(client, "bench-accept", PASSWORD)

    results = {
        "pager, page 500 of 1,000 (10 cylinders, 20 photos)": median_ms(
            client, f"/bureau/applications/{big}/audit?page=500&size=10", args.runs
        ),
        "pager, page 500, 不一致 first (机器预读 order)": median_ms(
            client, f"/bureau/applications/{big}/audit?page=500&size=10&order=machine", args.runs
        ),
        "pager, only 未识别, page 50": median_ms(
            client, f"/bureau/applications/{big}/audit?page=50&size=10&machine=unread", args.runs
        ),
        "inbox, 受理 tasks, first page (50,000 applications)": median_ms(
            client, "/inbox", args.runs
        ),
        "inbox, search by unit name": median_ms(client, "/inbox?task=accept&q=BENCH", args.runs),
    }
    for name, value in results.items():
        print(f"{name}: median {value:.1f} ms over {args.runs} runs")


if __name__ == "__main__":
    main()
