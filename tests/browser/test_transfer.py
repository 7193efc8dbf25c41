"""A 过户 in a real browser, from the sending unit to the receiving unit's certificate.

渝北区's demo unit transfers one of its certified cylinders to 江北区's demo unit: the
receiving applicant confirms, 渝北区's acceptor 受理s and its approver 审批s, and the
receiving unit downloads its certificate's next version, whose annex lists the cylinder as
过户转入; /verify shows that version as current.
"""

from __future__ import annotations

import io
import re

import pypdf
import pytest

from regbackoffice.credit_code import make_credit_code
from regbackoffice.demo import DEMO_DISTRICTS

from .conftest import answer_confirmation, login

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The demo's certified application of 渝北区 (its first cylinder is in the demo 补领).
MOVING = "YSCRT500112003"
RECEIVER_CODE = make_credit_code(DEMO_DISTRICTS[1].credit_prefix)


def test_a_transfer_walks_from_the_sending_unit_to_the_receivers_certificate(
    open_context, live_server
):
    sender, _ = open_context()
    page = sender.new_page()
    login(page, live_server, "applicant-500112")
    page.get_by_role("link", name="变更申请").first.click()
    page.get_by_role("link", name="申请过户").click()
    page.get_by_label("产品编号清单").fill(MOVING)
    page.get_by_label("接收单位统一社会信用代码").fill(RECEIVER_CODE)
    page.get_by_label("原因").fill("业务整体转让")
    page.get_by_role("button", name="提交过户申请").click()
    page.wait_for_url(re.compile(r"/changes/\d+$"))
    assert "待接收单位确认" in page.locator("h1").inner_text()
    number = re.search(r"BG\d{8}", page.locator("h1").inner_text()).group(0)
    change_url = page.url

    receiver, _ = open_context()
    page = receiver.new_page()
    login(page, live_server, "applicant-500105")
    page.goto(live_server("/changes/"))
    page.get_by_role("link", name=number).click()
    page.get_by_role("button", name="确认接收").click()
    assert "确认接收" in answer_confirmation(page)
    page.wait_for_url(lambda url: url.endswith("/changes/"))

    for username, task, button in (
        ("accept-500112", "过户申请的受理任务", "受理"),
        ("approve-500112", "过户申请的审批任务", "审批通过"),
    ):
        clerk_context, _ = open_context()
        clerk = clerk_context.new_page()
        login(clerk, live_server, username)
        clerk.goto(live_server("/inbox"))
        clerk.get_by_role("link", name=re.compile(task)).click()
        row = clerk.get_by_role("row").filter(has_text=number)
        row.get_by_role("link", name="详情").click()
        clerk.get_by_role("button", name=button, exact=True).click()
        answer_confirmation(clerk)
        clerk.wait_for_url(lambda url: "/inbox" in url)

    page.goto(change_url)
    assert "已批准" in page.locator("h1").inner_text()
    issued = page.locator("section", has_text="换发的使用登记证")
    assert "第2版" in issued.inner_text()
    link = issued.get_by_role("link", name="下载使用登记证（PDF）")
    response = page.request.get(live_server(link.get_attribute("href")))
    assert response.ok
    reader = pypdf.PdfReader(io.BytesIO(response.body()))
    text = "".join("".join((p.extract_text() or "").split()) for p in reader.pages)
    assert "第2版" in text and MOVING in text and "过户转入" in text
    certificate_no = re.search(r"(瓶渝\S+?\(\d\d\))（第2版", issued.inner_text()).group(1)

    page.goto(live_server(f"/verify/{certificate_no}?v=2"))
    assert "有效" in page.inner_text("main") and "第2版" in page.inner_text("main")


def test_the_sender_withdraws_a_transfer_before_the_receiver_confirms(open_context, live_server):
    sender, _ = open_context()
    page = sender.new_page()
    login(page, live_server, "applicant-500112")
    page.goto(live_server("/changes/new/transfer"))
    page.get_by_label("产品编号清单").fill("YSCRT500112002")
    page.get_by_label("接收单位统一社会信用代码").fill(RECEIVER_CODE)
    page.get_by_role("button", name="提交过户申请").click()
    page.wait_for_url(re.compile(r"/changes/\d+$"))
    change_url = page.url
    number = re.search(r"BG\d{8}", page.locator("h1").inner_text()).group(0)
    page.get_by_role("button", name="撤回申请").click()
    assert "撤回该过户申请（1只气瓶）" in answer_confirmation(page)
    page.wait_for_url(lambda url: url.endswith("/changes/"))
    assert "已撤回" in page.inner_text("main")
    page.goto(change_url)
    assert "已撤回" in page.locator("h1").inner_text()
    assert page.get_by_role("button", name="撤回申请").count() == 0
    # The receiving unit has nothing left to confirm.
    receiver, _ = open_context()
    other = receiver.new_page()
    login(other, live_server, "applicant-500105")
    other.goto(live_server("/changes/"))
    incoming = other.locator(".alert", has_text="待本单位确认接收的过户")
    assert incoming.count() == 0 or number not in incoming.inner_text()
