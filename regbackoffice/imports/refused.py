"""An import's refused rows (``import_failed_rows``): written chunk by chunk as the import
streams, read back in row order, a page at a time.

Nothing here holds more than one chunk or one page of rows, so neither the import nor
下载错误数据 grows with the number of refused rows.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from itertools import islice
from typing import IO, Any, cast

from sqlalchemy import Table, delete, insert, select

from ..extensions import db
from ..models import ImportFailedRow, Medium, Variety
from .rules import RowResult

# The result page lists this many; 下载错误数据 has them all.
SHOWN_ROWS = 500
# Rows read per query by 下载错误数据 (keyset pages by row number).
PAGE_ROWS = 1000

_TABLE = cast(Table, ImportFailedRow.__table__)


def _texts(texts: list[str]) -> list[str]:
    # PostgreSQL cannot store NUL in text or JSON; the row's reasons already name it.
    return [text.replace("\x00", "") for text in texts]


class RefusedRows:
    """Where one import's refused rows go, chunk by chunk, in its transaction (flushes, no
    commit): on PostgreSQL one COPY per chunk, on SQLite (the demo) one executemany.

    The rows may come out of row order (the rows that lost their claim to a concurrent
    import come last); they are read back ordered by row number.
    """

    def __init__(self, import_job_id: int) -> None:
        self.import_job_id = import_job_id
        self.count = 0
        self.postgresql = db.session.get_bind().dialect.name == "postgresql"
        # A run that did not finish rolled back and left none; should one have left some,
        # this run's rows replace them (row numbers are the primary key).
        db.session.execute(delete(_TABLE).where(_TABLE.c.import_job_id == import_job_id))

    def add(self, results: list[RowResult]) -> None:
        if not results:
            return
        if self.postgresql:
            self._copy(results)
        else:
            db.session.execute(
                insert(_TABLE),
                [
                    {
                        "import_job_id": self.import_job_id,
                        "row_no": result.row,
                        "cells": _texts(result.values),
                        "reasons": _texts(result.reasons),
                    }
                    for result in results
                ],
            )
        self.count += len(results)

    def _copy(self, results: list[RowResult]) -> None:
        connection = db.session.connection().connection.driver_connection
        assert connection is not None  # a live psycopg connection inside the transaction
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY import_failed_rows (import_job_id, row_no, cells, reasons) FROM STDIN"
            ) as copy,
        ):
            for result in results:
                copy.write_row(
                    (
                        self.import_job_id,
                        result.row,
                        json.dumps(_texts(result.values), ensure_ascii=False),
                        json.dumps(_texts(result.reasons), ensure_ascii=False),
                    )
                )


def _as_dict(row_no: int, cells: list[str], reasons: list[str]) -> dict[str, Any]:
    return {"row": row_no, "values": cells, "reasons": reasons}


def first(import_job_id: int, limit: int = SHOWN_ROWS) -> list[dict[str, Any]]:
    """The first ``limit`` refused rows, in row order (one query): the result page's list.
    Each is ``{"row": n, "values": [cell texts], "reasons": [texts]}``."""
    return list(islice(every(import_job_id, page=limit), limit))


def every(import_job_id: int, page: int | None = None) -> Iterator[dict[str, Any]]:
    """Every refused row, in row order, read ``page`` rows (default ``PAGE_ROWS``) per
    query, keyset on the row number (the primary key's second column): for 下载错误数据,
    which never holds more. The next page is read only when the last one is used up."""
    page = page or PAGE_ROWS
    after = 0
    while True:
        stmt = (
            select(_TABLE.c.row_no, _TABLE.c.cells, _TABLE.c.reasons)
            .where(_TABLE.c.import_job_id == import_job_id, _TABLE.c.row_no > after)
            .order_by(_TABLE.c.row_no)
            .limit(page)
        )
        rows = db.session.execute(stmt).all()
        for row in rows:
            yield _as_dict(*row)
        if len(rows) < page:
            return
        after = rows[-1][0]


def error_file(import_job_id: int) -> IO[bytes]:
    """下载错误数据: every refused row in the template's layout with its 错误原因, written
    to a temporary file as the rows are read (a page at a time), positioned at its start.
    The caller closes it (the file is gone then)."""
    from .template import write_error_file

    varieties = db.session.scalars(select(Variety).order_by(Variety.code)).all()
    media = sorted(db.session.scalars(select(Medium)).all(), key=lambda m: int(m.code[1:]))
    out = tempfile.TemporaryFile()  # noqa: SIM115 - returned open, closed by the caller
    try:
        write_error_file(every(import_job_id), varieties, media, out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out
