"""Loading the packaged code tables into the database (idempotent)."""

from __future__ import annotations

from .extensions import db
from .models import District, Medium, Variety
from .models.reference import read_reference_rows

TABLE_MODELS = {"districts": District, "media": Medium, "varieties": Variety}


def load_reference_data() -> dict[str, int]:
    """Insert or update every row of the code tables; returns the row count per table."""
    counts = {}
    for table, model in TABLE_MODELS.items():
        rows = read_reference_rows(table)
        for row in rows:
            db.session.merge(model(**row))
        counts[table] = len(rows)
    db.session.flush()
    return counts
