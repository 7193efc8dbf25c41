"""Helpers shared by the page benchmarks (bench_acceptance.py, bench_dashboard.py)."""

from __future__ import annotations

import re
import statistics
import time

import sqlalchemy as sa


def ensure_database(url: str) -> bool:
    """Create the database if missing; True when it was created (data must be built)."""
    target = sa.make_url(url)
    admin = sa.create_engine(
        target.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ).scalar()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    return not exists


def login(client, username: str, password: str) -> None:
    """Log the test client in through the real login form."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, "benchmark login failed"


def median_ms(client, url: str, runs: int) -> float:
    """Median server time of ``runs`` GETs of ``url`` through the WSGI app (after one warm-up)."""
    client.get(url)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(samples)


def bench_app(database_url: str):
    """The app on a benchmark database: jobs inline, plain-HTTP cookies for the test client."""
    import os

    os.environ.setdefault("REGBO_SECRET_KEY", "bench")
    from regbackoffice import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": None,
            "SESSION_COOKIE_SECURE": False,
            "REGBO_ENV": "testing",
        }
    )
