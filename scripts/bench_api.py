#!/usr/bin/env python3
"""Benchmark of the JSON API under gunicorn (2 workers) on PostgreSQL.

    .venv/bin/python scripts/bench_api.py                # 1M cylinders, 10M fillings
    .venv/bin/python scripts/bench_api.py --cylinders 100000 --fillings 1000000 --duration 20

Steps: create the database if missing (default ``regbo_bench_api``) and migrate it; top
up the synthetic archive (``flask bench-data``) and filling records (``flask
bench-fillings``, INSERT … SELECT generate_series) to the requested sizes; start gunicorn
on 127.0.0.1; then, from separate load processes on loopback, bounded by time and count:
1. POST /api/v1/fillings in batches of 100 (unique record_no each) → records/s;
2. POST /api/v1/fillings/check one at a time → requests/s, p50/p99 latency.
Prints a JSON summary (and writes it with --json-out). Loopback only; stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SECRET = "bench-secret-not-for-production"


def run_flask(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def ensure_database(url: str) -> None:
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ).scalar()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def count_rows(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        # Estimated counts would do, but exact ones on 10M rows take a few seconds only.
        value = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
    engine.dispose()
    return int(value or 0)


def post(conn: http.client.HTTPConnection, path: str, body: dict, token: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    started = time.perf_counter()
    conn.request("POST", path, json.dumps(body), headers)
    response = conn.getresponse()
    payload = response.read()
    return response.status, payload, time.perf_counter() - started


def connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def cylinder_id(n: int) -> str:
    return "CQBENCH" + str(n).rjust(12, "0")


def load_worker(
    kind: str,
    port: int,
    token: str,
    cylinders: int,
    seconds: float,
    max_requests: int,
    worker: int,
    queue,
) -> None:
    rng = random.Random(worker)
    conn = connect(port)
    latencies: list[float] = []
    errors = 0
    records = 0
    today = date.today().isoformat()
    deadline = time.perf_counter() + seconds
    sent = 0
    while time.perf_counter() < deadline and sent < max_requests:
        if kind == "fillings":
            body = {
                "records": [
                    {
                        "medium_code": "G1",
                        "filler": "基准",
                        "fill_date": today,
                        "filling_unit_name": "基准测试充装站",
                        "id": cylinder_id(rng.randint(1, cylinders)),
                        "record_no": f"b{os.getpid()}-{worker}-{sent}-{i}",
                    }
                    for i in range(100)
                ]
            }
            path = "/api/v1/fillings"
        else:
            body = {"id": cylinder_id(rng.randint(1, cylinders)), "medium_code": "G1"}
            path = "/api/v1/fillings/check"
        try:
            status, _payload, seconds_taken = post(conn, path, body, token)
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = connect(port)
            sent += 1
            continue
        sent += 1
        latencies.append(seconds_taken)
        if status != 200:
            errors += 1
        elif kind == "fillings":
            records += 100
    queue.put({"latencies": latencies, "errors": errors, "records": records})


def run_load(
    kind: str,
    port: int,
    token: str,
    cylinders: int,
    processes: int,
    seconds: float,
    max_requests: int,
) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(
            target=load_worker,
            args=(kind, port, token, cylinders, seconds, max_requests, n, queue),
        )
        for n in range(processes)
    ]
    started = time.perf_counter()
    for w in workers:
        w.start()
    results = [queue.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r["latencies"])
    n = len(latencies)

    def pct(p: float) -> float:
        return round(latencies[min(n - 1, int(p * n))] * 1000, 1) if n else 0.0

    return {
        "requests": n,
        "errors": sum(r["errors"] for r in results),
        "seconds": round(elapsed, 1),
        "requests_per_s": round(n / elapsed, 1),
        "records_per_s": round(sum(r["records"] for r in results) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 1) if n else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/regbo_bench_api"
    )
    parser.add_argument("--cylinders", type=int, default=1_000_000)
    parser.add_argument("--fillings", type=int, default=10_000_000)
    parser.add_argument("--duration", type=float, default=30, help="seconds per phase")
    parser.add_argument("--processes", type=int, default=4, help="load processes per phase")
    parser.add_argument("--max-requests", type=int, default=50_000, help="per load process")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--json-out")
    parser.add_argument(
        "--phases", default="fillings,check", help="comma separated: fillings,check"
    )
    args = parser.parse_args()

    env = {
        **os.environ,
        "REGBO_ENV": "production",
        "REGBO_SECRET_KEY": "bench-only-secret-key-" + "x" * 20,
        "REGBO_DATABASE_URL": args.database_url,
        "REGBO_STORAGE_DIR": str(ROOT / "instance" / "bench-files"),
        "REGBO_API_RECORD_RATE_LIMIT": "",  # the benchmark measures throughput, not the quota
    }
    env.pop("REGBO_REDIS_URL", None)
    ensure_database(args.database_url)
    run_flask(env, "db", "upgrade")
    timings: dict[str, float] = {}
    have = count_rows(args.database_url, "cylinders")
    if have < args.cylinders:
        started = time.perf_counter()
        run_flask(env, "bench-data", "--cylinders", str(args.cylinders - have))
        timings["generate_cylinders_s"] = round(time.perf_counter() - started, 1)
    have = count_rows(args.database_url, "filling_records")
    if have < args.fillings:
        started = time.perf_counter()
        run_flask(env, "bench-fillings", "--records", str(args.fillings - have))
        timings["generate_fillings_s"] = round(time.perf_counter() - started, 1)
    # The bench client's secret is (re)set by bench-fillings even when no rows are added.
    run_flask(env, "bench-fillings", "--records", "0")

    server = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "--workers",
            "2",
            "--worker-class",
            args.worker_class,
            "--threads",
            str(args.threads),
            "--bind",
            f"127.0.0.1:{args.port}",
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        token = None
        for _ in range(100):
            try:
                status, payload, _ = post(
                    connect(args.port),
                    "/api/v1/auth/token",
                    {"app_id": "cqbench", "app_secret": SECRET},
                )
                if status == 200:
                    token = json.loads(payload)["data"]["access_token"]
                    break
            except OSError:
                pass
            time.sleep(0.2)
        if token is None:
            raise SystemExit("gunicorn did not answer the token request")
        summary = {
            "cylinders": count_rows(args.database_url, "cylinders"),
            "filling_records_before": count_rows(args.database_url, "filling_records"),
            **timings,
            "load_processes": args.processes,
            "cpu_count": os.cpu_count(),
        }
        if "fillings" in args.phases:
            summary["fillings_batch_100"] = run_load(
                "fillings",
                args.port,
                token,
                args.cylinders,
                args.processes,
                args.duration,
                args.max_requests,
            )
            # Let the checkpoint and autovacuum triggered by the writes settle first.
            with sa.create_engine(args.database_url).connect() as conn:
                conn.execute(sa.text("CHECKPOINT"))
            time.sleep(5)
        if "check" in args.phases:
            summary["fillings_check"] = run_load(
                "check",
                args.port,
                token,
                args.cylinders,
                args.processes,
                args.duration,
                args.max_requests,
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    print(json.dumps(summary, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
