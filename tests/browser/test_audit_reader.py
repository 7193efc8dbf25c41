"""逐只审核 and the lightbox by keyboard: one key per 正确 cylinder, X + note + Enter per 错误,
photos opened, stepped, zoomed and closed by key with the focus back on the cylinder."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login, screenshot
from .test_accessibility import violations

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DISTRICT = "500105"  # as test_audit_safety: the journeys use 500112's demo data


def open_reader(page, live_server) -> str:
    page.goto(live_server("/inbox"))
    page.get_by_role("link", name="详情").first.click()
    page.get_by_role("link", name="逐只审核（读钢印）").click()
    page.wait_for_url(re.compile(r"/audit/read"))
    page.locator("#reader-stamp[src]").wait_for()
    return page.url


def position(page) -> str:
    return page.locator("[data-reader-position]").inner_text()


def saved(page) -> None:
    page.wait_for_function("document.getElementById('reader-saving').textContent === '已保存'")


@pytest.fixture
def reader(open_context, live_server):
    context, _watch = open_context(bypass_csp=True)
    page = context.new_page()
    login(page, live_server, f"accept-{DISTRICT}")
    return page, open_reader(page, live_server)


def test_one_key_marks_correct_and_x_note_enter_marks_wrong(reader, live_server):
    page, url = reader
    page.goto(url.split("?")[0] + "?at=0")
    page.locator("#reader-stamp[src]").wait_for()
    first = page.locator("#reader-product").inner_text()
    stamp = page.locator("#reader-stamp")
    screenshot(page, "06c-audit-reader")
    assert stamp.get_attribute("alt") == f"产品编号 {first} 的钢印照片"
    assert "/view?v=" in stamp.get_attribute("src")
    page.keyboard.press(" ")
    assert position(page) == "2"
    assert page.locator("#reader-product").inner_text() != first
    page.keyboard.press("k")
    assert position(page) == "1"
    page.keyboard.press("x")
    note = page.get_by_label("错误备注")
    assert note.evaluate("el => el === document.activeElement")
    note.type("钢印与产品编号不符")
    note.press("Enter")
    assert position(page) == "2"
    saved(page)
    # What the server holds, seen afresh.
    page.goto(url.split("?")[0] + "?at=0")
    page.locator("#reader-stamp[src]").wait_for()
    assert page.locator("#reader-product").inner_text() == first
    assert page.locator("#reader-verdict").inner_text() == "错误（钢印与产品编号不符）"
    page.keyboard.press("Enter")  # back to 正确, as the other tests expect the demo data
    saved(page)
    assert page.locator("#reader-progress").inner_text().endswith("错误 0")
    page.keyboard.press("k")
    assert page.locator("#reader-verdict").inner_text() == "正确"


def test_esc_in_the_note_cancels_and_keeps_the_verdict(reader):
    page, _url = reader
    before = page.locator("#reader-verdict").inner_text()
    at = position(page)
    page.keyboard.press("x")
    page.get_by_label("错误备注").type("不要了")
    page.keyboard.press("Escape")
    assert not page.get_by_label("错误备注").is_visible()
    assert position(page) == at and page.locator("#reader-verdict").inner_text() == before
    page.keyboard.press("x")  # the keys are the reader's again
    assert page.get_by_label("错误备注").evaluate("el => el === document.activeElement")
    page.keyboard.press("Escape")


def test_lightbox_keys_step_zoom_rotate_and_esc_returns_focus(reader, live_server):
    page, url = reader
    page.goto(url.split("?")[0] + "?at=0")
    page.locator("#reader-stamp[src]").wait_for()
    product = page.locator("#reader-product").inner_text()
    box = page.locator("#lightbox")
    title = page.locator("#lightbox-title")
    page.keyboard.press("1")
    box.wait_for(state="visible")
    assert title.inner_text() == f"产品编号 {product} 的钢印照片（第 1 / 2 张）"
    page.keyboard.press("ArrowRight")
    assert title.inner_text() == f"产品编号 {product} 的监检证书照片（第 2 / 2 张）"
    alt = page.locator("#lightbox-image").get_attribute("alt")
    assert alt == f"产品编号 {product} 的监检证书照片"
    page.keyboard.press("+")
    page.keyboard.press("r")
    assert page.locator("#lightbox-image").evaluate("el => el.style.transform") == (
        "scale(1.25) rotate(90deg)"
    )
    page.keyboard.press("0")
    page.keyboard.press("ArrowDown")  # the next cylinder's first photo
    page.wait_for_function(
        "p => !document.getElementById('lightbox-title').textContent.includes(p)", arg=product
    )
    assert "（第 1 / 2 张）" in title.inner_text()
    assert position(page) == "2"
    page.keyboard.press("Escape")
    box.wait_for(state="hidden")
    # Focus comes back on Bootstrap's hidden event, after the backdrop has faded: wait.
    expect(page.locator("#audit-reader")).to_be_focused()
    page.keyboard.press("o")  # O: the current cylinder's first photo
    box.wait_for(state="visible")
    # Keys reach the lightbox once Bootstrap has moved focus into it, after its fade-in: an
    # Escape sent before that went to the reader and the lightbox stayed open (a flake).
    page.wait_for_function(
        "() => document.getElementById('lightbox').contains(document.activeElement)"
    )
    page.keyboard.press("Escape")
    box.wait_for(state="hidden")


def test_lightbox_from_the_pager_returns_focus_to_the_cylinder(reader, live_server):
    page, url = reader
    page.goto(url.replace("/audit/read", "/audit").split("?")[0] + "?size=10")
    page.keyboard.press("j")
    card = page.locator(".audit-card").nth(1)
    product = card.get_attribute("aria-label").removeprefix("产品编号 ")
    page.keyboard.press("2")
    page.locator("#lightbox").wait_for(state="visible")
    assert page.locator("#lightbox-title").inner_text().startswith(f"产品编号 {product} 的监检证书")
    page.keyboard.press("Escape")
    page.locator("#lightbox").wait_for(state="hidden")
    expect(card).to_be_focused()  # on Bootstrap's hidden event, after the fade


def test_reader_page_has_no_serious_accessibility_violation(reader):
    page, _url = reader
    found = violations(page)
    assert not found, "\n".join(found)


def test_a_verdict_changed_in_another_tab_is_not_overwritten_and_is_shown(reader):
    page, url = reader
    page.goto(url.split("?")[0] + "?at=0")
    page.locator("#reader-stamp[src]").wait_for()
    other = page.context.new_page()
    other.goto(url.replace("/audit/read", "/audit").split("?")[0] + "?size=10")
    card = other.locator(".audit-card").first
    card.locator("label.btn", has_text="错误").click()
    card.locator("input.note").fill("另一个窗口：钢印不清")
    other.get_by_role("button", name="保存本页").click()
    other.wait_for_url(re.compile(r"/audit"))
    page.keyboard.press(" ")  # this tab still showed the old verdict
    alert = page.locator("#reader-alert")
    alert.wait_for(state="visible")
    assert "已被修改" in alert.inner_text() and "另一个窗口：钢印不清" in alert.inner_text()
    page.keyboard.press("k")
    assert page.locator("#reader-verdict").inner_text() == "错误（另一个窗口：钢印不清）"
    page.keyboard.press(" ")  # now on the current revision: saved
    saved(page)
    page.keyboard.press("k")
    assert page.locator("#reader-verdict").inner_text() == "正确"


def test_a_verdict_given_after_the_session_ended_is_kept_and_saved_after_login(reader, live_server):
    from .test_audit_safety import end_sessions

    page, url = reader
    page.goto(url.split("?")[0] + "?at=0")
    page.locator("#reader-stamp[src]").wait_for()
    end_sessions(f"accept-{DISTRICT}")
    page.keyboard.press("x")
    page.get_by_label("错误备注").type("超时后标记")
    page.keyboard.press("Enter")
    alert = page.locator("#reader-alert")
    alert.wait_for(state="visible")
    assert "登录已超时" in alert.inner_text() and "已保存在本浏览器" in alert.inner_text()
    # 重新登录 leaves without a leave-page question (the mark waits in the browser) and
    # comes back to the reader.
    alert.get_by_role("link", name="重新登录").click()
    page.wait_for_url(re.compile(r"/login"))
    page.get_by_label("用户名").fill(f"accept-{DISTRICT}")
    page.get_by_label("密码").fill(live_server.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(r"/audit/read"))
    page.locator("#reader-stamp[src]").wait_for()
    saved(page)  # the kept verdict went to the server on its own
    page.goto(url.split("?")[0] + "?at=0")
    page.locator("#reader-stamp[src]").wait_for()
    assert page.locator("#reader-verdict").inner_text() == "错误（超时后标记）"
    page.keyboard.press(" ")
    saved(page)
