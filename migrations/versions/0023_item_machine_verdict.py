"""application_items.machine_verdict, photos_unread: each cylinder's 机器预读, kept by the reader

The audit pager counted, filtered and ordered cylinders by a verdict computed from
photo_readings at every page view (58–108 ms for the counts of a 10,000-cylinder
application); the verdict is now stored on the cylinder and indexed with its application.
Filled here from the readings already stored (same rule as regbackoffice.prereading:
不一致 if any current reading says so, else 一致 if one does, else 未识别), with the
number of its photos still waiting to be read (the applicant's "机器预读中" notice).

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# Only readings of a photo's present content count (a replaced photo's old reading: none).
_BACKFILL = """
UPDATE application_items SET machine_verdict = CASE (
    SELECT max(CASE r.verdict WHEN 'mismatch' THEN 2 WHEN 'match' THEN 1 ELSE 0 END)
    FROM attachments a
    JOIN photo_readings r ON r.attachment_id = a.id AND r.sha256 = a.sha256
    WHERE a.item_id = application_items.id
  ) WHEN 2 THEN 'mismatch' WHEN 1 THEN 'match' ELSE 'unread' END
WHERE EXISTS (
    SELECT 1 FROM attachments a
    JOIN photo_readings r ON r.attachment_id = a.id AND r.sha256 = a.sha256
    WHERE a.item_id = application_items.id
      AND r.verdict IN ('match', 'mismatch')
)
"""
_BACKFILL_UNREAD = """
UPDATE application_items SET photos_unread = (
    SELECT count(*) FROM attachments a
    WHERE a.item_id = application_items.id
      AND NOT EXISTS (
        SELECT 1 FROM photo_readings r WHERE r.attachment_id = a.id AND r.sha256 = a.sha256
      )
  )
"""


def upgrade():
    with op.batch_alter_table("application_items") as batch_op:
        batch_op.add_column(
            sa.Column(
                "machine_verdict",
                sa.Enum(
                    "match",
                    "mismatch",
                    "unread",
                    name="item_machine_verdict",
                    native_enum=False,
                    create_constraint=True,
                    length=8,
                ),
                nullable=False,
                server_default="unread",
            )
        )
        batch_op.add_column(
            sa.Column("photos_unread", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_index(
            "ix_application_items_app_machine",
            ["application_id", "machine_verdict", "row_no"],
        )
    op.execute(_BACKFILL)
    op.execute(_BACKFILL_UNREAD)


def downgrade():
    with op.batch_alter_table("application_items") as batch_op:
        batch_op.drop_index("ix_application_items_app_machine")
        batch_op.drop_column("photos_unread")
        # SQLite's batch copy would keep the CHECK on the dropped column otherwise.
        batch_op.drop_constraint("item_machine_verdict", type_="check")
        batch_op.drop_column("machine_verdict")
