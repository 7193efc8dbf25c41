import dataclasses
import gc
import io
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pypdf
import pytest
import segno
from markupsafe import escape
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError

from regbackoffice.certificate_pdf import (
    CertificateDocument,
    CylinderRow,
    ResourceRefused,
    StaticOnlyURLFetcher,
    _plain_number,
    certificate_html,
    qr_data_uri,
    render_certificate_pdf,
    render_many,
)

PASSWD_MARKER = "root:x:0:0"


def make_rows(count: int, prefix: str = "BX2025") -> tuple[CylinderRow, ...]:
    return tuple(
        CylinderRow(
            product_no=f"{prefix}{i:06d}",
            variety="焊接气瓶" if i % 2 else "无缝气瓶",
            medium="液化石油气",
            manufacturer="重庆测试气瓶制造有限公司",
            manufacture_month="2024-05",
            nominal_pressure_mpa=Decimal("2.10"),
            volume_l=Decimal("35.50"),
            next_inspection_month="2028-05",
            archive_id=f"CQ5001122025{i:08d}",
            internal_no=f"NB-{i:04d}",
        )
        for i in range(1, count + 1)
    )


def make_document(count: int = 30, **overrides) -> CertificateDocument:
    values = {
        "unit_name": "重庆渝北示范燃气有限公司",
        "credit_code": "91500112MA5U00001H",
        "address": "重庆市渝北区金开大道99号",
        "number": "瓶渝11200023(26)",
        "authority": "重庆市渝北区市场监督管理局",
        "issue_date": date(2026, 11, 26),
        "verify_url": "https://regbo.example.cn/verify/瓶渝11200023(26)",
        "cylinders": make_rows(count),
    }
    return CertificateDocument(**{**values, **overrides})


def page_texts(pdf: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [page.extract_text() for page in reader.pages]


def squash(text: str) -> str:
    """Extracted text without any whitespace (line wraps and spacing vary)."""
    return re.sub(r"\s+", "", text)


class RecordingServer:
    """A local HTTP server that records every request and redirects it elsewhere."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorded.append(self.path)
                self.send_response(302)
                self.send_header("Location", "file:///etc/passwd")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/x") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def local_server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


# --- the locked-down fetcher, called directly ---


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "http://127.0.0.1:6379/",
        "https://example.com/logo.png",
        "ftp://127.0.0.1/x",
        "//127.0.0.1:6379/",
        "regbo-static:../config.py",
        "regbo-static:css/../../config.py",
        "regbo-static:%2e%2e/%2e%2e/setup.cfg",
        "regbo-static:/../../../etc/passwd",
        "regbo-static:/etc/passwd",
        "regbo-static:css\\..\\..\\config.py",
        "regbo-static:css",
        "regbo-static:",
    ],
)
def test_fetcher_refuses_everything_but_package_static_files_and_data(url):
    with pytest.raises(ResourceRefused):
        StaticOnlyURLFetcher().fetch(url)


def test_fetcher_makes_no_request_to_a_redirecting_local_server(local_server):
    fetcher = StaticOnlyURLFetcher()
    with pytest.raises(ResourceRefused):
        fetcher.fetch(local_server.url("/redirect"))
    with pytest.raises(ResourceRefused):
        fetcher(local_server.url("/called"))
    assert local_server.requests == []


def test_fetcher_serves_package_static_files_and_data_uris():
    fetcher = StaticOnlyURLFetcher()
    css = fetcher.fetch("regbo-static:css/certificate.css")
    assert css.content_type == "text/css"
    assert b"@page certificate" in css.read()
    data = fetcher.fetch("data:text/plain;base64,5rWL6K+V")
    assert data.read().decode() == "测试"
    qr = fetcher.fetch(qr_data_uri("https://regbo.example.cn/verify/x"))
    assert qr.content_type == "image/svg+xml"
    assert b"<svg" in qr.read()


def test_a_forbidden_resource_stops_the_rendering_instead_of_being_skipped(local_server):
    html = f'<p>x</p><img src="file:///etc/passwd"><img src="{local_server.url()}">'
    with pytest.raises(FatalURLFetchingError):
        HTML(string=html, url_fetcher=StaticOnlyURLFetcher()).write_pdf()
    assert local_server.requests == []


# --- end to end ---


def test_markup_in_the_unit_name_is_printed_as_text_and_fetches_nothing(local_server):
    hostile = (
        '<img src="file:///etc/passwd">'
        f'<img src="{local_server.url("/x")}">'
        '<link rel="attachment" href="file:///etc/passwd">'
    )
    doc = make_document(3, unit_name=hostile, address=f'<a rel="attachment" href="{hostile}">')
    assert '<img src="file' not in certificate_html(doc)  # escaped, never markup

    pdf = render_certificate_pdf(doc)

    texts = page_texts(pdf)
    assert squash('<img src="file:///etc/passwd">') in squash(texts[0])
    assert squash(f'<img src="{local_server.url("/x")}">') in squash(texts[0])
    assert PASSWD_MARKER not in "".join(texts)
    assert PASSWD_MARKER.encode() not in pdf
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert dict(reader.attachments) == {}
    assert b"/EmbeddedFile" not in pdf
    assert all(len(page.images) == 0 for page in reader.pages)  # the QR code is vector
    assert local_server.requests == []


def test_certificate_text_holds_unit_number_count_and_every_product_number():
    doc = make_document(30)
    texts = page_texts(render_certificate_pdf(doc))
    first = squash(texts[0])
    assert "特种设备使用登记证" in first
    assert "使用单位重庆渝北示范燃气有限公司" in first
    assert "统一社会信用代码91500112MA5U00001H" in first
    assert "单位地址重庆市渝北区金开大道99号" in first
    assert "设备类别气瓶" in first
    assert "30只" in first
    assert "使用登记证编号瓶渝11200023(26)" in first
    assert "登记机关重庆市渝北区市场监督管理局" in first
    assert "发证日期2026年11月26日" in first

    annex = squash("".join(texts[1:]))
    for row in doc.cylinders:
        assert row.product_no in annex
        assert row.archive_id in annex
    assert "数量30只" in annex


def test_annex_repeats_the_table_header_and_numbers_its_pages():
    texts = page_texts(render_certificate_pdf(make_document(30)))
    annex_pages = texts[1:]
    assert len(annex_pages) >= 2, "30 cylinders should need more than one annex page"
    total = len(annex_pages)
    for number, text in enumerate(annex_pages, start=1):
        flat = squash(text)
        for header in ("序号", "产品编号", "设备品种", "充装介质", "制造单位", "气瓶档案ID"):
            assert header in flat
        assert f"第{number}页/共{total}页" in flat
        assert "使用登记证编号：瓶渝11200023(26)" in flat
    assert "第" not in squash(texts[0]).split("注：")[0]  # no page number on the certificate


def test_annex_prints_last_inspection_and_electronic_tag_columns():
    rows = make_rows(2)
    inspected = dataclasses.replace(rows[0], last_inspection_date="2025-03-18", tag="RFID标签")
    document = make_document(cylinders=(inspected, rows[1]))
    annex = squash("".join(page_texts(render_certificate_pdf(document))[1:]))
    for header in ("最近一次检验日期", "下次检验日期", "信息化管理情况"):
        assert header in annex
    assert "2025-03-18" in annex and "RFID标签" in annex
    assert "未检/2028-05无CQ500112" in annex  # the second row: never inspected, no tag


def test_render_many_keeps_each_certificate_with_its_own_annex_numbering():
    first = make_document(30)
    second = make_document(
        2, number="瓶渝11200024(26)", unit_name="重庆第二燃气有限公司", cylinders=make_rows(2, "ZZ")
    )
    pdf = render_many([first, second])
    texts = [squash(text) for text in page_texts(pdf)]
    alone = len(page_texts(render_certificate_pdf(first)))
    assert len(texts) == alone + 2  # second: certificate page and one annex page
    assert "重庆第二燃气有限公司" in texts[alone]
    assert "2只" in texts[alone]
    assert "第1页/共1页" in texts[alone + 1]
    assert "ZZ000002" in texts[alone + 1]
    assert "BX2025000030" in "".join(texts[:alone])


def test_render_many_needs_a_certificate():
    with pytest.raises(ValueError):
        render_many([])


def test_documents_are_plain_frozen_values():
    doc = make_document(2, cylinders=list(make_rows(2)))
    assert isinstance(doc.cylinders, tuple)
    assert doc.count == 2
    with pytest.raises(AttributeError):
        doc.number = "x"  # type: ignore[misc]
    assert replace(doc, number="瓶渝11200099(26)").number == "瓶渝11200099(26)"


def test_the_certificate_carries_a_qr_code_of_the_verify_url():
    doc = make_document(1)
    expected = segno.make(doc.verify_url, error="m").svg_data_uri(border=0, scale=1)
    assert qr_data_uri(doc.verify_url) == expected
    assert f'src="{escape(expected)}"' in certificate_html(doc)
    other = make_document(1, verify_url="https://regbo.example.cn/verify/other")
    assert f'src="{escape(expected)}"' not in certificate_html(other)


def test_a_certificate_covers_at_least_one_cylinder():
    with pytest.raises(ValueError):
        make_document(0)


def test_the_urllib_entry_point_of_the_fetcher_is_locked_down_too(local_server):
    with pytest.raises(ResourceRefused):
        StaticOnlyURLFetcher().open(local_server.url("/open"))
    with pytest.raises(ResourceRefused):
        StaticOnlyURLFetcher().open("file:///etc/passwd")
    assert local_server.requests == []


def test_rendering_leaves_the_garbage_collector_as_it_found_it():
    assert gc.isenabled()
    render_certificate_pdf(make_document(1))
    assert gc.isenabled()
    gc.disable()
    try:
        render_certificate_pdf(make_document(1))
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (Decimal("2.10"), "2.1"),
        (Decimal("35.50"), "35.5"),
        (Decimal("15.00"), "15"),
        (Decimal("100"), "100"),
        (Decimal("0.25"), "0.25"),
        ("12.50", "12.50"),
    ],
)
def test_pressures_and_volumes_print_without_trailing_zeros(value, printed):
    assert _plain_number(value) == printed


def test_a_long_annex_laid_out_in_two_processes_reads_as_the_single_document(monkeypatch):
    from regbackoffice import certificate_pdf

    doc = make_document(certificate_pdf.PARALLEL_MIN_ROWS + 40)
    parallel = page_texts(render_certificate_pdf(doc))
    monkeypatch.setattr(certificate_pdf, "PARALLEL_MIN_ROWS", 10**9)  # one document
    whole = page_texts(render_certificate_pdf(doc))
    assert parallel == whole  # same pages, same text, same 第 N 页 / 共 M 页
    total = len(whole) - 1
    assert total >= 8 and f"第{total}页/共{total}页" in squash(parallel[-1])


def test_long_annex_numbering_is_right_even_when_the_cut_misses_a_page_boundary(monkeypatch):
    from regbackoffice import certificate_pdf

    # A wrong measure of rows per page: the first half ends on a part-filled page, the
    # predicted page counts are off, and the halves are numbered again with the real ones.
    monkeypatch.setattr(certificate_pdf, "_rows_per_page", (7, 9))
    doc = make_document(certificate_pdf.PARALLEL_MIN_ROWS + 40)
    annex = [squash(text) for text in page_texts(render_certificate_pdf(doc))[1:]]
    for number, text in enumerate(annex, start=1):
        assert f"第{number}页/共{len(annex)}页" in text
    flat = "".join(annex)
    assert all(row.archive_id in flat for row in doc.cylinders)
    assert flat.count("以下空白") == 1


def test_a_long_annex_whose_rows_cannot_be_cut_is_rendered_whole(monkeypatch):
    from regbackoffice import certificate_pdf

    def cannot_cut(*_args):
        raise ValueError("annex rows could not be cut")

    monkeypatch.setattr(certificate_pdf, "_annex_halves", cannot_cut)
    doc = make_document(certificate_pdf.PARALLEL_MIN_ROWS + 1)
    annex = [squash(text) for text in page_texts(render_certificate_pdf(doc))[1:]]
    assert all(f"第{n}页/共{len(annex)}页" in text for n, text in enumerate(annex, start=1))
    assert all(row.archive_id in "".join(annex) for row in doc.cylinders)
