"""Hostile uploads: each refused with a clear Chinese message, nothing stored."""

import io
import os
import zipfile

import pytest
from sqlalchemy import func, select

from regbackoffice.extensions import db
from regbackoffice.models import ApplicationItem, Attachment, ImportJob, Role

from . import factories
from .conftest import post_form
from .test_images import jpeg_bytes, png_header_only
from .xlsx_helpers import good_row, workbook_bytes


def _closed(response):
    """Read and close: the test client keeps a large upload's temp file open until then."""
    response.get_data()
    response.close()
    # Werkzeug closes the request body only when following redirects.
    response.request.input_stream.close()
    return response


def _stored_files(app) -> list[str]:
    root = app.config["STORAGE_DIR"]
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


def _rewrite(
    xlsx: bytes, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None
) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = (replace or {}).get(info.filename, source.read(info.filename))
            target.writestr(info.filename, data)
        for name, data in (add or {}).items():
            target.writestr(name, data)
    return out.getvalue()


BILLION_LAUGHS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>&lol3;</t></is></c></row></sheetData></worksheet>"""


@pytest.fixture
def draft(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    return application


def _upload_import(client, application, data, name="list.xlsx"):
    return _closed(
        post_form(
            client,
            f"/applications/{application.id}/import",
            {"file": (io.BytesIO(data), name)},
            page=f"/applications/{application.id}",
            content_type="multipart/form-data",
            follow_redirects=True,
        )
    )


def _nothing_imported(application):
    assert db.session.scalar(select(func.count()).select_from(ImportJob)) == 0
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(ApplicationItem)
            .where(ApplicationItem.application_id == application.id)
        )
        == 0
    )


def _corrupted() -> bytes:
    data = bytearray(workbook_bytes([good_row(f"C-{n}") for n in range(200)]))
    info = next(
        i
        for i in zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()
        if i.filename == "xl/worksheets/sheet1.xml"
    )
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 20
    data[start : start + 40] = b"\x00" * 40
    return bytes(data)


EXCEL_ATTACKS = {
    "corrupt": (_corrupted, "文件已损坏"),
    "zip bomb": (
        lambda: _rewrite(
            workbook_bytes([good_row("Z-1")]), add={"xl/media/pad.xml": b"\0" * (20 * 1024 * 1024)}
        ),
        "疑似压缩炸弹",
    ),
    "billion laughs": (
        lambda: _rewrite(
            workbook_bytes([good_row("B-1")]), replace={"xl/worksheets/sheet1.xml": BILLION_LAUGHS}
        ),
        "XML实体声明（DOCTYPE/ENTITY）",
    ),
    "oversize": (lambda: b"PK\x03\x04" + b"\0" * (20 * 1024 * 1024 + 10), "不能超过20MB"),
    "not xlsx": (lambda: b"<html>not excel</html>", "只能导入.xlsx、.xls、.ods或.csv格式的文件"),
    "too many parts": (
        lambda: _rewrite(
            workbook_bytes([good_row("M-1")]), add={f"xl/x{i}.xml": b"<a/>" for i in range(600)}
        ),
        "文件内部结构异常",
    ),
}


@pytest.mark.parametrize("attack", list(EXCEL_ATTACKS))
def test_hostile_excel_is_refused_and_nothing_stored(app, client, draft, attack):
    make, message = EXCEL_ATTACKS[attack]
    before = _stored_files(app)
    page = _upload_import(client, draft, make()).get_data(as_text=True)
    assert "导入失败" in page and message in page
    _nothing_imported(draft)
    assert _stored_files(app) == before


def test_other_file_types_are_refused_listing_the_accepted_ones(client, draft):
    page = _upload_import(client, draft, workbook_bytes([good_row("X-1")]), name="list.pdf")
    assert "只能导入.xlsx、.xls、.ods或.csv格式的文件" in page.get_data(as_text=True)
    _nothing_imported(draft)


@pytest.fixture
def item(draft):
    return factories.make_item(draft, product_no="PH-1")


def _upload_photo(client, draft, item, data, name="p.jpg", kind="stamp"):
    url = f"/applications/{draft.id}/items/{item.id}/photos"
    return _closed(
        post_form(
            client,
            url,
            {"kind": kind, "file": (io.BytesIO(data), name)},
            page=url,
            content_type="multipart/form-data",
        )
    )


PHOTO_ATTACKS = {
    "html renamed jpg": (b"<html><script>alert(1)</script></html>", "不是JPEG或PNG图片"),
    "decompression bomb png": (png_header_only(30000, 30000), "像素过多"),
    "oversize photo": (b"\xff\xd8\xff" + b"\0" * (10 * 1024 * 1024 + 1), "超过10MB"),
}


@pytest.mark.parametrize("attack", list(PHOTO_ATTACKS))
def test_hostile_photo_is_refused_and_nothing_stored(app, client, draft, item, attack):
    data, message = PHOTO_ATTACKS[attack]
    before = _stored_files(app)
    response = _upload_photo(client, draft, item, data)
    assert response.status_code == 400
    assert "上传失败" in response.get_data(as_text=True)
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert _stored_files(app) == before


def _zip(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _bulk(client, draft, data):
    url = f"/applications/{draft.id}/photos/bulk"
    return _closed(
        post_form(
            client,
            url,
            {"file": (io.BytesIO(data), "photos.zip")},
            page=url,
            content_type="multipart/form-data",
        )
    )


def test_photo_zip_bomb_is_refused_and_nothing_stored(app, client, draft, item):
    before = _stored_files(app)
    data = _zip(
        {
            "PH-1_钢印.jpg": jpeg_bytes(),
            "PH-1_监检证书.jpg": b"\xff\xd8\xff" + b"\0" * (30 * 1024 * 1024),
        }
    )
    response = _bulk(client, draft, data)
    assert response.status_code == 400 and "疑似压缩炸弹" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert _stored_files(app) == before


def test_a_photo_zip_python_cannot_read_is_refused_and_nothing_stored(client, draft, item):
    from .test_import_fidelity import _central_directory_patched

    data = _zip({"PH-1_钢印.jpg": jpeg_bytes()})
    # "version needed to extract" 8.4: zipfile raises NotImplementedError on opening it.
    too_new = _central_directory_patched(data, 6, (84).to_bytes(2, "little"))
    response = _bulk(client, draft, too_new)
    assert response.status_code == 400 and "压缩包已损坏" in response.get_data(as_text=True)
    # A member in a compression method zipfile cannot read: that file refused, named.
    odd = _central_directory_patched(data, 10, (99).to_bytes(2, "little"))
    page = _bulk(client, draft, odd).get_data(as_text=True)
    assert "该文件的压缩方式无法读取" in page
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0


def test_bulk_upload_reports_each_file(client, draft, item):
    factories.make_item(draft, product_no="PH-2")
    data = _zip(
        {
            "photos/PH-1_钢印.jpg": jpeg_bytes(),
            "PH-1_监检证书_2.jpg": jpeg_bytes(color=(0, 200, 0)),
            "PH-2_钢印.png": b"<html>fake</html>",
            "PH-9_钢印.jpg": jpeg_bytes(),
            "readme.txt": b"hello",
        }
    )
    response = _bulk(client, draft, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "成功 2 个，失败 3 个" in page
    assert "本申请中没有产品编号为PH-9的气瓶" in page
    assert "不是JPEG或PNG图片" in page
    assert "文件名不符合" in page
    kinds = sorted(a.kind.value for a in db.session.scalars(select(Attachment)))
    assert kinds == ["stamp", "supervision_certificate"]


def test_gbk_encoded_zip_names_are_understood():
    """Windows zip tools store GBK names without the UTF-8 flag; zipfile reads them as cp437."""
    from regbackoffice.photos import _member_name

    info = zipfile.ZipInfo("PH-1_钢印.jpg".encode("gbk").decode("cp437"))
    info.flag_bits = 0
    assert _member_name(info) == "PH-1_钢印.jpg"


def test_photo_names_parse():
    from regbackoffice.models import AttachmentKind
    from regbackoffice.photos import parse_photo_name

    assert parse_photo_name("123210000001_钢印.jpg") == ("123210000001", AttachmentKind.STAMP)
    assert parse_photo_name("A-1_监检证书_2.PNG") == ("A-1", AttachmentKind.SUPERVISION_CERTIFICATE)
    assert parse_photo_name("Ａ１_镂空码.jpeg") == ("A1", AttachmentKind.STAMP)
    assert parse_photo_name("A1.jpg") is None
    assert parse_photo_name("A1_其他.jpg") is None
