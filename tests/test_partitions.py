"""Monthly partitions of filling and trace records on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from regbackoffice.extensions import db
from regbackoffice.models import FillingRecord, TraceEvent
from regbackoffice.partitions import ensure_partitions

from . import factories


def partition_of(table: str, row_id: int) -> str:
    return db.session.execute(
        sa.text(f"SELECT tableoid::regclass::text FROM {table} WHERE id = :id"), {"id": row_id}
    ).scalar()


def test_records_land_in_their_month_and_new_months_take_rows_from_default():
    api_client, _ = factories.make_api_client()
    this_month = FillingRecord(
        client_id=api_client.id,
        cylinder_id="CQ1",
        medium_code="G13",
        filler="张三",
        fill_date=date(2026, 3, 9),
        filling_unit_name="站",
    )
    far = FillingRecord(
        client_id=api_client.id,
        cylinder_id="CQ1",
        medium_code="G13",
        filler="张三",
        fill_date=date(2031, 4, 2),
        filling_unit_name="站",
    )
    event = TraceEvent(
        client_id=api_client.id,
        cylinder_id="CQ1",
        event_time=datetime(2031, 3, 31, 17, 0, tzinfo=UTC),  # 2031-04-01 01:00 Beijing
        node="配送",
        actor="王师傅",
    )
    db.session.add_all([this_month, far, event])
    db.session.flush()
    assert partition_of("filling_records", this_month.id) == (
        "record_partitions.filling_records_y2026m03"
    )
    assert partition_of("filling_records", far.id) == "record_partitions.filling_records_default"

    created = ensure_partitions(db.session.connection(), date(2031, 4, 1), date(2031, 4, 1))
    assert "record_partitions.filling_records_y2031m04" in created
    assert partition_of("filling_records", far.id) == "record_partitions.filling_records_y2031m04"
    # Month bounds of trace events are Beijing time.
    assert partition_of("trace_events", event.id) == "record_partitions.trace_events_y2031m04"
    # Idempotent.
    assert ensure_partitions(db.session.connection(), date(2031, 4, 1), date(2031, 4, 1)) == []


def test_the_trail_query_can_use_the_cylinder_index_on_every_partition():
    # Plans depend on statistics; with sequential scans off the planner shows that a usable
    # (cylinder_id, fill_date) index exists on the partitions.
    db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = db.session.execute(
        sa.text(
            "EXPLAIN SELECT * FROM filling_records WHERE cylinder_id = 'CQ1' "
            "ORDER BY fill_date DESC LIMIT 100"
        )
    ).scalars()
    text = "\n".join(plan)
    assert "cylinder_id_fill_date_idx" in text and "Seq Scan" not in text


def test_partitioned_tables_keep_the_date_in_their_primary_key():
    # The models map ``id`` alone as the primary key (unique through its sequence); the
    # database's key is (id, <partition date>), as PostgreSQL requires for partitioned
    # tables. Alembic's comparison (tests/test_migrations.py) does not compare primary
    # keys, and the partitions live in their own schema, so this is the one deliberate
    # difference between models and migrations; it is pinned down here.
    rows = db.session.execute(
        sa.text(
            "SELECT c.relname, c.relkind, pg_get_constraintdef(k.oid) FROM pg_class c "
            "JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p' "
            "WHERE c.relname IN ('filling_records', 'trace_events') "
            "AND c.relnamespace = 'public'::regnamespace ORDER BY c.relname"
        )
    ).all()
    assert rows == [
        ("filling_records", "p", "PRIMARY KEY (id, fill_date)"),
        ("trace_events", "p", "PRIMARY KEY (id, event_time)"),
    ]


def test_partitions_ensure_command_creates_the_coming_months(app):
    result = app.test_cli_runner().invoke(args=["partitions-ensure", "--months-ahead", "40"])
    assert result.exit_code == 0, result.output
    assert "record_partitions.filling_records_y" in result.output
    again = app.test_cli_runner().invoke(args=["partitions-ensure", "--months-ahead", "40"])
    assert "created 0 partitions" in again.output
