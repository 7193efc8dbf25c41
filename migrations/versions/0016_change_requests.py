"""change requests after registration (停用, 启用, 报废, 注销, 更名, 地址变更, 过户, 补领)

- ``cylinders.status`` (and the status history) gains ``cancelled`` (注销).
- ``change_requests`` + ``change_items``: a unit's (or an inspection body's 判废) change
  request with the cylinders it names; see ``regbackoffice.change_workflow``.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

OLD_STATUSES = ("in_use", "stopped", "scrapped")
NEW_STATUSES = (*OLD_STATUSES, "cancelled")
KINDS = ("suspend", "resume", "scrap", "cancel", "rename", "address", "transfer", "reissue")
CHANGE_STATUSES = ("awaiting_receiver", "submitted", "accepted", "approved", "rejected")

# (table, column, enum constraint name)
STATUS_COLUMNS = (
    ("cylinders", "status", "cylinder_status", False),
    ("cylinder_status_changes", "status", "cylinder_status", False),
    ("cylinder_status_changes", "previous_status", "previous_status", True),
)


def _in(values):
    return ", ".join(f"'{v}'" for v in values)


def _enum(name, values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True)


def _statuses(values):
    for table, column, name, nullable in STATUS_COLUMNS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
            batch_op.alter_column(
                column,
                type_=sa.String(length=max(len(v) for v in values)),
                existing_nullable=nullable,
            )
            batch_op.create_check_constraint(
                op.f(f"ck_{table}_{name}"), f"{column} IN ({_in(values)})"
            )


def upgrade():
    _statuses(NEW_STATUSES)
    op.create_table(
        "change_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=30), nullable=True),
        sa.Column("kind", _enum("change_kind", KINDS), nullable=False),
        sa.Column("status", _enum("change_status", CHANGE_STATUSES), nullable=False),
        sa.Column("origin", _enum("change_origin", ("unit", "inspection")), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("unit_name", sa.String(length=100), nullable=False),
        sa.Column("target_unit_id", sa.Integer(), nullable=True),
        sa.Column("new_unit_name", sa.String(length=100), nullable=True),
        sa.Column("new_address", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("effective_on", sa.Date(), nullable=True),
        sa.Column("long_stop", sa.Boolean(), nullable=False),
        sa.Column("reported_late", sa.Boolean(), nullable=False),
        sa.Column("proof_photo_key", sa.String(length=100), nullable=True),
        sa.Column("proof_thumbnail_key", sa.String(length=100), nullable=True),
        sa.Column("proof_photo_sha256", sa.String(length=64), nullable=True),
        sa.Column("proof_content_type", sa.String(length=20), nullable=True),
        sa.Column(
            "inspection_record_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("certificate_no", sa.String(length=50), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_by_id", sa.Integer(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejected_by_id", sa.Integer(), nullable=True),
        sa.Column("reject_reason", sa.String(length=500), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status NOT IN ('accepted') OR (accepted_at IS NOT NULL"
            " AND accepted_by_id IS NOT NULL)",
            name=op.f("ck_change_requests_accepted_has_acceptor"),
        ),
        sa.CheckConstraint(
            "status <> 'approved' OR (approved_at IS NOT NULL AND approved_by_id IS NOT NULL)",
            name=op.f("ck_change_requests_approved_has_approver"),
        ),
        sa.CheckConstraint(
            "status <> 'rejected' OR (rejected_at IS NOT NULL AND reject_reason IS NOT NULL"
            " AND reject_reason <> '')",
            name=op.f("ck_change_requests_rejected_has_reason"),
        ),
        sa.CheckConstraint(
            "kind <> 'transfer' OR target_unit_id IS NOT NULL",
            name=op.f("ck_change_requests_transfer_has_target"),
        ),
        sa.CheckConstraint(
            "kind <> 'transfer' OR status IN ('awaiting_receiver', 'rejected')"
            " OR (received_at IS NOT NULL AND received_by_id IS NOT NULL)",
            name=op.f("ck_change_requests_transfer_was_received"),
        ),
        sa.CheckConstraint(
            "kind <> 'rename' OR (new_unit_name IS NOT NULL AND new_unit_name <> '')",
            name=op.f("ck_change_requests_rename_has_name"),
        ),
        sa.CheckConstraint(
            "kind <> 'address' OR (new_address IS NOT NULL AND new_address <> '')",
            name=op.f("ck_change_requests_address_has_address"),
        ),
        sa.CheckConstraint(
            "kind NOT IN ('suspend', 'reissue') OR (reason IS NOT NULL AND reason <> '')",
            name=op.f("ck_change_requests_reason_given"),
        ),
        sa.CheckConstraint(
            "kind NOT IN ('scrap', 'cancel') OR proof_photo_key IS NOT NULL"
            " OR inspection_record_id IS NOT NULL",
            name=op.f("ck_change_requests_scrap_has_proof"),
        ),
        sa.CheckConstraint(
            "origin <> 'unit' OR created_by_id IS NOT NULL",
            name=op.f("ck_change_requests_unit_origin_has_applicant"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_change_requests_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["target_unit_id"], ["units.id"], name=op.f("fk_change_requests_target_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.code"],
            name=op.f("fk_change_requests_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["inspection_record_id"],
            ["inspection_records.id"],
            name=op.f("fk_change_requests_inspection_record_id_inspection_records"),
        ),
        *(
            sa.ForeignKeyConstraint(
                [f"{who}_id"], ["users.id"], name=op.f(f"fk_change_requests_{who}_id_users")
            )
            for who in ("created_by", "received_by", "accepted_by", "approved_by", "rejected_by")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_requests")),
        sa.UniqueConstraint("number", name=op.f("uq_change_requests_number")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_change_requests_inbox",
        "change_requests",
        ["district_code", "status", "kind", "due_on"],
    )
    op.create_index("ix_change_requests_unit_status", "change_requests", ["unit_id", "status"])
    op.create_index(
        "ix_change_requests_target_status", "change_requests", ["target_unit_id", "status"]
    )
    op.create_table(
        "change_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("change_id", sa.Integer(), nullable=False),
        sa.Column("cylinder_id", sa.String(length=50), nullable=False),
        sa.Column("live_cylinder_id", sa.String(length=50), nullable=True),
        sa.Column("previous_status", _enum("item_previous_status", NEW_STATUSES), nullable=False),
        sa.Column("previous_unit_id", sa.Integer(), nullable=False),
        sa.Column("previous_certificate_no", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["change_requests.id"],
            name=op.f("fk_change_items_change_id_change_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["cylinder_id"], ["cylinders.id"], name=op.f("fk_change_items_cylinder_id_cylinders")
        ),
        sa.ForeignKeyConstraint(
            ["previous_unit_id"], ["units.id"], name=op.f("fk_change_items_previous_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_items")),
        sa.UniqueConstraint("live_cylinder_id", name=op.f("uq_change_items_live_cylinder_id")),
    )
    op.create_index("ix_change_items_change", "change_items", ["change_id"])
    op.create_index("ix_change_items_cylinder_id", "change_items", ["cylinder_id"])
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(
            sa.Column("reissued", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "certificate_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("certificate_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reissued", sa.Boolean(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("cylinder_count", sa.Integer(), nullable=False),
        sa.Column("pdf_key", sa.String(length=100), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("change_request_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_certificate_versions_certificate_id_certificates"),
        ),
        sa.ForeignKeyConstraint(
            ["change_request_id"],
            ["change_requests.id"],
            name=op.f("fk_certificate_versions_change_request_id_change_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_versions")),
        sa.UniqueConstraint(
            "certificate_id", "version", name=op.f("uq_certificate_versions_version")
        ),
    )


def downgrade():
    op.drop_table("certificate_versions")
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.drop_column("reissued")
        batch_op.drop_column("version")
    op.drop_index("ix_change_items_cylinder_id", table_name="change_items")
    op.drop_index("ix_change_items_change", table_name="change_items")
    op.drop_table("change_items")
    op.drop_index("ix_change_requests_target_status", table_name="change_requests")
    op.drop_index("ix_change_requests_unit_status", table_name="change_requests")
    op.drop_index("ix_change_requests_inbox", table_name="change_requests")
    op.drop_table("change_requests")
    # A 注销 cylinder goes back to 报废, the nearest older state.
    op.execute("UPDATE cylinders SET status = 'scrapped' WHERE status = 'cancelled'")
    op.execute("UPDATE cylinder_status_changes SET status = 'scrapped' WHERE status = 'cancelled'")
    op.execute(
        "UPDATE cylinder_status_changes SET previous_status = 'scrapped'"
        " WHERE previous_status = 'cancelled'"
    )
    _statuses(OLD_STATUSES)
