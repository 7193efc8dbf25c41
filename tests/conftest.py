"""Test fixtures: PostgreSQL and Redis for real, each test in a rolled-back transaction.

The schema is built once per session by running the Alembic migrations on a fresh
database (so the migrations are exercised by every run); each test then runs inside a
transaction on one connection, with the app's commits turned into savepoints.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
import sqlalchemy.orm
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id
from redis import Redis

from regbackoffice import create_app
from regbackoffice.extensions import db as _db
from regbackoffice.models import User

from . import factories

TEST_DATABASE_URL = os.environ.get(
    "REGBO_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/regbo_test"
)
TEST_REDIS_URL = os.environ.get("REGBO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def recreate_database(url: str) -> None:
    """Drop and create the database named in ``url`` (connecting to ``postgres``)."""
    target = sa.make_url(url)
    admin = sa.create_engine(
        target.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def make_test_config(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> dict:
    return {
        "REGBO_ENV": "testing",
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "STORAGE_DIR": str(tmp_path_factory.mktemp("storage")),
        "SESSION_COOKIE_SECURE": False,
        # Hashing strength is not under test; scrypt would cost ~0.25 s per user and login.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    }


@contextmanager
def sqlite_demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """A migrated app on a fresh SQLite file (the embedded default), inside its app context,
    with ordinary sessions that really commit; the PostgreSQL test transaction's session is
    set aside meanwhile."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'demo.db'}"
    app = create_app(make_test_config(tmp_path_factory, url))
    test_session = _db.session
    with app.app_context():
        upgrade()
        _db.session = sa.orm.scoped_session(sa.orm.sessionmaker(bind=_db.engine))
        try:
            yield app
        finally:
            _db.session.rollback()
            _db.session.remove()
            _db.session = test_session
            _db.engine.dispose()


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    os.environ.setdefault("REGBO_SECRET_KEY", "test-secret-key")
    recreate_database(TEST_DATABASE_URL)
    application = create_app(make_test_config(tmp_path_factory, TEST_DATABASE_URL))
    with application.app_context():
        upgrade()
    yield application
    dispose_engines(application)


def dispose_engines(application: Flask) -> None:
    with application.app_context():
        for engine in _db.engines.values():
            engine.dispose()


@pytest.fixture(scope="session")
def shadow_app(app: Flask) -> Iterator[Flask]:
    """A second app on the same config, whose context the test body runs in.

    Requests on ``app`` then push their own app context (fresh ``g``, own session),
    exactly as in production, instead of reusing the test's.
    """
    shadow = create_app(dict(app.config))
    yield shadow
    dispose_engines(shadow)


@pytest.fixture(autouse=True)
def db(app: Flask, shadow_app: Flask) -> Iterator:
    """Every test in one outer transaction that is rolled back afterwards.

    All sessions (the test body's and each request's) are bound to one connection; the
    app's commits become savepoint releases.
    """
    with app.app_context():
        connection = _db.engine.connect()
    outer = connection.begin()
    original = _db.session
    factory = sa.orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    _db.session = sa.orm.scoped_session(factory, scopefunc=_app_ctx_id)
    try:
        with shadow_app.app_context():
            try:
                yield _db
            finally:
                _db.session.remove()
    finally:
        _db.session = original
        outer.rollback()
        connection.close()
        # Login/token failure counters commit on their own connection (so a rolled-back
        # request keeps them): start every test without anyone's earlier failures.
        with app.app_context(), _db.engine.begin() as own:
            own.execute(sa.text("DELETE FROM auth_throttle"))


@pytest.fixture(autouse=True)
def redis_conn() -> Iterator[Redis]:
    """The test Redis database, empty at the start and end of every test."""
    connection = Redis.from_url(TEST_REDIS_URL)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


VERSION_INPUT = re.compile(r'name="version"[^>]*value="(\d+)"')


def version_from(html: str) -> str:
    """The application version a transition form on the page carries."""
    match = VERSION_INPUT.search(html)
    assert match, "no version field on the page"
    return match.group(1)


def login(client: FlaskClient, user: User | str, password: str = factories.PASSWORD):
    """Log in through the real login form; returns the response."""
    username = user if isinstance(user, str) else user.username
    page = client.get("/login")
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def post_form(client: FlaskClient, url: str, data: dict | None = None, *, page: str = "/", **kw):
    """POST a form with a valid CSRF token taken from ``page`` (any page with a form)."""
    token = csrf_token_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token}, **kw)


def post_import(client: FlaskClient, application, data: bytes, name: str = "list.xlsx", **kw):
    """POST a cylinder-list file to the application's import, as its page does."""
    return post_form(
        client,
        f"/applications/{application.id}/import",
        {"file": (io.BytesIO(data), name)},
        page=f"/applications/{application.id}",
        content_type="multipart/form-data",
        **kw,
    )


@pytest.fixture
def login_as(client: FlaskClient):
    """``login_as(role_or_user, **factory_kwargs)`` → the logged-in user."""

    def _login(who, **kwargs) -> User:
        user = who if isinstance(who, User) else factories.make_user(who, **kwargs)
        response = login(client, user)
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return _login


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app: Flask):
    """``with count_queries() as counter: ...`` counts the SQL statements executed."""

    @contextmanager
    def _count() -> Iterator[QueryCounter]:
        counter = QueryCounter()

        def _before(_conn, _cursor, statement, *_args) -> None:
            if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
                counter.statements.append(statement)

        with app.app_context():
            engine = _db.engine
        sa.event.listen(engine, "before_cursor_execute", _before)
        try:
            yield counter
        finally:
            sa.event.remove(engine, "before_cursor_execute", _before)

    return _count


LIVE_DATABASE_URL = sa.make_url(TEST_DATABASE_URL).set(
    database=f"{sa.make_url(TEST_DATABASE_URL).database}_live"
)


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """An app on its own database where tests commit for real (other processes, threads).

    Used by the drills that need real concurrency or a separate worker process; nothing is
    rolled back, so tests using it must not rely on the database being empty.
    """
    url = LIVE_DATABASE_URL.render_as_string(hide_password=False)
    recreate_database(url)
    config = make_test_config(tmp_path_factory, url)
    # Room for the concurrency drills' 50 simultaneous transactions.
    config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 55, "max_overflow": 5, "pool_timeout": 60}
    application = create_app(config)
    with application.app_context():
        upgrade()
    yield application
    dispose_engines(application)


@pytest.fixture
def live_db(live_app: Flask) -> Iterator:
    """Run the test body on ``live_app`` with ordinary sessions that really commit."""
    bound = _db.session
    _db.session = _db._make_scoped_session({})
    try:
        with live_app.app_context():
            try:
                yield _db
            finally:
                _db.session.remove()
                _db.engine.dispose()  # the drills may have opened many connections
    finally:
        _db.session = bound
