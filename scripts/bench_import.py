"""Benchmark: the Excel import (parse, validate, store) against a large archive.

    scripts/bench import [--rows 10000] [--runs 5] [--archive 1000000] [--also-rows 100000]
                         [--refused 100000]

Uses its own PostgreSQL database (REGBO_BENCH_DATABASE_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/regbo_bench_apps), created and migrated if
missing and filled with synthetic archive cylinders (``flask bench-data``) up to --archive.
Each run imports a fresh file through the background job path (``run_import_job``: read
from storage, check, parse, validate every row, look up the archive and the live
applications, insert, commit), then removes what it added. Also times a bare openpyxl
``read_only`` parse and a bare calamine read of the same file. Prints a JSON summary with
the median and the peak RSS of the import.

``--refused N`` adds one import of an N-row file in which every row is refused (1 % already
registered, the rest 超期未检), then builds its 下载错误数据 workbook from the stored refused
rows (``refused.error_file``, as the download does): the wall time and peak RSS of both.

Each import, and each bare read, runs in a child forked from the benchmark process (as rq
forks a work horse per job): its peak RSS (``ru_maxrss`` of the child) is the memory of
one import, from the app already loaded (Flask, SQLAlchemy: counted, they are shared at
the fork) to its commit, not polluted by the file's building or the bare reads.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import platform
import resource
import statistics
import sys
import tempfile
import time

import sqlalchemy as sa
from bench_common import ensure_database
from openpyxl import Workbook, load_workbook

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/regbo_bench_apps"


def build_file(rows: int, tag: str, archive_hits: int, overdue: int = 0) -> bytes:
    """A template-layout file with mixed cell types; ``archive_hits`` rows are already
    registered (they must fail), the rest are new cylinders; the last ``overdue`` rows are
    refused too (下次检验日期 past: 超期未检), for the memory of the refused rows."""
    from regbackoffice.benchdata import BENCH_MANUFACTURER
    from regbackoffice.imports.template import HEADERS

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("气瓶信息")
    ws.append(list(HEADERS))
    for n in range(rows):
        if n < archive_hits:
            k = n * 97 + 1  # an existing synthetic archive cylinder (see benchdata._ROW_SQL)
            product, maker = f"BX{k:012d}", BENCH_MANUFACTURER
            month = f"{2015 + k % 10}-{1 + k % 12:02d}"
        else:
            product, maker, month = f"{tag}{n:07d}", "基准测试气瓶制造厂", "2022-05"
        ws.append(
            [
                "2320" if n % 3 else "焊接气瓶",
                product,
                "G13" if n % 2 else "液化石油气",
                maker,
                month,
                2.1 if n % 2 else "2.10",
                35.5,
                "2024-05-20",
                "2020-01" if n >= rows - overdue else "2028-05" if n % 4 else "2028年5月",
                f"NB{n}",
                "二维码",
                f"https://trace.example.com/q/{product}",
            ]
        )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def in_child(function, *args):
    """Run ``function(*args)`` in a forked child; return (its result, the child's peak RSS
    in MB). The database pool is not shared with the child (SQLAlchemy's fork recipe)."""
    from regbackoffice.extensions import db

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        try:
            db.engine.dispose(close=False)
            outcome = ("ok", function(*args))
        except BaseException as exc:  # reported to the parent, which raises it
            outcome = ("error", repr(exc))
        payload = pickle.dumps((outcome, _peak_rss_mb()))
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as source:
        (status, value), peak = pickle.loads(source.read())
    os.waitpid(pid, 0)
    if status != "ok":
        raise RuntimeError(f"child failed: {value}")
    return value, peak


def bare_openpyxl_parse(data: bytes) -> float:
    started = time.perf_counter()
    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    for _row in wb.worksheets[0].iter_rows(values_only=True):
        pass
    wb.close()
    return time.perf_counter() - started


def bare_calamine_parse(data: bytes) -> float:
    """The read the import itself starts from: calamine, every cell of the first sheet."""
    from python_calamine import CalamineWorkbook

    started = time.perf_counter()
    CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0).to_python()
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> dict:
    from regbackoffice import create_app, storage
    from regbackoffice.benchdata import bench_unit, generate_cylinders
    from regbackoffice.extensions import db
    from regbackoffice.imports.job import run_import_job
    from regbackoffice.models import Application, Cylinder, ImportJob, ImportStatus, Role, User

    url = os.environ.get("REGBO_BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("REGBO_SECRET_KEY", "benchmark-only-key")
    ensure_database(url)
    storage_dir = tempfile.mkdtemp(prefix="regbo-bench-")
    app = create_app(
        {
            "REGBO_ENV": "testing",
            "SECRET_KEY": "bench",
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": None,
            "STORAGE_DIR": storage_dir,
        }
    )
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        have = db.session.scalar(sa.select(sa.func.count()).select_from(Cylinder))
        if have < args.archive:
            print(f"filling the archive: {args.archive - have} cylinders …", file=sys.stderr)
            generate_cylinders(args.archive - have)
        unit = bench_unit()
        user = db.session.scalar(sa.select(User).where(User.username == "bench-applicant"))
        if user is None:
            from regbackoffice import accounts

            user = accounts.create_user(
                "bench-applicant", "bench-password-1", Role.APPLICANT, unit=unit
            )
        db.session.commit()
        unit_id, user_id = unit.id, user.id
        archive_rows = db.session.scalar(sa.select(sa.func.count()).select_from(Cylinder))

        def built(rows: int, run_no: int, key: str, refused_percent: int) -> tuple[float, float]:
            overdue = rows * refused_percent // 100
            data = build_file(rows, f"R{run_no}X", archive_hits=rows // 100, overdue=overdue)
            storage.save(key, data)
            return round(len(data) / 2**20, 2), _peak_rss_mb()

        def bare_read(key: str, reader) -> float:
            return reader(storage.read(key))

        def imported(job_id: int) -> float:
            started = time.perf_counter()
            run_import_job(job_id)
            return time.perf_counter() - started

        def error_file(job_id: int, path: str) -> tuple[float, float]:
            """下载错误数据 as the route builds it; returns (seconds, MB), the file kept."""
            import shutil

            from regbackoffice.imports import refused

            started = time.perf_counter()
            with refused.error_file(job_id) as made, open(path, "wb") as kept:
                elapsed = time.perf_counter() - started
                shutil.copyfileobj(made, kept)
            return elapsed, round(os.path.getsize(path) / 2**20, 2)

        def error_file_rows(path: str) -> int:
            from python_calamine import CalamineWorkbook

            sheet = CalamineWorkbook.from_path(path).get_sheet_by_index(0)
            return sum(1 for _ in sheet.iter_rows()) - 1  # the header

        def timed_import(
            rows: int, run_no: int, refused_percent: int | None = None, errors: bool = False
        ) -> dict:
            from regbackoffice import applications
            from regbackoffice.models import Unit

            if refused_percent is None:
                refused_percent = args.refused_percent
            key = storage.new_key("imports", ".xlsx")
            (file_mb, _), _ = in_child(built, rows, run_no, key, refused_percent)
            bare, bare_rss = in_child(bare_read, key, bare_openpyxl_parse)
            calamine, calamine_rss = in_child(bare_read, key, bare_calamine_parse)
            user = db.session.get(User, user_id)
            application = applications.create_application(db.session.get(Unit, unit_id), user)
            job = ImportJob(
                application_id=application.id,
                created_by_id=user.id,
                total_rows=rows,
                file_key=key,
                original_name="bench.xlsx",
            )
            db.session.add(job)
            db.session.commit()
            job_id, application_id = job.id, application.id
            db.session.remove()
            load_before = os.getloadavg()[0]
            elapsed, import_rss = in_child(imported, job_id)
            job = db.session.get(ImportJob, job_id)
            assert job.status is ImportStatus.DONE, job.message
            result = {"imported": job.imported_count, "failed": job.failed_count}
            db.session.remove()
            extra = {}
            if errors:
                path = os.path.join(storage_dir, f"errors-{job_id}.xlsx")
                (seconds, mb), error_rss = in_child(error_file, job_id, path)
                extra = {
                    "error_file_seconds": round(seconds, 3),
                    "error_file_peak_rss_mb": error_rss,
                    "error_file_mb": mb,
                    "error_file_rows": in_child(error_file_rows, path)[0],
                }
                os.remove(path)
            # Clean up, so every run meets the same database.
            db.session.delete(db.session.get(Application, application_id))
            db.session.commit()
            return {
                "file_mb": file_mb,
                "import_seconds": round(elapsed, 3),
                "import_peak_rss_mb": import_rss,
                "bare_openpyxl_read_only_seconds": round(bare, 3),
                "bare_openpyxl_peak_rss_mb": bare_rss,
                "bare_calamine_seconds": round(calamine, 3),
                "bare_calamine_peak_rss_mb": calamine_rss,
                "result": result,
                **extra,
                "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            }

        def summarise(rows: int, runs: list[dict]) -> dict:
            def median(name: str) -> float:
                return round(statistics.median(r[name] for r in runs), 3)

            return {
                "rows": rows,
                "runs": len(runs),
                "file_mb": runs[0]["file_mb"],
                "import_seconds": [r["import_seconds"] for r in runs],
                "import_median_seconds": median("import_seconds"),
                "import_peak_rss_mb": [r["import_peak_rss_mb"] for r in runs],
                "bare_openpyxl_read_only_median_seconds": median("bare_openpyxl_read_only_seconds"),
                "bare_openpyxl_peak_rss_mb": max(r["bare_openpyxl_peak_rss_mb"] for r in runs),
                "bare_calamine_median_seconds": median("bare_calamine_seconds"),
                "bare_calamine_peak_rss_mb": max(r["bare_calamine_peak_rss_mb"] for r in runs),
                "result": runs[0]["result"],
                "load_1min": [r["load_1min"] for r in runs],
            }

        runs = []
        for run_no in range(args.runs):
            runs.append(timed_import(args.rows, run_no))
            print(f"run {run_no + 1}: {json.dumps(runs[-1], ensure_ascii=False)}", file=sys.stderr)
        summary = summarise(args.rows, runs)
        summary["archive_rows"] = archive_rows
        # The app loaded, before any import (every child starts from this).
        summary["benchmark_process_rss_mb"] = _peak_rss_mb()
        if args.also_rows:
            also = [timed_import(args.also_rows, 90 + n) for n in range(args.also_runs)]
            summary["also"] = summarise(args.also_rows, also)
        if args.refused:
            # Every row refused: 1 % already registered, the other 99 % 超期未检.
            summary["refused"] = timed_import(args.refused, 80, refused_percent=99, errors=True)
    summary["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--archive", type=int, default=1_000_000)
    parser.add_argument("--also-rows", type=int, default=0, help="extra runs of this size")
    parser.add_argument("--also-runs", type=int, default=1, help="how many --also-rows runs")
    parser.add_argument(
        "--refused-percent", type=int, default=0, help="this share of rows is also refused"
    )
    parser.add_argument(
        "--refused",
        type=int,
        default=0,
        help="one more import of this many rows, every one refused, and its error file",
    )
    print(json.dumps(run(parser.parse_args()), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
