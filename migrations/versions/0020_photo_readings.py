"""photo_readings: 机器预读, what Tesseract read from each photo and its verdict

One row per attachment (replaced when the photo's content or the reader's version
changes). A hint for the clerk only: nothing here changes a cylinder's audit verdict.

Revision ID: 0020
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "photo_readings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attachment_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("engine", sa.String(length=60), nullable=False),
        sa.Column(
            "verdict",
            sa.Enum(
                "match",
                "mismatch",
                "unread",
                name="reading_verdict",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.Column("product_no_read", sa.String(length=60)),
        sa.Column("confidence", sa.Integer(), nullable=False),
        sa.Column("manufacturer_read", sa.String(length=100)),
        sa.Column("manufacture_month_read", sa.String(length=7)),
        sa.Column("note", sa.String(length=200)),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["attachments.id"],
            name=op.f("fk_photo_readings_attachment_id_attachments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_photo_readings")),
        sa.UniqueConstraint("attachment_id", name=op.f("uq_photo_readings_attachment_id")),
    )


def downgrade():
    op.drop_table("photo_readings")
