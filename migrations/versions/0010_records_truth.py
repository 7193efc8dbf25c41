"""records that tell the truth: status history, changes feed, first answers, design life

- ``cylinder_status_changes``: each cylinder's 使用状态 changes with their effective dates
  (late records are judged as of their own date); one row per existing cylinder seeds it
  with its current status, effective from its registration date.
- ``cylinders.change_seq`` + ``cylinder_change_counter``: the changes feed's order; existing
  cylinders are numbered by creation.
- ``cylinders.design_life_years``: 设计使用年限 where given.
- ``api_record_keys.answer``: the first answer to a record_no, replayed to a re-send.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

STATUSES = ("in_use", "stopped", "scrapped")


def upgrade():
    with op.batch_alter_table("cylinders") as batch_op:
        batch_op.add_column(sa.Column("design_life_years", sa.SmallInteger()))
        batch_op.add_column(
            sa.Column("change_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"))
        )
        batch_op.create_index("ix_cylinders_unit_change_seq", ["use_unit_id", "change_seq"])
    with op.batch_alter_table("api_record_keys") as batch_op:
        batch_op.add_column(sa.Column("answer", sa.JSON()))

    op.create_table(
        "cylinder_status_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cylinder_id", sa.String(length=50), nullable=False),
        sa.Column(
            "previous_status",
            sa.Enum(*STATUSES, name="previous_status", native_enum=False, create_constraint=True),
            nullable=True,
        ),
        sa.Column(
            "status",
            sa.Enum(*STATUSES, name="cylinder_status", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cylinder_id"],
            ["cylinders.id"],
            name=op.f("fk_cylinder_status_changes_cylinder_id_cylinders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cylinder_status_changes")),
    )
    op.create_index(
        "ix_cylinder_status_changes_cylinder",
        "cylinder_status_changes",
        ["cylinder_id", "effective_on"],
    )
    op.create_table(
        "cylinder_change_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cylinder_change_counter")),
    )

    # Existing data: number the archive by creation, start the history with today's status.
    cylinders = sa.table(
        "cylinders",
        sa.column("id", sa.String),
        sa.column("created_at", sa.DateTime),
        sa.column("change_seq", sa.BigInteger),
    )
    bind = op.get_bind()
    numbered = (
        sa.select(
            cylinders.c.id,
            sa.func.row_number().over(order_by=(cylinders.c.created_at, cylinders.c.id)).label("n"),
        )
    ).subquery()
    bind.execute(
        cylinders.update()
        .values(
            change_seq=sa.select(numbered.c.n)
            .where(numbered.c.id == cylinders.c.id)
            .scalar_subquery()
        )
        .execution_options(synchronize_session=False)
    )
    last = bind.execute(sa.select(sa.func.coalesce(sa.func.max(cylinders.c.change_seq), 0)))
    op.bulk_insert(
        sa.table("cylinder_change_counter", sa.column("id"), sa.column("last_seq")),
        [{"id": 1, "last_seq": int(last.scalar())}],
    )
    bind.execute(
        sa.text(
            "INSERT INTO cylinder_status_changes"
            " (cylinder_id, previous_status, status, effective_on, recorded_at)"
            " SELECT id, NULL, status, COALESCE(registration_date, CAST(created_at AS DATE)),"
            " CURRENT_TIMESTAMP FROM cylinders"
        )
    )


def downgrade():
    op.drop_table("cylinder_change_counter")
    op.drop_index("ix_cylinder_status_changes_cylinder", table_name="cylinder_status_changes")
    op.drop_table("cylinder_status_changes")
    with op.batch_alter_table("api_record_keys") as batch_op:
        batch_op.drop_column("answer")
    with op.batch_alter_table("cylinders") as batch_op:
        batch_op.drop_index("ix_cylinders_unit_change_seq")
        batch_op.drop_column("change_seq")
        batch_op.drop_column("design_life_years")
