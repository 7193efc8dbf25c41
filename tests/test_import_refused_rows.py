"""An import's refused rows stand in their own table (import_failed_rows), one row each,
written chunk by chunk as the import streams, so that neither the import nor 下载错误数据
holds them all: the result page reads the first 500 (one query), the error file reads
them all a page at a time, both in row order."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from regbackoffice.extensions import db
from regbackoffice.imports import job as import_job
from regbackoffice.imports import persistence, refused
from regbackoffice.imports import template as import_template
from regbackoffice.imports.reader import parse_workbook
from regbackoffice.models import ImportFailedRow, ImportJob, Role

from . import factories
from .xlsx_helpers import good_row, workbook_bytes

TODAY = date(2026, 11, 26)


def _stored(job_id: int) -> list[tuple[int, list[str], list[str]]]:
    return [
        (row.row_no, row.cells, row.reasons)
        for row in db.session.scalars(
            select(ImportFailedRow)
            .where(ImportFailedRow.import_job_id == job_id)
            .order_by(ImportFailedRow.row_no)
        )
    ]


def _stored_count(job_id: int) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(ImportFailedRow)
        .where(ImportFailedRow.import_job_id == job_id)
    )


def _job(application) -> ImportJob:
    job = ImportJob(application_id=application.id, created_by_id=application.created_by_id)
    db.session.add(job)
    db.session.flush()
    return job


def test_refused_rows_are_stored_chunk_by_chunk_in_row_order(monkeypatch):
    application = factories.make_application()
    job = _job(application)
    rows = [good_row(f"TBL-{n}") for n in range(11)]  # chunks of 4, 4 and 3 rows
    for n in (1, 3, 6, 10):  # rows 3, 5 (chunk 1), 8 (chunk 2), 12 (chunk 3)
        rows[n] = good_row(f"TBL-BAD-{n}", volume="abc")
    stored_before: dict[int, int] = {}
    validate = persistence.validate_row

    def watching(row_no: int, *args: Any) -> Any:
        if row_no in (6, 10):  # the first row of chunks 2 and 3
            stored_before[row_no] = _stored_count(job.id)
        return validate(row_no, *args)

    monkeypatch.setattr(persistence, "validate_row", watching)
    outcome = persistence.import_rows(
        application, parse_workbook(workbook_bytes(rows)), job=job, today=TODAY, chunk_rows=4
    )
    # Written as the import went: chunk 1's two refused rows before chunk 2 was validated,
    # chunk 2's one before chunk 3.
    assert stored_before == {6: 2, 10: 3}
    assert (outcome.imported, outcome.failed) == (7, 4)
    stored = _stored(job.id)
    assert [row_no for row_no, _, _ in stored] == [3, 5, 8, 12]
    assert [cells[1] for _, cells, _ in stored] == [f"TBL-BAD-{n}" for n in (1, 3, 6, 10)]
    assert all(any("“abc”不是数字" in r for r in reasons) for _, _, reasons in stored)


def test_a_job_run_again_replaces_its_refused_rows_instead_of_adding_to_them():
    application = factories.make_application()
    rows = parse_workbook(workbook_bytes([good_row("AGAIN-1", volume="abc")]))
    first = factories.import_under_job(application, rows, today=TODAY)
    persistence.import_rows(application, rows, job=first.job, today=TODAY)
    assert [row_no for row_no, _, _ in _stored(first.job.id)] == [2]


def _refused_file(count: int) -> bytes:
    return workbook_bytes([good_row(f"MANY-{n:04d}", volume="abc") for n in range(count)])


def test_the_result_page_lists_the_first_500_refused_rows_from_one_query_and_says_so(
    client, login_as, count_queries
):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    job = import_job.start_import(
        application, _refused_file(501), filename="多.xlsx", actor=applicant
    )
    db.session.commit()  # as the upload's request does
    assert (job.imported_count, job.failed_count) == (0, 501)
    url = f"/applications/{application.id}/imports/{job.id}"
    with count_queries() as counter:
        page = client.get(url).get_data(as_text=True)
    assert "失败 <strong>501</strong> 行" in page
    assert page.count("<tr><td>第") == 500
    assert "<td>第2行</td><td>MANY-0000</td>" in page
    assert "<td>第501行</td><td>MANY-0499</td>" in page
    assert "MANY-0500" not in page  # row 502, the 501st refused
    assert "仅显示前500行，完整清单请下载错误数据。" in page
    reads = [s for s in counter.statements if "import_failed_rows" in s]
    assert len(reads) == 1 and "LIMIT" in reads[0].upper()


def test_the_result_page_of_500_refused_rows_lists_them_all_without_the_notice(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    job = import_job.start_import(
        application, _refused_file(500), filename="多.xlsx", actor=applicant
    )
    db.session.commit()  # as the upload's request does
    page = client.get(f"/applications/{application.id}/imports/{job.id}").get_data(as_text=True)
    assert page.count("<tr><td>第") == 500
    assert "仅显示前500行" not in page


def test_the_error_file_has_every_refused_row_in_row_order_read_a_page_at_a_time(
    client, login_as, count_queries, monkeypatch
):
    monkeypatch.setattr(refused, "PAGE_ROWS", 7)
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    rows = [good_row(f"ERR-{n:02d}", volume="abc") for n in range(30)]
    rows[4] = good_row("ERR-GOOD")  # row 6 imports
    rows[9] = good_row('=HYPERLINK("http://evil.example","x")', volume="abc")
    job = import_job.start_import(
        application, workbook_bytes(rows), filename="err.xlsx", actor=applicant
    )
    db.session.commit()  # as the upload's request does
    assert job.failed_count == 29
    with count_queries() as counter:
        response = client.get(f"/applications/{application.id}/imports/{job.id}/errors.xlsx")
        data = response.data
    assert response.status_code == 200
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    assert int(response.headers["Content-Length"]) == len(data)
    pages = [s for s in counter.statements if "import_failed_rows" in s]
    assert len(pages) == 5  # 29 rows, 7 a page: 7, 7, 7, 7, 1
    sheet = load_workbook(io.BytesIO(data))[import_template.SHEET_NAME]
    body = list(sheet.iter_rows(min_row=2, values_only=True))
    expected = [n for n in range(30) if n != 4]
    assert len(body) == 29
    reason_column = len(import_template.COLUMNS)
    assert [r[reason_column].split("：", 1)[0] for r in body] == [f"第{n + 2}行" for n in expected]
    assert [r[1] for r in body if r[1].startswith("ERR-")] == [
        f"ERR-{n:02d}" for n in expected if n != 9
    ]
    # A cell that reads like a formula stays text.
    formula_like = sheet.cell(row=2 + expected.index(9), column=2)
    assert formula_like.data_type == "s" and formula_like.value.startswith("=HYPERLINK")


def test_an_import_with_no_refused_row_offers_no_error_file(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    job = import_job.start_import(
        application, workbook_bytes([good_row("NONE-1")]), filename="ok.xlsx", actor=applicant
    )
    db.session.commit()  # as the upload's request does
    url = f"/applications/{application.id}/imports/{job.id}"
    assert "下载错误数据" not in client.get(url).get_data(as_text=True)
    assert client.get(f"{url}/errors.xlsx").status_code == 404


def test_deleting_the_application_deletes_its_imports_refused_rows():
    from regbackoffice import applications
    from regbackoffice.models import User

    application = factories.make_application()
    imported = factories.import_under_job(
        application, parse_workbook(_refused_file(3)), today=TODAY
    )
    job_id = imported.job.id
    assert _stored_count(job_id) == 3
    applications.delete_application(
        application, db.session.get_one(User, application.created_by_id)
    )
    db.session.flush()
    db.session.expire_all()
    assert _stored_count(job_id) == 0


@pytest.mark.parametrize("count", [0, 1, 7, 8])
def test_every_refused_row_is_read_once_in_row_order_whatever_the_page_size(count):
    application = factories.make_application()
    rows = [good_row(f"PAGE-{n}", volume="abc") for n in range(count)] + [good_row("PAGE-OK")]
    job = factories.import_under_job(application, parse_workbook(workbook_bytes(rows))).job
    assert [row["row"] for row in refused.every(job.id, page=4)] == list(range(2, count + 2))
    assert [row["row"] for row in refused.first(job.id, limit=3)] == list(
        range(2, 2 + min(count, 3))
    )
