"""Real Chromium against the app served on 127.0.0.1 (see ``server.py``).

The server runs in its own process on its own database (``<test db>_browser``), migrated and
loaded with the demo data, committed for real. Every page the tests open is watched: a
console error, an uncaught page error or a request to anything but the server fails the test.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from ..conftest import TEST_DATABASE_URL, recreate_database
from .server import DEMO_PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROWSER_INTERNAL = ("data:", "blob:", "about:", "chrome:", "chrome-extension:", "chrome-untrusted:")
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"

BROWSER_DATABASE_URL = sa.make_url(TEST_DATABASE_URL).set(
    database=f"{sa.make_url(TEST_DATABASE_URL).database}_browser"
)


@dataclass
class LiveServer:
    url: str
    password: str = DEMO_PASSWORD

    def __call__(self, path: str) -> str:
        return self.url + path


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app with the demo data, served from a subprocess; jobs run inline (no Redis)."""
    url = BROWSER_DATABASE_URL.render_as_string(hide_password=False)
    recreate_database(url)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("REGBO_") and key not in {"FLASK_APP", "PYTHONWARNINGS"}
    }
    env.update(
        REGBO_ENV="testing",
        REGBO_SECRET_KEY="browser-test-secret-key",
        REGBO_DATABASE_URL=url,
        REGBO_STORAGE_DIR=str(tmp_path_factory.mktemp("browser-storage")),
        REGBO_PASSWORD_HASH_METHOD="pbkdf2:sha256:1000",
    )
    log = tmp_path_factory.mktemp("browser-server") / "server.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.browser.server"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
        try:
            line = process.stdout.readline() if process.stdout else ""
            if not line.startswith("PORT "):
                process.wait(timeout=10)
                pytest.fail(f"the browser test server did not start:\n{log.read_text()}")
            yield LiveServer(f"http://127.0.0.1:{int(line.split()[1])}")
        finally:
            process.terminate()
            process.wait(timeout=20)
            if process.stdout:
                process.stdout.close()


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class PageWatch:
    """What the pages of one browser context did that they must not do."""

    origin: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on(
            "console",
            lambda message: (
                self.console_errors.append(f"{page.url}: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))

    def assert_clean(self) -> None:
        assert self.outside_requests == [], "requests left 127.0.0.1"
        assert self.page_errors == [], "uncaught errors in pages"
        assert self.console_errors == [], "browser console errors"


@pytest.fixture
def open_context(browser, live_server: LiveServer):
    """``open_context(viewport=DESKTOP)`` → (context, watch); every context is checked."""
    contexts = []
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(live_server.url))

    def _open(viewport: dict | None = None, **kwargs):
        context = browser.new_context(
            viewport=viewport or DESKTOP,
            device_scale_factor=1,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            accept_downloads=True,
            # No transitions: what the test measures is where things end up.
            reduced_motion="reduce",
            **kwargs,
        )
        context.set_default_timeout(15_000)
        watch = PageWatch(origin)

        def _guard(route) -> None:
            request_url = route.request.url
            # The browser's own resources (its PDF viewer's chrome:// pages) never leave it.
            if request_url.startswith(origin + "/") or request_url.startswith(BROWSER_INTERNAL):
                route.continue_()
            else:
                watch.outside_requests.append(request_url)
                route.abort()

        context.route("**/*", _guard)
        context.on("page", watch.attach)
        contexts.append((context, watch))
        return context, watch

    yield _open
    for context, _watch in contexts:
        context.close()
    for _context, watch in contexts:
        watch.assert_clean()


def login(page, live_server: LiveServer, username: str) -> None:
    page.goto(live_server("/login"))
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(live_server.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(lambda url: "/login" not in url)


def screenshot(page, name: str) -> None:
    """The viewport as a clerk first sees it; saved to ``docs/screenshots/<name>.png``.

    Only with ``REGBO_UPDATE_SCREENSHOTS=1`` (so an ordinary test run leaves the tree
    clean); the PNG is reduced to a 256-colour palette to stay small in the repository.
    """
    data = page.screenshot(animations="disabled")
    if os.environ.get("REGBO_UPDATE_SCREENSHOTS") != "1":
        return
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(data)).convert("RGB")
    palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette.save(SCREENSHOTS / f"{name}.png", optimize=True)


def answer_confirmation(page, accept: bool = True) -> str:
    """Answer the confirmation dialog on screen; returns what it said."""
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    said = dialog.locator(".modal-body").inner_text()
    if accept:
        dialog.locator("[data-confirm-ok]").click()
    else:
        dialog.get_by_role("button", name="取消").click()
        dialog.wait_for(state="hidden")
    return said
