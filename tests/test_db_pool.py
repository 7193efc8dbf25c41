"""Pooled connections are tested at checkout only after sitting idle (extensions.ping_when_idle)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from regbackoffice.extensions import ping_when_idle

from .conftest import TEST_DATABASE_URL


def _engine(idle_seconds: float) -> sa.Engine:
    engine = sa.create_engine(TEST_DATABASE_URL, pool_size=1, max_overflow=0)
    ping_when_idle(engine.pool, idle_seconds)
    return engine


def _kill_pooled_connection(engine: sa.Engine) -> None:
    """Terminate the backend of the one pooled connection, as a database restart would."""
    with engine.connect() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    killer = sa.create_engine(TEST_DATABASE_URL, poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    killer.dispose()


def test_a_connection_idle_past_the_limit_is_replaced_before_use_when_its_backend_died():
    engine = _engine(idle_seconds=0)  # every checkout after a checkin counts as idle
    try:
        _kill_pooled_connection(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_connection_back_in_use_within_the_limit_is_not_pinged():
    # The same dead connection within the idle limit is handed out unchecked (no round trip
    # per request): its first statement fails, and the pool then starts afresh.
    engine = _engine(idle_seconds=3600)
    try:
        _kill_pooled_connection(engine)
        with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
