#!/usr/bin/env python3
"""Benchmark of the JSON API under gunicorn (the shipped gunicorn.conf.py) on PostgreSQL.

    scripts/bench api                  # 1M cylinders, 10M fillings, 30 s phases
    scripts/bench api --quick          # 100,000 cylinders, 500,000 fillings, 10 s phases

Steps: create the database if missing (default ``regbo_bench_api``) and migrate it; top
up the synthetic archive (``flask bench-data``) and filling records (``flask
bench-fillings``, INSERT … SELECT generate_series) to the requested sizes; start two
gunicorns with the same ``gunicorn.conf.py`` on 127.0.0.1: the app, and the floor
(``scripts/bench_floor.py``: a bare Flask endpoint doing one primary-key SELECT, and one
doing a bare executemany INSERT of the batch). Then, from separate load processes on
loopback, bounded by time and count, in the same run (after up to 5 s of unmeasured load
of every kind on both servers, so that no phase pays for cold caches):
1. POST /api/v1/fillings in batches of 100 and 500 (unique record_no each) → records/s,
   side by side with the floor's bare INSERT of the same batch;
2. POST /api/v1/fillings/check one at a time → requests/s, p50/p99 latency, side by side
   with the floor's bare SELECT.
Side by side: each phase's time (``--duration``) is cut in ``--slices`` slices, app and
floor alternating (app, floor, floor, app, app, floor), so that whatever else the machine
does in those minutes weighs on both.
Prints a JSON summary (and writes it with --json-out), then the ratios to the floor as the
last lines (``check/floor ratio: 0.64``). Each phase also gives its machine time per call
(per record for batches), by who spent it: the server's processes, PostgreSQL's, the load
processes, what the hypervisor gave to other machines (``stolen``) and what the cores left
idle (``cpu_us_per_request`` / ``cpu_us_per_record``), its slices' rates (``slice_rates``)
and how many server processes worked in each slice (``busy_workers``: 1 means both load
processes' connections were served by one gunicorn worker, whose threads share one GIL).
Loopback only; stops by itself.
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


PATHS = {
    "fillings": "/api/v1/fillings",
    "check": "/api/v1/fillings/check",
    "floor_fillings": "/floor/fillings",
    "floor_check": "/floor/check",
}


def load_worker(
    kind: str,
    port: int,
    token: str,
    cylinders: int,
    seconds: float,
    max_requests: int,
    worker: int,
    queue,
    batch: int = 100,
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
        if kind.endswith("fillings"):
            body = {
                "records": [
                    {
                        "medium_code": "G1",
                        "filler": "基准",
                        "fill_date": today,
                        "filling_unit_name": "基准测试充装站",
                        "id": cylinder_id(rng.randint(1, cylinders)),
                        "record_no": f"{kind[0]}{os.getpid()}-{worker}-{sent}-{i}",
                    }
                    for i in range(batch)
                ]
            }
        else:
            body = {"id": cylinder_id(rng.randint(1, cylinders)), "medium_code": "G1"}
        path = PATHS[kind]
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
        elif kind.endswith("fillings"):
            records += batch
    queue.put(
        {
            "latencies": latencies,
            "errors": errors,
            "records": records,
            "cpu_s": time.process_time(),
        }
    )


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stats() -> list[tuple[int, str, int, float]]:
    """(pid, command, process group, CPU seconds so far) of every process."""
    stats = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        command = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # utime + stime, and cutime + cstime: the reaped children's, so that a gunicorn
        # worker restarted by max_requests or a closed PostgreSQL backend still counts.
        cpu = sum(int(x) for x in fields[11:15]) / CLOCK_TICKS
        stats.append((int(entry.name), command, int(fields[2]), cpu))
    return stats


def cpu_by_role(groups: dict[str, int]) -> tuple[dict[str, float], dict[int, float]]:
    """CPU seconds used so far by each gunicorn (by its process group) and by PostgreSQL's
    processes (backends, WAL writer, checkpointer, autovacuum): where a phase's machine
    time goes. Also each gunicorn process's own CPU seconds, by pid."""
    used = dict.fromkeys([*groups, "postgres"], 0.0)
    by_pid: dict[int, float] = {}
    for pid, command, group, cpu in _proc_stats():
        if command.startswith("postgres"):
            used["postgres"] += cpu
        for role, pgid in groups.items():
            if group == pgid:
                used[role] += cpu
                by_pid[pid] = cpu
    return used, by_pid


def _stolen_seconds() -> float:
    """CPU time the hypervisor gave to others (``steal`` in /proc/stat), all cores."""
    with open("/proc/stat") as stat:
        values = stat.readline().split()[1:]
    return int(values[7]) / CLOCK_TICKS if len(values) > 7 else 0.0


def run_load(
    kind: str,
    port: int,
    token: str,
    cylinders: int,
    processes: int,
    seconds: float,
    max_requests: int,
    batch: int = 100,
    groups: dict[str, int] | None = None,
) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(
            target=load_worker,
            args=(kind, port, token, cylinders, seconds, max_requests, n, queue, batch),
        )
        for n in range(processes)
    ]
    cpu_before, pids_before = cpu_by_role(groups or {})
    stolen_before = _stolen_seconds()
    started = time.perf_counter()
    for w in workers:
        w.start()
    results = [queue.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    cpu_after, pids_after = cpu_by_role(groups or {})
    # Server processes that did a tenth of a core's work or more in this slice: with two
    # load processes, 1 means both connections were served by one worker (one GIL).
    busy_workers = sum(
        1 for pid, cpu in pids_after.items() if cpu - pids_before.get(pid, cpu) > 0.1 * elapsed
    )
    stolen = _stolen_seconds() - stolen_before
    latencies = sorted(x for r in results for x in r["latencies"])
    n = len(latencies)

    def pct(p: float) -> float:
        return round(latencies[min(n - 1, int(p * n))] * 1000, 1) if n else 0.0

    # Machine time per request (per record for batches), by who spent it: the server, the
    # database, the load processes; "stolen" is what the hypervisor gave to other machines
    # (a noisy neighbour), "idle" what the two cores did not use otherwise.
    units = sum(r["records"] for r in results) if kind.endswith("fillings") else n
    per_unit = {
        role: round((cpu_after[role] - cpu_before[role]) * 1e6 / max(units, 1), 1)
        for role in cpu_after
    }
    per_unit["load"] = round(sum(r["cpu_s"] for r in results) * 1e6 / max(units, 1), 1)
    per_unit["stolen"] = round(stolen * 1e6 / max(units, 1), 1)
    per_unit["idle"] = round(
        (elapsed * (os.cpu_count() or 1) * 1e6 / max(units, 1)) - sum(per_unit.values()), 1
    )
    return {
        "cpu_us_per_" + ("record" if kind.endswith("fillings") else "request"): per_unit,
        "_latencies": latencies,
        "_units": units,
        "busy_workers": busy_workers,
        "requests": n,
        "errors": sum(r["errors"] for r in results),
        "seconds": round(elapsed, 1),
        "requests_per_s": round(n / elapsed, 1),
        "records_per_s": round(sum(r["records"] for r in results) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 1) if n else 0.0,
    }


def merged(parts: list[dict]) -> dict:
    """One phase's result from its slices: totals, rates over the slices' time, latency
    percentiles over all calls, machine time per call weighted by each slice's calls."""
    latencies = sorted(x for p in parts for x in p["_latencies"])
    units = sum(p["_units"] for p in parts)
    seconds = sum(p["seconds"] for p in parts)
    key = next(k for k in parts[0] if k.startswith("cpu_us_per_"))
    n = len(latencies)

    def pct(q: float) -> float:
        return round(latencies[min(n - 1, int(q * n))] * 1000, 1) if n else 0.0

    records = sum(p["records_per_s"] * p["seconds"] for p in parts)
    return {
        key: {
            role: round(sum(p[key][role] * p["_units"] for p in parts) / max(units, 1), 1)
            for role in parts[0][key]
        },
        "requests": n,
        "errors": sum(p["errors"] for p in parts),
        "seconds": round(seconds, 1),
        "slices": len(parts),
        "slice_rates": [
            round(p["records_per_s" if key.endswith("record") else "requests_per_s"]) for p in parts
        ],
        "busy_workers": [p["busy_workers"] for p in parts],
        "requests_per_s": round(n / seconds, 1),
        "records_per_s": round(records / seconds, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 1) if n else 0.0,
    }


def start_gunicorn(env: dict[str, str], port: int, app: str, *extra: str) -> subprocess.Popen:
    """gunicorn with the shipped gunicorn.conf.py (workers, threads, timeouts as deployed)."""
    return subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", *extra, app],
        cwd=ROOT,
        env={
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_ACCESSLOG": "",  # no access log line per request, in both servers
            "GUNICORN_LOGLEVEL": "warning",
        },
        start_new_session=True,
    )


def wait_until_up(port: int, path: str, body: dict) -> tuple[int, bytes]:
    for _ in range(150):
        try:
            status, payload, _ = post(connect(port), path, body)
            if status < 500:
                return status, payload
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn on port {port} did not answer")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "REGBO_BENCH_DATABASE_URL",
            "postgresql+psycopg://postgres@127.0.0.1:5432/regbo_bench_api",
        ),
    )
    parser.add_argument("--cylinders", type=int, default=1_000_000)
    parser.add_argument("--fillings", type=int, default=10_000_000)
    parser.add_argument("--duration", type=float, default=30, help="seconds per phase")
    parser.add_argument("--processes", type=int, default=2, help="load processes per phase")
    parser.add_argument("--max-requests", type=int, default=50_000, help="per load process")
    parser.add_argument("--port", type=int, default=8765, help="the app; the floor on port+1")
    parser.add_argument("--batch-sizes", default="100,500", help="records per filling batch")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 100,000 cylinders, 500,000 fillings, 10 s phases",
    )
    parser.add_argument("--json-out")
    parser.add_argument(
        "--phases", default="fillings,check", help="comma separated: fillings,check"
    )
    parser.add_argument(
        "--slices",
        type=int,
        default=3,
        help="each phase's time split into this many slices, alternating app and floor",
    )
    args = parser.parse_args()
    if args.quick:
        args.cylinders, args.fillings, args.duration = 100_000, 500_000, 10
    phases = set(args.phases.split(","))
    batch_sizes = [int(x) for x in args.batch_sizes.split(",") if x.strip()]

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
    engine = sa.create_engine(args.database_url)
    with engine.connect() as conn:
        client_id = conn.execute(
            sa.text("SELECT id FROM api_clients WHERE app_id = 'cqbench'")
        ).scalar_one()
    engine.dispose()
    floor_env = {
        **env,
        "PYTHONPATH": str(ROOT / "scripts"),
        "REGBO_BENCH_FLOOR_DSN": sa.make_url(args.database_url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False),
        "REGBO_BENCH_FLOOR_CLIENT_ID": str(client_id),
    }

    server = start_gunicorn(env, args.port, "wsgi:app")
    floor = start_gunicorn(floor_env, args.port + 1, "bench_floor:app")
    try:
        status, payload = wait_until_up(
            args.port, "/api/v1/auth/token", {"app_id": "cqbench", "app_secret": SECRET}
        )
        if status != 200:
            raise SystemExit(f"token request answered {status}: {payload[:200]!r}")
        token = json.loads(payload)["data"]["access_token"]
        wait_until_up(args.port + 1, "/floor/check", {"id": cylinder_id(1)})
        summary: dict = {
            "cylinders": count_rows(args.database_url, "cylinders"),
            "filling_records_before": count_rows(args.database_url, "filling_records"),
            **timings,
            "load_processes": args.processes,
            "cpu_count": os.cpu_count(),
            "load_average_before": load_average(),
        }

        def measure(kind: str, port: int, seconds: float, batch: int) -> dict:
            return run_load(
                kind,
                port,
                token,
                args.cylinders,
                args.processes,
                seconds,
                args.max_requests,
                batch,
                {"server": server.pid if port == args.port else floor.pid},
            )

        def side_by_side(
            name: str, kind: str, floor_name: str, floor_kind: str, batch: int
        ) -> None:
            """The app and the floor in alternating slices (app, floor, floor, app, …), so
            that a neighbour's load, a checkpoint or an autovacuum that comes or goes
            weighs on both alike."""
            slice_seconds = args.duration / args.slices
            parts: dict[str, list[dict]] = {name: [], floor_name: []}
            for n in range(args.slices):
                order = [(name, kind, args.port), (floor_name, floor_kind, args.port + 1)]
                for label, what, port in order if n % 2 == 0 else reversed(order):
                    parts[label].append(measure(what, port, slice_seconds, batch))
            for label, slices in parts.items():
                summary[label] = merged(slices)
                summary[label]["load_average"] = load_average()
                print(label, json.dumps(summary[label]), file=sys.stderr, flush=True)

        def settle() -> None:
            # Let the checkpoint and autovacuum triggered by the writes settle first.
            with sa.create_engine(args.database_url).connect() as conn:
                conn.execute(sa.text("CHECKPOINT"))
            time.sleep(3)

        # Unmeasured first: every worker of both servers prepares its statements, and the
        # archive's pages come into the caches (the first measured phase paid for that).
        warm_up = min(5.0, args.duration / 3)
        for kind, port in (
            ("fillings", args.port),
            ("check", args.port),
            ("floor_fillings", args.port + 1),
            ("floor_check", args.port + 1),
        ):
            measure(kind, port, warm_up, max(batch_sizes, default=100))

        if "fillings" in phases:
            for size in batch_sizes:
                side_by_side(
                    f"fillings_batch_{size}",
                    "fillings",
                    f"floor_insert_{size}",
                    "floor_fillings",
                    size,
                )
            settle()
        if "check" in phases:
            side_by_side("fillings_check", "check", "floor_check", "floor_check", 100)
        summary["load_average_after"] = load_average()
    finally:
        for proc in (server, floor):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in (server, floor):
            proc.wait(timeout=30)
    print(json.dumps(summary, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    # The ratios last, so a glance at the end of the output is enough.
    if "fillings_check" in summary and "floor_check" in summary:
        ratio = (
            summary["fillings_check"]["requests_per_s"] / summary["floor_check"]["requests_per_s"]
        )
        print(f"check/floor ratio: {ratio:.2f}")
    for size in batch_sizes:
        real, bare = summary.get(f"fillings_batch_{size}"), summary.get(f"floor_insert_{size}")
        if real and bare:
            label = "fillings/floor ratio" if size == 100 else f"fillings/floor ratio ({size})"
            print(f"{label}: {real['records_per_s'] / bare['records_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
