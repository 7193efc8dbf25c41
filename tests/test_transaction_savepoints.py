"""after_commit side effects wait for the real commit, not a SAVEPOINT's release."""

from __future__ import annotations

from regbackoffice.extensions import db
from regbackoffice.transaction import after_commit


def test_after_commit_waits_for_the_outer_commit_not_a_savepoint():
    ran: list[str] = []
    after_commit(lambda: ran.append("job"))
    with db.session.begin_nested():  # e.g. tag binding's race-safe insert
        pass
    assert ran == []
    db.session.commit()
    assert ran == ["job"]
