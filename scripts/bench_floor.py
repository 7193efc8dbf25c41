"""The floor for `scripts/bench api`: the least a Flask endpoint can do for the same answer.

Served by gunicorn with the shipped ``gunicorn.conf.py``, exactly like the real app, so the
ratio real/floor shows what the app's own work costs on this machine in this minute:

- ``POST /floor/check``: parse the JSON body, one primary-key SELECT of the cylinder
  (psycopg, one connection per thread, autocommit), answer JSON;
- ``POST /floor/fillings``: parse the JSON body, one executemany INSERT of its records into
  ``filling_records`` (the same partitioned table and indexes), one commit, answer JSON.

No token, no validation, no interlock, no audit row: that is what the real endpoints add.
``REGBO_BENCH_FLOOR_DSN`` is a libpq connection string of the benchmark database.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import date
from typing import Any

import psycopg
from flask import Flask, Response, request

DSN = os.environ.get("REGBO_BENCH_FLOOR_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
CLIENT_ID = int(os.environ.get("REGBO_BENCH_FLOOR_CLIENT_ID", "1"))

app = Flask(__name__)
_local = threading.local()


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(DSN, autocommit=True)
        _local.conn = conn
    return conn


def _json(data: dict[str, Any]) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), mimetype="application/json")


@app.post("/floor/check")
def check() -> Response:
    body = json.loads(request.get_data())
    row = (
        _conn()
        .execute(
            "SELECT id, status, medium_code, use_unit_id, next_inspection_month"
            " FROM cylinders WHERE id = %s",
            (body["id"],),
        )
        .fetchone()
    )
    return _json({"code": 200, "data": {"id": body["id"], "found": row is not None}})


@app.post("/floor/fillings")
def fillings() -> Response:
    body = json.loads(request.get_data())
    rows = [
        (
            CLIENT_ID,
            r["record_no"],
            r["id"],
            r["medium_code"],
            r["filler"],
            date.fromisoformat(r["fill_date"]),
            r["filling_unit_name"],
        )
        for r in body["records"]
    ]
    conn = _conn()
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO filling_records (client_id, record_no, cylinder_id, medium_code,"
            " filler, fill_date, filling_unit_name, violation, violation_reasons, received_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, false, '[]', now())",
            rows,
        )
    return _json({"code": 200, "data": {"accepted": len(rows)}})
