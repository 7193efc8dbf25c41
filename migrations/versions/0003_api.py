"""JSON API: idempotency keys, tag bindings, monthly partitioned filling/trace records

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 13:50:00

On PostgreSQL ``filling_records`` and ``trace_events`` become tables partitioned by month
(PARTITION BY RANGE on ``fill_date`` / ``event_time``), with a default partition and the
months 2025-01 to 2027-12 in the ``record_partitions`` schema; ``flask partitions-ensure``
adds later months. Existing rows are copied across. The ``(client_id, record_no)`` unique
constraints move to ``api_record_keys`` (a partitioned table's unique constraints must
contain the partition key). On SQLite (the demo) the tables stay plain.
"""

from datetime import date

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# As regbackoffice.partitions defined them when this migration was written (copied, so the
# migration never changes with the code): monthly partitions in their own schema; trace
# events' months are bounded in Beijing time.
PARTITION_SCHEMA = "record_partitions"
PARTITION_KEYS = {"filling_records": "fill_date", "trace_events": "event_time"}
BOUND_SUFFIX = {"fill_date": "", "event_time": " 00:00:00+08"}
FIRST_MONTH, LAST_MONTH = (2025, 1), (2027, 12)


def _month_partitions() -> None:
    """Empty monthly partitions from FIRST_MONTH to LAST_MONTH (rows arrive afterwards)."""
    for table, column in PARTITION_KEYS.items():
        year, month = FIRST_MONTH
        while (year, month) <= LAST_MONTH:
            following = (year + 1, 1) if month == 12 else (year, month + 1)
            suffix = BOUND_SUFFIX[column]
            lower = f"'{date(year, month, 1).isoformat()}{suffix}'"
            upper = f"'{date(*following, 1).isoformat()}{suffix}'"
            op.execute(
                f"CREATE TABLE {PARTITION_SCHEMA}.{table}_y{year}m{month:02d} "
                f"PARTITION OF {table} FOR VALUES FROM ({lower}) TO ({upper})"
            )
            year, month = following


FILLING_COLUMNS = (
    "id, client_id, record_no, cylinder_id, medium_code, filler, fill_date,"
    " filling_unit_name, violation, violation_reasons, received_at"
)
TRACE_COLUMNS = "id, client_id, record_no, cylinder_id, event_time, node, actor, received_at"

PARTITIONED_DDL = {
    "filling_records": (
        """
        CREATE TABLE filling_records (
            id BIGINT NOT NULL DEFAULT nextval('filling_records_id_seq'),
            client_id INTEGER NOT NULL,
            record_no VARCHAR(64),
            cylinder_id VARCHAR(50) NOT NULL,
            medium_code VARCHAR(3) NOT NULL,
            filler VARCHAR(10) NOT NULL,
            fill_date DATE NOT NULL,
            filling_unit_name VARCHAR(100) NOT NULL,
            violation BOOLEAN NOT NULL,
            violation_reasons JSON NOT NULL,
            received_at TIMESTAMP WITH TIME ZONE NOT NULL,
            CONSTRAINT pk_filling_records PRIMARY KEY (id, fill_date),
            CONSTRAINT fk_filling_records_client_id_api_clients
                FOREIGN KEY (client_id) REFERENCES api_clients (id)
        ) PARTITION BY RANGE (fill_date)
        """,
        (
            "CREATE INDEX ix_filling_records_cylinder_date"
            " ON filling_records (cylinder_id, fill_date)",
            "CREATE INDEX ix_filling_records_violation_date"
            " ON filling_records (violation, fill_date)",
        ),
        FILLING_COLUMNS,
    ),
    "trace_events": (
        """
        CREATE TABLE trace_events (
            id BIGINT NOT NULL DEFAULT nextval('trace_events_id_seq'),
            client_id INTEGER NOT NULL,
            record_no VARCHAR(64),
            cylinder_id VARCHAR(50) NOT NULL,
            event_time TIMESTAMP WITH TIME ZONE NOT NULL,
            node VARCHAR(10) NOT NULL,
            actor VARCHAR(10) NOT NULL,
            received_at TIMESTAMP WITH TIME ZONE NOT NULL,
            CONSTRAINT pk_trace_events PRIMARY KEY (id, event_time),
            CONSTRAINT fk_trace_events_client_id_api_clients
                FOREIGN KEY (client_id) REFERENCES api_clients (id)
        ) PARTITION BY RANGE (event_time)
        """,
        ("CREATE INDEX ix_trace_events_cylinder_time ON trace_events (cylinder_id, event_time)",),
        TRACE_COLUMNS,
    ),
}


def _partition_postgresql() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {PARTITION_SCHEMA}")
    for table, (ddl, indexes, _columns) in PARTITIONED_DDL.items():
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_unpartitioned")
        # Keep the sequence (and so the ids already given out) for the new table.
        op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY NONE")
        op.execute(
            f"ALTER TABLE {table}_unpartitioned RENAME CONSTRAINT pk_{table} TO pk_{table}_old"
        )
        op.execute(
            f"ALTER TABLE {table}_unpartitioned DROP CONSTRAINT fk_{table}_client_id_api_clients"
        )
        for index in indexes:
            name = index.split()[2]
            op.execute(f"DROP INDEX {name}")
        op.execute(ddl)
        op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
        for index in indexes:
            op.execute(index)
        op.execute(f"CREATE TABLE {PARTITION_SCHEMA}.{table}_default PARTITION OF {table} DEFAULT")
    _month_partitions()
    for table, (_ddl, _indexes, columns) in PARTITIONED_DDL.items():
        op.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_unpartitioned")
        op.execute(f"DROP TABLE {table}_unpartitioned")


UNPARTITIONED_DDL = {
    "filling_records": """
        CREATE TABLE filling_records (
            id BIGINT NOT NULL DEFAULT nextval('filling_records_id_seq'),
            client_id INTEGER NOT NULL,
            record_no VARCHAR(64),
            cylinder_id VARCHAR(50) NOT NULL,
            medium_code VARCHAR(3) NOT NULL,
            filler VARCHAR(10) NOT NULL,
            fill_date DATE NOT NULL,
            filling_unit_name VARCHAR(100) NOT NULL,
            violation BOOLEAN NOT NULL,
            violation_reasons JSON NOT NULL,
            received_at TIMESTAMP WITH TIME ZONE NOT NULL,
            CONSTRAINT pk_filling_records PRIMARY KEY (id),
            CONSTRAINT fk_filling_records_client_id_api_clients
                FOREIGN KEY (client_id) REFERENCES api_clients (id),
            CONSTRAINT uq_filling_records_client_record_no UNIQUE (client_id, record_no)
        )
        """,
    "trace_events": """
        CREATE TABLE trace_events (
            id BIGINT NOT NULL DEFAULT nextval('trace_events_id_seq'),
            client_id INTEGER NOT NULL,
            record_no VARCHAR(64),
            cylinder_id VARCHAR(50) NOT NULL,
            event_time TIMESTAMP WITH TIME ZONE NOT NULL,
            node VARCHAR(10) NOT NULL,
            actor VARCHAR(10) NOT NULL,
            received_at TIMESTAMP WITH TIME ZONE NOT NULL,
            CONSTRAINT pk_trace_events PRIMARY KEY (id),
            CONSTRAINT fk_trace_events_client_id_api_clients
                FOREIGN KEY (client_id) REFERENCES api_clients (id),
            CONSTRAINT uq_trace_events_client_record_no UNIQUE (client_id, record_no)
        )
        """,
}


def _unpartition_postgresql() -> None:
    for table, (_ddl, indexes, columns) in PARTITIONED_DDL.items():
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_partitioned")
        op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY NONE")
        for index in indexes:
            op.execute(f"DROP INDEX {index.split()[2]}")
        op.execute(
            f"ALTER TABLE {table}_partitioned RENAME CONSTRAINT pk_{table} TO pk_{table}_old"
        )
        op.execute(
            f"ALTER TABLE {table}_partitioned DROP CONSTRAINT fk_{table}_client_id_api_clients"
        )
        op.execute(UNPARTITIONED_DDL[table])
        op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
        for index in indexes:
            op.execute(index)
        op.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_partitioned")
        op.execute(f"DROP TABLE {table}_partitioned CASCADE")
    op.execute(f"DROP SCHEMA IF EXISTS {PARTITION_SCHEMA} CASCADE")


def upgrade():
    op.create_table(
        "api_record_keys",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("record_no", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_api_record_keys_client_id_api_clients")
        ),
        sa.PrimaryKeyConstraint("client_id", "kind", "record_no", name=op.f("pk_api_record_keys")),
    )
    op.create_table(
        "api_idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("path", sa.String(length=100), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_clients.id"],
            name=op.f("fk_api_idempotency_keys_client_id_api_clients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_idempotency_keys")),
        sa.UniqueConstraint("client_id", "key", name="uq_api_idempotency_keys_client_key"),
    )
    op.create_table(
        "tag_bindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cylinder_id", sa.String(length=50), nullable=False),
        sa.Column(
            "tag_type",
            sa.Enum("qr", "rfid", name="tag_type", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("tag_value", sa.String(length=1000), nullable=False),
        sa.Column("tag_sha256", sa.String(length=64), nullable=False),
        sa.Column("info_code", sa.String(length=50), nullable=False),
        sa.Column("stamp_photo_key", sa.String(length=200), nullable=False),
        sa.Column("stamp_photo_sha256", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_tag_bindings_client_id_api_clients")
        ),
        sa.ForeignKeyConstraint(
            ["cylinder_id"], ["cylinders.id"], name=op.f("fk_tag_bindings_cylinder_id_cylinders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_bindings")),
        sa.UniqueConstraint("cylinder_id", name="uq_tag_bindings_cylinder_id"),
        sa.UniqueConstraint("info_code", name="uq_tag_bindings_info_code"),
        sa.UniqueConstraint("tag_sha256", name="uq_tag_bindings_tag_sha256"),
    )
    with op.batch_alter_table("cylinders") as batch_op:
        batch_op.create_index(
            "ix_cylinders_qr_content", ["qr_content"], unique=False, postgresql_using="hash"
        )
    if op.get_bind().dialect.name == "postgresql":
        _partition_postgresql()
    else:
        with op.batch_alter_table("filling_records") as batch_op:
            batch_op.drop_constraint("uq_filling_records_client_record_no", type_="unique")
        with op.batch_alter_table("trace_events") as batch_op:
            batch_op.drop_constraint("uq_trace_events_client_record_no", type_="unique")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        _unpartition_postgresql()
    else:
        with op.batch_alter_table("trace_events") as batch_op:
            batch_op.create_unique_constraint(
                "uq_trace_events_client_record_no", ["client_id", "record_no"]
            )
        with op.batch_alter_table("filling_records") as batch_op:
            batch_op.create_unique_constraint(
                "uq_filling_records_client_record_no", ["client_id", "record_no"]
            )
    with op.batch_alter_table("cylinders") as batch_op:
        batch_op.drop_index("ix_cylinders_qr_content")
    op.drop_table("tag_bindings")
    op.drop_table("api_idempotency_keys")
    op.drop_table("api_record_keys")
