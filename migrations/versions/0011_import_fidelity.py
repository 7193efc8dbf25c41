"""import fidelity: hidden rows counted, tag look-up indexes, SQLite ids never reused

Revision ID: 0011
Revises: 0010
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("import_jobs") as batch_op:
        batch_op.add_column(
            sa.Column("hidden_rows", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index("ix_cylinders_rfid_code", "cylinders", ["rfid_code"])
    op.create_index(
        "ix_application_items_qr_content",
        "application_items",
        ["qr_content"],
        postgresql_using="hash",
    )
    op.create_index("ix_application_items_rfid_code", "application_items", ["rfid_code"])
    _sqlite_applications_autoincrement(True)


def downgrade():
    _sqlite_applications_autoincrement(False)
    op.drop_index("ix_application_items_rfid_code", table_name="application_items")
    op.drop_index("ix_application_items_qr_content", table_name="application_items")
    op.drop_index("ix_cylinders_rfid_code", table_name="cylinders")
    with op.batch_alter_table("import_jobs") as batch_op:
        batch_op.drop_column("hidden_rows")


_PRIMARY_KEY = re.compile(r",\s*CONSTRAINT pk_applications PRIMARY KEY \(id\)")
_ID_COLUMN = "id INTEGER NOT NULL"
_ID_AUTOINCREMENT = "id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT"


def _sqlite_applications_autoincrement(on: bool):
    """SQLite only (PostgreSQL sequences never reuse ids): rebuild ``applications`` with or
    without AUTOINCREMENT, keeping its text (constraints) and its indexes. env.py turns
    foreign keys off around migrations, so dropping the old table touches no child row."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'applications'"
    ).scalar_one()
    indexes = (
        bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'applications'"
            " AND sql IS NOT NULL"
        )
        .scalars()
        .all()
    )
    if on:
        if "AUTOINCREMENT" in sql:
            return
        new = _PRIMARY_KEY.sub("", sql.replace(_ID_COLUMN, _ID_AUTOINCREMENT, 1))
    else:
        if "AUTOINCREMENT" not in sql:
            return
        new = sql.replace(_ID_AUTOINCREMENT, _ID_COLUMN, 1)
        new = new[: new.rindex(")")] + ", \n\tCONSTRAINT pk_applications PRIMARY KEY (id)\n)"
    # After a rebuild SQLite writes the name quoted.
    new = re.sub(r'^CREATE TABLE "?applications"?', "CREATE TABLE applications_rebuilt", new)
    bind.exec_driver_sql(new)
    bind.exec_driver_sql("INSERT INTO applications_rebuilt SELECT * FROM applications")
    bind.exec_driver_sql("DROP TABLE applications")
    bind.exec_driver_sql("ALTER TABLE applications_rebuilt RENAME TO applications")
    for index in indexes:
        bind.exec_driver_sql(index)
