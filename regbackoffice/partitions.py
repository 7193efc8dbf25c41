"""Monthly partitions of the large append-only record tables (PostgreSQL only).

``filling_records`` is partitioned by ``fill_date`` and ``trace_events`` by ``event_time``
(migration 0003). Each has a default partition that catches anything outside the monthly
ones, so an insert never fails for want of a partition; ``ensure_partitions`` (run by
``flask partitions-ensure`` from cron, e.g. monthly) adds the coming months ahead of time,
and moves rows that already landed in the default partition into the new monthly one.

Partitions live in their own schema, ``record_partitions``, out of the way of the models.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, text

PARTITION_SCHEMA = "record_partitions"
# table -> partition key column
PARTITIONED_TABLES = {"filling_records": "fill_date", "trace_events": "event_time"}
# Month bounds of trace events are Beijing time, the time enterprise systems send.
_BOUND_SUFFIX = {"fill_date": "", "event_time": " 00:00:00+08"}


def month_start(year: int, month: int) -> date:
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def partition_name(table: str, first_day: date) -> str:
    return f"{table}_y{first_day.year}m{first_day.month:02d}"


def _exists(conn: Connection, name: str) -> bool:
    return bool(
        conn.execute(
            text("SELECT to_regclass(:qualified) IS NOT NULL"),
            {"qualified": f"{PARTITION_SCHEMA}.{name}"},
        ).scalar()
    )


def create_month(conn: Connection, table: str, first_day: date) -> bool:
    """Create the partition of ``table`` for the month starting ``first_day``; False if it exists.

    Rows of that month already in the default partition are moved into it first (PostgreSQL
    refuses to attach a partition whose rows the default partition still holds).
    """
    name = partition_name(table, first_day)
    if _exists(conn, name):
        return False
    column = PARTITIONED_TABLES[table]
    suffix = _BOUND_SUFFIX[column]
    upper = month_start(first_day.year, first_day.month + 1)
    lower_sql, upper_sql = f"'{first_day.isoformat()}{suffix}'", f"'{upper.isoformat()}{suffix}'"
    default = f"{PARTITION_SCHEMA}.{table}_default"
    qualified = f"{PARTITION_SCHEMA}.{name}"
    conn.execute(text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
    in_default = conn.execute(
        text(
            f"SELECT EXISTS (SELECT 1 FROM {default} "
            f"WHERE {column} >= {lower_sql} AND {column} < {upper_sql})"
        )
    ).scalar()
    if not in_default:
        conn.execute(
            text(
                f"CREATE TABLE {qualified} PARTITION OF {table} "
                f"FOR VALUES FROM ({lower_sql}) TO ({upper_sql})"
            )
        )
        return True
    conn.execute(text(f"CREATE TABLE {qualified} (LIKE {table} INCLUDING DEFAULTS)"))
    conn.execute(
        text(
            f"WITH moved AS (DELETE FROM {default} "
            f"WHERE {column} >= {lower_sql} AND {column} < {upper_sql} RETURNING *) "
            f"INSERT INTO {qualified} SELECT * FROM moved"
        )
    )
    conn.execute(
        text(
            f"ALTER TABLE {table} ATTACH PARTITION {qualified} "
            f"FOR VALUES FROM ({lower_sql}) TO ({upper_sql})"
        )
    )
    return True


def ensure_partitions(conn: Connection, first: date, last: date) -> list[str]:
    """Monthly partitions of every partitioned table from ``first``'s month to ``last``'s."""
    if conn.dialect.name != "postgresql":
        return []
    created = []
    for table in PARTITIONED_TABLES:
        day = month_start(first.year, first.month)
        while day <= last:
            if create_month(conn, table, day):
                created.append(f"{PARTITION_SCHEMA}.{partition_name(table, day)}")
            day = month_start(day.year, day.month + 1)
    return created
