"""Benchmark: a clerk audits a 1,000-cylinder application in 逐只审核, in real Chromium (issue 14).

Builds a fresh PostgreSQL database with one submitted application of N cylinders, each with a
钢印 and a 监检证书 photo (1600×1200 camera-like JPEGs, noise and text; 40 distinct pairs
of files shared by the cylinders, but every photo row with its own sha256, so its own URLs
and its own sized variants made by the server on first request), serves the app
from a subprocess, and drives Debian Chromium (Playwright) as a clerk: on each cylinder it waits
for the stamp to be on screen, then presses one key for 正确, or X, types a note and Enter for
the 2 % 错误. It prints keystrokes per correct cylinder, keypress-to-stamp-visible median and
p95 (the page's ``reader:shown`` event: stamp decoded and the next frame painted), image bytes
per cylinder (Resource Timing, bytes on the wire) and verdicts lost (the database compared with
what was pressed; must be 0).

    .venv/bin/python scripts/bench_audit_browser.py [--cylinders 1000] [--cold] [--database-url URL]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/regbo_bench_audit_browser"
PASSWORD = "bench-pass-123"
CHROMIUM = "/usr/bin/chromium"
DISTINCT_PHOTOS = 40
WRONG_SHARE = 0.02


def recreate_database(url: str) -> None:
    """A fresh database every run: the audit starts with every cylinder 待审核."""
    target = sa.make_url(url)
    admin = sa.create_engine(
        target.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def camera_photo(text: str, seed: int) -> bytes:
    """A 1600×1200 JPEG that compresses like a photo (noise, gradient), the number stamped in."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    rng = random.Random(seed)
    noise = Image.effect_noise((1600, 1200), 40 + seed % 20).convert("RGB")
    base = Image.new("RGB", (1600, 1200), (120 + rng.randrange(60), 110, 100))
    image = Image.blend(base, noise, 0.45).filter(ImageFilter.GaussianBlur(0.6))
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 120)
    except OSError:
        font = ImageFont.load_default()
    draw.text((180, 520), text, fill=(235, 235, 225), font=font)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def build(database_url: str, storage_dir: str, cylinders: int, warm: bool) -> int:
    from bench_common import bench_app
    from flask_migrate import upgrade

    from regbackoffice import accounts, storage
    from regbackoffice.benchdata import bench_unit
    from regbackoffice.extensions import db
    from regbackoffice.images import normalise_image
    from regbackoffice.models import Role

    os.environ["REGBO_STORAGE_DIR"] = storage_dir
    app = bench_app(database_url)
    app.config["STORAGE_DIR"] = storage_dir
    with app.app_context():
        upgrade()
        unit = bench_unit()
        applicant = accounts.create_user("bench-applicant", PASSWORD, Role.APPLICANT, unit=unit)
        accounts.create_user("bench-accept", PASSWORD, Role.ACCEPTOR, district_code="500112")
        db.session.commit()
        print(f"photos: {DISTINCT_PHOTOS} distinct pairs, 1600×1200 …", flush=True)
        stored = []
        for n in range(DISTINCT_PHOTOS):
            pair = []
            for kind, text in (("stamp", f"BIG{n:06d}"), ("supervision_certificate", "监检")):
                image = normalise_image(camera_photo(text, n * 2 + len(kind)))
                key = storage.new_key("photos", ".jpg")
                thumb = storage.new_key("thumbs", ".jpg")
                storage.save(key, image.data)
                storage.save(thumb, image.thumbnail)
                pair.append((kind, key, thumb, image.sha256, len(image.data)))
            stored.append(pair)
        params = {"unit": unit.id, "user": applicant.id, "name": unit.name, "n": cylinders}
        app_id = db.session.execute(
            sa.text(
                """
                INSERT INTO applications (number, status, unit_id, district_code, unit_name,
                  safety_department, contact_name, contact_phone, credit_code, address,
                  created_by_id, created_at, submitted_at, accept_due_on, item_count, version_id)
                VALUES ('BQ-READ', 'submitted', :unit, '500112', :name, '安全部', '联系人',
                  '023-1', '', '', :user, now(), now(), CURRENT_DATE + 5, :n, 1)
                RETURNING id
                """
            ),
            params,
        ).scalar_one()
        db.session.execute(
            sa.text(
                """
                INSERT INTO application_items (application_id, row_no, variety_code, product_no,
                  medium_code, manufacturer, manufacture_month, nominal_pressure_mpa, volume_l,
                  last_inspection_date, next_inspection_month, identity_key, live_identity_key,
                  audit_verdict, excluded, attachment_count, audit_revision)
                SELECT :app, n + 1, '2320', 'BIG' || lpad(n::text, 6, '0'), 'G13',
                  '基准大批量制造厂', '2024-01', 2.1, 35.5, DATE '2024-02-01', '2028-02',
                  'R' || chr(31) || n, 'R' || chr(31) || n, 'pending', false, 2, 0
                FROM generate_series(1, :n) AS n
                """
            ),
            {"app": app_id, "n": cylinders},
        )
        ids = db.session.execute(
            sa.text("SELECT id FROM application_items WHERE application_id = :a ORDER BY row_no"),
            {"a": app_id},
        ).scalars()
        rows = []
        for index, item_id in enumerate(ids):
            for kind, key, thumb, sha, size in stored[index % DISTINCT_PHOTOS]:
                rows.append(
                    {
                        "item": item_id,
                        "kind": kind,
                        "key": key,
                        "thumb": thumb,
                        # Its own sha256 per photo row: every cylinder's sized variants are made
                        # (and cached) on their own, as with real, distinct photos.
                        "sha": hashlib.sha256(f"{sha}-{item_id}".encode()).hexdigest(),
                        "size": size,
                        "user": applicant.id,
                    }
                )
        db.session.execute(
            sa.text(
                """
                INSERT INTO attachments (item_id, kind, storage_key, thumbnail_key, sha256,
                  content_type, width, height, size_bytes, original_name, uploaded_by_id,
                  uploaded_at)
                VALUES (:item, :kind, :key, :thumb, :sha, 'image/jpeg', 1600, 1200, :size, '',
                  :user, now())
                """
            ),
            rows,
        )
        db.session.commit()
        if warm:
            # What the worker's photo_variants job does after each upload.
            from regbackoffice import photo_files

            print("sized variants (the photo_variants job) …", flush=True)
            photo_ids = db.session.execute(sa.text("SELECT id FROM attachments")).scalars().all()
            photo_files.make_variants(list(photo_ids))
        return app_id


def serve(database_url: str, storage_dir: str) -> None:
    """Child process: the app on a free port; prints ``PORT n``."""
    from bench_common import bench_app
    from werkzeug.serving import make_server

    os.environ["REGBO_STORAGE_DIR"] = storage_dir
    app = bench_app(database_url)
    app.config["STORAGE_DIR"] = storage_dir
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"PORT {server.port}", flush=True)
    server.serve_forever()


RECORDER = """
(() => {
  window.__bench = { keyAt: null, shown: [] };
  document.addEventListener("keydown", () => { window.__bench.keyAt = performance.now(); }, true);
  document.addEventListener("reader:shown", (event) => {
    const b = window.__bench;
    if (b.keyAt !== null) b.shown.push([event.detail.position, performance.now() - b.keyAt]);
    b.keyAt = null;
    b.position = event.detail.position;
  });
  if (performance.setResourceTimingBufferSize) performance.setResourceTimingBufferSize(100000);
})();
"""


def drive(base: str, app_id: int, cylinders: int, wrong: set[int]) -> dict:
    from playwright.sync_api import sync_playwright

    keys = {"correct": 0, "wrong": 0}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(
            viewport={"width": 1366, "height": 768}, locale="zh-CN", bypass_csp=True
        )
        context.add_init_script(RECORDER)
        page = context.new_page()
        page.goto(base + "/login")
        page.get_by_label("用户名").fill("bench-accept")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto(f"{base}/bureau/applications/{app_id}/audit/read?at=0")
        page.wait_for_function("window.__bench.position === 0")
        started = time.perf_counter()
        for position in range(cylinders):
            if position in wrong:
                page.keyboard.press("x")
                page.keyboard.type("钢印与产品编号不符")  # typed text: not counted as keys
                page.keyboard.press("Enter")
                keys["wrong"] += 2
            else:
                page.keyboard.press(" ")
                keys["correct"] += 1
            if position + 1 < cylinders:
                page.wait_for_function(f"window.__bench.position === {position + 1}")
        page.wait_for_function(
            "document.getElementById('reader-saving').textContent === '已保存'", timeout=120_000
        )
        elapsed = time.perf_counter() - started
        shown = page.evaluate("window.__bench.shown.map(s => s[1])")
        image_bytes = page.evaluate(IMAGE_BYTES)
        # The list pager (审核附件), 10 cylinders a page, every thumbnail loaded (scrolled down).
        pager = context.new_page()
        pager.goto(f"{base}/bureau/applications/{app_id}/audit?page=7&size=10")
        pager.mouse.wheel(0, 10_000)
        pager.wait_for_load_state("networkidle")
        pager_bytes = pager.evaluate(IMAGE_BYTES)
        browser.close()
    return {
        "keys": keys,
        "shown": shown,
        "image_bytes": image_bytes,
        "pager_bytes": pager_bytes,
        "elapsed": elapsed,
    }


IMAGE_BYTES = """performance.getEntriesByType('resource')
  .filter(e => /\\/files\\/attachments\\//.test(e.name))
  .reduce((n, e) => n + (e.transferSize || e.encodedBodySize), 0)"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("REGBO_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--cylinders", type=int, default=1000)
    parser.add_argument(
        "--cold",
        action="store_true",
        help="no worker: sized variants made on first request (the demo's case)",
    )
    parser.add_argument("--serve", nargs=2, metavar=("URL", "STORAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return

    recreate_database(args.database_url)
    storage_dir = tempfile.mkdtemp(prefix="regbo-bench-read-")
    app_id = build(args.database_url, storage_dir, args.cylinders, warm=not args.cold)
    rng = random.Random(14)
    wrong = set(rng.sample(range(args.cylinders), max(1, round(args.cylinders * WRONG_SHARE))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGBO_")}
    env["REGBO_SECRET_KEY"] = "bench"
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", args.database_url, storage_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        if not line.startswith("PORT "):
            sys.exit("the benchmark server did not start")
        result = drive(f"http://127.0.0.1:{line.split()[1]}", app_id, args.cylinders, wrong)
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(storage_dir, ignore_errors=True)  # the photos and their variants

    engine = sa.create_engine(args.database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text(
                "SELECT row_no - 2, audit_verdict, audit_note FROM application_items"
                " WHERE application_id = :a"
            ),
            {"a": app_id},
        ).all()
    engine.dispose()
    lost = sum(
        1
        for position, verdict, note in stored
        if (verdict, bool(note)) != (("wrong", True) if position in wrong else ("correct", False))
    )
    shown = sorted(result["shown"])
    correct = args.cylinders - len(wrong)
    p95 = shown[min(len(shown) - 1, int(len(shown) * 0.95))] if shown else float("nan")
    print(
        f"cylinders: {args.cylinders} ({len(wrong)} marked 错误 with a note),"
        f" variants {'on first request' if args.cold else 'made by the worker at upload'}"
    )
    print(f"keystrokes per correct cylinder: {result['keys']['correct'] / correct:.2f}")
    print(
        f"keypress to stamp visible: median {statistics.median(shown):.1f} ms,"
        f" p95 {p95:.1f} ms over {len(shown)} keys"
    )
    print(f"image bytes per cylinder: {result['image_bytes'] / args.cylinders / 1024:.1f} KB")
    print(f"list pager, one page of 10 cylinders: {result['pager_bytes'] / 1024:.0f} KB of images")
    print(f"verdicts lost: {lost}")
    print(f"wall time: {result['elapsed']:.0f} s")


if __name__ == "__main__":
    main()
