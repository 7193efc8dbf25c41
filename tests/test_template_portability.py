"""The Excel template and the error file (下载错误数据) open and save cleanly in exceljs (web
tools) and LibreOffice."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

from openpyxl import load_workbook

from regbackoffice.models import Role

from .test_applications_flow import _post_file
from .xlsx_helpers import good_row, libreoffice_saved

ROUNDTRIP = Path(__file__).resolve().parent / "js" / "roundtrip.js"


def assert_notes_kept_and_row_imported(client, application, saved: Path) -> None:
    """The other tool's file still carries the column notes, and its one row imports."""
    from regbackoffice.extensions import db

    header = load_workbook(saved)["气瓶信息"]["B1"]
    assert header.comment is not None and "最多50字" in header.comment.text
    page = client.get(_post_file(client, application, saved.read_bytes())).get_data(as_text=True)
    assert "成功导入 <strong>1</strong> 行" in page
    db.session.refresh(application)
    assert application.item_count == 1


def test_a_template_saved_by_exceljs_keeps_its_notes_and_imports(client, login_as, tmp_path):
    from . import factories

    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    downloaded = tmp_path / "模板.xlsx"
    downloaded.write_bytes(client.get("/applications/template.xlsx").data)
    saved = tmp_path / "exceljs.xlsx"
    row = [str(value) for value in good_row("XJS-000001")]
    result = subprocess.run(
        ["node", str(ROUNDTRIP), str(downloaded), str(saved), json.dumps(row)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr  # exceljs read it (it used to throw here)
    assert "气瓶信息" in json.loads(result.stdout)["sheets"]
    assert_notes_kept_and_row_imported(client, application, saved)


def test_a_template_saved_by_libreoffice_keeps_its_notes_and_imports(client, login_as, tmp_path):
    from openpyxl import load_workbook as load

    from . import factories

    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    filled = tmp_path / "filled.xlsx"
    workbook = load(io.BytesIO(client.get("/applications/template.xlsx").data))
    for column, value in enumerate(good_row("LO-0000001"), start=1):
        workbook["气瓶信息"].cell(row=2, column=column, value=value)
    workbook.save(filled)
    saved = tmp_path / "saved.xlsx"
    saved.write_bytes(libreoffice_saved(filled.read_bytes(), "xlsx", tmp_path))
    assert_notes_kept_and_row_imported(client, application, saved)


def _error_file(client, login_as, tmp_path) -> tuple[object, Path]:
    """An import with one refused row (row 2), and its 下载错误数据 file (written row by row,
    openpyxl write-only)."""
    from . import factories
    from .xlsx_helpers import workbook_bytes

    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    result = _post_file(client, application, workbook_bytes([good_row("ERR-P", volume="abc")]))
    downloaded = tmp_path / "errors.xlsx"
    downloaded.write_bytes(client.get(f"{result}/errors.xlsx").data)
    return application, downloaded


def test_an_error_file_fixed_in_exceljs_keeps_its_notes_and_imports(client, login_as, tmp_path):
    application, downloaded = _error_file(client, login_as, tmp_path)
    saved = tmp_path / "exceljs.xlsx"
    row = [str(value) for value in good_row("ERR-P")]  # the refused row, fixed
    result = subprocess.run(
        ["node", str(ROUNDTRIP), str(downloaded), str(saved), json.dumps(row)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "气瓶信息" in json.loads(result.stdout)["sheets"]
    assert_notes_kept_and_row_imported(client, application, saved)


def test_an_error_file_fixed_in_libreoffice_keeps_its_notes_and_imports(client, login_as, tmp_path):
    from openpyxl import load_workbook as load

    application, downloaded = _error_file(client, login_as, tmp_path)
    workbook = load(downloaded)
    workbook["气瓶信息"]["G2"].value = "35.50"  # 容积: the refused cell, fixed
    filled = tmp_path / "filled.xlsx"
    workbook.save(filled)
    saved = tmp_path / "saved.xlsx"
    saved.write_bytes(libreoffice_saved(filled.read_bytes(), "xlsx", tmp_path))
    assert_notes_kept_and_row_imported(client, application, saved)
