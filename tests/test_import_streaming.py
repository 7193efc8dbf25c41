"""A file larger than one chunk streams through validation and persistence (CHUNK_ROWS rows
at a time, here 4) and still imports as one file: the rules across rows (the same cylinder
or tag twice in the file) see every chunk, a refused row in the last chunk is reported with
its row number, and a failure in the last chunk rolls back every chunk before it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from regbackoffice import storage
from regbackoffice.extensions import db
from regbackoffice.imports import persistence
from regbackoffice.imports.job import run_import_job
from regbackoffice.imports.reader import parse_workbook
from regbackoffice.models import ApplicationItem, ImportFailedRow, ImportJob, ImportStatus, Role

from . import factories
from .xlsx_helpers import good_row, workbook_bytes

TODAY = date(2026, 11, 26)
CHUNK = 4


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persistence, "CHUNK_ROWS", CHUNK)


def _application():
    applicant = factories.make_user(Role.APPLICANT)
    return factories.make_application(applicant.unit, created_by=applicant), applicant


def _product_nos(application) -> list[str]:
    return list(
        db.session.scalars(
            select(ApplicationItem.product_no)
            .where(ApplicationItem.application_id == application.id)
            .order_by(ApplicationItem.row_no)
        )
    )


def test_a_refused_row_in_the_last_chunk_is_reported_and_every_other_chunk_imported():
    application, _ = _application()
    rows = [good_row(f"STREAM-{n}") for n in range(10)]  # chunks of 4, 4 and 2 rows
    rows[9] = good_row("STREAM-BAD", volume="abc")
    outcome = factories.import_under_job(
        application, parse_workbook(workbook_bytes(rows)), today=TODAY
    )
    assert (outcome.total, outcome.imported) == (10, 9)
    assert [f["row"] for f in outcome.failed] == [11]
    assert outcome.failed[0]["values"][1] == "STREAM-BAD"
    assert any("“abc”不是数字" in reason for reason in outcome.failed[0]["reasons"])
    assert _product_nos(application) == [f"STREAM-{n}" for n in range(9)]
    assert application.item_count == 9


def test_the_same_cylinder_or_tag_in_two_chunks_is_refused_with_the_first_row():
    application, _ = _application()
    rows = [good_row(f"TWICE-{n}") for n in range(10)]
    rows[7] = good_row("TWICE-0")  # row 9 (chunk 2) is row 2's cylinder (chunk 1)
    rows[9] = good_row("TWICE-OTHER", tag_value=rows[1][-1])  # row 11: row 3's QR URL
    outcome = factories.import_under_job(
        application, parse_workbook(workbook_bytes(rows)), today=TODAY
    )
    failed = {f["row"]: "；".join(f["reasons"]) for f in outcome.failed}
    assert sorted(failed) == [9, 11]
    assert "与第2行是同一只气瓶" in failed[9]
    assert "二维码与第3行相同" in failed[11]
    assert outcome.imported == 8
    assert "TWICE-OTHER" not in _product_nos(application)


class _Lazy:
    """Rows as a file reader gives them, counting how many were read so far."""

    def __init__(self, rows: list[tuple[int, list[Any]]]) -> None:
        self.rows, self.read = rows, 0

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[int, list[Any]]]:
        for row in self.rows:
            self.read += 1
            yield row


def test_rows_are_read_one_chunk_ahead_of_validation_at_most(monkeypatch):
    application, _ = _application()
    source = _Lazy([(n + 2, good_row(f"LAZY-{n}")) for n in range(10)])
    ahead: list[int] = []
    validate = persistence.validate_row

    def counting(row_no: int, *args: Any) -> Any:
        ahead.append(source.read - (row_no - 2))  # rows read but not yet validated, + 1
        return validate(row_no, *args)

    monkeypatch.setattr(persistence, "validate_row", counting)
    outcome = factories.import_under_job(application, source, today=TODAY)
    assert outcome.imported == 10
    assert max(ahead) <= CHUNK


def test_a_failure_in_the_last_chunk_rolls_back_every_chunk_and_the_job_fails(monkeypatch):
    application, applicant = _application()
    rows = [good_row(f"ROLLBACK-{n}") for n in range(10)]
    rows[2] = good_row("ROLLBACK-BAD", volume="abc")  # row 4: refused, stored with chunk 1
    key = storage.new_key("imports", ".xlsx")
    storage.save(key, workbook_bytes(rows))
    job = ImportJob(
        application_id=application.id,
        created_by_id=applicant.id,
        total_rows=10,
        file_key=key,
        original_name="rollback.xlsx",
    )
    db.session.add(job)
    db.session.commit()
    validate = persistence.validate_row

    def failing(row_no: int, *args: Any) -> Any:
        if row_no == 11:  # the last row of the last chunk: two chunks are written already
            assert db.session.scalar(select(func.count()).select_from(ImportFailedRow)) == 1
            raise RuntimeError("the database went away")
        return validate(row_no, *args)

    monkeypatch.setattr(persistence, "validate_row", failing)
    with pytest.raises(RuntimeError):
        run_import_job(job.id)
    db.session.expire_all()
    job = db.session.get_one(ImportJob, job.id)
    assert job.status is ImportStatus.FAILED and "系统错误" in (job.message or "")
    assert _product_nos(application) == []
    assert application.item_count == 0
    assert db.session.scalar(select(func.count()).select_from(ImportFailedRow)) == 0
    assert storage.exists(key)  # kept for 重试


def test_the_sqlite_demo_imports_chunk_by_chunk_too(tmp_path_factory):
    from .conftest import sqlite_demo_app

    with sqlite_demo_app(tmp_path_factory):
        application, _ = _application()
        rows = [good_row(f"LITE-{n}") for n in range(10)]
        rows[6] = good_row("LITE-1")  # row 8: row 3's cylinder, one chunk later
        rows[9] = good_row("LITE-BAD", volume="abc")
        outcome = factories.import_under_job(
            application, parse_workbook(workbook_bytes(rows)), today=TODAY
        )
        assert outcome.imported == 8
        assert [f["row"] for f in outcome.failed] == [8, 11]
        assert len(_product_nos(application)) == 8 == application.item_count


def test_the_sheet_xml_scanned_in_small_pieces_still_finds_hidden_rows_and_error_cells(
    monkeypatch,
):
    from openpyxl import load_workbook

    from regbackoffice.imports import reader

    from .xlsx_helpers import set_cell_xml

    monkeypatch.setattr(reader, "_PIECE_BYTES", 300)  # a few cells per piece, never whole rows
    rows = [good_row(f"PIECE-{n}") for n in range(12)]
    data = set_cell_xml(workbook_bytes(rows), "D12", '<c r="D12" t="e"><v>#N/A</v></c>')
    workbook = load_workbook(io.BytesIO(data))
    for row in (3, 9, 13):
        workbook.active.row_dimensions[row].hidden = True
    out = io.BytesIO()
    workbook.save(out)
    parsed = parse_workbook(out.getvalue())
    assert parsed.hidden == 3
    application, _ = _application()
    outcome = factories.import_under_job(application, parsed, today=TODAY)
    assert [f["row"] for f in outcome.failed] == [12]
    assert outcome.failed[0]["reasons"] == ["制造单位：单元格是Excel错误值#N/A，请改正"]
    assert outcome.imported == 11
