"""import_jobs.started_at: when the worker began an import (its own short commit)

An import runs in one transaction, so a killed work horse rolls it back; the job row is
marked 导入中 with this time in a separate commit first, so the sweep can tell an import
whose worker died (失败, 重试) from one still running.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("import_jobs", sa.Column("started_at", sa.DateTime(timezone=True)))


def downgrade():
    op.drop_column("import_jobs", "started_at")
