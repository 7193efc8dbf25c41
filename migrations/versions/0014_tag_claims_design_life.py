"""application_items.live_tag_key (一瓶一码 held by a unique index) and design_life_years

``live_tag_key``:
The sha256 of a live item's QR URL or RFID code (``<tag_type>:<value>``, as tag bindings
are keyed). Two concurrent imports of the same new tag into two applications both passed
the look-up; with the unique index the second waits for the first and is refused.

Live items with a tag are filled in; when two live items already share a tag, the oldest
keeps it and the others stay NULL (their look-up still refuses an edit).

``design_life_years``: 设计使用年限 from the template's optional last column, carried into
``cylinders.design_life_years`` at registration.

Revision ID: 0014
Revises: 0013
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("application_items") as batch_op:
        batch_op.add_column(sa.Column("live_tag_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("design_life_years", sa.SmallInteger(), nullable=True))
        batch_op.create_unique_constraint("uq_application_items_live_tag_key", ["live_tag_key"])
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT id, tag_type, qr_content, rfid_code FROM application_items"
            " WHERE live_identity_key IS NOT NULL AND tag_type IS NOT NULL ORDER BY id"
        )
    )
    seen = set()
    updates = []
    for item_id, tag_type, qr_content, rfid_code in rows:
        value = qr_content if tag_type == "qr" else rfid_code
        if not value:
            continue
        digest = hashlib.sha256(f"{tag_type}:{value}".encode()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            updates.append({"id": item_id, "key": digest})
    if updates:
        connection.execute(
            sa.text("UPDATE application_items SET live_tag_key = :key WHERE id = :id"), updates
        )


def downgrade():
    with op.batch_alter_table("application_items") as batch_op:
        batch_op.drop_constraint("uq_application_items_live_tag_key", type_="unique")
        batch_op.drop_column("live_tag_key")
        batch_op.drop_column("design_life_years")
