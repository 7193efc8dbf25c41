"""The interlock check's audit rows, written in batches (PostgreSQL).

Every check writes one audit row (``api_call``). Written one by one, that INSERT was a
second database round trip per check, whose whole work is one read: on a 2-core machine
the round trip, not the row, was the cost (each one wakes the database and the worker).
Here each worker process keeps its checks' rows and writes them together, with one
``INSERT … SELECT … FROM json_populate_recordset`` that commits without waiting for the
WAL flush (like the single row before it):

- the request that brings the batch to ``API_AUDIT_BATCH_ROWS`` rows writes it, on its
  own connection, before it answers;
- when calls come slowly, a writer thread writes what waits at most
  ``API_AUDIT_FLUSH_SECONDS`` after the first row came;
- a worker that stops (a release, a max_requests restart, a shutdown) writes what it
  holds as its interpreter exits (``atexit``).

What it costs: the trail shows a check up to ``API_AUDIT_FLUSH_SECONDS`` late, and a worker
killed outright (SIGKILL, out of memory) loses the rows it held, at most one batch (a
database crash may lose the last fraction of a second of rows in any case:
``synchronous_commit`` is off for them). A batch that cannot be written is logged whole,
as JSON, so that it can be replayed into the trail.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from datetime import date, datetime
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

COLUMNS = (
    "at",
    "actor_type",
    "actor_id",
    "actor_name",
    "ip",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "detail",
)
_NAMES = ", ".join(COLUMNS)
INSERT = (
    f"INSERT INTO audit_log ({_NAMES}) SELECT {_NAMES} FROM "
    "(SELECT set_config('synchronous_commit', 'off', true)) AS relaxed, "
    "json_populate_recordset(NULL::audit_log, %s::json) AS batch"
)


def _iso(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()  # what timestamptz reads (the rows' ``at`` is UTC)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _document(rows: list[dict[str, Any]]) -> str:
    # ASCII with \u escapes: any text goes, whatever it holds.
    return json.dumps(rows, default=_iso)


def _log_unwritten(rows: list[dict[str, Any]], document: str) -> None:
    log.exception("audit rows not written (%d), to be replayed: %s", len(rows), document)


def write(driver: psycopg.Connection, rows: list[dict[str, Any]]) -> bool:
    """Write ``rows`` with one statement on ``driver`` (in autocommit mode). On failure the
    rows are logged whole and False is returned; the caller's answer stands."""
    document = _document(rows)
    try:
        driver.execute(INSERT, (document,), prepare=True)
    except psycopg.Error:
        _log_unwritten(rows, document)
        return False
    return True


class PendingRows:
    """One process's rows not yet written, and the thread that writes them when calls
    come slowly. A forked worker starts empty, with a lock and a writer of its own (the
    rows of the process it was forked from are not its to write)."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._first_at = 0.0
        self._waiting = threading.Event()
        self._writer: threading.Thread | None = None
        self._engine: Engine | None = None
        self._flush_seconds = 0.5

    def add(
        self, row: dict[str, Any], *, engine: Engine, batch_rows: int, flush_seconds: float
    ) -> list[dict[str, Any]] | None:
        """Keep ``row``; returns the whole batch when it is full (the caller writes it)."""
        with self._lock:
            self._engine, self._flush_seconds = engine, flush_seconds
            if not self._rows:
                self._first_at = time.monotonic()
            self._rows.append(row)
            if len(self._rows) >= batch_rows:
                full, self._rows = self._rows, []
                return full
            if len(self._rows) == 1:
                self._start_writer()
                self._waiting.set()  # once per batch: the writer's clock starts anew
        return None

    def take(self, older_than: float | None = None) -> list[dict[str, Any]]:
        """The rows waiting (all, or only if the first came ``older_than`` seconds ago)."""
        with self._lock:
            if older_than is not None and time.monotonic() - self._first_at < older_than:
                return []
            rows, self._rows = self._rows, []
            return rows

    def _start_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(
                target=self._write_slow_calls, name="audit-batch-writer", daemon=True
            )
            self._writer.start()

    def _write_slow_calls(self) -> None:
        while True:
            with self._lock:
                due: float | None = None
                if self._rows:
                    due = self._first_at + self._flush_seconds - time.monotonic()
            if due is None or due > 0:
                # Woken early by a new batch's first row: its interval may differ.
                self._waiting.wait(due)
                self._waiting.clear()
                continue
            try:
                self.write_pending(only_due=True)
            except Exception:  # keep writing later batches
                log.exception("audit batch writer")

    def write_pending(self, *, only_due: bool = False) -> None:
        """Write the rows waiting, on a pooled connection of their own."""
        rows = self.take(self._flush_seconds if only_due else None)
        if not rows or self._engine is None:
            return
        try:
            pooled = self._engine.raw_connection()
        except Exception:  # no connection to be had (the database is away)
            _log_unwritten(rows, _document(rows))
            return
        try:
            driver = pooled.driver_connection
            assert isinstance(driver, psycopg.Connection)
            driver.autocommit = True
            write(driver, rows)
            driver.autocommit = False
        except psycopg.Error:
            pooled.invalidate()
        finally:
            pooled.close()


PENDING = PendingRows()


def write_pending() -> None:
    """Write this process's waiting rows now (a worker about to exit)."""
    PENDING.write_pending()


atexit.register(write_pending)
