"""The interlock check's audit batches (audit_batch): what a worker holds and writes.

The batches as the check uses them (full, by interval, at a worker's exit) are tested on
real connections in test_api_concurrency and test_operations_drills.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime

import psycopg
import sqlalchemy as sa

from regbackoffice import audit_batch
from regbackoffice.extensions import db


def test_a_batch_that_cannot_be_written_is_logged_whole(app, caplog):
    dsn = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    broken = psycopg.connect(dsn, autocommit=True)
    broken.close()  # as a connection cut under the writer
    row = {"at": datetime(2026, 12, 1, 8, 0, tzinfo=UTC), "action": "api_call", "ip": "10.0.0.9"}
    assert audit_batch.write(broken, [row, {**row, "ip": "10.0.0.10"}]) is False
    logged = [r.getMessage() for r in caplog.records if "audit rows not written" in r.getMessage()]
    assert len(logged) == 1
    # Enough to replay them into the trail.
    assert json.loads(logged[0].split(": ", 1)[1]) == [
        {"at": "2026-12-01T08:00:00+00:00", "action": "api_call", "ip": "10.0.0.9"},
        {"at": "2026-12-01T08:00:00+00:00", "action": "api_call", "ip": "10.0.0.10"},
    ]


def test_a_forked_worker_starts_without_the_rows_of_the_process_it_came_from(app):
    pending = audit_batch.PendingRows()
    assert (
        pending.add({"action": "api_call"}, engine=db.engine, batch_rows=10, flush_seconds=600)
        is None
    )
    child = os.fork()
    if child == 0:  # the worker: its own empty batch and lock, not its parent's
        os._exit(0 if pending.take() == [] else 1)
    deadline = time.monotonic() + 10
    while (done := os.waitpid(child, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        raise AssertionError("the forked worker hung on its parent's lock")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert pending.take() == [{"action": "api_call"}]


def test_the_row_that_fills_the_batch_gets_the_whole_batch_back(app):
    pending = audit_batch.PendingRows()
    kept = [
        pending.add({"n": n}, engine=db.engine, batch_rows=3, flush_seconds=600) for n in range(4)
    ]
    assert kept == [None, None, [{"n": 0}, {"n": 1}, {"n": 2}], None]
    assert pending.take() == [{"n": 3}]


def test_rows_the_writer_cannot_reach_the_database_for_are_logged_whole(app, caplog):
    # The database away (nothing listens on the port): the waiting rows go to the log.
    away = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    pending = audit_batch.PendingRows()
    pending.add(
        {"action": "api_call", "ip": "10.0.0.7"}, engine=away, batch_rows=10, flush_seconds=600
    )
    pending.write_pending()
    logged = [r.getMessage() for r in caplog.records if "audit rows not written" in r.getMessage()]
    assert len(logged) == 1
    assert json.loads(logged[0].split(": ", 1)[1]) == [{"action": "api_call", "ip": "10.0.0.7"}]
    assert pending.take() == []
