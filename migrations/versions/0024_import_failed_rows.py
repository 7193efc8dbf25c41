"""import_failed_rows: an import's refused rows, one row each, instead of one JSON value

``import_jobs.failed_rows`` held every refused row of an import (cell texts and reasons)
as one JSON value, built in memory to the end of the import: a 100,000-row file whose rows
were nearly all refused peaked at ≈ 407 MB. The rows now stand in their own table, written
chunk by chunk as the import goes and read in row order (the result page's first 500,
下载错误数据 page by page). The JSON of the imports already done is moved here, then the
column is dropped; the downgrade puts it back, in row order.

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

# Each element of failed_rows: {"row": n, "values": [cell texts], "reasons": [texts]}. A row
# number given twice (never written so) keeps its first; an element without one is dropped.
_MOVE = {
    "postgresql": """
INSERT INTO import_failed_rows (import_job_id, row_no, cells, reasons)
SELECT j.id, (e.value->>'row')::integer,
       coalesce(e.value->'values', '[]'::json), coalesce(e.value->'reasons', '[]'::json)
FROM import_jobs j CROSS JOIN LATERAL json_array_elements(j.failed_rows) WITH ORDINALITY e
WHERE json_typeof(j.failed_rows) = 'array' AND e.value->>'row' IS NOT NULL
ORDER BY j.id, e.ordinality
ON CONFLICT DO NOTHING
""",
    "sqlite": """
INSERT OR IGNORE INTO import_failed_rows (import_job_id, row_no, cells, reasons)
SELECT j.id, CAST(json_extract(e.value, '$.row') AS INTEGER),
       coalesce(json_extract(e.value, '$.values'), '[]'),
       coalesce(json_extract(e.value, '$.reasons'), '[]')
FROM import_jobs j, json_each(j.failed_rows) e
WHERE json_type(j.failed_rows) = 'array' AND json_extract(e.value, '$.row') IS NOT NULL
ORDER BY j.id, e.id
""",
}

_BACK = {
    "postgresql": """
UPDATE import_jobs j SET failed_rows = f.rows
FROM (
    SELECT import_job_id,
           json_agg(json_build_object('row', row_no, 'values', cells, 'reasons', reasons)
                    ORDER BY row_no) AS rows
    FROM import_failed_rows GROUP BY import_job_id
) f
WHERE f.import_job_id = j.id
""",
    "sqlite": """
UPDATE import_jobs SET failed_rows = (
    SELECT json_group_array(json_object('row', row_no, 'values', json(cells),
                                        'reasons', json(reasons)))
    FROM (SELECT * FROM import_failed_rows f
          WHERE f.import_job_id = import_jobs.id ORDER BY row_no)
)
WHERE EXISTS (SELECT 1 FROM import_failed_rows f WHERE f.import_job_id = import_jobs.id)
""",
}


def upgrade():
    op.create_table(
        "import_failed_rows",
        sa.Column("import_job_id", sa.Integer(), nullable=False),
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("cells", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_job_id"],
            ["import_jobs.id"],
            name=op.f("fk_import_failed_rows_import_job_id_import_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("import_job_id", "row_no", name=op.f("pk_import_failed_rows")),
    )
    op.execute(_MOVE[op.get_bind().dialect.name])
    with op.batch_alter_table("import_jobs") as batch_op:
        batch_op.drop_column("failed_rows")


def downgrade():
    with op.batch_alter_table("import_jobs") as batch_op:
        batch_op.add_column(
            sa.Column("failed_rows", sa.JSON(), nullable=False, server_default="[]")
        )
    op.execute(_BACK[op.get_bind().dialect.name])
    with op.batch_alter_table("import_jobs") as batch_op:
        batch_op.alter_column("failed_rows", server_default=None)
    op.drop_table("import_failed_rows")
