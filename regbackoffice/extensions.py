"""Flask extensions, created unbound and initialised in ``create_app``."""

import sqlite3
import time
from typing import Any

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool


class Base(DeclarativeBase):
    # Stable constraint names so Alembic migrations can refer to them on every backend.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


@event.listens_for(Engine, "connect")
def _sqlite_foreign_keys(dbapi_connection: object, _record: object) -> None:
    """SQLite (the demo) enforces foreign keys only when told so, on every connection."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def ping_when_idle(pool: Pool, seconds: float) -> None:
    """Test a pooled connection at checkout only when it sat idle ``seconds`` or more.

    ``pool_pre_ping`` pings on every checkout: one more round trip per request, the
    largest single cost of the API's interlock check. A connection back in use within
    seconds is alive; one idle longer (a database restart or failover may have cut it) is
    pinged first and, if dead, replaced before the request sees it. A connection cut while
    in steady use fails that one request (503); SQLAlchemy then invalidates the whole pool,
    so the next requests get fresh connections.
    """

    @event.listens_for(pool, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()  # end the ping's implicit transaction
        except Exception as exc:  # any failure: let the pool connect afresh
            raise DisconnectionError(str(exc)) from exc


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
# Storage (Redis or memory) is chosen in create_app from REDIS_URL. The check before each
# request is registered by ``check_page_limits``, not by the extension (auto_check).
limiter = Limiter(get_remote_address, auto_check=False)


def check_page_limits() -> None:
    """The page limits, before every request but the JSON API's (a page hook,
    ``page_hooks``): they count per address, while the API limits per client (failed token
    exchanges in ``throttle``, records in ``record_quota``), so its calls skip the
    limiter's per-request work (≈ 0.1 ms a call). The same check the extension registers
    itself with auto_check."""
    limiter._check_request_limit()
