"""dashboard: small summary tables for the city supervision dashboard

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "stat_registrations",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("medium_code", sa.String(length=3), nullable=False),
        sa.Column("cylinders", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "district_code", "medium_code", name=op.f("pk_stat_registrations")
        ),
    )
    op.create_table(
        "stat_violations",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("fillings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "district_code", "reason", name=op.f("pk_stat_violations")
        ),
    )
    op.create_table(
        "stat_step_days",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("step", sa.String(length=10), nullable=False),
        sa.Column("tenths", sa.Integer(), nullable=False),
        sa.Column("applications", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "district_code", "step", "tenths", name=op.f("pk_stat_step_days")
        ),
    )
    op.create_table(
        "stat_refreshes",
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stat_refreshes")),
    )


def downgrade():
    op.drop_table("stat_refreshes")
    op.drop_table("stat_step_days")
    op.drop_table("stat_violations")
    op.drop_table("stat_registrations")
