"""审核附件 never loses a verdict: two tabs, a timed-out session, leaving the page, Enter."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from .conftest import BROWSER_DATABASE_URL, login

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DISTRICT = "500105"  # the journeys use 500112's demo data; these change 500105's


@pytest.fixture
def on_pager(open_context, live_server):
    """The district's acceptor on the demo application's 审核附件 page: (page, its URL)."""
    context, _watch = open_context()
    page = context.new_page()
    login(page, live_server, f"accept-{DISTRICT}")
    return page, open_pager(page, live_server)


def end_sessions(username: str) -> None:
    """End the user's sessions on the server, as the idle timeout does."""
    engine = sa.create_engine(BROWSER_DATABASE_URL, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE user_sessions SET ended_at = now(), end_reason = 'idle'"
                " WHERE ended_at IS NULL"
                " AND user_id = (SELECT id FROM users WHERE username = :u)"
            ),
            {"u": username},
        )
    engine.dispose()


def open_pager(page, live_server) -> str:
    """The acceptor's 审核附件 page of the district's demo application; returns its URL."""
    page.goto(live_server("/inbox"))
    page.get_by_role("link", name="详情").first.click()
    page.get_by_role("link", name="审核附件").click()
    page.wait_for_url(re.compile(r"/audit"))
    return page.url


def mark_wrong(page, index: int, note: str) -> None:
    card = page.locator(".audit-card").nth(index)
    card.locator("label.btn", has_text="错误").click()
    card.locator("input.note").fill(note)


def save_back_to_correct(page, index: int) -> None:
    """Leave the demo application as the next test expects it: every cylinder 正确."""
    page.locator(".audit-card").nth(index).locator("label.btn", has_text="正确").click()
    save_page(page)


def save_page(page) -> None:
    page.get_by_role("button", name="保存本页").click()
    page.wait_for_url(re.compile(r"/audit"))


def verdict_of(page, index: int) -> tuple[str, str]:
    card = page.locator(".audit-card").nth(index)
    checked = card.locator("input.verdict:checked").get_attribute("value")
    return checked, card.locator("input.note").input_value()


def test_leaving_the_page_with_unsaved_marks_asks_first(on_pager):
    page, url = on_pager
    mark_wrong(page, 0, "钢印看不清")
    asked: list[str] = []

    def _stay(dialog) -> None:
        asked.append(dialog.type)
        dialog.dismiss()

    page.once("dialog", _stay)
    page.get_by_role("link", name="返回受理页面").click()
    page.wait_for_timeout(300)
    assert asked == ["beforeunload"] and page.url == url
    assert verdict_of(page, 0) == ("wrong", "钢印看不清")
    # Saved marks leave without a question.
    save_page(page)
    page.get_by_role("link", name="返回受理页面").click()
    page.wait_for_url(re.compile(r"/bureau/applications/\d+$"))
    page.goto(url)
    assert verdict_of(page, 0) == ("wrong", "钢印看不清")
    save_back_to_correct(page, 0)


def test_marks_survive_a_timed_out_session_and_are_offered_after_login(on_pager, live_server):
    page, url = on_pager
    mark_wrong(page, 1, "监检证书编号不符")
    end_sessions(f"accept-{DISTRICT}")  # idle too long: the server ended the session
    page.get_by_role("button", name="保存本页").click()
    page.wait_for_url(re.compile(r"/login"))  # the save went to the login page
    login(page, live_server, f"accept-{DISTRICT}")
    page.goto(url)
    banner = page.locator("#kept-marks")
    banner.wait_for(state="visible")
    assert "1 只气瓶的审核标记上次未能保存" in banner.inner_text()
    assert verdict_of(page, 1)[0] == "correct"  # the server never got it
    banner.get_by_role("button", name="恢复这些标记").click()
    assert verdict_of(page, 1) == ("wrong", "监检证书编号不符")
    save_page(page)
    assert verdict_of(page, 1) == ("wrong", "监检证书编号不符")
    assert not page.locator("#kept-marks").is_visible()
    save_back_to_correct(page, 1)


def test_enter_in_a_note_saves_and_goes_forward(on_pager):
    page, url = on_pager
    page.goto(url.split("?")[0] + "?size=10")
    mark_wrong(page, 1, "照片与实物不符")
    page.locator(".audit-card").nth(1).locator("input.note").press("Enter")
    # One page only: Enter means 完成, which saves first.
    page.wait_for_url(re.compile(r"/bureau/applications/\d+$"))
    page.goto(url)
    assert verdict_of(page, 1) == ("wrong", "照片与实物不符")
    save_back_to_correct(page, 1)


def test_the_same_clerk_in_two_tabs_is_told_and_sees_the_newer_verdict(on_pager):
    first, url = on_pager
    second = first.context.new_page()
    second.goto(url)
    mark_wrong(second, 0, "第二个窗口标记")
    save_page(second)
    first.get_by_role("button", name="保存本页").click()  # still shows 正确 for it
    first.wait_for_load_state()
    assert "在本页打开后已被修改" in first.locator("body").inner_text()
    assert verdict_of(first, 0) == ("wrong", "第二个窗口标记")
    save_back_to_correct(first, 0)


def test_after_a_correction_round_the_pager_says_which_marks_no_longer_apply(
    on_pager, open_context, live_server
):
    """Marks kept from before a 补正 round meet the verdicts the applicant's changes reset:
    the pager names the cylinders to audit again, keeps the unchanged one's mark, and a
    mark made after the reset survives a timed-out save."""
    from regbackoffice.demo import demo_photo
    from regbackoffice.models import AttachmentKind

    from .conftest import answer_confirmation

    page, url = on_pager
    application_id = re.search(r"/applications/(\d+)/", url).group(1)
    products = [page.locator(".audit-card").nth(i).get_attribute("data-product") for i in (0, 1)]
    # Unsaved marks, then the clerk leaves the page anyway and returns it for correction.
    mark_wrong(page, 0, "钢印模糊（补正前）")
    mark_wrong(page, 1, "证书编号不符")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("link", name="返回受理页面").click()
    page.wait_for_url(re.compile(r"/bureau/applications/\d+$"))
    page.get_by_role("link", name="退回补正").click()
    page.wait_for_url(re.compile(r"/correction$"))
    page.get_by_label("其他需要补正的内容（每行一项）").fill("请重拍第一只气瓶的钢印照片")
    page.get_by_label(re.compile("补正应一次性告知")).check()
    page.get_by_role("button", name="确认退回补正").click()
    page.locator("#correction-open").wait_for()

    # The applicant retakes the first cylinder's stamp photo and resubmits.
    other, _watch = open_context()
    applicant = other.new_page()
    login(applicant, live_server, f"applicant-{DISTRICT}")
    applicant.goto(live_server(f"/applications/{application_id}"))
    applicant.get_by_role("row", name=re.compile(products[0])).get_by_role(
        "link", name="照片", exact=True
    ).click()
    stamp = applicant.locator(".photo-card", has_text="钢印")
    stamp.get_by_label("替换为").set_input_files(
        {
            "name": f"{products[0]}_钢印_重拍.jpg",
            "mimeType": "image/jpeg",
            "buffer": demo_photo(products[0] + "R", AttachmentKind.STAMP),
        }
    )
    stamp.get_by_role("button", name="替换", exact=True).click()
    assert "照片已替换" in applicant.locator("body").inner_text()
    applicant.goto(live_server(f"/applications/{application_id}"))
    applicant.get_by_role("button", name="补正后重新提交").click()
    answer_confirmation(applicant)
    applicant.wait_for_url(re.compile(r"/progress$"))

    # The clerk's pager: told precisely, per cylinder; the unchanged one's mark is offered.
    page.goto(url)
    banner = page.locator("#kept-marks")
    banner.wait_for(state="visible")
    said = banner.inner_text()
    assert "补正后该气瓶需重新审核，之前的标记不再适用" in said and products[0] in said
    assert "1 只气瓶的审核标记上次未能保存" in said and "不再恢复" not in said
    first = page.locator(".audit-card").nth(0)
    assert "补正后该气瓶需重新审核（申请人照片已更换）" in first.inner_text()
    assert "错误：钢印模糊（补正前）" in first.inner_text()
    banner.get_by_role("button", name="恢复这些标记").click()
    assert verdict_of(page, 0) == ("correct", "")  # 未审核 again, the old mark not applied
    assert verdict_of(page, 1) == ("wrong", "证书编号不符")

    # A mark made after the reset is never dropped: not even by a timed-out save.
    mark_wrong(page, 0, "重拍后仍看不清")
    end_sessions(f"accept-{DISTRICT}")
    page.get_by_role("button", name="保存本页").click()
    page.wait_for_url(re.compile(r"/login"))
    login(page, live_server, f"accept-{DISTRICT}")
    page.goto(url)
    banner.wait_for(state="visible")
    said = banner.inner_text()
    assert "2 只气瓶的审核标记上次未能保存" in said and "不再适用" not in said
    banner.get_by_role("button", name="恢复这些标记").click()
    assert verdict_of(page, 0) == ("wrong", "重拍后仍看不清")
    save_page(page)
    assert verdict_of(page, 0) == ("wrong", "重拍后仍看不清")
    assert verdict_of(page, 1) == ("wrong", "证书编号不符")
    assert not banner.is_visible()
    # Leave it as the other tests expect: every cylinder on the page 正确.
    for index in (0, 1):
        page.locator(".audit-card").nth(index).locator("label.btn", has_text="正确").click()
    save_page(page)
