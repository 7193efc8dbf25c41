#!/usr/bin/env python3
"""Benchmark certificate rendering (DESIGN 7; budgets in docs/benchmarks.md).

    .venv/bin/python scripts/bench_certificate.py [--large-runs 3] [--small-runs 7]
    .venv/bin/python scripts/bench_certificate.py --screenshot docs/screenshots/certificate.png

Budgets (issue 18): a 1,000-cylinder certificate rendered in <= 3 s wall on 2 cores and
<= 1.5 MB; a small certificate (one annex page) <= 0.3 s warm. The anchor, measured in the
same run: the same 1,000-cylinder certificate laid out as one document on one core (the
renderer before issue 18). Reports wall-clock and CPU time (this process and its forked
children) and the load average, so a busy machine is visible.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

from regbackoffice import certificate_pdf
from regbackoffice.certificate_pdf import (
    CertificateDocument,
    CylinderRow,
    render_certificate_pdf,
)

VARIETIES = ("无缝气瓶", "焊接气瓶", "特种气瓶")
MEDIA = ("液化石油气", "氧气", "二甲醚", "氮气", "二氧化碳")
MAKERS = (
    "重庆某某气瓶制造有限公司",
    "浙江金盾压力容器有限公司",
    "北京天海工业有限公司",
    "四川明星气瓶股份有限公司重庆分公司",
)


def sample_document(count: int) -> CertificateDocument:
    """A realistic certificate: long names, 12-digit trace codes, mixed varieties."""
    rows = tuple(
        CylinderRow(
            product_no=f"{101 + i % 4:03d}{15 + i % 10:02d}{i:07d}",  # trace code
            variety=VARIETIES[i % 3],
            medium=MEDIA[i % 5],
            manufacturer=MAKERS[i % 4],
            manufacture_month=f"20{15 + i % 10}-{1 + i % 12:02d}",
            nominal_pressure_mpa=Decimal("2.10") + i % 3,
            volume_l=Decimal("35.50") + i % 40,
            next_inspection_month=f"20{27 + i % 4}-{1 + i % 12:02d}",
            archive_id=f"CQ5001122026{i:08d}",
            internal_no=f"YB-{i:05d}",
            last_inspection_date="" if i % 7 == 0 else f"20{24 + i % 2}-{1 + i % 9:02d}-15",
            tag=("二维码", "RFID标签", "")[i % 3],
        )
        for i in range(1, count + 1)
    )
    return CertificateDocument(
        unit_name="重庆市渝北区示范燃气有限责任公司",
        credit_code="91500112MA5U00001H",
        address="重庆市渝北区龙溪街道金开大道99号",
        number="瓶渝11200023(26)",
        authority="重庆市渝北区市场监督管理局",
        issue_date=date(2026, 11, 26),
        verify_url="https://regbo.example.cn/verify/%E7%93%B6%E6%B8%9D11200023(26)",
        cylinders=rows,
    )


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the annex halves)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(doc: CertificateDocument) -> tuple[float, float, bytes]:
    wall, cpu = time.perf_counter(), _cpu()
    pdf = render_certificate_pdf(doc)
    return time.perf_counter() - wall, _cpu() - cpu, pdf


def screenshot(path: Path, dpi: int) -> None:
    """Page 1 of a 30-cylinder certificate as PNG (poppler's pdftoppm)."""
    pdf = render_certificate_pdf(sample_document(30))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "certificate.pdf"
        source.write_bytes(pdf)
        stem = Path(tmp) / "page"
        command = ["pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile"]
        subprocess.run([*command, str(source), str(stem)], check=True)
        path.write_bytes(stem.with_suffix(".png").read_bytes())
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=1000, help="cylinders in the large case")
    parser.add_argument("--large-runs", type=int, default=3)
    parser.add_argument("--small-runs", type=int, default=7)
    parser.add_argument("--anchor-runs", type=int, default=1)
    parser.add_argument("--screenshot", type=Path, help="write page 1 as PNG here and exit")
    parser.add_argument("--dpi", type=int, default=80)
    args = parser.parse_args()

    if args.screenshot:
        screenshot(args.screenshot, args.dpi)
        return 0

    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    cold_wall, _cpu, _pdf = timed(sample_document(10))
    print(f"first render in the process (fonts, templates): {cold_wall:.2f} s")

    small = [timed(sample_document(10)) for _ in range(args.small_runs)]
    small_wall = statistics.median(run[0] for run in small)
    small_cpu = statistics.median(run[1] for run in small)
    small_pages = _pages(small[0][2])
    print(
        f"small certificate (10 cylinders, {small_pages} pages), warm, median of "
        f"{args.small_runs}: {small_wall:.3f} s wall, {small_cpu:.3f} s CPU, "
        f"{len(small[0][2]) / 1024:.0f} KB  (budget 0.3 s)"
    )

    large_doc = sample_document(args.large)
    large = [timed(large_doc) for _ in range(args.large_runs)]
    large_wall = statistics.median(run[0] for run in large)
    large_cpu = statistics.median(run[1] for run in large)
    size = len(large[0][2])
    print(
        f"{args.large}-cylinder certificate ({_pages(large[0][2])} pages), median of "
        f"{args.large_runs}: {large_wall:.2f} s wall (runs: "
        f"{', '.join(f'{run[0]:.2f}' for run in large)}), {large_cpu:.2f} s CPU, "
        f"{size / 1024 / 1024:.2f} MB  (budget 3 s, 1.5 MB)"
    )
    # The anchor in the same run: one document, one core (no parallel halves).
    threshold = certificate_pdf.PARALLEL_MIN_ROWS
    certificate_pdf.PARALLEL_MIN_ROWS = 10**9
    try:
        anchor = [timed(large_doc) for _ in range(args.anchor_runs)]
    finally:
        certificate_pdf.PARALLEL_MIN_ROWS = threshold
    anchor_wall = statistics.median(run[0] for run in anchor)
    print(
        f"anchor: the same certificate as one document on one core, median of "
        f"{args.anchor_runs}: {anchor_wall:.2f} s wall (runs: "
        f"{', '.join(f'{run[0]:.2f}' for run in anchor)}), "
        f"{statistics.median(run[1] for run in anchor):.2f} s CPU, "
        f"{len(anchor[0][2]) / 1024 / 1024:.2f} MB"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"certificate/anchor wall ratio: {large_wall / anchor_wall:.2f}")
    ok = small_wall <= 0.3 and large_wall <= 3 and size <= 1.5 * 1024 * 1024
    print("within budget" if ok else "OVER BUDGET")
    return 0 if ok else 1


def _pages(pdf: bytes) -> int:
    import io

    import pypdf

    return len(pypdf.PdfReader(io.BytesIO(pdf)).pages)


if __name__ == "__main__":
    sys.exit(main())
