"""Statements run straight on the PostgreSQL driver: the interlock check's and the record
batches'.

The check is one statement per call (the token's client with the cylinder; its audit rows
follow in batches, ``audit_batch``), and SQLAlchemy's own work per statement (session
bookkeeping, the execution context, result metadata) cost about as much CPU as the
driver's: ≈ 0.15 ms against ≈ 0.08 ms here, and the session's transaction handling as
much again. A batch of records runs four statements (the token, its cylinders, its keys
and rows, its audit row): ≈ 1 ms of SQLAlchemy's CPU a batch. A ``DriverStatement`` is
still built with SQLAlchemy, compiled once for the dialect, and then sent by psycopg
itself as a prepared statement: inside ``own_autocommit_connection`` on a pooled
connection of its own in autocommit mode, elsewhere on the session's connection (so it
takes part in the session's transaction). Values go in and come back as the driver takes
and gives them: the caller passes driver-ready parameters (``driver_json`` for JSON) and
converts what it reads (enums). Driver errors are raised as SQLAlchemy's, so a lost
connection is answered 503 like everywhere else. On other databases (SQLite, the demo)
the statement runs through the session as usual.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from flask import g
from psycopg.types.json import Json
from sqlalchemy import Insert, Select, TextClause
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from .extensions import db

_OWN_CONNECTION = "driver_sql_connection"


class DriverStatement:
    def __init__(self, statement: Select[Any] | Insert | TextClause) -> None:
        self.statement = statement
        self._sql: str | None = None
        self._constants: dict[str, Any] = {}

    def _compile(self) -> str:
        if self._sql is None:
            compiled = self.statement.compile(dialect=db.engine.dialect)
            # Parameters with a value in the statement itself (e.g. set_config's arguments).
            self._constants = {k: v for k, v in compiled.params.items() if v is not None}
            self._sql = compiled.string
        return self._sql

    def _run(self, driver: psycopg.Connection, params: Mapping[str, Any]) -> psycopg.Cursor:
        sql = self._compile()
        merged = {**self._constants, **params}
        try:
            return driver.execute(sql, merged, prepare=True)
        except psycopg.Error as exc:
            raise DBAPIError.instance(sql, merged, exc, psycopg.Error) from exc

    def first(self, params: Mapping[str, Any]) -> Sequence[Any] | None:
        """The first row, or None."""
        driver = _driver_connection()
        if driver is None:
            return db.session.execute(self.statement, _portable(params)).first()
        return self._run(driver, params).fetchone()

    def all(self, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        """Every row."""
        driver = _driver_connection()
        if driver is None:
            return db.session.execute(self.statement, _portable(params)).all()
        return self._run(driver, params).fetchall()

    def execute(self, params: Mapping[str, Any]) -> None:
        """Run it for its effect (an INSERT)."""
        driver = _driver_connection()
        if driver is None:
            db.session.execute(self.statement, _portable(params))
        else:
            self._run(driver, params)


@contextmanager
def own_autocommit_connection() -> Iterator[bool]:
    """While inside (yields True), DriverStatements run on a pooled connection of their own
    in autocommit mode: every statement commits itself (no BEGIN or COMMIT round trips)
    and the ORM session is not involved. For the interlock check, whose whole work is two driver
    statements. Off PostgreSQL, or where the session is bound to a connection or already in
    a transaction (the tests' rolled-back one), it changes nothing (yields False).
    """
    engine = _engine_outside_any_transaction()
    if engine is None:
        yield False
        return
    pooled = engine.raw_connection()
    driver = pooled.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        driver.autocommit = True
        g.setdefault(_OWN_CONNECTION, driver)
        yield True
    finally:
        g.pop(_OWN_CONNECTION, None)
        try:
            driver.autocommit = False  # the pool hands it on to transactional users
        except psycopg.Error:
            pooled.invalidate()  # broken (the database went away): the pool opens a new one
        pooled.close()


def _engine_outside_any_transaction() -> Engine | None:
    """The PostgreSQL engine this request's session would use, if that session is not
    bound to a connection and not in a transaction; else None.

    A request that has not used its session yet has none, and none is built to find out
    (building and closing one costs more than the pool's checkout): its engine is the one
    the session factory is bound to (the tests bind it to a connection), else the app's.
    """
    if db.session.registry.has():
        session = db.session()
        if session.in_transaction():
            return None
        bind = session.get_bind()
    else:
        bind = db.session.session_factory.kw.get("bind") or db.engine
    if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        return None
    return bind


def own_driver() -> psycopg.Connection | None:
    """This request's own autocommit connection, if it has one."""
    own: psycopg.Connection | None = g.get(_OWN_CONNECTION)
    return own


def _driver_connection() -> psycopg.Connection | None:
    own = g.get(_OWN_CONNECTION)
    if own is not None:
        return own
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return None
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


def driver_json(value: Any) -> Json:
    """A JSON parameter for a DriverStatement (psycopg's own wrapper)."""
    return Json(value)


def _portable(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters for SQLAlchemy: JSON values unwrapped (its JSON type serialises them)."""
    return {k: (v.obj if isinstance(v, Json) else v) for k, v in params.items()}
