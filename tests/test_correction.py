"""退回补正 (一次性告知): the notice, the applicant's fixes, the paused clock, the documents."""

import io
import re
from datetime import date, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from regbackoffice import calendar_import, workflow
from regbackoffice.clock import china_date, china_today
from regbackoffice.extensions import db
from regbackoffice.models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    Attachment,
    AttachmentKind,
    AuditLog,
    AuditVerdict,
    CorrectionRound,
    DocumentKind,
    LicensingDocument,
    Role,
    User,
    utcnow,
)
from regbackoffice.workdays import add_workdays, workdays_between

from . import factories
from .conftest import csrf_token_from, login, version_from
from .test_acceptance import click_through

DISTRICT = "500112"
WRONG_NOTE = "钢印照片与产品编号不一致"
EXTRA = "单位地址与营业执照不一致，请更正"


def accept(clerk, application):
    """受理 from the application's page, with the page's own token and version."""
    html = clerk.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    return clerk.post(
        f"/bureau/applications/{application.id}/accept",
        data={"csrf_token": csrf_token_from(html), "version": version_from(html)},
    )


@pytest.fixture
def application():
    return factories.make_submitted_application(factories.make_unit(DISTRICT), items=3)


@pytest.fixture
def clerk(app, application):
    """A logged-in acceptor's client (the applicant uses ``client``)."""
    acceptor = factories.make_user(Role.ACCEPTOR, district_code=DISTRICT)
    acceptor_client = app.test_client()
    assert login(acceptor_client, acceptor).status_code == 302
    return acceptor_client


@pytest.fixture
def applicant(client, application):
    user = db.session.get(User, application.created_by_id)
    assert login(client, user).status_code == 302
    return client


def items_of(application) -> list[ApplicationItem]:
    rows = db.session.scalars(
        select(ApplicationItem)
        .where(ApplicationItem.application_id == application.id)
        .order_by(ApplicationItem.row_no)
    ).all()
    for row in rows:
        db.session.refresh(row)
    return list(rows)


def return_for_correction(clerk, application, *, wrong_row=3, extra=EXTRA, audit=True):
    """Audit (the cylinder in ``wrong_row`` 错误), then 退回补正 with every gathered item."""
    if audit:
        click_through(clerk, application, wrong={wrong_row: WRONG_NOTE})
    url = f"/bureau/applications/{application.id}/correction"
    page = clerk.get(url)
    html = page.get_data(as_text=True)
    if page.status_code != 200:
        return page
    gathered = re.findall(r'name="gathered" value="(\d+)"', html)
    return clerk.post(
        url,
        data={
            "csrf_token": csrf_token_from(html),
            "version": version_from(html),
            "gathered": gathered,
            "extra": extra,
            "confirm": "y",
        },
    )


def resubmit(applicant, application):
    html = applicant.get(f"/applications/{application.id}").get_data(as_text=True)
    return applicant.post(
        f"/applications/{application.id}/submit",
        data={"csrf_token": csrf_token_from(html), "version": version_from(html)},
    )


def edit_item(applicant, application, item, **changes):
    url = f"/applications/{application.id}/items/{item.id}/edit"
    html = applicant.get(url).get_data(as_text=True)
    from regbackoffice import applications as domain

    # The factory's next inspection is past the period the rules allow: inspected lately.
    last = china_today() - timedelta(days=60)
    values = {
        **domain.item_form_values(item),
        "last_inspection_date": last.isoformat(),
        "next_inspection_month": f"{last.year + 3}-{last.month:02d}",
        # The factory's cylinders share one QR URL (一瓶一码 refuses that on an edit).
        "tag_value": f"https://trace.example.invalid/q/fixed-{item.id}",
        **changes,
    }
    return applicant.post(url, data={**values, "csrf_token": csrf_token_from(html)})


def jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (10, 160, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def pdf_text(data: bytes) -> str:
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    return re.sub(r"\s+", "", text)


def test_the_notice_gathers_the_wrong_cylinders_and_returns_keeping_everything(clerk, application):
    url = f"/bureau/applications/{application.id}/correction"
    click_through(clerk, application, wrong={3: WRONG_NOTE})
    wrong_item = items_of(application)[1]
    page = clerk.get(url).get_data(as_text=True)
    assert f"气瓶{wrong_item.product_no}：{WRONG_NOTE}" in page  # gathered for confirmation
    photos_before = db.session.scalar(
        select(db.func.count()).select_from(Attachment).join(ApplicationItem)
        .where(ApplicationItem.application_id == application.id)
    )  # fmt: skip

    response = return_for_correction(clerk, application, audit=False)

    assert response.status_code == 302
    db.session.refresh(application)
    assert application.status is ApplicationStatus.RETURNED
    items = items_of(application)
    assert len(items) == 3 and [i.audit_verdict for i in items] == [
        AuditVerdict.CORRECT,
        AuditVerdict.WRONG,
        AuditVerdict.CORRECT,
    ]
    assert all(i.live_identity_key == i.identity_key for i in items)  # still claimed
    assert photos_before == 6 and sum(i.attachment_count for i in items) == 6
    correction = db.session.scalar(select(CorrectionRound))
    assert correction.items == [f"气瓶{wrong_item.product_no}：{WRONG_NOTE}", EXTRA]
    notice = db.session.get(LicensingDocument, correction.document_id)
    assert notice.kind is DocumentKind.CORRECTION_NOTICE and notice.number.startswith("特设补字")
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "application_returned"))
    assert row.detail["correction_items"] == 2 and row.detail["document_no"] == notice.number
    # Nothing is waiting on the clerk now.
    clerk.get(f"/bureau/applications/{application.id}")  # shows (and clears) the flash
    inbox = clerk.get("/inbox?task=accept").get_data(as_text=True)
    assert application.number not in inbox


def test_a_notice_without_any_item_is_refused(clerk, application):
    click_through(clerk, application)  # every cylinder 正确: nothing gathered
    response = return_for_correction(clerk, application, audit=False, extra="  \n ")
    assert response.status_code == 302
    db.session.refresh(application)
    assert application.status is ApplicationStatus.SUBMITTED
    page = clerk.get(response.headers["Location"]).get_data(as_text=True)
    assert "请填写需要补正的内容" in page


def test_applicant_fixes_and_resubmits_changed_cylinders_go_back_to_unaudited(
    clerk, applicant, application
):
    return_for_correction(clerk, application)
    first, wrong, third = items_of(application)
    page = applicant.get(f"/applications/{application.id}").get_data(as_text=True)
    assert WRONG_NOTE in page and EXTRA in page and "补正后重新提交" in page

    # Fix the wrong cylinder's data, replace a photo of the third, remove none.
    response = edit_item(applicant, application, wrong, internal_no="NB-补正-1")
    assert response.status_code == 302, response.get_data(as_text=True)
    photo = db.session.scalars(select(Attachment).where(Attachment.item_id == third.id)).first()
    html = applicant.get(f"/applications/{application.id}/items/{third.id}/photos").get_data(
        as_text=True
    )
    response = applicant.post(
        f"/applications/{application.id}/photos/{photo.id}/replace",
        data={"csrf_token": csrf_token_from(html), "file": (io.BytesIO(jpeg()), "new.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302

    response = resubmit(applicant, application)
    assert response.status_code == 302
    db.session.refresh(application)
    assert application.status is ApplicationStatus.SUBMITTED
    first, wrong, third = items_of(application)
    assert first.audit_verdict is AuditVerdict.CORRECT  # unchanged: the verdict is kept
    assert wrong.audit_verdict is AuditVerdict.PENDING and wrong.correction_change == "data"
    assert third.audit_verdict is AuditVerdict.PENDING and third.correction_change == "photos"
    assert application.audit_completed_at is None  # the audit reopens for the changed ones

    detail = clerk.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    assert "补正后的变更" in detail
    assert f"{wrong.product_no}（数据已修改）" in detail
    assert f"{third.product_no}（照片已更换）" in detail
    audit_page = clerk.get(f"/bureau/applications/{application.id}/audit").get_data(as_text=True)
    assert "补正：数据已修改" in audit_page and "补正：照片已更换" in audit_page
    reader = clerk.get(f"/bureau/applications/{application.id}/audit/cylinders?offset=0")
    changed = {c["product_no"]: c["changed"] for c in reader.get_json()["items"]}
    assert changed == {first.product_no: [], wrong.product_no: ["数据已修改"],
                       third.product_no: ["照片已更换"]}  # fmt: skip
    # The clerk audits again and accepts.
    click_through(clerk, application)
    response = accept(clerk, application)
    db.session.refresh(application)
    assert application.status is ApplicationStatus.ACCEPTED


def test_removed_and_new_cylinders_and_unit_changes_are_shown_to_the_clerk(
    clerk, applicant, application
):
    return_for_correction(clerk, application)
    _first, wrong, _third = items_of(application)
    page = applicant.get(f"/applications/{application.id}").get_data(as_text=True)
    response = applicant.post(
        f"/applications/{application.id}/items/{wrong.id}/delete",
        data={"csrf_token": csrf_token_from(page)},
    )
    assert response.status_code == 302
    form_page = applicant.get(f"/applications/{application.id}/edit").get_data(as_text=True)
    values = dict(re.findall(r'name="(\w+)"[^>]*value="([^"]*)"', form_page))
    values["address"] = "重庆市渝北区补正路1号"
    values["district_code"] = application.district_code
    response = applicant.post(f"/applications/{application.id}/edit", data=values)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert resubmit(applicant, application).status_code == 302

    db.session.refresh(application)
    assert application.status is ApplicationStatus.SUBMITTED and application.item_count == 2
    # Nothing left 未审核: the audit stays complete and the clerk may accept at once.
    assert application.audit_completed_at is not None
    detail = clerk.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    assert f"已删除的气瓶 1 只：{wrong.product_no}" in detail
    assert "单位基本信息已修改：地址" in detail
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "application_resubmitted"))
    assert row.detail["removed_items"] == 1


def test_only_one_round_by_default_then_refused_with_a_clear_message(clerk, applicant, application):
    return_for_correction(clerk, application)
    assert resubmit(applicant, application).status_code == 302
    detail = clerk.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    assert "已达上限，不能再次退回补正" in detail
    response = return_for_correction(clerk, application, audit=False)
    assert response.status_code == 409
    # Forced through the form anyway (a stale page): the transition refuses it.
    html = clerk.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    response = clerk.post(
        f"/bureau/applications/{application.id}/correction",
        data={
            "csrf_token": csrf_token_from(html),
            "version": version_from(html),
            "extra": "再补一项",
            "confirm": "y",
        },
    )
    assert response.status_code == 302
    page = clerk.get(response.headers["Location"]).get_data(as_text=True)
    assert "已达上限（1次）" in page and "一次性告知" in page
    db.session.refresh(application)
    assert application.status is ApplicationStatus.SUBMITTED


def test_more_rounds_when_configured(app, clerk, applicant, application):
    app.config["MAX_CORRECTION_ROUNDS"] = 2
    try:
        return_for_correction(clerk, application)
        resubmit(applicant, application)
        response = return_for_correction(clerk, application, audit=False, extra="第二次补正")
        assert response.status_code == 302
        db.session.refresh(application)
        assert application.status is ApplicationStatus.RETURNED
    finally:
        app.config["MAX_CORRECTION_ROUNDS"] = 1


def test_the_clock_stands_still_while_returned_and_runs_on_after_resubmission(
    clerk, applicant, application
):
    return_for_correction(clerk, application)
    correction = db.session.scalar(select(CorrectionRound))
    # The notice went out 6 calendar days ago with 3 working days left.
    correction.requested_at = utcnow() - timedelta(days=6)
    correction.remaining_workdays = 3
    db.session.commit()
    far = china_today() + timedelta(days=30)
    assert not workflow.is_overdue(application, far)
    overdue = db.session.scalars(select(Application.id).where(workflow.overdue_clause(far))).all()
    assert application.id not in overdue  # the dashboard's overdue counts skip it too
    home = applicant.get("/").get_data(as_text=True)
    assert "您有1条使用登记的补正任务需要处理" in home  # the applicant's task

    assert resubmit(applicant, application).status_code == 302

    db.session.refresh(application)
    db.session.refresh(correction)
    today = china_today()
    paused = workdays_between(china_date(correction.requested_at), today)
    assert paused >= 3  # six calendar days hold at least three working days
    assert correction.paused_workdays == paused and application.paused_workdays == paused
    assert application.accept_due_on == add_workdays(today, 3)
    assert application.accept_paused_seconds >= 6 * 86400 - 60
    inbox = clerk.get("/inbox?task=accept").get_data(as_text=True)
    assert application.number in inbox and str(application.accept_due_on) in inbox
    assert "已补正，重新提交于" in inbox


def test_an_overdue_step_stays_due_at_once_after_resubmission(clerk, applicant, application):
    return_for_correction(clerk, application)
    correction = db.session.scalar(select(CorrectionRound))
    correction.remaining_workdays = -2
    db.session.commit()
    resubmit(applicant, application)
    db.session.refresh(application)
    assert application.accept_due_on == china_today()


def test_the_medians_leave_out_the_paused_time(clerk, applicant, application):
    from regbackoffice.models import StepDurationStat
    from regbackoffice.stats.summaries import rebuild_summaries

    return_for_correction(clerk, application)
    resubmit(applicant, application)
    db.session.refresh(application)
    # Submitted 10 days ago, paused 7 days: 受理 took 3 days of the bureau's time.
    application.submitted_at = utcnow() - timedelta(days=10)
    application.accepted_at = utcnow()
    application.accepted_by_id = application.created_by_id
    application.accept_paused_seconds = 7 * 86400
    application.status = ApplicationStatus.ACCEPTED
    db.session.flush()
    rebuild_summaries()
    seconds = db.session.scalar(
        select(StepDurationStat.seconds).where(StepDurationStat.step == "accept")
    )
    assert abs(seconds - 3 * 86400) < 5


def test_inbox_warns_two_working_days_before_deemed_acceptance(clerk):
    unit = factories.make_unit(DISTRICT)
    today = china_today()
    # Submitted so that the 5th working day after submission is within two working days.
    start = today - timedelta(days=1)
    while workdays_between(start, today) < 4:
        start -= timedelta(days=1)
    soon = factories.make_submitted_application(unit, items=1, submitted_at=factories_utc(start))
    fresh = factories.make_submitted_application(unit, items=1)
    db.session.commit()
    inbox = clerk.get("/inbox?task=accept").get_data(as_text=True)
    row = inbox.split(soon.number, 1)[1].split("</tr>", 1)[0]
    assert "补正告知期限将至" in row and "视为受理" in row
    fresh_row = inbox.split(fresh.number, 1)[1].split("</tr>", 1)[0]
    assert "补正告知期限" not in fresh_row


def factories_utc(day):
    """Noon in China on ``day``, as the UTC timestamp stored."""
    from datetime import UTC, datetime, time

    from regbackoffice.clock import CHINA_TZ

    return datetime.combine(day, time(12), CHINA_TZ).astimezone(UTC)


def test_progress_page_shows_the_round_and_the_documents_to_download(clerk, applicant, application):
    return_for_correction(clerk, application)
    page = applicant.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert "补正（第1次）" in page and EXTRA in page and "期限暂停计算中" in page
    notice = db.session.scalar(select(LicensingDocument))
    assert f"补正告知书（{notice.number}" in page
    resubmit(applicant, application)
    page = applicant.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert "重新提交：" in page and "期限暂停" in page and "已补正并重新提交" in page
    # The applicant downloads the 补正告知书 with every item.
    response = applicant.get(f"/documents/{notice.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = pdf_text(response.data)
    wrong = items_of(application)[1]
    for expected in (
        "补正告知书",
        notice.number,
        application.district.authority,
        application.unit_name,
        f"气瓶{wrong.product_no}",
        WRONG_NOTE,
        "单位地址与营业执照不一致",
        "一次性告知",
        "（盖章）",
    ):
        assert re.sub(r"\s+", "", expected) in text, expected


def test_acceptance_notice_is_issued_at_accept_and_printed_by_the_clerk(clerk, application):
    click_through(clerk, application, wrong={3: WRONG_NOTE})
    accept(clerk, application)
    notice = db.session.scalar(select(LicensingDocument))
    assert notice.kind is DocumentKind.ACCEPTANCE_NOTICE
    detail = clerk.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    assert f"打印受理通知书（{notice.number}）" in detail
    response = clerk.get(f"/documents/{notice.id}.pdf?print=1")
    assert response.headers["Content-Disposition"].startswith("inline")
    text = pdf_text(response.data)
    assert "受理通知书" in text and "决定予以受理" in text and notice.number in text
    assert WRONG_NOTE in text and "不予登记" in text  # the excluded cylinder is named


@pytest.mark.parametrize(
    ("step", "title"), [("accept", "不予受理决定书"), ("review", "驳回决定书")]
)
def test_void_issues_the_decision_with_the_right_to_review_or_sue(app, step, title):
    if step == "accept":
        application = factories.make_submitted_application(factories.make_unit(DISTRICT))
        role = Role.ACCEPTOR
    else:
        application = factories.make_accepted_application(factories.make_unit(DISTRICT))
        role = Role.REVIEWER
    user = factories.make_user(role, district_code=DISTRICT)
    clerk = app.test_client()
    login(clerk, user)
    url = f"/bureau/applications/{application.id}/void"
    html = clerk.get(url).get_data(as_text=True)
    clerk.post(
        url,
        data={
            "csrf_token": csrf_token_from(html),
            "version": version_from(html),
            "reason": "申请单位不具备使用登记条件",
            "confirm": "y",
        },
    )
    db.session.refresh(application)
    assert application.status is ApplicationStatus.VOIDED
    decision = db.session.scalars(
        select(LicensingDocument).order_by(LicensingDocument.id.desc())
    ).first()
    assert decision.kind.label == title
    text = pdf_text(clerk.get(f"/documents/{decision.id}.pdf").data)
    assert title in text and "申请单位不具备使用登记条件" in text
    assert "六十日内" in text and "行政复议" in text and "六个月内" in text and "行政诉讼" in text


def test_verify_answers_for_document_numbers(client, clerk, application):
    return_for_correction(clerk, application)
    notice = db.session.scalar(select(LicensingDocument))
    page = client.get(f"/verify/{notice.number}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "补正告知书" in html and notice.number in html and application.number in html
    assert client.get("/verify/特设补字〔2026〕112-999999号").status_code == 404


def test_other_districts_cannot_read_the_documents(app, clerk, application):
    return_for_correction(clerk, application)
    notice = db.session.scalar(select(LicensingDocument))
    outsider = app.test_client()
    login(outsider, factories.make_user(Role.ACCEPTOR, district_code="500103"))
    assert outsider.get(f"/documents/{notice.id}.pdf").status_code == 404


def test_review_may_return_for_correction_only_when_configured(app):
    application = factories.make_accepted_application(factories.make_unit(DISTRICT))
    for item in items_of(application):
        factories.make_photo(item, AttachmentKind.STAMP)
        factories.make_photo(item, AttachmentKind.SUPERVISION_CERTIFICATE)
    db.session.commit()
    reviewer = factories.make_user(Role.REVIEWER, district_code=DISTRICT)
    reviewer_client = app.test_client()
    login(reviewer_client, reviewer)
    url = f"/bureau/applications/{application.id}/correction"
    assert reviewer_client.get(url).status_code == 409
    app.config["CORRECTION_AT_REVIEW"] = True
    try:
        response = return_for_correction(reviewer_client, application, audit=False)
        assert response.status_code == 302
        db.session.refresh(application)
        assert application.status is ApplicationStatus.RETURNED
        # Only the unit information may change in a round returned from 审核.
        applicant = app.test_client()
        login(applicant, db.session.get(User, application.created_by_id))
        item = items_of(application)[0]
        response = edit_item(applicant, application, item, internal_no="X-1")
        assert "审核环节退回补正" in response.get_data(as_text=True)
        assert resubmit(applicant, application).status_code == 302
        db.session.refresh(application)
        assert application.status is ApplicationStatus.ACCEPTED
        assert application.decision_paused_seconds >= 0 and application.resubmitted_at
    finally:
        app.config["CORRECTION_AT_REVIEW"] = False


def test_cylinders_imported_while_returned_are_new_to_the_clerk(clerk, applicant, application):
    from .conftest import post_import
    from .xlsx_helpers import good_row, workbook_bytes

    return_for_correction(clerk, application)
    response = post_import(applicant, application, workbook_bytes([good_row("BZ-NEW-1")]))
    assert response.status_code == 302
    new = db.session.scalar(select(ApplicationItem).where(ApplicationItem.product_no == "BZ-NEW-1"))
    assert new is not None and new.correction_change == "new"
    # A second one imported and removed again is neither new nor removed for the clerk.
    post_import(applicant, application, workbook_bytes([good_row("BZ-NEW-2")]))
    second = db.session.scalar(
        select(ApplicationItem).where(ApplicationItem.product_no == "BZ-NEW-2")
    )
    page = applicant.get(f"/applications/{application.id}").get_data(as_text=True)
    applicant.post(
        f"/applications/{application.id}/items/{second.id}/delete",
        data={"csrf_token": csrf_token_from(page)},
    )
    for kind in AttachmentKind:
        factories.make_photo(new, kind)
    db.session.commit()
    assert resubmit(applicant, application).status_code == 302
    db.session.refresh(application)
    assert application.status is ApplicationStatus.SUBMITTED and application.item_count == 4
    assert application.audit_completed_at is None  # the new cylinder waits for its audit
    detail = clerk.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    changes = detail.split('id="correction-changes"', 1)[1].split("</div></div>", 1)[0]
    assert "新增的气瓶 1 只：BZ-NEW-1" in changes and "BZ-NEW-2" not in changes


def test_a_returned_application_cannot_be_deleted_or_moved_to_another_district(
    clerk, applicant, application
):
    return_for_correction(clerk, application)
    page = applicant.get(f"/applications/{application.id}").get_data(as_text=True)
    assert "删除草稿" not in page
    response = applicant.post(
        f"/applications/{application.id}/delete", data={"csrf_token": csrf_token_from(page)}
    )
    assert response.status_code == 302
    db.session.refresh(application)
    assert application.status is ApplicationStatus.RETURNED
    form_page = applicant.get(f"/applications/{application.id}/edit").get_data(as_text=True)
    values = dict(re.findall(r'name="(\w+)"[^>]*value="([^"]*)"', form_page))
    response = applicant.post(
        f"/applications/{application.id}/edit", data={**values, "district_code": "500105"}
    )
    page = applicant.get(response.headers["Location"]).get_data(as_text=True)
    assert "补正时不能更换受理区县" in page
    db.session.refresh(application)
    assert application.district_code == DISTRICT


def a_round_in_2027(submitted: date, returned: date, resubmitted: date):
    """A one-cylinder application submitted, returned for 补正 and resubmitted on those days."""
    application = factories.make_submitted_application(
        factories.make_unit(DISTRICT), items=1, submitted_at=factories_utc(submitted)
    )
    acceptor = factories.make_user(Role.ACCEPTOR, district_code=DISTRICT)
    correction = workflow.request_correction(
        application, acceptor, ["请补充监检证书"], application.version_id, max_rounds=1
    )
    correction.requested_at = factories_utc(returned)
    applicant = db.session.get(User, application.created_by_id)
    workflow.resubmit(application, applicant, application.version_id)
    correction.resubmitted_at = application.resubmitted_at = factories_utc(resubmitted)
    return application, correction


def test_a_calendar_change_recomputes_the_deadline_with_the_paused_days(app):
    application, _correction = a_round_in_2027(
        date(2027, 1, 4), date(2027, 1, 5), date(2027, 1, 12)
    )
    application.accept_due_on = date(2027, 1, 1)  # anything: the recomputation decides
    db.session.flush()

    calendar_import.recompute_open_deadlines(2027, None)

    paused = workdays_between(date(2027, 1, 5), date(2027, 1, 12))
    assert paused == 5
    assert application.accept_due_on == add_workdays(date(2027, 1, 4), 5 + paused)


def test_a_notice_keeps_the_addressee_it_was_issued_to(clerk, applicant, application):
    issued_to = application.unit_name
    return_for_correction(clerk, application)
    form_page = applicant.get(f"/applications/{application.id}/edit").get_data(as_text=True)
    values = dict(re.findall(r'name="(\w+)"[^>]*value="([^"]*)"', form_page))
    values["unit_name"] = "补正后更名的燃气有限公司"
    values["district_code"] = application.district_code
    assert applicant.post(f"/applications/{application.id}/edit", data=values).status_code == 302
    notice = db.session.scalar(select(LicensingDocument))
    text = pdf_text(applicant.get(f"/documents/{notice.id}.pdf").data)
    assert issued_to in text and "补正后更名" not in text


def test_a_double_click_on_the_notice_returns_it_once(clerk, application):
    click_through(clerk, application, wrong={3: WRONG_NOTE})
    url = f"/bureau/applications/{application.id}/correction"
    html = clerk.get(url).get_data(as_text=True)
    data = {
        "csrf_token": csrf_token_from(html),
        "version": version_from(html),
        "extra": EXTRA,
        "confirm": "y",
    }
    assert clerk.post(url, data=data).status_code == 302
    again = clerk.post(url, data=data)
    assert again.status_code == 302
    page = clerk.get(again.headers["Location"]).get_data(as_text=True)
    assert "重复提交，未再次办理" in page
    assert len(db.session.scalars(select(CorrectionRound)).all()) == 1


def test_an_issued_notice_reads_the_same_after_settings_unit_and_bureau_names_change(
    app, clerk, application, monkeypatch
):
    click_through(clerk, application, wrong={3: WRONG_NOTE})
    accept(clerk, application)
    notice = db.session.scalar(select(LicensingDocument))
    issued = clerk.get(f"/documents/{notice.id}.pdf").data
    limit = app.config["DECISION_LIMIT_WORKDAYS"]
    authority = application.district.authority
    assert f"{limit}个工作日内" in pdf_text(issued)
    # Later: another time limit, the bureau and the unit renamed, another public address.
    monkeypatch.setitem(app.config, "DECISION_LIMIT_WORKDAYS", limit + 5)
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://elsewhere.example.invalid")
    db.session.refresh(application)
    application.district.authority = "重庆市某区市场监督管理局（机构改革后）"
    application.unit_name = "更名后的燃气有限公司"
    db.session.commit()

    text = pdf_text(clerk.get(f"/documents/{notice.id}.pdf").data)
    assert text == pdf_text(issued)
    assert f"{limit}个工作日内" in text and f"{limit + 5}个工作日" not in text
    assert re.sub(r"\s+", "", authority) in text and "机构改革后" not in text
    assert "更名后的" not in text


def test_a_holiday_schedule_change_recounts_the_paused_days_shown_on_the_progress_page(client):
    application, correction = a_round_in_2027(date(2027, 2, 1), date(2027, 2, 3), date(2027, 2, 12))
    # As resubmission counted it, with the estimated 2027 (春节 off).
    estimated = workdays_between(date(2027, 2, 3), date(2027, 2, 12))
    correction.paused_workdays = application.paused_workdays = estimated
    db.session.commit()
    assert estimated < 7

    # The State Council's schedule (invented): 春节 falls outside the pause this time.
    admin = factories.make_user(Role.ADMIN, district_code=None)
    calendar_import.import_schedule(2027, "2027-01-01,holiday,元旦\n", admin)
    db.session.commit()

    db.session.refresh(correction)
    db.session.refresh(application)
    assert correction.paused_workdays == application.paused_workdays == 7  # 02-04 … 02-12
    assert login(client, db.session.get(User, application.created_by_id)).status_code == 302
    page = client.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert "补正期间期限暂停 <strong>7</strong> 个工作日" in page


def withdraw(applicant, application, reason="单位不再使用这批气瓶", version=None):
    html = applicant.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    return applicant.post(
        f"/applications/{application.id}/withdraw",
        data={
            "csrf_token": csrf_token_from(html),
            "version": version if version is not None else version_from(html),
            "reason": reason,
        },
    )


def test_the_applicant_withdraws_a_returned_application_and_its_cylinders_are_freed(
    clerk, applicant, application
):
    from regbackoffice.models import AuditLog

    return_for_correction(clerk, application)
    progress = applicant.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert "至今已待补正 0 天（0 个工作日）" in progress and "撤回申请" in progress
    show = applicant.get(f"/applications/{application.id}").get_data(as_text=True)
    assert "至今已待补正 0 天" in show and "撤回申请" in show
    bureau = clerk.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    assert "至今已待补正 0 天（0 个工作日）" in bureau

    response = withdraw(applicant, application)
    assert response.status_code == 302
    db.session.refresh(application)
    assert application.status is ApplicationStatus.VOIDED and application.withdrawn_at
    assert application.void_reason == "申请人撤回申请：单位不再使用这批气瓶"
    assert {i.live_identity_key for i in items_of(application)} == {None}
    assert {i.live_tag_key for i in items_of(application)} == {None}
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "application_withdrawn"))
    assert row.object_id == str(application.id) and row.detail["round"] == 1
    assert row.detail["returned_workdays"] == 0
    progress = applicant.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert "已由您在待补正期间撤回" in progress and "已撤回" in progress
    assert "撤回申请" in progress and "复制为新申请" in progress  # the step row; the way on
    assert "期限暂停计算中" not in progress
    bureau = clerk.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    assert "申请人已在待补正期间撤回申请" in bureau
    listing = applicant.get("/applications/").get_data(as_text=True)
    assert "已撤回" in listing
    # A double click says so; nothing happens twice.
    again = withdraw(applicant, application, version=application.version_id - 1)
    assert "重复提交，未再次办理" in applicant.get(again.headers["Location"]).get_data(as_text=True)
    assert (
        len(
            db.session.scalars(
                select(AuditLog).where(AuditLog.action == "application_withdrawn")
            ).all()
        )
        == 1
    )


def test_the_freed_cylinders_can_be_applied_for_again_after_withdrawal(
    clerk, applicant, application
):
    return_for_correction(clerk, application)
    withdraw(applicant, application, reason="")  # the word of why may be left out
    db.session.refresh(application)
    assert application.void_reason == "申请人撤回申请"
    progress = applicant.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert "None" not in progress
    # The same cylinders in a new application: claimed again without a conflict.
    again = factories.make_application(
        application.unit, created_by=db.session.get(User, application.created_by_id)
    )
    for item in items_of(application):
        copy = factories.make_item(
            again,
            product_no=item.product_no,
            manufacturer=item.manufacturer,
            manufacture_month=item.manufacture_month,
        )
        assert copy.live_identity_key == item.identity_key
    db.session.commit()


def test_only_a_returned_application_can_be_withdrawn(clerk, applicant, application):
    # 待受理: the bureau's now; not offered, and refused when posted anyway.
    page = applicant.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert "撤回申请" not in page
    response = withdraw(applicant, application, version=application.version_id)
    assert response.status_code == 409
    assert "只有“待补正”状态才能执行此操作" in response.get_data(as_text=True)
    db.session.refresh(application)
    assert application.status is ApplicationStatus.SUBMITTED and application.withdrawn_at is None


def test_how_long_an_application_has_been_returned_is_shown_to_both_sides(
    clerk, applicant, application
):
    return_for_correction(clerk, application)
    correction = db.session.scalar(select(CorrectionRound))
    correction.requested_at -= timedelta(days=10)
    db.session.commit()
    start, today = china_date(correction.requested_at), china_today()
    words = f"至今已待补正 10 天（{workdays_between(start, today)} 个工作日）"
    for client_, url in (
        (applicant, f"/applications/{application.id}/progress"),
        (applicant, f"/applications/{application.id}"),
        (clerk, f"/bureau/applications/{application.id}"),
    ):
        assert words in client_.get(url).get_data(as_text=True), url


def test_a_mark_made_before_the_correction_is_refused_and_called_a_reset_not_another_clerk(
    clerk, applicant, application
):
    """Even a cylinder still 未审核 gets a new revision when the applicant changes it, so a
    mark the clerk's browser kept from before the notice cannot land on what came back."""
    return_for_correction(clerk, application, audit=False)  # nothing audited: all 未审核
    first = items_of(application)[0]
    before = first.audit_revision
    assert first.audit_verdict is AuditVerdict.PENDING
    assert edit_item(applicant, application, first, internal_no="NB-补正-2").status_code == 302
    resubmit(applicant, application)
    first = items_of(application)[0]
    assert first.audit_revision == before + 1 and first.audit_verdict is AuditVerdict.PENDING
    page = clerk.get(f"/bureau/applications/{application.id}/audit").get_data(as_text=True)
    assert (
        f'data-product="{first.product_no}" data-verdict="pending" data-correction="data"' in page
    )
    # The reader resends a kept mark with the revision it was made on.
    response = clerk.post(
        f"/bureau/applications/{application.id}/audit/verdict",
        data={
            "csrf_token": csrf_token_from(page),
            "item": first.id,
            f"verdict-{first.id}": "wrong",
            f"note-{first.id}": "补正前的标记",
            f"rev-{first.id}": before,
        },
    )
    answer = response.get_json()
    assert answer["conflict"] and answer["verdict"] == "pending"
    assert answer["changed"] == ["数据已修改"]
    assert items_of(application)[0].audit_verdict is AuditVerdict.PENDING


def test_a_notice_issued_before_snapshots_is_frozen_the_first_time_it_is_opened(
    app, clerk, application, monkeypatch
):
    click_through(clerk, application)
    accept(clerk, application)
    notice = db.session.scalar(select(LicensingDocument))
    notice.printed = None  # as a row issued before revision 0022
    db.session.commit()
    limit = app.config["DECISION_LIMIT_WORKDAYS"]
    first = pdf_text(clerk.get(f"/documents/{notice.id}.pdf").data)
    assert f"{limit}个工作日内" in first
    db.session.refresh(notice)
    assert notice.printed and notice.printed["number"] == notice.number
    monkeypatch.setitem(app.config, "DECISION_LIMIT_WORKDAYS", limit + 5)
    assert pdf_text(clerk.get(f"/documents/{notice.id}.pdf").data) == first
