"""Issued documents keep what they print; 撤回申请 while 待补正

``licensing_documents.printed``: every value the paper prints, frozen at issue (rows issued
before this revision have none until they are first opened, then are frozen as they read).
``applications.withdrawn_at``: when the applicant withdrew the application while 待补正.

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("licensing_documents") as batch_op:
        batch_op.add_column(sa.Column("printed", sa.JSON()))
    with op.batch_alter_table(
        "applications", table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True)))


def downgrade():
    with op.batch_alter_table(
        "applications", table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_column("withdrawn_at")
    with op.batch_alter_table("licensing_documents") as batch_op:
        batch_op.drop_column("printed")
