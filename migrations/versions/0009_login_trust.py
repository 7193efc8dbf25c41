"""login and token trust: failure counters per address, forced password change, unit identity

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "auth_throttle",
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("lock_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject", "address", name=op.f("pk_auth_throttle")),
    )
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("applications") as batch_op:
        batch_op.add_column(sa.Column("identity_confirmed_name", sa.String(length=100)))
        batch_op.add_column(sa.Column("identity_confirmed_code", sa.String(length=18)))
        batch_op.add_column(sa.Column("identity_confirmed_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("identity_confirmed_by_id", sa.Integer()))
        batch_op.create_foreign_key(
            op.f("fk_applications_identity_confirmed_by_id_users"),
            "users",
            ["identity_confirmed_by_id"],
            ["id"],
        )


def downgrade():
    with op.batch_alter_table("applications") as batch_op:
        batch_op.drop_constraint(
            op.f("fk_applications_identity_confirmed_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("identity_confirmed_by_id")
        batch_op.drop_column("identity_confirmed_at")
        batch_op.drop_column("identity_confirmed_code")
        batch_op.drop_column("identity_confirmed_name")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("must_change_password")
    op.drop_table("auth_throttle")
