"""change requests: 撤回, held 判废 records, and 过户 departures in the sender's feed

- ``change_requests.status`` gains ``withdrawn`` (已撤回, by the unit before the bureau
  acted), with ``withdrawn_at`` / ``withdrawn_by_id``.
- ``change_items.scrap_record_id``: a 判废 / 不合格 inspection record that arrived while the
  request held the cylinder (its 注销 task opens when the request ends).
- ``cylinder_departures``: a cylinder that left a unit by 过户, numbered in the sending
  unit's changes feed.

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

OLD_STATUSES = ("awaiting_receiver", "submitted", "accepted", "approved", "rejected")
NEW_STATUSES = (*OLD_STATUSES, "withdrawn")
OLD_RECEIVED = (
    "kind <> 'transfer' OR status IN ('awaiting_receiver', 'rejected')"
    " OR (received_at IS NOT NULL AND received_by_id IS NOT NULL)"
)
NEW_RECEIVED = (
    "kind <> 'transfer' OR status IN ('awaiting_receiver', 'rejected', 'withdrawn')"
    " OR (received_at IS NOT NULL AND received_by_id IS NOT NULL)"
)

# SQLite rebuilds the table in batch mode: keep its ids never reused (as 0016 made it).
AUTOINCREMENT = {"sqlite_autoincrement": True}


def _in(values):
    return ", ".join(f"'{v}'" for v in values)


def _change_statuses(values, received):
    with op.batch_alter_table("change_requests", table_kwargs=AUTOINCREMENT) as batch_op:
        batch_op.drop_constraint(op.f("ck_change_requests_change_status"), type_="check")
        batch_op.drop_constraint(op.f("ck_change_requests_transfer_was_received"), type_="check")
        batch_op.alter_column(
            "status",
            type_=sa.String(length=max(len(v) for v in values)),
            existing_nullable=False,
        )
        batch_op.create_check_constraint(
            op.f("ck_change_requests_change_status"), f"status IN ({_in(values)})"
        )
        batch_op.create_check_constraint(op.f("ck_change_requests_transfer_was_received"), received)


def upgrade():
    with op.batch_alter_table("change_requests", table_kwargs=AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_change_requests_withdrawn_by_id_users"), "users", ["withdrawn_by_id"], ["id"]
        )
        batch_op.create_check_constraint(
            op.f("ck_change_requests_withdrawn_has_actor"),
            "status <> 'withdrawn' OR (withdrawn_at IS NOT NULL AND withdrawn_by_id IS NOT NULL)",
        )
    _change_statuses(NEW_STATUSES, NEW_RECEIVED)
    with op.batch_alter_table("change_items") as batch_op:
        batch_op.add_column(
            sa.Column(
                "scrap_record_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_foreign_key(
            op.f("fk_change_items_scrap_record_id_inspection_records"),
            "inspection_records",
            ["scrap_record_id"],
            ["id"],
        )
    op.create_table(
        "cylinder_departures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("cylinder_id", sa.String(length=50), nullable=False),
        sa.Column(
            "change_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("change_request_id", sa.Integer(), nullable=True),
        sa.Column("to_unit_id", sa.Integer(), nullable=False),
        sa.Column("to_unit_name", sa.String(length=100), nullable=False),
        sa.Column("to_district_code", sa.String(length=6), nullable=False),
        sa.Column("to_certificate_no", sa.String(length=50), nullable=True),
        sa.Column("to_registration_authority", sa.String(length=200), nullable=True),
        sa.Column("left_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_cylinder_departures_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["to_unit_id"], ["units.id"], name=op.f("fk_cylinder_departures_to_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["cylinder_id"],
            ["cylinders.id"],
            name=op.f("fk_cylinder_departures_cylinder_id_cylinders"),
        ),
        sa.ForeignKeyConstraint(
            ["change_request_id"],
            ["change_requests.id"],
            name=op.f("fk_cylinder_departures_change_request_id_change_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cylinder_departures")),
        sa.UniqueConstraint("unit_id", "cylinder_id", name="uq_cylinder_departures_unit_cylinder"),
    )
    op.create_index(
        "ix_cylinder_departures_unit_change_seq",
        "cylinder_departures",
        ["unit_id", "change_seq"],
    )


def downgrade():
    op.drop_index("ix_cylinder_departures_unit_change_seq", table_name="cylinder_departures")
    op.drop_table("cylinder_departures")
    with op.batch_alter_table("change_items") as batch_op:
        batch_op.drop_constraint(
            op.f("fk_change_items_scrap_record_id_inspection_records"), type_="foreignkey"
        )
        batch_op.drop_column("scrap_record_id")
    op.execute(
        "UPDATE change_requests SET status = 'rejected', rejected_at = withdrawn_at,"
        " rejected_by_id = withdrawn_by_id, reject_reason = '使用单位撤回'"
        " WHERE status = 'withdrawn'"
    )
    _change_statuses(OLD_STATUSES, OLD_RECEIVED)
    with op.batch_alter_table("change_requests", table_kwargs=AUTOINCREMENT) as batch_op:
        batch_op.drop_constraint(op.f("ck_change_requests_withdrawn_has_actor"), type_="check")
        batch_op.drop_constraint(
            op.f("fk_change_requests_withdrawn_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("withdrawn_by_id")
        batch_op.drop_column("withdrawn_at")
