"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 13:23:21.166883

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The seed's code tables (shared/reference) as they were when this migration was written:
# copied here so that this migration means the same forever, whatever the package holds.
CODE_TABLES = {
    "districts": (
        ("code", "name", "authority"),
        [
            ("500101", "万州区", "重庆市万州区市场监督管理局"),
            ("500102", "涪陵区", "重庆市涪陵区市场监督管理局"),
            ("500103", "渝中区", "重庆市渝中区市场监督管理局"),
            ("500104", "大渡口区", "重庆市大渡口区市场监督管理局"),
            ("500105", "江北区", "重庆市江北区市场监督管理局"),
            ("500106", "沙坪坝区", "重庆市沙坪坝区市场监督管理局"),
            ("500107", "九龙坡区", "重庆市九龙坡区市场监督管理局"),
            ("500108", "南岸区", "重庆市南岸区市场监督管理局"),
            ("500109", "北碚区", "重庆市北碚区市场监督管理局"),
            ("500110", "綦江区", "重庆市綦江区市场监督管理局"),
            ("500111", "大足区", "重庆市大足区市场监督管理局"),
            ("500112", "渝北区", "重庆市渝北区市场监督管理局"),
            ("500113", "巴南区", "重庆市巴南区市场监督管理局"),
            ("500114", "黔江区", "重庆市黔江区市场监督管理局"),
            ("500115", "长寿区", "重庆市长寿区市场监督管理局"),
            ("500116", "江津区", "重庆市江津区市场监督管理局"),
            ("500117", "合川区", "重庆市合川区市场监督管理局"),
            ("500118", "永川区", "重庆市永川区市场监督管理局"),
            ("500119", "南川区", "重庆市南川区市场监督管理局"),
            ("500120", "璧山区", "重庆市璧山区市场监督管理局"),
            ("500141", "高新区", "重庆高新技术产业开发区管理委员会市场监督管理局"),
            ("500151", "铜梁区", "重庆市铜梁区市场监督管理局"),
            ("500198", "经开区", "经开区市场监督管理局"),
            ("500223", "潼南区", "重庆市潼南区市场监督管理局"),
            ("500226", "荣昌区", "重庆市荣昌区市场监督管理局"),
            ("500228", "梁平区", "重庆市梁平区市场监督管理局"),
            ("500229", "城口县", "城口县市场监督管理局"),
            ("500230", "丰都县", "丰都县市场监督管理局"),
            ("500231", "垫江县", "垫江县市场监督管理局"),
            ("500232", "武隆区", "重庆市武隆区市场监督管理局"),
            ("500233", "忠县", "忠县市场监督管理局"),
            ("500234", "开州区", "重庆市开州区市场监督管理局"),
            ("500235", "云阳县", "云阳县市场监督管理局"),
            ("500236", "奉节县", "奉节县市场监督管理局"),
            ("500237", "巫山县", "巫山县市场监督管理局"),
            ("500238", "巫溪县", "巫溪县市场监督管理局"),
            ("500240", "石柱土家族自治县", "石柱土家族自治县市场监督管理局"),
            ("500241", "秀山土家族苗族自治县", "秀山土家族苗族自治县市场监督管理局"),
            ("500242", "酉阳土家族苗族自治县", "酉阳土家族苗族自治县市场监督管理局"),
            ("500243", "彭水苗族土家族自治县", "彭水苗族土家族自治县市场监督管理局"),
            ("500298", "两江新区", "重庆两江新区市场监督管理局"),
            ("500299", "万盛经济开发区", "重庆市万盛经济技术开发区市场监督管理局"),
        ],
    ),
    "media": (
        ("code", "name"),
        [
            ("G1", "压缩氧气"),
            ("G2", "压缩氮气"),
            ("G3", "压缩氩气"),
            ("G4", "压缩氢气"),
            ("G5", "压缩天然气"),
            ("G6", "液化氧气"),
            ("G7", "液化氮气"),
            ("G8", "液化氩气"),
            ("G9", "液化氯气"),
            ("G10", "液化氨气"),
            ("G11", "液化氢气"),
            ("G12", "液化天然气"),
            ("G13", "液化石油气"),
            ("G14", "液化二甲醚"),
            ("G15", "二氧化碳"),
            ("G16", "丙烷"),
            ("G17", "溶解乙炔"),
            ("G18", "一氧化二氮（笑气、氧化亚氮）"),
            ("G19", "其他"),
            ("G20", "其他"),
        ],
    ),
    "varieties": (
        ("code", "name", "covers"),
        [
            ("2310", "无缝气瓶", ""),
            ("2320", "焊接气瓶", ""),
            ("23T0", "特种气瓶", "内装填料气瓶、纤维缠绕气瓶、低温绝热气瓶"),
        ],
    ),
}


def upgrade():
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_type", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=100), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("object_type", sa.String(length=30), nullable=True),
        sa.Column("object_id", sa.String(length=50), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_action_at", ["action", "at"], unique=False)
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_log_object", ["object_type", "object_id"], unique=False)

    op.create_table(
        "districts",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_districts")),
    )
    op.create_table(
        "media",
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_media")),
    )
    op.create_table(
        "varieties",
        sa.Column("code", sa.String(length=4), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("covers", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_varieties")),
    )
    op.create_table(
        "certificate_counters",
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_serial", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.code"],
            name=op.f("fk_certificate_counters_district_code_districts"),
        ),
        sa.PrimaryKeyConstraint("district_code", "year", name=op.f("pk_certificate_counters")),
    )
    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "use_unit",
                "inspection_body",
                name="unit_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("safety_department", sa.String(length=100), nullable=False),
        sa.Column("contact_name", sa.String(length=50), nullable=False),
        sa.Column("contact_phone", sa.String(length=30), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_code"], ["districts.code"], name=op.f("fk_units_district_code_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_units_credit_code")),
    )
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.String(length=255), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_data_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_api_clients_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("app_id", name=op.f("uq_api_clients_app_id")),
    )
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_clients_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("display_name", sa.String(length=50), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "applicant",
                "acceptor",
                "reviewer",
                "approver",
                "supervisor",
                "admin",
                name="user_role",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(role <> 'applicant') OR (unit_id IS NOT NULL AND district_code IS NULL)",
            name=op.f("ck_users_applicant_has_unit"),
        ),
        sa.CheckConstraint(
            "(role NOT IN ('acceptor', 'reviewer', 'approver')) OR (district_code IS NOT NULL AND unit_id IS NULL)",
            name=op.f("ck_users_district_role_has_district"),
        ),
        sa.CheckConstraint(
            "(role NOT IN ('supervisor', 'admin')) OR (district_code IS NULL AND unit_id IS NULL)",
            name=op.f("ck_users_city_role_unscoped"),
        ),
        sa.ForeignKeyConstraint(
            ["district_code"], ["districts.code"], name=op.f("fk_users_district_code_districts")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_users_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_api_tokens_client_id_api_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_client_id"), ["client_id"], unique=False)

    op.create_table(
        "applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=30), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "submitted",
                "accepted",
                "reviewed",
                "approved",
                "certified",
                "voided",
                name="application_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("unit_name", sa.String(length=100), nullable=False),
        sa.Column("safety_department", sa.String(length=100), nullable=False),
        sa.Column("contact_name", sa.String(length=50), nullable=False),
        sa.Column("contact_phone", sa.String(length=30), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("copied_from_id", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("audit_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("audit_completed_by_id", sa.Integer(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("certified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("certificate_no", sa.String(length=50), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_by_id", sa.Integer(), nullable=True),
        sa.Column("void_reason", sa.String(length=500), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status <> 'certified' OR (certified_at IS NOT NULL AND certificate_no IS NOT NULL)",
            name=op.f("ck_applications_certified_has_certificate"),
        ),
        sa.CheckConstraint(
            "status <> 'voided' OR (voided_at IS NOT NULL AND void_reason IS NOT NULL AND void_reason <> '')",
            name=op.f("ck_applications_voided_has_reason"),
        ),
        sa.CheckConstraint(
            "status = 'draft' OR status = 'voided' OR submitted_at IS NOT NULL",
            name=op.f("ck_applications_submitted_has_time"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('accepted', 'reviewed', 'approved', 'certified') OR (accepted_at IS NOT NULL AND accepted_by_id IS NOT NULL AND audit_completed_at IS NOT NULL)",
            name=op.f("ck_applications_accepted_has_acceptor"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('approved', 'certified') OR (approved_at IS NOT NULL AND approved_by_id IS NOT NULL)",
            name=op.f("ck_applications_approved_has_approver"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('reviewed', 'approved', 'certified') OR (reviewed_at IS NOT NULL AND reviewed_by_id IS NOT NULL)",
            name=op.f("ck_applications_reviewed_has_reviewer"),
        ),
        sa.ForeignKeyConstraint(
            ["accepted_by_id"], ["users.id"], name=op.f("fk_applications_accepted_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["approved_by_id"], ["users.id"], name=op.f("fk_applications_approved_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["audit_completed_by_id"],
            ["users.id"],
            name=op.f("fk_applications_audit_completed_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["copied_from_id"],
            ["applications.id"],
            name=op.f("fk_applications_copied_from_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_applications_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.code"],
            name=op.f("fk_applications_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by_id"], ["users.id"], name=op.f("fk_applications_reviewed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_applications_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["voided_by_id"], ["users.id"], name=op.f("fk_applications_voided_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("number", name=op.f("uq_applications_number")),
    )
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_applications_district_status", ["district_code", "status"], unique=False
        )
        batch_op.create_index("ix_applications_unit_status", ["unit_id", "status"], unique=False)

    op.create_table(
        "filling_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("record_no", sa.String(length=64), nullable=True),
        sa.Column("cylinder_id", sa.String(length=50), nullable=False),
        sa.Column("medium_code", sa.String(length=3), nullable=False),
        sa.Column("filler", sa.String(length=10), nullable=False),
        sa.Column("fill_date", sa.Date(), nullable=False),
        sa.Column("filling_unit_name", sa.String(length=100), nullable=False),
        sa.Column("violation", sa.Boolean(), nullable=False),
        sa.Column("violation_reasons", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_filling_records_client_id_api_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filling_records")),
        sa.UniqueConstraint("client_id", "record_no", name="uq_filling_records_client_record_no"),
    )
    with op.batch_alter_table("filling_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_filling_records_cylinder_date", ["cylinder_id", "fill_date"], unique=False
        )
        batch_op.create_index(
            "ix_filling_records_violation_date", ["violation", "fill_date"], unique=False
        )

    op.create_table(
        "inspection_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("record_no", sa.String(length=64), nullable=True),
        sa.Column("cylinder_id", sa.String(length=50), nullable=False),
        sa.Column("inspect_date", sa.Date(), nullable=False),
        sa.Column("inspection_org", sa.String(length=100), nullable=False),
        sa.Column("next_inspection_month", sa.String(length=7), nullable=True),
        sa.Column("conclusion", sa.String(length=10), nullable=False),
        sa.Column("inspect_type", sa.String(length=10), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_clients.id"],
            name=op.f("fk_inspection_records_client_id_api_clients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_records")),
        sa.UniqueConstraint(
            "client_id", "record_no", name="uq_inspection_records_client_record_no"
        ),
    )
    with op.batch_alter_table("inspection_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inspection_records_cylinder_date", ["cylinder_id", "inspect_date"], unique=False
        )

    op.create_table(
        "trace_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("record_no", sa.String(length=64), nullable=True),
        sa.Column("cylinder_id", sa.String(length=50), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("node", sa.String(length=10), nullable=False),
        sa.Column("actor", sa.String(length=10), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_trace_events_client_id_api_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trace_events")),
        sa.UniqueConstraint("client_id", "record_no", name="uq_trace_events_client_record_no"),
    )
    with op.batch_alter_table("trace_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_trace_events_cylinder_time", ["cylinder_id", "event_time"], unique=False
        )

    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=20), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=50), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("cylinder_count", sa.Integer(), nullable=False),
        sa.Column("issued_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "render_state",
            sa.Enum(
                "queued",
                "rendering",
                "ready",
                "failed",
                name="render_state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("render_error", sa.Text(), nullable=True),
        sa.Column("render_attempts", sa.Integer(), nullable=False),
        sa.Column("pdf_key", sa.String(length=100), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=True),
        sa.Column("rendered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("print_count", sa.Integer(), nullable=False),
        sa.Column("last_printed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_printed_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "render_state <> 'ready' OR (pdf_key IS NOT NULL AND pdf_sha256 IS NOT NULL)",
            name=op.f("ck_certificates_ready_has_pdf"),
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_certificates_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.code"],
            name=op.f("fk_certificates_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["issued_by_id"], ["users.id"], name=op.f("fk_certificates_issued_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["last_printed_by_id"],
            ["users.id"],
            name=op.f("fk_certificates_last_printed_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("application_id", name=op.f("uq_certificates_application_id")),
        sa.UniqueConstraint("district_code", "year", "serial", name="uq_certificates_serial"),
        sa.UniqueConstraint("number", name=op.f("uq_certificates_number")),
    )
    op.create_table(
        "cylinders",
        sa.Column("id", sa.String(length=50), nullable=False),
        sa.Column("use_unit_id", sa.Integer(), nullable=False),
        sa.Column("use_unit_name", sa.String(length=100), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("variety_code", sa.String(length=4), nullable=False),
        sa.Column("product_no", sa.String(length=50), nullable=False),
        sa.Column("medium_code", sa.String(length=3), nullable=False),
        sa.Column("manufacturer", sa.String(length=100), nullable=False),
        sa.Column("manufacture_month", sa.String(length=7), nullable=False),
        sa.Column("nominal_pressure_mpa", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("volume_l", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("last_inspection_date", sa.Date(), nullable=True),
        sa.Column("next_inspection_month", sa.String(length=7), nullable=True),
        sa.Column("internal_no", sa.String(length=50), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "in_use",
                "stopped",
                "scrapped",
                name="cylinder_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "tag_type",
            sa.Enum("qr", "rfid", name="tag_type", native_enum=False, create_constraint=True),
            nullable=True,
        ),
        sa.Column("info_code", sa.String(length=50), nullable=True),
        sa.Column("qr_content", sa.String(length=1000), nullable=True),
        sa.Column("rfid_code", sa.String(length=50), nullable=True),
        sa.Column("certificate_no", sa.String(length=50), nullable=True),
        sa.Column("registration_date", sa.Date(), nullable=True),
        sa.Column("registration_authority", sa.String(length=200), nullable=True),
        sa.Column("identity_key", sa.String(length=160), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_cylinders_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["district_code"], ["districts.code"], name=op.f("fk_cylinders_district_code_districts")
        ),
        sa.ForeignKeyConstraint(
            ["medium_code"], ["media.code"], name=op.f("fk_cylinders_medium_code_media")
        ),
        sa.ForeignKeyConstraint(
            ["use_unit_id"], ["units.id"], name=op.f("fk_cylinders_use_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["variety_code"], ["varieties.code"], name=op.f("fk_cylinders_variety_code_varieties")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cylinders")),
        sa.UniqueConstraint("identity_key", name=op.f("uq_cylinders_identity_key")),
        sa.UniqueConstraint("info_code", name=op.f("uq_cylinders_info_code")),
    )
    with op.batch_alter_table("cylinders", schema=None) as batch_op:
        batch_op.create_index("ix_cylinders_certificate_no", ["certificate_no"], unique=False)
        batch_op.create_index(
            "ix_cylinders_district_status", ["district_code", "status"], unique=False
        )
        batch_op.create_index("ix_cylinders_product_no", ["product_no"], unique=False)
        batch_op.create_index("ix_cylinders_unit", ["use_unit_id"], unique=False)

    op.create_table(
        "application_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("row_no", sa.Integer(), nullable=False),
        sa.Column("variety_code", sa.String(length=4), nullable=False),
        sa.Column("product_no", sa.String(length=50), nullable=False),
        sa.Column("medium_code", sa.String(length=3), nullable=False),
        sa.Column("manufacturer", sa.String(length=100), nullable=False),
        sa.Column("manufacture_month", sa.String(length=7), nullable=False),
        sa.Column("nominal_pressure_mpa", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("volume_l", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("last_inspection_date", sa.Date(), nullable=True),
        sa.Column("next_inspection_month", sa.String(length=7), nullable=True),
        sa.Column("internal_no", sa.String(length=50), nullable=True),
        sa.Column(
            "tag_type",
            sa.Enum("qr", "rfid", name="item_tag_type", native_enum=False, create_constraint=True),
            nullable=True,
        ),
        sa.Column("qr_content", sa.String(length=1000), nullable=True),
        sa.Column("rfid_code", sa.String(length=50), nullable=True),
        sa.Column("identity_key", sa.String(length=160), nullable=False),
        sa.Column("live_identity_key", sa.String(length=160), nullable=True),
        sa.Column(
            "audit_verdict",
            sa.Enum(
                "pending",
                "correct",
                "wrong",
                name="audit_verdict",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("audit_note", sa.String(length=200), nullable=True),
        sa.Column("audited_by_id", sa.Integer(), nullable=True),
        sa.Column("audited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("cylinder_id", sa.String(length=50), nullable=True),
        sa.Column("attachment_count", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "NOT excluded OR audit_verdict = 'wrong'",
            name=op.f("ck_application_items_excluded_was_wrong"),
        ),
        sa.CheckConstraint(
            "audit_verdict <> 'wrong' OR (audit_note IS NOT NULL AND audit_note <> '')",
            name=op.f("ck_application_items_wrong_has_note"),
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_application_items_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["audited_by_id"], ["users.id"], name=op.f("fk_application_items_audited_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["cylinder_id"],
            ["cylinders.id"],
            name=op.f("fk_application_items_cylinder_id_cylinders"),
        ),
        sa.ForeignKeyConstraint(
            ["medium_code"], ["media.code"], name=op.f("fk_application_items_medium_code_media")
        ),
        sa.ForeignKeyConstraint(
            ["variety_code"],
            ["varieties.code"],
            name=op.f("fk_application_items_variety_code_varieties"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_items")),
        sa.UniqueConstraint(
            "live_identity_key", name=op.f("uq_application_items_live_identity_key")
        ),
    )
    with op.batch_alter_table("application_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_application_items_app_product", ["application_id", "product_no"], unique=False
        )
        batch_op.create_index(
            "ix_application_items_app_row", ["application_id", "row_no"], unique=False
        )

    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "stamp",
                "supervision_certificate",
                name="attachment_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("storage_key", sa.String(length=100), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("original_name", sa.String(length=255), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["application_items.id"],
            name=op.f("fk_attachments_item_id_application_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"], ["users.id"], name=op.f("fk_attachments_uploaded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachments_item_id"), ["item_id"], unique=False)

    _load_code_tables()


def downgrade():
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_item_id"))

    op.drop_table("attachments")
    with op.batch_alter_table("application_items", schema=None) as batch_op:
        batch_op.drop_index("ix_application_items_app_row")
        batch_op.drop_index("ix_application_items_app_product")

    op.drop_table("application_items")
    with op.batch_alter_table("cylinders", schema=None) as batch_op:
        batch_op.drop_index("ix_cylinders_unit")
        batch_op.drop_index("ix_cylinders_product_no")
        batch_op.drop_index("ix_cylinders_district_status")
        batch_op.drop_index("ix_cylinders_certificate_no")

    op.drop_table("cylinders")
    op.drop_table("certificates")
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_sessions_user_id"))

    op.drop_table("user_sessions")
    with op.batch_alter_table("trace_events", schema=None) as batch_op:
        batch_op.drop_index("ix_trace_events_cylinder_time")

    op.drop_table("trace_events")
    with op.batch_alter_table("inspection_records", schema=None) as batch_op:
        batch_op.drop_index("ix_inspection_records_cylinder_date")

    op.drop_table("inspection_records")
    with op.batch_alter_table("filling_records", schema=None) as batch_op:
        batch_op.drop_index("ix_filling_records_violation_date")
        batch_op.drop_index("ix_filling_records_cylinder_date")

    op.drop_table("filling_records")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index("ix_applications_unit_status")
        batch_op.drop_index("ix_applications_district_status")

    op.drop_table("applications")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_client_id"))

    op.drop_table("api_tokens")
    op.drop_table("users")
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_clients_unit_id"))

    op.drop_table("api_clients")
    op.drop_table("units")
    op.drop_table("certificate_counters")
    op.drop_table("varieties")
    op.drop_table("media")
    op.drop_table("districts")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_object")
        batch_op.drop_index("ix_audit_log_at")
        batch_op.drop_index("ix_audit_log_action_at")

    op.drop_table("audit_log")


def _load_code_tables():
    """The seed's code tables as initial data."""
    for table, (columns, values) in CODE_TABLES.items():
        rows = [dict(zip(columns, row, strict=True)) for row in values]
        op.bulk_insert(sa.table(table, *(sa.column(c) for c in columns)), rows)
