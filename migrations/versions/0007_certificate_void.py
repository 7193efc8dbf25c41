"""certificates: 注销 (voided certificates)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.add_column(sa.Column("voided_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("voided_by_id", sa.Integer()))
        batch_op.add_column(sa.Column("void_reason", sa.String(length=500)))
        batch_op.create_foreign_key(
            op.f("fk_certificates_voided_by_id_users"), "users", ["voided_by_id"], ["id"]
        )
        batch_op.create_check_constraint(
            op.f("ck_certificates_voided_has_reason"),
            "voided_at IS NULL OR (void_reason IS NOT NULL AND void_reason <> '')",
        )


def downgrade():
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.drop_constraint(op.f("ck_certificates_voided_has_reason"), type_="check")
        batch_op.drop_constraint(op.f("fk_certificates_voided_by_id_users"), type_="foreignkey")
        batch_op.drop_column("void_reason")
        batch_op.drop_column("voided_by_id")
        batch_op.drop_column("voided_at")
