"""UI quality a clerk expects (issue 9 item 3, DESIGN 9a), checked in Chromium on real pages.

Every main page of every role, at 1366×768: each visible form field has a label, nothing
scrolls sideways, the Chinese font stack is in force; keyboard focus is visible; destructive
actions ask first (``data-confirm`` or a confirmation dialog or page) and say what will
happen; public pages fit a phone. The page watch in
``conftest.py`` also fails any of these tests on a console error or a request leaving
127.0.0.1.
"""

from __future__ import annotations

import re

import pytest

from .conftest import PHONE, answer_confirmation, login, screenshot

pytestmark = pytest.mark.browser

DISTRICT = "500112"

# Fields a user can see and type into that no label names.
UNLABELLED_FIELDS_JS = """
() => Array.from(document.querySelectorAll("input, select, textarea"))
  .filter(el => el.type !== "hidden" && el.offsetParent !== null
    && !["submit", "button", "reset", "image"].includes(el.type))
  .filter(el => !(el.labels && el.labels.length)
    && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
  .map(el => el.outerHTML.slice(0, 120))
"""
HORIZONTAL_OVERFLOW_JS = "document.documentElement.scrollWidth - window.innerWidth"
DESTRUCTIVE_FORMS_WITHOUT_CONFIRM_JS = """
() => Array.from(document.querySelectorAll("form[method=post], form[method=POST]"))
  .map(form => [form, new URL(form.getAttribute("action") || "", location.href).pathname])
  .filter(([form, path]) => /\\/(delete|submit|active|rotate|password)$/.test(path))
  .filter(([form, path]) => !form.dataset.confirm && !form.closest(".modal"))
  .map(([form, path]) => path)
"""


def page_problems(page) -> list[str]:
    """Everything wrong with the page as it stands, in words."""
    problems = [f"{page.url}: no label for {html}" for html in page.evaluate(UNLABELLED_FIELDS_JS)]
    overflow = page.evaluate(HORIZONTAL_OVERFLOW_JS)
    if overflow > 0:
        problems.append(f"{page.url}: scrolls sideways by {overflow}px")
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    if not font.startswith('"Noto Sans CJK SC"'):
        problems.append(f"{page.url}: body font is {font}")
    problems += [
        f"{page.url}: {action} posts without a confirmation"
        for action in page.evaluate(DESTRUCTIVE_FORMS_WITHOUT_CONFIRM_JS)
    ]
    return problems


def visit_all(page, live_server, paths: list[str]) -> list[str]:
    problems: list[str] = []
    for path in paths:
        response = page.goto(live_server(path))
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        problems += page_problems(page)
    return problems


def demo_application_path(page, live_server) -> str:
    """The demo's submitted application of 渝北区, as the acceptor's inbox links it."""
    page.goto(live_server("/inbox"))
    href = page.get_by_role("link", name="详情").first.get_attribute("href")
    assert href and re.fullmatch(r"/bureau/applications/\d+", href)
    return href


def test_back_office_pages_have_labels_fit_1366_and_use_the_cjk_fonts(open_context, live_server):
    context, _watch = open_context()
    page = context.new_page()
    page.goto(live_server("/login"))
    problems = page_problems(page)
    screenshot(page, "00-login")

    login(page, live_server, f"accept-{DISTRICT}")
    bureau_path = demo_application_path(page, live_server)
    problems += visit_all(
        page, live_server, ["/", "/inbox", bureau_path, bureau_path + "/audit", "/certificates"]
    )
    page.goto(live_server(bureau_path + "/void"))
    problems += page_problems(page)
    screenshot(page, "11-void-confirmation")
    page.context.clear_cookies()

    login(page, live_server, f"applicant-{DISTRICT}")
    application_path = bureau_path.replace("/bureau", "")
    problems += visit_all(
        page,
        live_server,
        ["/applications/", "/applications/new", application_path, application_path + "/progress"],
    )
    # A draft shows every form an applicant fills.
    page.goto(live_server("/applications/new"))
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/applications/\d+$"))
    problems += page_problems(page)
    page.context.clear_cookies()

    for username, paths in (
        (f"review-{DISTRICT}", ["/inbox", bureau_path]),
        (f"approve-{DISTRICT}", ["/inbox", bureau_path]),
        ("city", ["/", "/admin/reference", "/admin/audit"]),
        (
            "admin",
            [
                "/admin/users",
                "/admin/users/new",
                "/admin/units",
                "/admin/units/new",
                "/admin/api-clients",
                "/admin/reference",
                "/admin/audit",
            ],
        ),
    ):
        login(page, live_server, username)
        problems += visit_all(page, live_server, paths)
        if username == "admin":
            screenshot(page, "12-admin-audit-log")
        page.context.clear_cookies()

    assert problems == [], "\n".join(problems)


def test_keyboard_focus_is_visible(open_context, live_server):
    context, _watch = open_context()
    page = context.new_page()
    page.goto(live_server("/login"))
    rules = page.evaluate(
        """() => Array.from(document.styleSheets).flatMap(sheet => {
             try { return Array.from(sheet.cssRules).map(rule => rule.selectorText || ""); }
             catch (e) { return []; }
           }).filter(selector => selector.includes(":focus-visible"))"""
    )
    assert rules, "no :focus-visible style"
    page.keyboard.press("Tab")
    focused = page.evaluate(
        """() => { const el = document.activeElement;
                   const style = getComputedStyle(el);
                   return [el.id, style.outlineStyle, parseFloat(style.outlineWidth)]; }"""
    )
    assert focused[0] == "username"
    assert focused[1] != "none" and focused[2] >= 2


def test_destructive_actions_ask_first_and_say_what_happens(open_context, live_server):
    context, _watch = open_context()
    page = context.new_page()
    login(page, live_server, f"applicant-{DISTRICT}")
    page.goto(live_server("/applications/new"))
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/applications/\d+$"))
    draft_url = page.url

    page.get_by_role("button", name="删除草稿").click()
    assert "不能恢复" in answer_confirmation(page, accept=False)
    assert page.url == draft_url
    assert page.request.get(draft_url).ok, "the draft is still there after saying no"

    # 驳回（退件） is a page of its own: reason, explicit confirmation, what it does.
    page.context.clear_cookies()
    login(page, live_server, f"accept-{DISTRICT}")
    bureau_path = demo_application_path(page, live_server)
    page.goto(live_server(bureau_path))
    page.get_by_role("link", name="驳回（退件）").click()
    body = page.locator("main").inner_text()
    assert "整批作废" in body and "不可恢复" in body
    page.get_by_role("button", name="确认驳回（退件）").click()
    assert page.locator(".invalid-feedback").count() >= 1
    assert "/void" in page.url


def test_public_and_login_pages_fit_a_phone(open_context, live_server):
    context, _watch = open_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    problems = visit_all(page, live_server, ["/login"])
    assert page.get_by_label("用户名").is_visible()
    assert problems == [], "\n".join(problems)
