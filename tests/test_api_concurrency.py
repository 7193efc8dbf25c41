"""Concurrent duplicates against real PostgreSQL transactions (outside the rolled-back one).

These tests commit for real: requests run in parallel threads, each with its own session
and connection, so the database's unique keys and row locks are what is being tested.
Everything they create is deleted afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import func, select

from regbackoffice import audit_batch
from regbackoffice.extensions import db as _db
from regbackoffice.models import FillingRecord

from . import factories
from .api_helpers import token_for
from .test_api_records import filling

PARALLEL = 8


@pytest.fixture
def committing(app: Flask, db) -> Iterator[dict]:
    """Real sessions on the pool for this test; created rows are removed at the end."""
    rolled_back_session = _db.session
    _db.session = _db._make_scoped_session({})
    with app.app_context():
        last_audit = _db.session.execute(sa.text("SELECT coalesce(max(id), 0) FROM audit_log"))
        last_audit_id = last_audit.scalar()
        _db.session.commit()
    created: dict = {"clients": [], "units": [], "cylinders": []}
    try:
        yield created
    finally:
        audit_batch.write_pending()  # nothing of this test's is written after its cleanup
        with app.app_context():
            session = _db.session
            for client_id in created["clients"]:
                for table in (
                    "filling_records",
                    "api_record_keys",
                    "api_idempotency_keys",
                    "tag_bindings",
                    "api_tokens",
                ):
                    session.execute(
                        sa.text(f"DELETE FROM {table} WHERE client_id = :c"), {"c": client_id}
                    )
                session.execute(sa.text("DELETE FROM api_clients WHERE id = :c"), {"c": client_id})
            for cylinder_id in created["cylinders"]:
                session.execute(sa.text("DELETE FROM cylinders WHERE id = :c"), {"c": cylinder_id})
            for unit_id in created["units"]:
                session.execute(sa.text("DELETE FROM units WHERE id = :u"), {"u": unit_id})
            # The audit log is append-only (a trigger); the test removes its own rows through
            # the retention job's documented bypass, in this transaction only.
            session.execute(sa.text("SET LOCAL regbo.audit_prune = 'on'"))
            session.execute(sa.text("DELETE FROM audit_log WHERE id > :i"), {"i": last_audit_id})
            session.commit()
            _db.session.remove()
        _db.session = rolled_back_session


def committed_setup(app: Flask, created: dict) -> tuple[str, str]:
    with app.app_context():
        unit = factories.make_unit()
        cylinder = factories.make_cylinder(unit)
        api_client, _ = factories.make_api_client(unit)
        token = token_for(api_client)
        created["units"].append(unit.id)
        created["cylinders"].append(cylinder.id)
        created["clients"].append(api_client.id)
        _db.session.commit()
        return token, cylinder.id


def run_in_parallel(app: Flask, send) -> list:
    barrier = threading.Barrier(PARALLEL)
    responses: list = [None] * PARALLEL

    def worker(n: int) -> None:
        http = app.test_client()
        barrier.wait()
        responses[n] = send(http)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def stored_fillings(app: Flask, cylinder_id: str) -> int:
    with app.app_context():
        count = _db.session.scalar(
            select(func.count()).where(FillingRecord.cylinder_id == cylinder_id)
        )
        _db.session.rollback()
        return count


def test_parallel_duplicates_by_record_no_are_stored_once(app, committing):
    token, cylinder_id = committed_setup(app, committing)
    body = {"records": [filling(cylinder_id, record_no="PAR-1")]}
    headers = {"Authorization": f"Bearer {token}"}
    responses = run_in_parallel(
        app, lambda http: http.post("/api/v1/fillings", json=body, headers=headers)
    )
    assert all(r.status_code == 200 for r in responses)
    accepted = [r.get_json()["data"]["accepted"] for r in responses]
    duplicates = [r.get_json()["data"]["duplicates"] for r in responses]
    assert sorted(accepted) == [0] * (PARALLEL - 1) + [1]
    assert sum(duplicates) == PARALLEL - 1
    assert stored_fillings(app, cylinder_id) == 1


def test_parallel_requests_with_one_idempotency_key_are_processed_once(app, committing):
    token, cylinder_id = committed_setup(app, committing)
    body = {"records": [filling(cylinder_id), filling(cylinder_id, filler="李四")]}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "parallel-key"}
    responses = run_in_parallel(
        app, lambda http: http.post("/api/v1/fillings", json=body, headers=headers)
    )
    assert all(r.status_code == 200 for r in responses), [r.get_json() for r in responses]
    replays = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
    assert len(replays) == PARALLEL - 1
    (first,) = [r.get_json()["data"] for r in responses if r not in replays]
    # Every replay is exactly the first answer, flagged as a replay.
    assert all(r.get_json()["data"] == {**first, "replay": True} for r in replays)
    assert stored_fillings(app, cylinder_id) == 2


def test_parallel_binding_of_one_tag_gives_one_binding_and_one_code(app, committing):
    from .api_helpers import png_base64

    token, cylinder_id = committed_setup(app, committing)
    body = {
        "id": cylinder_id,
        "tag_type": "二维码",
        "qr_content": f"https://trace.example.invalid/q/{cylinder_id}",
        "stamp_photo": png_base64(),
    }
    headers = {"Authorization": f"Bearer {token}"}
    responses = run_in_parallel(
        app, lambda http: http.post("/api/v1/tags/bind", json=body, headers=headers)
    )
    assert all(r.status_code == 200 for r in responses), [r.get_json() for r in responses]
    codes = {r.get_json()["data"]["info_code"] for r in responses}
    assert len(codes) == 1
    with app.app_context():
        bindings = _db.session.execute(
            sa.text("SELECT count(*) FROM tag_bindings WHERE cylinder_id = :c"), {"c": cylinder_id}
        ).scalar()
        _db.session.rollback()
    assert bindings == 1


def _api_call_rows(app: Flask, client_id: int, *, wait_for: int = 0) -> list:
    """The client's api_call rows in the trail, waiting up to 10 s for ``wait_for`` of them."""
    deadline = time.monotonic() + 10
    while True:
        with app.app_context():
            rows = _db.session.execute(
                sa.text(
                    "SELECT outcome, detail FROM audit_log WHERE action = 'api_call' "
                    "AND actor_type = 'api_client' AND actor_id = :c ORDER BY id"
                ),
                {"c": client_id},
            ).all()
            _db.session.rollback()
        if len(rows) >= wait_for or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def _check(http, token: str, cylinder_id: str, medium: str = "G1"):
    return http.post(
        "/api/v1/fillings/check",
        json={"id": cylinder_id, "medium_code": medium},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_interlock_checks_on_real_connections_commit_every_audit_row(app, committing):
    # Outside the tests' rolled-back transaction the check runs in autocommit mode and
    # its audit rows are written in batches: every call, answered or refused, reaches
    # the trail, the slow ones within API_AUDIT_FLUSH_SECONDS.
    token, cylinder_id = committed_setup(app, committing)
    http = app.test_client()
    answered = [_check(http, token, cylinder_id, medium) for medium in ("G1", "G2", "G1")]
    refused = http.post(
        "/api/v1/fillings/check",
        json={"medium_code": "G1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert [r.status_code for r in answered] == [200, 200, 200] and refused.status_code == 400
    rows = _api_call_rows(app, committing["clients"][0], wait_for=4)
    with app.app_context():
        # The connection went back to the pool transactional, as every other request needs.
        level = _db.session.connection().get_isolation_level()
        _db.session.rollback()
    # The refusal is written with its request; the answered calls follow in their batch.
    assert sorted((r.outcome, r.detail.get("status")) for r in rows) == [
        ("ok", 200),
        ("ok", 200),
        ("ok", 200),
        ("refused", 400),
    ]
    fillable = [r.detail.get("fillable") for r in rows if r.outcome == "ok"]
    expected = [int(r.get_json()["data"]["fillable"]) for r in answered]
    assert fillable == expected
    assert level == "READ COMMITTED"


def test_the_call_that_fills_the_batch_writes_it_before_it_answers(app, committing, monkeypatch):
    monkeypatch.setitem(app.config, "API_AUDIT_BATCH_ROWS", 3)
    monkeypatch.setitem(app.config, "API_AUDIT_FLUSH_SECONDS", 600)
    token, cylinder_id = committed_setup(app, committing)
    http = app.test_client()
    client_id = committing["clients"][0]
    assert [_check(http, token, cylinder_id).status_code for _ in range(2)] == [200, 200]
    assert _api_call_rows(app, client_id) == []  # two rows wait in the worker
    assert _check(http, token, cylinder_id, "G2").status_code == 200
    rows = _api_call_rows(app, client_id)
    assert [(r.outcome, r.detail["path"], r.detail["status"]) for r in rows] == [
        ("ok", "/api/v1/fillings/check", 200)
    ] * 3


def test_a_batch_is_written_when_its_first_row_has_waited_the_flush_interval(
    app, committing, monkeypatch
):
    monkeypatch.setitem(app.config, "API_AUDIT_BATCH_ROWS", 1000)
    monkeypatch.setitem(app.config, "API_AUDIT_FLUSH_SECONDS", 0.3)
    token, cylinder_id = committed_setup(app, committing)
    started = time.monotonic()
    assert _check(app.test_client(), token, cylinder_id).status_code == 200
    rows = _api_call_rows(app, committing["clients"][0], wait_for=1)
    assert len(rows) == 1 and rows[0].detail["status"] == 200
    assert time.monotonic() - started >= 0.3  # the writer waited for more company


def test_an_interlock_check_on_its_own_connection_builds_no_orm_session(
    app, committing, monkeypatch
):
    # Its statements run on the driver; building and closing a session it never used cost
    # as much as the pool's checkout. Only the client's first call in a minute uses one,
    # to write last_seen_at.
    token, cylinder_id = committed_setup(app, committing)
    had_session: list[bool] = []
    teardowns = [
        *app.teardown_request_funcs[None],
        lambda exc: had_session.append(_db.session.registry.has()),
    ]
    monkeypatch.setitem(app.teardown_request_funcs, None, teardowns)
    http = app.test_client()
    assert [_check(http, token, cylinder_id).status_code for _ in range(3)] == [200] * 3
    assert had_session == [True, False, False]
