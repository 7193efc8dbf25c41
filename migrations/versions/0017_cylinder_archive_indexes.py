"""气瓶档案: indexes for the archive lists (keyset order per scope) and prefix search

The lists order each scope's cylinders by (product_no, id) and page by keyset, so each
scope gets an index in that order: the unit's, the district's and the city's (the last
replaces the single-column product_no index), and the city's by status. The 下次检验 filters
(已超期, 30日内到期) get next_inspection_month indexes, city-wide and per district. Prefix search (LIKE 'text%') on 产品编号 and
单位内编号 uses varchar_pattern_ops indexes on PostgreSQL, whatever the collation.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_cylinders_unit_product", "cylinders", ["use_unit_id", "product_no", "id"])
    op.create_index(
        "ix_cylinders_district_product", "cylinders", ["district_code", "product_no", "id"]
    )
    op.drop_index("ix_cylinders_product_no", table_name="cylinders")
    op.create_index("ix_cylinders_product_no", "cylinders", ["product_no", "id"])
    op.create_index("ix_cylinders_status_product", "cylinders", ["status", "product_no", "id"])
    op.create_index("ix_cylinders_next_inspection", "cylinders", ["next_inspection_month"])
    op.create_index(
        "ix_cylinders_district_next_inspection",
        "cylinders",
        ["district_code", "next_inspection_month"],
    )
    op.create_index(
        "ix_cylinders_product_no_prefix",
        "cylinders",
        ["product_no"],
        postgresql_ops={"product_no": "varchar_pattern_ops"},
    )
    op.create_index(
        "ix_cylinders_internal_no_prefix",
        "cylinders",
        ["internal_no"],
        postgresql_ops={"internal_no": "varchar_pattern_ops"},
    )


def downgrade():
    op.drop_index("ix_cylinders_internal_no_prefix", table_name="cylinders")
    op.drop_index("ix_cylinders_product_no_prefix", table_name="cylinders")
    op.drop_index("ix_cylinders_district_next_inspection", table_name="cylinders")
    op.drop_index("ix_cylinders_next_inspection", table_name="cylinders")
    op.drop_index("ix_cylinders_status_product", table_name="cylinders")
    op.drop_index("ix_cylinders_product_no", table_name="cylinders")
    op.create_index("ix_cylinders_product_no", "cylinders", ["product_no"])
    op.drop_index("ix_cylinders_district_product", table_name="cylinders")
    op.drop_index("ix_cylinders_unit_product", table_name="cylinders")
