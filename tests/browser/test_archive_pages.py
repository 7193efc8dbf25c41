"""气瓶档案 in a real browser: the unit's list with its selection, the filters, one
cylinder's history; no serious accessibility violation, no sideways scrolling."""

from __future__ import annotations

import pytest

from .conftest import login, screenshot
from .test_accessibility import violations

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_unit_selects_cylinders_and_opens_a_cylinders_history(open_context, live_server):
    context, _watch = open_context(bypass_csp=True)  # axe is injected as a script
    page = context.new_page()
    login(page, live_server, "applicant-500112")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="气瓶档案").click()
    page.wait_for_url("**/archive/")
    boxes = page.locator('#cylinder-selection input[name="cylinder"]')
    assert boxes.count() >= 10
    page.get_by_label("全选本页").check()
    assert all(boxes.nth(i).is_checked() for i in range(boxes.count()))
    boxes.first.uncheck()
    assert page.evaluate("document.getElementById('select-page').indeterminate")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"the list scrolls sideways ({width}px)"
    screenshot(page, "15-archive-unit")
    found = violations(page)

    page.get_by_label("使用状态").select_option(label="停用")
    page.get_by_role("button", name="查询").click()
    page.wait_for_url("**status=stopped**")
    # Two stopped by the demo's 不合格 inspections, one by the demo's 停用 awaiting 启用.
    assert page.locator("#archive-list tbody tr").count() == 3
    page.get_by_role("link", name="YSH500112011").click()
    history = page.locator("#cylinder-history tbody tr")
    titles = [history.nth(i).locator("td").nth(1).inner_text() for i in range(history.count())]
    assert titles[:4] == ["提交使用登记申请", "受理", "审核通过", "审批通过"]
    # The 不合格 record stopped it and opened a 注销 task for the bureau.
    assert titles[-3:-1] == ["定期检验", "使用状态变更为停用"]
    assert titles[-1].startswith("提交注销申请 BG")
    page.locator("#h-history").evaluate("e => e.scrollIntoView({block: 'start'})")
    screenshot(page, "16-archive-cylinder")
    found += violations(page)
    assert not found, "\n".join(found)
