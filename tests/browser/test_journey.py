"""The whole registration, as its users do it, in a real browser (issue 9, DESIGN 4–7).

One applicant, one acceptor, one reviewer, one approver of 渝北区 (the demo users), each in
their own browser context; a phone opens the public verification page at the end.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook

from regbackoffice.demo import demo_photo
from regbackoffice.models import AttachmentKind

from .conftest import DESKTOP, PHONE, answer_confirmation, login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DISTRICT = "500112"
DISTRICT_NAME = "渝北区"
MANUFACTURER = "浏览器测试气瓶厂"
PRODUCT_NOS = [f"BRW{n:05d}" for n in range(1, 6)]
BAD_PRODUCT_NO = PRODUCT_NOS[2]
WRONG_NOTES = {PRODUCT_NOS[1]: "钢印照片模糊，无法辨认编号", PRODUCT_NOS[3]: "监检证书与气瓶不符"}
# The 补正 round: the applicant retakes the first wrong cylinder's stamp photo and corrects
# the unit information; the second stays wrong and is excluded at 受理.
FIXED_PRODUCT_NO, STILL_WRONG = PRODUCT_NOS[1], PRODUCT_NOS[3]
UNIT_ITEM = "安全管理部门请填写营业执照上的全称"
FIXED_DEPARTMENT = "安全生产管理部（全称）"


def cylinder_row(product_no: str, *, next_inspection: str | None = None) -> list:
    """A row of the template: a real date, numbers as numbers, codes, a QR URL; inspected
    last June, the next inspection within LPG's 4-year interval (TSG 23)."""
    year = date.today().year
    return [
        "2320",
        product_no,
        "G13",
        MANUFACTURER,
        "2023-06",
        2.1,
        35.5,
        date(year - 1, 6, 20),
        next_inspection or f"{year + 2}-06",
        f"NB-{product_no[-2:]}",
        "二维码",
        f"https://qr.example.invalid/{product_no}",
    ]


def fill_template(template: Path, rows: list[list]) -> bytes:
    """The applicant's Excel work: rows typed under the header of the downloaded template."""
    workbook = load_workbook(template)
    sheet = workbook.worksheets[0]
    for index, row in enumerate(rows, start=2):
        for column, value in enumerate(row, start=1):
            sheet.cell(row=index, column=column, value=value)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def fix_error_file(error_file: Path, product_no: str, next_inspection: str) -> bytes:
    """Correct the 下次检验日期 of the refused row in the 下载错误数据 file."""
    workbook = load_workbook(error_file)
    sheet = workbook.worksheets[0]
    headers = [cell.value for cell in sheet[1]]
    next_column = headers.index("下次检验日期") + 1
    fixed = 0
    for row in sheet.iter_rows(min_row=2):
        if row[1].value == product_no:
            row[next_column - 1].value = next_inspection
            fixed += 1
    assert fixed == 1, "the error file gives back exactly the refused row"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def photos_zip(product_nos: list[str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for product_no in product_nos:
            archive.writestr(f"{product_no}_钢印.jpg", demo_photo(product_no, AttachmentKind.STAMP))
            archive.writestr(
                f"{product_no}_监检证书.jpg",
                demo_photo(product_no, AttachmentKind.SUPERVISION_CERTIFICATE),
            )
    return out.getvalue()


def logout(page) -> None:
    page.get_by_role("button", name="退出").click()
    page.wait_for_url(re.compile(r"/login"))


def certified_in_district(page, live_server) -> int:
    """The 监管看板's 已发证 count for the demo district, as the supervisor reads it."""
    page.goto(live_server("/supervision/"))
    table = page.locator("#table-status table")
    column = table.locator("thead th").all_inner_texts().index("已发证")
    row = table.locator("tbody tr", has_text=DISTRICT_NAME).first
    return int(row.locator("td").nth(column).inner_text())


def test_registration_journey_in_the_browser(open_context, live_server, tmp_path):
    context, _watch = open_context()
    page = context.new_page()
    supervisor_context, _supervisor_watch = open_context()
    supervisor = supervisor_context.new_page()
    login(supervisor, live_server, "city")
    certified_before = certified_in_district(supervisor, live_server)

    # ---- 使用单位经办人: a new application, template, import with one bad row -------------
    login(page, live_server, f"applicant-{DISTRICT}")
    page.get_by_role("navigation").get_by_role("link", name="我的申请").click()
    page.get_by_role("link", name="新建申请").click()
    page.get_by_label("区县").select_option(DISTRICT)
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/applications/\d+$"))
    application_url = page.url
    application_no = page.locator("h1").inner_text().split()[-1]

    with page.expect_download() as download_info:
        page.get_by_role("link", name="气瓶信息EXCEL模板").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    template = tmp_path / "template.xlsx"
    download.save_as(template)

    rows = [cylinder_row(no) for no in PRODUCT_NOS]
    # The bad row: next inspection before the last one.
    rows[2] = cylinder_row(BAD_PRODUCT_NO, next_inspection="2023-01")
    page.locator("input[type=file][name=file]").set_input_files(
        {
            "name": "气瓶信息.xlsx",
            "mimeType": "application/octet-stream",
            "buffer": fill_template(template, rows),
        }
    )
    page.get_by_role("button", name="确认导入").click()
    page.wait_for_url(re.compile(r"/imports/\d+$"))
    result = page.locator(".alert").first.inner_text()
    assert "成功导入 4 行" in result and "失败 1 行" in result
    assert BAD_PRODUCT_NO in page.locator("table").inner_text()
    screenshot(page, "02-import-result")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="下载错误数据").click()
    error_file = tmp_path / "errors.xlsx"
    download_info.value.save_as(error_file)
    fixed = fix_error_file(error_file, BAD_PRODUCT_NO, f"{date.today().year + 2}-06")
    page.goto(application_url)
    page.locator("input[type=file][name=file]").set_input_files(
        {"name": "错误数据-已改正.xlsx", "mimeType": "application/octet-stream", "buffer": fixed}
    )
    page.get_by_role("button", name="确认导入").click()
    page.wait_for_url(re.compile(r"/imports/\d+$"))
    assert "成功导入 1 行" in page.locator(".alert").first.inner_text()
    page.goto(application_url)
    assert "共 5 只气瓶" in page.locator("body").inner_text()

    # ---- photos: the first cylinder one by one, the rest as a .zip ------------------------
    first = PRODUCT_NOS[0]
    page.get_by_role("row", name=re.compile(first)).get_by_role("link", name="照片").click()
    for kind, label in (
        (AttachmentKind.STAMP, "钢印"),
        (AttachmentKind.SUPERVISION_CERTIFICATE, "监检证书"),
    ):
        page.get_by_label("照片类型").select_option(label=kind.label)
        page.get_by_label(re.compile("^照片（")).set_input_files(
            {
                "name": f"{first}_{label}.jpg",
                "mimeType": "image/jpeg",
                "buffer": demo_photo(first, kind),
            }
        )
        page.get_by_role("button", name="上传", exact=True).click()
        page.wait_for_load_state()
    assert "照片齐全" in page.locator("body").inner_text()
    screenshot(page, "03-photos-one-by-one")

    page.goto(application_url)
    page.get_by_role("link", name="批量上传照片（.zip）").click()
    page.get_by_label("照片压缩包（.zip）").set_input_files(
        {"name": "照片.zip", "mimeType": "application/zip", "buffer": photos_zip(PRODUCT_NOS[1:])}
    )
    page.get_by_role("button", name="上传", exact=True).click()
    # The upload runs with a progress bar (photo-upload.js); its summary ends it.
    page.get_by_text(re.compile("成功 8 个，失败 0 个")).wait_for()
    screenshot(page, "04-photos-zip")

    page.goto(application_url)
    assert page.locator(".badge", has_text="齐全").count() == 5
    screenshot(page, "01-application-draft")
    page.get_by_role("button", name="提交申请").click()
    said = answer_confirmation(page)
    page.wait_for_url(re.compile(r"/progress$"))
    assert "确认提交" in said
    logout(page)

    # ---- 受理人员: inbox, keyboard audit, two cylinders 错误, 完成, 受理 -------------------
    login(page, live_server, f"accept-{DISTRICT}")
    page.goto(live_server("/inbox"))
    assert page.get_by_text(re.compile(r"您有\d+条使用登记的受理任务需要处理")).count() == 1
    screenshot(page, "05-inbox")
    page.get_by_role("row", name=re.compile(application_no)).get_by_role(
        "link", name="详情"
    ).click()
    page.get_by_role("link", name="审核附件").click()
    page.wait_for_url(re.compile(r"/audit"))
    progress = page.locator("#audit-progress")
    assert progress.inner_text() == "已审核 0 / 5，错误 0"

    cards = page.locator(".audit-card")
    order = [text.split("产品编号 ")[1].split()[0] for text in cards.all_inner_texts()]
    first_wrong, second_wrong = (order.index(no) for no in WRONG_NOTES)
    assert first_wrong < second_wrong

    def focused_card() -> int:
        return cards.evaluate_all("cards => cards.indexOf(document.activeElement)")

    assert focused_card() == 0
    # A photo opens full size, rotates; the pager's keys do nothing while it is open.
    cards.nth(0).locator("a.photo-link").first.click()
    lightbox = page.locator("#lightbox")
    lightbox.get_by_role("button", name="旋转").click()
    image = page.locator("#lightbox-image")
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    assert "rotate(90deg)" in image.get_attribute("style")
    # Turned or not, the photo and the viewer fit a 1366×768 screen.
    viewer = lightbox.locator(".modal-content").bounding_box()
    turned = image.bounding_box()
    assert viewer["y"] >= 0 and viewer["y"] + viewer["height"] <= DESKTOP["height"]
    assert (
        viewer["y"] < turned["y"]
        and turned["y"] + turned["height"] <= viewer["y"] + viewer["height"]
    )
    screenshot(page, "06b-audit-photo")
    page.keyboard.press("x")
    page.keyboard.press("n")
    page.keyboard.press("Escape")
    lightbox.wait_for(state="hidden")
    assert cards.nth(0).locator("input.verdict[value=correct]").is_checked()
    assert "/audit" in page.url and progress.inner_text() == "已审核 0 / 5，错误 0"
    cards.nth(0).focus()
    for _ in range(first_wrong):
        page.keyboard.press("j")
    assert focused_card() == first_wrong
    page.keyboard.press("x")  # 错误: the note field takes the focus
    note = cards.nth(first_wrong).locator("input.note")
    assert note.evaluate("el => el === document.activeElement")
    # 错误 without a note cannot be saved: N leaves the page where it is.
    page.keyboard.press("Escape")
    assert focused_card() == first_wrong
    page.keyboard.press("n")
    assert note.evaluate("el => !el.validity.valid")
    assert "/audit" in page.url and progress.inner_text() == "已审核 0 / 5，错误 0"
    note.focus()
    page.keyboard.type(WRONG_NOTES[order[first_wrong]])
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("k")  # down and back up
    assert focused_card() == first_wrong
    for _ in range(second_wrong - first_wrong):
        page.keyboard.press("j")
    page.keyboard.press("x")
    page.keyboard.type(WRONG_NOTES[order[second_wrong]])
    page.keyboard.press("Escape")
    screenshot(page, "06-audit-pager")
    page.keyboard.press("n")  # the only page: N is 完成
    page.wait_for_url(re.compile(r"/bureau/applications/\d+$"))
    body = page.locator("body").inner_text()
    assert "附件审核已完成" in body and "已审核 5 / 5，错误 2" in body
    bureau_url = page.url

    # ---- 退回补正: every item at once (the 错误 cylinders gathered, plus a line of text) ----
    page.get_by_role("link", name="退回补正").click()
    page.wait_for_url(re.compile(r"/correction$"))
    gathered = page.locator("input[name=gathered]")
    assert gathered.count() == 2 and all(box.is_checked() for box in gathered.all())
    for product_no, note_text in WRONG_NOTES.items():
        assert page.get_by_label(f"气瓶{product_no}：{note_text}").is_checked()
    page.get_by_label("其他需要补正的内容（每行一项）").fill(UNIT_ITEM)
    page.get_by_label(re.compile("补正应一次性告知")).check()
    page.get_by_role("button", name="确认退回补正").click()
    page.wait_for_url(re.compile(r"/bureau/applications/\d+$"))
    assert "待补正" in page.locator("#correction-open").inner_text()
    notice_link = page.get_by_role("link", name=re.compile("打印补正告知书"))
    notice = page.request.get(live_server(notice_link.get_attribute("href")))
    assert notice.ok and notice.body().startswith(b"%PDF")
    screenshot(page, "06c-correction-returned")
    logout(page)

    # ---- 使用单位经办人: the notice, a new photo, the unit information, 重新提交 -------------
    login(page, live_server, f"applicant-{DISTRICT}")
    page.goto(application_url)
    told = page.locator("#correction-notice").inner_text()
    assert UNIT_ITEM in told and all(note_text in told for note_text in WRONG_NOTES.values())
    page.get_by_role("row", name=re.compile(FIXED_PRODUCT_NO)).get_by_role(
        "link", name="照片"
    ).click()
    stamp = page.locator(".photo-card", has_text="钢印")
    stamp.get_by_label("替换为").set_input_files(
        {
            "name": f"{FIXED_PRODUCT_NO}_钢印_重拍.jpg",
            "mimeType": "image/jpeg",
            "buffer": demo_photo(FIXED_PRODUCT_NO + "R", AttachmentKind.STAMP),
        }
    )
    stamp.get_by_role("button", name="替换", exact=True).click()
    assert "照片已替换" in page.locator("body").inner_text()
    page.goto(application_url)
    page.locator(".card", has_text="单位基本信息").get_by_role("link", name="修改").click()
    page.get_by_label("安全管理部门").fill(FIXED_DEPARTMENT)
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/applications/\d+$"))
    screenshot(page, "06d-correction-applicant")
    page.get_by_role("button", name="补正后重新提交").click()
    assert "补正只有一次机会" in answer_confirmation(page)
    page.wait_for_url(re.compile(r"/progress$"))
    round_card = page.locator("#correction-round-1").inner_text()
    assert UNIT_ITEM in round_card and "重新提交：" in round_card and "期限暂停" in round_card
    assert page.get_by_role("link", name="下载（PDF）").count() == 1  # the 补正告知书
    logout(page)

    # ---- 受理人员: what changed, the changed cylinder audited again, 受理 ------------------------
    login(page, live_server, f"accept-{DISTRICT}")
    page.goto(live_server("/inbox"))
    row = page.get_by_role("row", name=re.compile(application_no))
    assert "已补正，重新提交于" in row.inner_text()
    row.get_by_role("link", name="详情").click()
    changes = page.locator("#correction-changes").inner_text()
    assert f"{FIXED_PRODUCT_NO}（照片已更换）" in changes
    assert "单位基本信息已修改：安全管理部门" in changes
    page.get_by_role("link", name="审核附件").click()
    page.wait_for_url(re.compile(r"/audit"))
    assert progress.inner_text() == "已审核 4 / 5，错误 1"  # unchanged verdicts are kept
    changed = page.locator(".audit-card", has_text="补正：照片已更换")
    assert changed.count() == 1 and FIXED_PRODUCT_NO in changed.inner_text()
    screenshot(page, "06e-correction-audit")
    page.get_by_role("button", name="完成", exact=True).click()
    page.wait_for_url(re.compile(r"/bureau/applications/\d+$"))
    assert page.url == bureau_url
    assert "已审核 5 / 5，错误 1" in page.locator("body").inner_text()
    page.get_by_role("button", name="受理").click()
    said = answer_confirmation(page)  # says what 受理 will do before it commits
    assert "4 只正确，将予登记；1 只错误，将被排除" in said
    page.wait_for_url(re.compile(r"/inbox"))
    assert f"申请 {application_no} 已受理" in page.locator("body").inner_text()
    logout(page)

    # ---- 审核人员 and 审批人员 ----------------------------------------------------------------
    for username, button in (
        (f"review-{DISTRICT}", "审核通过"),
        (f"approve-{DISTRICT}", "审批通过"),
    ):
        login(page, live_server, username)
        page.goto(live_server("/inbox"))
        row = page.get_by_role("row", name=re.compile(application_no))
        row.get_by_role("link", name="详情").click()
        page.get_by_role("button", name=button).click()
        page.wait_for_url(re.compile(r"/inbox"))
        assert application_no in page.locator(".alert-success").inner_text()
        logout(page)

    # ---- 受理人员: 证书生成 and 打印 -----------------------------------------------------------
    login(page, live_server, f"accept-{DISTRICT}")
    page.goto(application_url.replace("/applications/", "/bureau/applications/"))
    page.get_by_role("button", name="证书生成").click()
    page.wait_for_url(re.compile(r"/bureau/applications/\d+$"))
    card = page.locator(".card.border-success")
    certificate_no = re.search(r"使用登记证 (\S+)", card.inner_text()).group(1)
    assert re.fullmatch(r"瓶渝112\d{5}\(\d{2}\)", certificate_no)
    assert "4 只" in card.inner_text()
    # Jobs run inline: the PDF was rendered in the request's commit.
    assert page.locator("#certificate-state").get_attribute("data-state") == "ready"
    screenshot(page, "07-certificate-generated")

    with (
        context.expect_event(
            "response", lambda response: response.url.endswith("/certificates/print")
        ) as response_info,
        context.expect_page() as tab_info,
    ):
        page.get_by_role("button", name="打印").click()
    printed = response_info.value
    assert printed.status == 200
    assert printed.header_value("content-type") == "application/pdf"
    assert printed.header_value("content-disposition").startswith("inline")
    tab_info.value.close()
    # The tab shows Chromium's PDF viewer; the file itself is fetched with the same login.
    pdf = page.request.get(
        live_server(page.get_by_role("link", name="下载PDF").get_attribute("href"))
    )
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    page.reload()
    assert "已打印 1 次" in page.locator(".card.border-success").inner_text()
    page.goto(live_server("/certificates"))
    screenshot(page, "08-certificates")
    logout(page)

    # ---- 使用单位经办人: the certificate and the excluded cylinders ----------------------------
    login(page, live_server, f"applicant-{DISTRICT}")
    page.goto(application_url + "/progress")
    body = page.locator("body").inner_text()
    assert f"使用登记证编号 {certificate_no}" in body
    excluded = page.locator("table", has=page.get_by_role("columnheader", name="审核意见"))
    row_text = excluded.get_by_role("row", name=re.compile(STILL_WRONG)).inner_text()
    assert WRONG_NOTES[STILL_WRONG] in row_text
    assert excluded.locator("tbody tr").count() == 1  # the other was corrected (补正)
    assert "补正（第1次）" in body
    certified_step = page.locator("table").first.locator("tr", has_text="证书生成")
    assert f"accept-{DISTRICT}" in certified_step.inner_text(), "who generated it is named"
    screenshot(page, "09-progress")

    # ---- 市局监管人员: the dashboard's counts moved --------------------------------------------
    assert certified_in_district(supervisor, live_server) == certified_before + 1
    screenshot(supervisor, "14-dashboard")

    # ---- a phone at the cylinder: the public verification page --------------------------------
    phone, _phone_watch = open_context(viewport=PHONE, is_mobile=True, has_touch=True)
    mobile = phone.new_page()
    mobile.goto(live_server(f"/verify/{certificate_no}"))
    assert "有效" in mobile.locator(".alert-success").inner_text()
    assert certificate_no in mobile.locator("body").inner_text()
    assert mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(mobile, "10-verify-phone")

    # The public trace page (DESIGN 9): the phone finds the new cylinder by 制造单位 + 产品编号.
    found = mobile.goto(
        live_server(f"/trace?manufacturer={MANUFACTURER}&product_no={PRODUCT_NOS[0]}")
    )
    assert found is not None and found.ok
    assert certificate_no in mobile.locator("main").inner_text()
    assert mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(mobile, "13-trace-phone")
