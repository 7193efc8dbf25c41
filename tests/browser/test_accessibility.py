"""axe-core (npm, tests/js) finds no serious or critical violation on the forms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.slow]
AXE = Path(__file__).resolve().parents[1] / "js" / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => ["serious", "critical"].includes(v.impact))
    .map(v => {
      const where = v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ");
      return `${v.id} (${v.impact}): ${where}`;
    });
}"""


def violations(page) -> list[str]:
    # The pages forbid inline scripts (CSP); the axe context bypasses it for the injection.
    page.add_script_tag(path=str(AXE))
    return [f"{page.url}: {v}" for v in page.evaluate(RUN_AXE)]


def test_the_forms_have_no_serious_accessibility_violation(open_context, live_server):
    context, _watch = open_context(bypass_csp=True)
    page = context.new_page()
    page.goto(live_server("/login"))
    found = violations(page)
    login(page, live_server, "applicant-500112")
    page.goto(live_server("/applications/new"))
    found += violations(page)
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/applications/\d+$"))
    found += violations(page)  # the draft: import form, photo links, submit block
    page.goto(page.url + "/edit")
    found += violations(page)
    for path in (
        "/changes/",
        "/changes/new/suspend",
        "/changes/new/scrap",
        "/changes/new/transfer",
    ):
        page.goto(live_server(path))
        found += violations(page)
    # The demo's application returned for correction: the notice, then its 补正 round.
    page.goto(live_server("/applications/"))
    page.get_by_role("row", name=re.compile("待补正")).first.get_by_role(
        "link", name="详情"
    ).click()
    found += violations(page)
    page.goto(page.url + "/progress")
    found += violations(page)
    page.context.clear_cookies()
    login(page, live_server, "admin")
    for path in ("/admin/users/new", "/admin/units/new", "/admin/api-clients", "/admin/audit"):
        page.goto(live_server(path))
        found += violations(page)
    page.context.clear_cookies()
    login(page, live_server, "accept-500112")
    page.goto(live_server("/inbox"))
    found += violations(page)
    page.get_by_role("link", name="详情").first.click()
    detail = page.url
    found += violations(page)
    for path in ("/audit", "/void", "/correction"):
        page.goto(detail + path)
        found += violations(page)
    page.goto(live_server("/inbox?task=suspend-accept"))
    found += violations(page)
    page.get_by_role("link", name="详情").first.click()
    change = page.url
    found += violations(page)  # a change request with its 受理 / 驳回
    page.goto(change + "/reject")
    found += violations(page)
    assert not found, "\n".join(found)
