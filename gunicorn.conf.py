"""gunicorn settings for regbackoffice: `.venv/bin/gunicorn -c gunicorn.conf.py wsgi:app`.

Threaded workers (gthread): a request that waits on a slow client or a long photo batch
holds one thread, not a whole process, so other users' pages keep answering. Behind nginx
(deploy/nginx.conf.example) the request body is buffered by nginx first, so a slow
uplink holds no gunicorn thread at all; without nginx the threads still keep the app
responsive.

Every value can be overridden from the environment (the GUNICORN_* variables below) or by
flags on the command line. (gunicorn turns a sync worker with more than one thread into
gthread anyway; GUNICORN_THREADS=1 would make each process serve one request at a time.)
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"

# Sized for the box: one process per core plus one (the work is mostly database and
# template time, with some CPU for image checks), each with a pool of threads.
workers = _int("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1)
threads = _int("GUNICORN_THREADS", 8)

# The largest request the app accepts (REGBO_MAX_REQUEST_MB, as config.py reads it) at the
# slowest uplink we still serve (GUNICORN_MIN_UPLOAD_KBPS, default 256 KB/s ≈ 2 Mbit/s), plus
# the time to process it: a 64 MB photo zip then gets 256 s + 120 s. In gthread workers the
# timeout only restarts a worker whose main loop hangs, but it must never cut a legitimate
# request short, so it covers the longest one.
_max_request_kb = _int("REGBO_MAX_REQUEST_MB", 64) * 1024
_min_upload_kbps = max(1, _int("GUNICORN_MIN_UPLOAD_KBPS", 256))
timeout = _int("GUNICORN_TIMEOUT", _max_request_kb // _min_upload_kbps + 120)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 60)  # let running uploads finish
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Restart workers now and then (with jitter, not all at once) to bound memory growth. Not
# too often: a new worker opens new database connections (each a new PostgreSQL backend
# with cold caches) and compiles its statements again. At 2,000 an API serving 1,000
# calls/s restarted a worker every 3 s, which cost the interlock check 15 % of its
# throughput and doubled its p99 (docs/benchmarks.md).
max_requests = _int("GUNICORN_MAX_REQUESTS", 10000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 1000)

# The app is imported once, in the master, and every worker is forked from it. Importing
# it costs about 2.5 s of CPU; without this each max_requests restart paid that again (at
# 500 API calls/s, three workers restart every 12 s: a third of a core). The price: a HUP
# reloads the configuration but keeps the loaded code, so a release is deployed with a
# restart (deploy/regbackoffice-web.service). GUNICORN_PRELOAD=0 turns it off.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"


def post_fork(server, worker):  # gunicorn's hook signature
    """Each worker starts with its own database pool. create_app opens no connection, so
    the master's pools are empty; dispose(close=False) makes sure a forked worker never
    shares a socket with the master or a sibling all the same."""
    app = server.app.wsgi()
    if "sqlalchemy" not in getattr(app, "extensions", {}):
        return  # not the regbackoffice app (e.g. the benchmark's floor)
    from regbackoffice.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)


# The worker heartbeat file in memory, not on a possibly slow disk.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# Logs to stdout/stderr (journald under systemd); client addresses come from nginx through
# REGBO_TRUSTED_PROXIES (the app's ProxyFix), not from gunicorn.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None  # empty: no access log
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")

# gunicorn ≥ 25's control socket defaults to one path per user ($HOME/.gunicorn), which a
# second instance on the host would collide with: off unless a path is given.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
