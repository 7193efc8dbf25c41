"""Benchmark: the 气瓶档案 list at city scale (1,000,000 cylinders of one unit).

Builds (once) a PostgreSQL database with 1,000,000 archive cylinders (``bench-data``: one
unit of 500112, so the unit's, the district's and the city's lists each hold all of them),
then times list pages, a deep keyset page, filters, search, one cylinder's page and an
export through the WSGI app in-process (server time, no network) and prints the medians.

    .venv/bin/python scripts/bench_archive.py [--database-url URL] [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from html import unescape
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_common import bench_app, ensure_database, login, median_ms  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/regbo_bench_archive"
PASSWORD = "bench-pass-123"
USERS = ("bench-archive-unit", "bench-archive-district", "bench-archive-city")


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
        accounts.create_user(USERS[0], PASSWORD, Role.APPLICANT, unit=unit)
        accounts.create_user(USERS[1], PASSWORD, Role.ACCEPTOR, district_code="500112")
        accounts.create_user(USERS[2], PASSWORD, Role.SUPERVISOR)
        db.session.commit()
        # As autovacuum would in production: statistics and the visibility map (so that
        # index-only scans, the capped counts, need not visit the table).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE cylinders"))


def deep_cursor(client, url: str) -> str:
    """The 下一页 link of ``url``."""
    html = client.get(url).get_data(as_text=True)
    return unescape(re.search(r'rel="next" href="([^"#]+)"', html)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("REGBO_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    fresh = ensure_database(args.database_url)
    app = bench_app(args.database_url)
    if fresh:
        build(app)
    with app.app_context():
        from regbackoffice.extensions import db

        # A cursor near the end of the list: the row 999,950th in (产品编号, ID) order.
        last = db.session.execute(
            sa.text("SELECT id FROM cylinders ORDER BY product_no DESC, id DESC OFFSET 50 LIMIT 1")
        ).scalar_one()
        from regbackoffice import cylinder_archive
        from regbackoffice.models import Cylinder

        cursor = cylinder_archive.encode_cursor(db.session.get_one(Cylinder, last))
    results = {}
    for username in USERS:
        client = app.test_client()
        login(client, username, PASSWORD)
        scope = username.rsplit("-", 1)[1]
        pages = {
            "first page": "/archive/",
            "page near the end (keyset)": f"/archive/?after={cursor}",
            "停用 (2 %)": "/archive/?status=stopped",
            "报废 (1 %)": "/archive/?status=scrapped",
            "已超期": "/archive/?due=overdue",
            "search 产品编号 prefix": "/archive/?q=BX00000012345",
            "search 单位内编号 exact": "/archive/?q=NB777777",
        }
        for name, url in pages.items():
            results[f"{scope}: {name}"] = median_ms(client, url, args.runs)
        if scope == "city":
            results["city: next page of 报废"] = median_ms(
                client, deep_cursor(client, "/archive/?status=scrapped"), args.runs
            )
            results["city: one cylinder's page"] = median_ms(
                client, f"/archive/cylinders/{last}", args.runs
            )
            for label, url in (
                ("报废 (≈10,300 rows)", "/archive/export.xlsx?status=scrapped"),
                ("已超期 (capped at 20,000 rows)", "/archive/export.xlsx?due=overdue"),
            ):
                started = time.perf_counter()
                response = client.get(url)
                assert response.status_code == 200
                size = len(response.data)
                results[f"city: export {label}, {size // 1024} KB, once"] = (
                    time.perf_counter() - started
                ) * 1000
    for name, value in results.items():
        print(f"{name}: median {value:.1f} ms")


if __name__ == "__main__":
    main()
