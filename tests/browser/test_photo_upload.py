"""批量上传照片 by multi-file selection: one request per photo with a progress bar, 继续上传
after a network error without storing anything twice, and 下一只 on the one-by-one page."""

from __future__ import annotations

import re

import pytest

from regbackoffice.demo import demo_photo
from regbackoffice.models import AttachmentKind

from .conftest import login
from .test_accessibility import violations
from .test_journey import cylinder_row, fill_template

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DISTRICT = "500105"
PRODUCT_NOS = ["MUP00001", "MUP00002"]


def _photo(product_no: str, kind: AttachmentKind, label: str) -> dict:
    return {
        "name": f"{product_no}_{label}.jpg",
        "mimeType": "image/jpeg",
        "buffer": demo_photo(product_no, kind),
    }


def test_many_photos_at_once_with_progress_and_resume_after_an_error(
    open_context, live_server, tmp_path
):
    context, watch = open_context(bypass_csp=True)  # for axe
    page = context.new_page()
    login(page, live_server, f"applicant-{DISTRICT}")
    page.goto(live_server("/applications/new"))
    page.get_by_label("区县").select_option(DISTRICT)
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/applications/\d+$"))
    application_url = page.url
    with page.expect_download() as download_info:
        page.get_by_role("link", name="气瓶信息EXCEL模板").click()
    template = tmp_path / "template.xlsx"
    download_info.value.save_as(template)
    page.locator("input[type=file][name=file]").set_input_files(
        {
            "name": "气瓶信息.xlsx",
            "mimeType": "application/octet-stream",
            "buffer": fill_template(template, [cylinder_row(no) for no in PRODUCT_NOS]),
        }
    )
    page.get_by_role("button", name="确认导入").click()
    page.wait_for_url(re.compile(r"/imports/\d+$"))

    # The network drops on the third photo's first try.
    tries: list[str] = []

    def _flaky(route) -> None:
        tries.append(route.request.url)
        if len(tries) == 3:
            route.abort()
        else:
            route.continue_()

    page.route(re.compile(r"/photos/file$"), _flaky)
    page.goto(application_url + "/photos/bulk")
    files = [
        _photo(PRODUCT_NOS[0], AttachmentKind.STAMP, "钢印"),
        _photo(PRODUCT_NOS[0], AttachmentKind.SUPERVISION_CERTIFICATE, "监检证书"),
        _photo(PRODUCT_NOS[1], AttachmentKind.STAMP, "钢印"),
        _photo(PRODUCT_NOS[1], AttachmentKind.SUPERVISION_CERTIFICATE, "监检证书"),
        {"name": "随手拍.jpg", "mimeType": "image/jpeg", "buffer": files_buffer()},
    ]
    page.get_by_label("选择照片（可多选），或把照片拖到这里").set_input_files(files)
    resume = page.get_by_role("button", name="继续上传")
    resume.wait_for()
    status = page.locator("#upload-status")
    assert "上传中断：网络中断" in status.inner_text() and "已上传 2 / 5 张" in status.inner_text()
    assert resume.evaluate("el => el === document.activeElement")
    resume.click()
    page.locator("#upload-status", has_text=re.compile(r"^完成")).wait_for()
    assert page.locator("#upload-progress").get_attribute("aria-valuenow") == "100"
    rows = page.locator("#upload-results tbody tr")
    assert rows.count() == 5
    assert "文件名不符合" in rows.nth(4).inner_text()
    assert len(tries) == 6  # the dropped one was sent again, the others once
    # The browser logs the dropped request; that one console line is this test's doing.
    dropped = [e for e in watch.console_errors if "ERR_FAILED" in e or "Failed to load" in e]
    assert len(dropped) <= 1
    for entry in dropped:
        watch.console_errors.remove(entry)
    found = violations(page)  # the page with its progress bar and results
    assert not found, "\n".join(found)

    page.goto(application_url + "?photos=complete")
    listed = page.locator("table tbody").inner_text()
    assert all(no in listed for no in PRODUCT_NOS)

    # One by one: 下一只.
    page.goto(application_url)
    # (exact: the row may also hold the 机器预读 badge link 照片待核对)
    page.get_by_role("row", name=re.compile(PRODUCT_NOS[0])).get_by_role(
        "link", name="照片", exact=True
    ).click()
    page.get_by_role("link", name="下一只").click()
    assert PRODUCT_NOS[1] in page.locator("h1").inner_text()
    assert page.locator("img.card-img-top").first.get_attribute("alt") == (
        f"产品编号 {PRODUCT_NOS[1]} 的钢印照片"
    )


def files_buffer() -> bytes:
    return demo_photo("X", AttachmentKind.STAMP)
