"""workflow: inbox deadlines, per-cylinder audit revisions, certificate render start

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("applications") as batch_op:
        batch_op.add_column(sa.Column("accept_due_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("decision_due_on", sa.Date(), nullable=True))
        batch_op.create_index(
            "ix_applications_inbox_accept", ["district_code", "status", "accept_due_on"]
        )
        batch_op.create_index(
            "ix_applications_inbox_decision", ["district_code", "status", "decision_due_on"]
        )
    with op.batch_alter_table("application_items") as batch_op:
        batch_op.add_column(
            sa.Column("audit_revision", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.add_column(sa.Column("render_started_at", sa.DateTime(timezone=True)))


def downgrade():
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.drop_column("render_started_at")
    with op.batch_alter_table("application_items") as batch_op:
        batch_op.drop_column("audit_revision")
    with op.batch_alter_table("applications") as batch_op:
        batch_op.drop_index("ix_applications_inbox_decision")
        batch_op.drop_index("ix_applications_inbox_accept")
        batch_op.drop_column("decision_due_on")
        batch_op.drop_column("accept_due_on")
