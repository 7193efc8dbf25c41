"""使用登记证 PDF: WeasyPrint from an HTML template with print CSS, fetching nothing outside.

Input is plain values (``CertificateDocument``), never ORM objects, so the renderer can run
anywhere (an rq worker, a benchmark) and cannot lazy-load or leak anything.

Each certificate is two WeasyPrint documents whose pages are joined: page 1 is the
certificate (A4 portrait), then the annex 气瓶基本信息汇总表 (A4 landscape) with the table
header repeated on every page and its own "第 x 页 / 共 y 页" numbering. ``render_many``
joins several certificates into one PDF for printing together; each keeps its own numbering.

Resources: the only URLs the renderer will fetch are ``regbo-static:<path>`` (a file under
this package's ``static/`` folder) and ``data:`` URIs. Anything else (file://, http(s)://,
any other scheme) is refused before any I/O and stops the rendering, so user-supplied
text can never read local files or reach the network (DESIGN 7 and 10). Fonts come from
fontconfig (Debian's fonts-noto-cjk) and are subset with HarfBuzz.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import mimetypes
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote
from urllib.request import DataHandler, Request

import pypdf
import segno
from jinja2 import Environment, PackageLoader, StrictUndefined
from weasyprint import HTML, Document
from weasyprint.formatting_structure import boxes
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_ROOT = PACKAGE_DIR / "static"
STATIC_SCHEME = "regbo-static"
CERTIFICATE_TEMPLATE = "certificates/certificate.html"
ANNEX_TEMPLATE = "certificates/annex.html"
DOCUMENT_TEMPLATE = "documents/document.html"
EQUIPMENT_CATEGORY = "气瓶"


class ResourceRefused(ValueError):
    """The certificate renderer was asked for a URL it must not fetch."""


@dataclass(frozen=True)
class CylinderRow:
    """One line of the 气瓶基本信息汇总表."""

    product_no: str  # 产品编号
    variety: str  # 设备品种 (name, e.g. 无缝气瓶)
    medium: str  # 充装介质 (name, e.g. 液化石油气)
    manufacturer: str  # 制造单位
    manufacture_month: str  # 制造年月, yyyy-mm
    nominal_pressure_mpa: Decimal | str  # 公称工作压力(MPa)
    volume_l: Decimal | str  # 容积(L)
    next_inspection_month: str  # 下次检验日期, yyyy-mm
    archive_id: str  # 气瓶档案ID
    internal_no: str = ""  # 单位内编号
    last_inspection_date: str = ""  # 最近一次检验日期, yyyy-mm-dd ('' when never inspected)
    tag: str = ""  # 信息化管理情况 (二维码 / RFID标签; '' when none)
    change: str = ""  # 变更或者停用情况 (新增/停用/报废/注销/过户转出/过户转入 + date)


@dataclass(frozen=True)
class CertificateDocument:
    """Everything printed on one 使用登记证 and its annex, as plain values."""

    unit_name: str  # 使用单位
    credit_code: str  # 统一社会信用代码
    address: str  # 地址
    number: str  # 使用登记证编号
    authority: str  # 登记机关
    issue_date: date  # 发证日期
    verify_url: str  # encoded in the QR code
    cylinders: tuple[CylinderRow, ...]
    category: str = EQUIPMENT_CATEGORY  # 设备类别
    edition: str = ""  # 第2版 / 第2版（补发）: printed next to the number from version 2 on
    show_changes: bool = False  # the annex's 变更或者停用情况 column (versions after a change)

    def __post_init__(self) -> None:
        # Frozen and hashable all the way down: a list would be silently shared.
        object.__setattr__(self, "cylinders", tuple(self.cylinders))
        if not self.cylinders:
            raise ValueError("a 使用登记证 covers at least one registered cylinder")

    @property
    def count(self) -> int:
        """数量: the registered cylinders the certificate covers (not those 过户转出)."""
        return sum(1 for c in self.cylinders if not c.change.startswith("过户转出"))


@dataclass(frozen=True)
class LicensingPaper:
    """A 受理通知书, 补正告知书 or 不予受理/驳回决定书 as plain values (one A4 document)."""

    title: str  # the document's name, e.g. 补正告知书
    number: str
    authority: str  # the bureau that issues it
    issue_date: date
    unit_name: str  # addressee
    credit_code: str
    application_number: str
    verify_url: str  # encoded in the QR code
    paragraphs: tuple[str, ...]  # the numbered items follow the first paragraph
    items: tuple[str, ...] = ()


class StaticOnlyURLFetcher(URLFetcher):
    """Serves this package's static files and data: URIs; refuses everything else.

    Refusal happens before any I/O (no socket is opened, no file outside ``static/`` is
    touched), and ``fail_on_errors`` makes WeasyPrint stop instead of carrying on.
    """

    def __init__(self) -> None:
        super().__init__(
            allowed_protocols=("data", STATIC_SCHEME), allow_redirects=False, fail_on_errors=True
        )

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
        scheme, sep, rest = url.partition(":")
        scheme = scheme.lower()
        if not sep:
            raise ResourceRefused(f"refused relative URL {url[:200]!r}")
        if scheme == "data":
            return self._data(url)
        if scheme == STATIC_SCHEME:
            return self._static(url, rest)
        raise ResourceRefused(f"refused URL {url[:200]!r}: only package static files and data:")

    def open(
        self, url: str | Request, data: object = None, timeout: float | None = None
    ) -> URLFetcherResponse:
        # urllib's entry point (OpenerDirector.open): the same rules, never a request.
        return self.fetch(url.full_url if isinstance(url, Request) else url)

    @staticmethod
    def _data(url: str) -> URLFetcherResponse:
        # urllib's data: handler parses in memory (base64 or percent-encoded); no I/O.
        try:
            response = DataHandler().data_open(Request(url))
        except ValueError as exc:
            raise ResourceRefused(f"malformed data: URI ({exc})") from exc
        return URLFetcherResponse(url, response.read(), dict(response.headers.items()))

    @staticmethod
    def _static(url: str, rest: str) -> URLFetcherResponse:
        path = static_path(rest)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": content_type})


def static_path(reference: str) -> Path:
    """The file under ``static/`` that ``reference`` names, or ``ResourceRefused``.

    ``reference`` is what follows ``regbo-static:``, e.g. ``css/certificate.css``; query and
    fragment are ignored. Traversal (``..``, absolute paths, symlinks out) is refused.
    """
    relative = unquote(reference.split("?", 1)[0].split("#", 1)[0]).lstrip("/")
    if not relative or "\\" in relative or "\x00" in relative:
        raise ResourceRefused(f"refused static path {reference[:200]!r}")
    root = STATIC_ROOT.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        raise ResourceRefused(f"refused static path {reference[:200]!r}")
    return candidate


def static_url(relative: str) -> str:
    return f"{STATIC_SCHEME}:{relative}"


def qr_data_uri(text: str) -> str:
    """An SVG QR code for ``text`` as a data: URI (vector: sharp at any print size)."""
    return segno.make(text, error="m", micro=False).svg_data_uri(border=0, scale=1)


def _plain_number(value: Decimal | str | int | float) -> str:
    """2.10 → 2.1, 35.50 → 35.5, 15.00 → 15 (as printed on the forms)."""
    if isinstance(value, str):
        return value
    text = f"{Decimal(str(value)):.2f}"
    return text.rstrip("0").rstrip(".")


def _chinese_date(value: date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


_environment = Environment(
    loader=PackageLoader("regbackoffice", "templates"),
    autoescape=True,  # every value is text; user input can never become markup
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters["plain_number"] = _plain_number
_environment.filters["chinese_date"] = _chinese_date
_environment.globals["static_url"] = static_url

# One font configuration per process: fontconfig lookups and loaded faces are reused.
_fonts_lock = threading.Lock()
_font_config: FontConfiguration | None = None


def _fonts() -> FontConfiguration:
    global _font_config
    with _fonts_lock:
        if _font_config is None:
            _font_config = FontConfiguration()
        return _font_config


def certificate_html(doc: CertificateDocument) -> str:
    """Page 1, the 使用登记证, as HTML."""
    return _environment.get_template(CERTIFICATE_TEMPLATE).render(
        doc=doc, qr_uri=qr_data_uri(doc.verify_url)
    )


def annex_html(doc: CertificateDocument) -> str:
    """The 气瓶基本信息汇总表 annex as HTML."""
    return _environment.get_template(ANNEX_TEMPLATE).render(doc=doc)


def _render_pages(html: str, fetcher: StaticOnlyURLFetcher, fonts: FontConfiguration) -> Document:
    # base_url=None: a relative URL has nothing to resolve against and is never fetched.
    return HTML(string=html, base_url=None, url_fetcher=fetcher).render(font_config=fonts)


def _htmls(doc: CertificateDocument) -> tuple[str, str]:
    return certificate_html(doc), annex_html(doc)


def _documents(
    doc: CertificateDocument, fetcher: StaticOnlyURLFetcher, fonts: FontConfiguration
) -> Iterator[Document]:
    for html in _htmls(doc):
        yield _render_pages(html, fetcher, fonts)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while WeasyPrint builds its box trees.

    A 1,000-cylinder annex allocates millions of long-lived objects; with the collector on,
    every generation-2 pass rescans all of them, which made rendering 40-50 % slower in
    scripts/bench_certificate.py. Reference counting still frees what it can; the cycles
    left over are collected once at the end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect()


# --- large annexes: two halves laid out in parallel processes, pages joined -------------
#
# WeasyPrint lays out one document on one core. An annex of more than PARALLEL_MIN_ROWS
# cylinders is cut (in the rendered HTML, between rows) into two documents that a forked
# child and this process lay out at the same time; the PDFs are joined with pypdf. The cut
# falls on a page boundary of the single document (rows per page are measured once per
# process on a sample of the annex), so the pages, their text and "第 N 页 / 共 M 页" are
# those of the single document: the second half's page counter starts where the first
# half's ends and both print the predicted total M. If a half comes out with a different
# page count than predicted (a row that wraps onto two lines), both halves are laid out
# again with the counts now known, so the numbering is right in every case.

PARALLEL_MIN_ROWS = 200
_rows_per_page: tuple[int, int] | None = None  # (first annex page, later pages)
_END_MARKER = re.compile(r'<p class="annex-end">.*?</p>', re.S)


def _parallel_worthwhile(docs: Sequence[CertificateDocument]) -> bool:
    return (os.cpu_count() or 1) > 1 and any(d.count > PARALLEL_MIN_ROWS for d in docs)


def _tbody_rows(annex: Document) -> list[int]:
    """Body rows of the cylinders table (``table.cylinders``) on each page of an annex."""
    counts = []
    for page in annex.pages:
        n = 0
        for table in page._page_box.descendants():
            if not isinstance(table, boxes.TableBox) or table.element is None:
                continue
            if "cylinders" not in (table.element.get("class") or "").split():
                continue
            for group in table.children:
                if isinstance(group, boxes.TableRowGroupBox) and not group.is_header:
                    n += sum(1 for row in group.children if isinstance(row, boxes.TableRowBox))
        counts.append(n)
    return counts


def _measure_rows_per_page(
    doc: CertificateDocument, fetcher: StaticOnlyURLFetcher, fonts: FontConfiguration
) -> tuple[int, int] | None:
    global _rows_per_page
    if _rows_per_page is None:
        sample = dataclasses.replace(doc, cylinders=doc.cylinders[:100])
        counts = _tbody_rows(_render_pages(annex_html(sample), fetcher, fonts))
        if len(counts) >= 3 and counts[0] > 0 and counts[1] > 0:
            _rows_per_page = (counts[0], counts[1])
    return _rows_per_page


def _annex_halves(doc: CertificateDocument, cut: int) -> tuple[str, str]:
    """The annex HTML cut before row ``cut``: rows, 序号 and markup as rendered whole."""
    html = annex_html(doc)
    if html.count("<tbody>") != 1 or html.count("</tbody>") != 1:
        raise ValueError("annex rows could not be cut")
    head, rest = html.split("<tbody>", 1)
    rows_html, tail = rest.split("</tbody>", 1)
    rows = [row + "</tr>" for row in rows_html.split("</tr>")[:-1]]
    if len(rows) != doc.count:
        raise ValueError("annex rows could not be cut")  # template changed: render whole
    first = head + "<tbody>" + "".join(rows[:cut]) + "</tbody>" + _END_MARKER.sub("", tail)
    # The continuation: no title or summary (those head page 1), the running header kept.
    hidden = "<style>.annex-title, table.annex-summary { display: none }</style></head>"
    second = head.replace("</head>", hidden, 1) + "<tbody>" + "".join(rows[cut:])
    return first, second + "</tbody>" + tail


def _numbered(html: str, first_page: int, total: int) -> str:
    """``html`` with its annex pages numbered from ``first_page`` of ``total``."""
    style = (
        f"<style>@page annex:first {{ counter-reset: page {first_page} }}"
        f'@page annex {{ @bottom-center {{ content: "第 " counter(page) " 页 / 共 {total} 页" }} }}'
        "</style></head>"
    )
    return html.replace("</head>", style, 1)


def _render_in_child(
    html: str, fetcher: StaticOnlyURLFetcher, fonts: FontConfiguration
) -> Callable[[], tuple[bytes, int]]:
    """Fork a child that lays out and writes ``html``; returns a callable giving its
    (PDF bytes, page count). The child inherits loaded fonts and compiled templates."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: render, send, and leave without running any cleanup
        code = 1
        try:
            os.close(read_end)
            document = _render_pages(html, fetcher, fonts)
            payload = len(document.pages).to_bytes(4, "big") + document.write_pdf()
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)

    def result() -> tuple[bytes, int]:
        with os.fdopen(read_end, "rb") as source:
            payload = source.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or len(payload) < 4:
            raise RuntimeError("the annex rendering child failed")
        return payload[4:], int.from_bytes(payload[:4], "big")

    return result


def _render_one_parallel(
    doc: CertificateDocument, fetcher: StaticOnlyURLFetcher, fonts: FontConfiguration
) -> list[bytes]:
    """One certificate as PDFs to join: page 1 with the annex's first half, then the rest."""
    per_page = _measure_rows_per_page(doc, fetcher, fonts)
    halves = None
    if per_page is not None:
        first_rows, later_rows = per_page
        # The cut: page 1 and whole later pages, about half the rows.
        later_pages = max(0, round((doc.count / 2 - first_rows) / later_rows))
        cut = min(doc.count - 1, first_rows + later_pages * later_rows)
        try:
            halves = _annex_halves(doc, cut)
        except ValueError:  # the annex markup is not one <tr> per cylinder: render whole
            halves = None
    if per_page is None or halves is None:
        documents = [_render_pages(html, fetcher, fonts) for html in _htmls(doc)]
        return [_join(documents, [doc])]
    first_html, second_html = halves
    pages_first = 1 + later_pages
    rest = doc.count - cut
    # Rows fill whole pages; the end marker needs a line after the last row.
    pages_second = -(-rest // later_rows) + (1 if rest % later_rows == 0 else 0)
    certificate: Document | None = None
    for _attempt in range(2):
        total = pages_first + pages_second
        # The child first, so that everything this process does overlaps with it.
        child = _render_in_child(_numbered(second_html, pages_first + 1, total), fetcher, fonts)
        if certificate is None:
            certificate = _render_pages(certificate_html(doc), fetcher, fonts)
        first = _render_pages(_numbered(first_html, 1, total), fetcher, fonts)
        first_count = len(first.pages)
        first_pdf = _join([certificate, first], [doc]) if first_count == pages_first else b""
        second_pdf, second_count = child()
        if first_count == pages_first and second_count == pages_second:
            return [first_pdf, second_pdf]
        pages_first, pages_second = first_count, second_count  # now known: again
    raise RuntimeError("annex page numbering did not settle")


def _join(documents: Sequence[Document], docs: Sequence[CertificateDocument]) -> bytes:
    pages = [page for document in documents for page in document.pages]
    combined = documents[0].copy(pages)
    combined.metadata.title = _title(docs)
    combined.metadata.authors = sorted({doc.authority for doc in docs})
    return combined.write_pdf()


def _render_many_parallel(docs: Sequence[CertificateDocument]) -> bytes:
    fetcher = StaticOnlyURLFetcher()
    fonts = _fonts()
    writer = pypdf.PdfWriter()
    with _cyclic_gc_paused():
        for doc in docs:
            parts = (
                _render_one_parallel(doc, fetcher, fonts)
                if doc.count > PARALLEL_MIN_ROWS
                else [_join(list(_documents(doc, fetcher, fonts)), [doc])]
            )
            for part in parts:
                writer.append(pypdf.PdfReader(io.BytesIO(part)))
    writer.add_metadata(
        {"/Title": _title(docs), "/Author": ", ".join(sorted({d.authority for d in docs}))}
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def render_many(docs: Iterable[CertificateDocument]) -> bytes:
    """Several certificates (each with its annex) in one PDF, in the order given."""
    docs = list(docs)
    if not docs:
        raise ValueError("render_many needs at least one certificate")
    if _parallel_worthwhile(docs):
        return _render_many_parallel(docs)
    fetcher = StaticOnlyURLFetcher()
    fonts = _fonts()
    with _cyclic_gc_paused():
        rendered = [page_set for doc in docs for page_set in _documents(doc, fetcher, fonts)]
        pages = [page for document in rendered for page in document.pages]
        combined = rendered[0].copy(pages)
        combined.metadata.title = _title(docs)
        combined.metadata.authors = sorted({doc.authority for doc in docs})
        pdf = combined.write_pdf()
        del rendered, pages, combined  # let the final collection reclaim the box trees
    return pdf


def render_certificate_pdf(doc: CertificateDocument) -> bytes:
    """One certificate: page 1 the 使用登记证, then its annex."""
    return render_many([doc])


def document_html(paper: LicensingPaper) -> str:
    return _environment.get_template(DOCUMENT_TEMPLATE).render(
        doc=paper, qr_uri=qr_data_uri(paper.verify_url)
    )


def render_document_pdf(paper: LicensingPaper) -> bytes:
    """One licensing document, through the same safe fetcher and fonts as the certificate."""
    document = _render_pages(document_html(paper), StaticOnlyURLFetcher(), _fonts())
    document.metadata.title = f"{paper.title} {paper.number}"
    document.metadata.authors = [paper.authority]
    return document.write_pdf()


def _title(docs: Sequence[CertificateDocument]) -> str:
    if len(docs) == 1:
        return f"特种设备使用登记证 {docs[0].number}"
    return f"特种设备使用登记证（{len(docs)}份）"
