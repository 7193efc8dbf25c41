"""stat_step_days holds exact durations (seconds) instead of tenths of a day

The dashboard's medians were rounded twice (stored in tenths, then the median rounded
again). The table is a summary: it is recreated empty and the dashboard's refresh stamp is
removed, so the worker's sweep (or ``flask refresh-stats``) rebuilds it at once.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _step_days(duration_column: str) -> None:
    op.create_table(
        "stat_step_days",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("step", sa.String(length=10), nullable=False),
        sa.Column(duration_column, sa.Integer(), nullable=False),
        sa.Column("applications", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "district_code", "step", duration_column, name=op.f("pk_stat_step_days")
        ),
    )


def upgrade():
    op.drop_table("stat_step_days")
    _step_days("seconds")
    op.execute("DELETE FROM stat_refreshes WHERE name = 'dashboard'")


def downgrade():
    op.drop_table("stat_step_days")
    _step_days("tenths")
    op.execute("DELETE FROM stat_refreshes WHERE name = 'dashboard'")
