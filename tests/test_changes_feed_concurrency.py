"""The changes feed under concurrent writers, on real PostgreSQL transactions.

A change number taken when a row is written would let a transaction that started first
commit last, under a lower number than one a terminal has already read past. The feed
numbers changes at commit, under the counter row's lock; these drills commit for real (the
``live_db`` database) and check that a terminal following the feed misses nothing.
"""

from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy.orm import Session

from regbackoffice.extensions import db
from regbackoffice.models import Cylinder

from . import factories
from .api_helpers import assert_envelope, post_json, token_for

WRITERS = 6
COMMITS_PER_WRITER = 8


def feed(http, token, cursor=None, limit=1000):
    body = {"cursor": cursor, "limit": limit}
    return assert_envelope(post_json(http, "/api/v1/cylinders/changes", body, token), 200)["data"]


@pytest.fixture
def unit_with_cylinders(live_db):
    unit = factories.make_unit()
    cylinders = [factories.make_cylinder(unit) for _ in range(WRITERS * 2)]
    client, _ = factories.make_api_client(unit, scopes=("query",))
    token = token_for(client)
    ids = [c.id for c in cylinders]
    db.session.commit()
    return token, ids


def test_a_change_that_commits_after_a_later_one_is_not_skipped(live_app, unit_with_cylinders):
    token, ids = unit_with_cylinders
    http = live_app.test_client()
    cursor = feed(http, token)["cursor"]
    first, second = Session(bind=db.engine), Session(bind=db.engine)
    try:
        # T1 writes first and is still open when T2 writes and commits.
        first.get(Cylinder, ids[0]).internal_no = "T1"
        first.flush()
        second.get(Cylinder, ids[1]).internal_no = "T2"
        second.commit()
        page = feed(http, token, cursor)
        assert [c["id"] for c in page["cylinders"]] == [ids[1]]
        first.commit()
        # The terminal's cursor is past T2's change, yet T1's change still comes.
        later = feed(http, token, page["cursor"])
        assert [(c["id"], c["internal_no"]) for c in later["cylinders"]] == [(ids[0], "T1")]
    finally:
        first.close()
        second.close()


def test_a_terminal_following_the_feed_during_concurrent_writes_ends_in_sync(
    live_app, unit_with_cylinders
):
    token, ids = unit_with_cylinders
    http = live_app.test_client()
    cursor = feed(http, token)["cursor"]
    engine = db.engine  # threads have no app context of their own
    start = threading.Barrier(WRITERS + 1)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        mine = ids[n * 2 : n * 2 + 2]  # own rows: no optimistic-lock clashes between writers
        rng = random.Random(n)
        try:
            start.wait()
            for i in range(COMMITS_PER_WRITER):
                with Session(bind=engine) as session:
                    session.get(Cylinder, rng.choice(mine)).internal_no = f"w{n}-{i}"
                    session.flush()
                    threading.Event().wait(rng.random() / 200)  # stay open a little
                    session.commit()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    seen: dict[str, str | None] = {}
    start.wait()
    finishing = False
    while True:
        page = feed(http, token, cursor, limit=5)
        for cylinder in page["cylinders"]:
            seen[cylinder["id"]] = cylinder["internal_no"]
        cursor = page["cursor"]
        if not page["more"] and finishing:
            break
        if not page["more"] and not any(t.is_alive() for t in threads):
            finishing = True  # one more full pass after the last commit
    for thread in threads:
        thread.join()
    assert not errors, errors
    with Session(bind=db.engine) as session:
        final = {c.id: c.internal_no for c in session.query(Cylinder).filter(Cylinder.id.in_(ids))}
    changed = {cid: no for cid, no in final.items() if no is not None}
    assert changed, "the writers changed nothing"
    assert {cid: seen.get(cid) for cid in changed} == changed


def test_a_departure_that_commits_after_a_later_change_is_not_skipped(
    live_app, unit_with_cylinders
):
    """A 过户 still open while the sender's other cylinder changes and commits: the sending
    unit's terminal, whose cursor moved past that change, still gets the departure."""
    from regbackoffice import cylinder_changes
    from regbackoffice.clock import china_today

    token, ids = unit_with_cylinders
    http = live_app.test_client()
    cursor = feed(http, token)["cursor"]
    receiver = factories.make_unit()
    db.session.commit()
    first, second = Session(bind=db.engine), Session(bind=db.engine)
    try:
        leaving = first.get(Cylinder, ids[0])
        sender = leaving.use_unit_id
        leaving.use_unit_id, leaving.use_unit_name = receiver.id, receiver.name
        cylinder_changes.record_departure(leaving, sender, None, china_today(), session=first)
        first.flush()
        second.get(Cylinder, ids[1]).internal_no = "T2"
        second.commit()
        page = feed(http, token, cursor)
        assert [(c["id"], c["left_unit"]) for c in page["cylinders"]] == [(ids[1], False)]
        first.commit()
        later = feed(http, token, page["cursor"])
        assert [(c["id"], c["left_unit"], c["use_unit_name"]) for c in later["cylinders"]] == [
            (ids[0], True, receiver.name)
        ]
    finally:
        first.close()
        second.close()
