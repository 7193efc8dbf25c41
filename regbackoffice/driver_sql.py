"""Statements run straight on the PostgreSQL driver: the interlock check's two statements.

The check is two statements per call (the token's client with the cylinder, and the audit
row), and SQLAlchemy's own work per statement (session bookkeeping, the execution context,
result metadata) cost about as much CPU as the driver's: ≈ 0.15 ms against ≈ 0.08 ms
here. A ``DriverStatement`` is still built with SQLAlchemy, compiled once for the
session's dialect, and then sent by psycopg itself as a prepared statement on the
session's own connection, so it takes part in whatever the session is in (autocommit for
the API's reads, a transaction otherwise). Values go in and come back as the driver takes
and gives them: the caller passes driver-ready parameters (``driver_json`` for JSON) and
converts what it reads (enums). On other databases (SQLite, the demo) the statement runs
through the session as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import Insert, Select

from .extensions import db


class DriverStatement:
    def __init__(self, statement: Select[Any] | Insert) -> None:
        self.statement = statement
        self._sql: str | None = None
        self._constants: dict[str, Any] = {}

    def _compile(self, dialect: Any) -> str:
        if self._sql is None:
            compiled = self.statement.compile(dialect=dialect)
            # Parameters with a value in the statement itself (e.g. set_config's arguments).
            self._constants = {k: v for k, v in compiled.params.items() if v is not None}
            self._sql = compiled.string
        return self._sql

    def first(self, params: Mapping[str, Any]) -> Sequence[Any] | None:
        """The first row, or None."""
        connection = db.session.connection()
        if connection.dialect.name != "postgresql":
            return db.session.execute(self.statement, _portable(params)).first()
        sql = self._compile(connection.dialect)
        driver = connection.connection.driver_connection
        assert driver is not None
        cursor = driver.execute(sql, {**self._constants, **params}, prepare=True)
        return cursor.fetchone()

    def execute(self, params: Mapping[str, Any]) -> None:
        """Run it for its effect (an INSERT)."""
        connection = db.session.connection()
        if connection.dialect.name != "postgresql":
            db.session.execute(self.statement, _portable(params))
            return
        sql = self._compile(connection.dialect)
        driver = connection.connection.driver_connection
        assert driver is not None
        driver.execute(sql, {**self._constants, **params}, prepare=True)


def driver_json(value: Any) -> Json:
    """A JSON parameter for a DriverStatement (psycopg's own wrapper)."""
    return Json(value)


def _portable(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters for SQLAlchemy: JSON values unwrapped (its JSON type serialises them)."""
    return {k: (v.obj if isinstance(v, Json) else v) for k, v in params.items()}
