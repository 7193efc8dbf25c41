"""退回补正 and the licensing documents: 待补正, the paused clock, numbered notices

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_OLD = ("draft", "submitted", "accepted", "reviewed", "approved", "certified", "voided")
_NEW = ("draft", "submitted", "returned", "accepted", "reviewed", "approved", "certified", "voided")


def _status_check(values):
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _replace_status_check(values):
    # SQLite rebuilds the table (env.py turns foreign keys off meanwhile): keep the
    # AUTOINCREMENT of 0011 so a deleted draft's id is never reused.
    with op.batch_alter_table(
        "applications", table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_constraint("application_status", type_="check")
        batch_op.create_check_constraint("application_status", _status_check(values))


def upgrade():
    _replace_status_check(_NEW)
    with op.batch_alter_table("applications") as batch_op:
        batch_op.add_column(sa.Column("resubmitted_at", sa.DateTime(timezone=True)))
        for name in ("paused_workdays", "accept_paused_seconds", "decision_paused_seconds"):
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("application_items") as batch_op:
        batch_op.add_column(sa.Column("correction_change", sa.String(length=20)))
    op.create_table(
        "licensing_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "acceptance_notice",
                "correction_notice",
                "refusal_decision",
                "rejection_decision",
                name="document_kind",
                native_enum=False,
                create_constraint=True,
                length=18,
            ),
            nullable=False,
        ),
        sa.Column("number", sa.String(length=30), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("issued_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unit_name", sa.String(length=100), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_licensing_documents_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.code"],
            name=op.f("fk_licensing_documents_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["issued_by_id"], ["users.id"], name=op.f("fk_licensing_documents_issued_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licensing_documents")),
        sa.UniqueConstraint("number", name=op.f("uq_licensing_documents_number")),
    )
    op.create_index(
        op.f("ix_licensing_documents_application_id"),
        "licensing_documents",
        ["application_id"],
    )
    op.create_table(
        "correction_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("round_no", sa.Integer(), nullable=False),
        sa.Column(
            "from_status",
            sa.Enum(
                *_NEW,
                name="correction_from_status",
                native_enum=False,
                create_constraint=True,
                length=9,
            ),
            nullable=False,
        ),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("remaining_workdays", sa.Integer(), nullable=False),
        sa.Column("unit_info", sa.JSON(), nullable=False),
        sa.Column("removed", sa.JSON(), nullable=False),
        sa.Column("resubmitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_workdays", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_correction_rounds_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["licensing_documents.id"],
            name=op.f("fk_correction_rounds_document_id_licensing_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["users.id"],
            name=op.f("fk_correction_rounds_requested_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correction_rounds")),
        sa.UniqueConstraint(
            "application_id", "round_no", name=op.f("uq_correction_rounds_application_id_round_no")
        ),
    )


def downgrade():
    op.drop_table("correction_rounds")
    op.drop_index(op.f("ix_licensing_documents_application_id"), table_name="licensing_documents")
    op.drop_table("licensing_documents")
    with op.batch_alter_table("application_items") as batch_op:
        batch_op.drop_column("correction_change")
    with op.batch_alter_table("applications") as batch_op:
        batch_op.drop_column("decision_paused_seconds")
        batch_op.drop_column("accept_paused_seconds")
        batch_op.drop_column("paused_workdays")
        batch_op.drop_column("resubmitted_at")
    op.execute("UPDATE applications SET status = 'submitted' WHERE status = 'returned'")
    _replace_status_check(_OLD)
