"""Statements for many rows at once that keep one short text (PostgreSQL), with fallbacks.

psycopg caches the parsing of a statement only when it has at most 50 parameters; a batch
of 100–500 records written as ``IN (…)`` or multi-row ``VALUES`` is parsed afresh on every
call and costs milliseconds of CPU. With one JSON array parameter (``id_in``) or one JSON
document of rows (``json_rows_insert``) the statement text is the same for every batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Table,
    Text,
    TypeDecorator,
    any_,
    bindparam,
    cast,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql

from . import json_text
from .driver_sql import DriverStatement
from .extensions import db


def on_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def id_in(column: Any, ids: Sequence[str]) -> Any:
    """``column IN ids``; on PostgreSQL ``column = ANY(…)`` of one JSON array parameter.

    A batch names up to 500 cylinders, an import chunk 2,000 keys: as ``IN (…)`` that is
    one placeholder each, and psycopg parses a statement of more than 50 parameters afresh
    on every call (it caches only smaller ones); with one parameter the statement text is
    the same every time. The values travel as one JSON text (orjson: ≈ 0.05 ms for 2,000)
    rather than a text[] (psycopg adapts a list in pure Python: ≈ 2 ms for 2,000); the same
    index scan reads them (``= ANY`` of the array unpacked in the statement).
    """
    if on_postgresql():
        return column == any_(
            elements_of(bindparam("ids", json_list(ids), type_=Text, unique=True))
        )
    return column.in_(ids)


def elements_of(json_param: Any) -> Any:
    """The text[] of a JSON array parameter (``json_list``), for ``= ANY(…)`` (PostgreSQL)."""
    unpacked = func.json_array_elements_text(cast(json_param, postgresql.JSON))
    return func.array(select(unpacked).scalar_subquery())


def json_list(values: Iterable[str]) -> str:
    """The parameter ``elements_of`` unpacks."""
    return json_text.dumps(list(values)).decode()


def _json_default(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()  # what PostgreSQL's date and timestamptz inputs read
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_rows(
    table: Table, rows: list[dict[str, Any]], constants: Mapping[str, Any] | None = None
) -> tuple[str, str, dict[str, Any]]:
    """(column list, ``SELECT … FROM json_populate_recordset(…)`` of them, its parameters).

    ``constants``: columns with one value for every row (the client, the time received),
    sent once as parameters of their own rather than in each row of the document.
    """
    keys = list(rows[0])
    dialect = db.session.get_bind().dialect
    # Dates and times go in as ISO text, after the column's bind processing (UTC for
    # UTCDateTime): once per distinct value, not per row, since a batch's rows share their
    # dates and timestamps (received_at, created_at, fill_date); per row and through
    # json's ``default`` this cost ≈ 4 ms a batch of 500.
    temporal: dict[str, Any] = {}
    for key in keys:
        column_type = table.c[key].type
        if isinstance(getattr(column_type, "impl", column_type), Date | DateTime):
            if isinstance(column_type, TypeDecorator):
                temporal[key] = column_type.process_bind_param
            else:
                temporal[key] = None
    if temporal:
        done: dict[tuple[str, Any], Any] = {}
        converted = []
        for row in rows:
            row = dict(row)
            for key, process in temporal.items():
                value = row.get(key)
                if value is not None:
                    if (key, value) not in done:
                        processed = value if process is None else process(value, dialect)
                        if isinstance(processed, date):  # datetime is a date too
                            processed = processed.isoformat()
                        done[key, value] = processed
                    row[key] = done[key, value]
            converted.append(row)
        rows = converted
    name = f"{table.name}_rows"
    params = {name: json_text.dumps(rows, _json_default).decode()}
    selected = list(keys)
    for key, value in (constants or {}).items():
        column_type = table.c[key].type
        process = column_type.bind_processor(dialect)  # e.g. UTCDateTime's
        param = f"{table.name}_{key}"
        params[param] = value if process is None else process(value)
        selected.append(f"CAST(:{param} AS {column_type.compile(dialect)})")
    columns = ", ".join([*keys, *(constants or {})])
    source = (
        f"SELECT {', '.join(selected)} FROM json_populate_recordset(NULL::{table.name}, "
        f"CAST(:{name} AS json)) AS {name}"
    )
    return columns, source, params


def json_rows_insert(
    table: Table,
    rows: list[dict[str, Any]],
    *,
    constants: Mapping[str, Any] | None = None,
    skip_conflicts: bool = False,
    returning: str = "",
) -> list[Any]:
    """``INSERT … SELECT … FROM json_populate_recordset(NULL::table, :rows)`` (PostgreSQL).

    All rows travel as one JSON document, serialised by orjson (``json_text``) and
    parsed by PostgreSQL into the table's own column types: one short statement with one
    parameter, whatever the batch size (psycopg's array adaptation is pure Python and
    slower still). Values go through the columns' ``process_bind_param`` (UTC datetimes);
    JSON columns nest as JSON. The rows are the same as an executemany INSERT's (defaults
    must already be in ``rows`` or ``constants``; a key missing from a row is NULL).
    Returns the ``returning`` column of the rows inserted.
    """
    columns, source, params = _json_rows(table, rows, constants)
    sql = f"INSERT INTO {table.name} ({columns}) {source}"
    if skip_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += f" RETURNING {returning}"
    return _run(sql, params, returning=bool(returning))


# The statements above, one per table and column list, each compiled once and run on the
# session's connection straight on the driver (``driver_sql``): SQLAlchemy's own work per
# statement cost as much CPU as building a batch of 100 rows' JSON.
_STATEMENTS: dict[str, DriverStatement] = {}


def _run(sql: str, params: dict[str, Any], *, returning: bool) -> list[Any]:
    """Run a statement of this module; the first column of what it returns."""
    statement = _STATEMENTS.get(sql)
    if statement is None:
        statement = _STATEMENTS[sql] = DriverStatement(text(sql))
    if not returning:
        statement.execute(params)
        return []
    return [row[0] for row in statement.all(params)]


def claim_and_insert(
    keys: Table,
    key_rows: list[dict[str, Any]],
    table: Table,
    rows: list[dict[str, Any]],
    *,
    key_constants: Mapping[str, Any] | None = None,
    constants: Mapping[str, Any] | None = None,
) -> set[str]:
    """Claim record numbers and store the rows whose number was claimed, in one statement.

    ``key_rows`` go into ``keys`` (ON CONFLICT DO NOTHING: numbers stored before are not
    claimed); each of ``rows`` is stored when its ``record_no`` is NULL or was claimed by
    this statement. Returns the claimed numbers. The same two INSERTs as before, as
    data-modifying CTEs: one round trip instead of two (PostgreSQL).
    """
    if not key_rows:
        if rows:
            json_rows_insert(table, rows, constants=constants)
        return set()
    key_columns, key_source, key_params = _json_rows(keys, key_rows, key_constants)
    columns, source, params = _json_rows(table, rows, constants)
    sql = (
        f"WITH claimed AS (INSERT INTO {keys.name} ({key_columns}) {key_source} "
        "ON CONFLICT DO NOTHING RETURNING record_no), "
        f"stored AS (INSERT INTO {table.name} ({columns}) {source} "
        f"WHERE {table.name}_rows.record_no IS NULL "
        f"OR {table.name}_rows.record_no IN (SELECT record_no FROM claimed)) "
        "SELECT record_no FROM claimed"
    )
    return set(_run(sql, {**key_params, **params}, returning=True))
