"""The applicant's pages: scoping, photos, submission, items, progress and copying."""

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from regbackoffice import applications, photos, storage, workflow
from regbackoffice.clock import china_today
from regbackoffice.extensions import db
from regbackoffice.models import (
    ApplicationItem,
    ApplicationStatus,
    Attachment,
    AttachmentKind,
    AuditLog,
    AuditVerdict,
    Role,
    User,
)

from . import factories
from .conftest import post_form
from .test_images import jpeg_bytes


def _add_photos(item, actor, kinds=(AttachmentKind.STAMP, AttachmentKind.SUPERVISION_CERTIFICATE)):
    for kind in kinds:
        photos.add_photo(item, kind, jpeg_bytes(), filename="p.jpg", actor=actor)


@pytest.fixture
def foreign():
    """Another unit's application (same district) with one item and a photo."""
    unit = factories.make_unit("500112")
    owner = factories.make_user(Role.APPLICANT, unit=unit)
    application = factories.make_application(unit, created_by=owner)
    item = factories.make_item(application)
    _add_photos(item, owner, kinds=(AttachmentKind.STAMP,))
    attachment = db.session.scalar(select(Attachment).where(Attachment.item_id == item.id))
    return application, item, attachment


def test_applicant_of_unit_a_gets_404_on_unit_b_applications_and_photos(client, login_as, foreign):
    application, item, attachment = foreign
    login_as(Role.APPLICANT)
    base = f"/applications/{application.id}"
    for url in (
        base,
        f"{base}/progress",
        f"{base}/edit",
        f"{base}/photos/bulk",
        f"{base}/items/{item.id}/photos",
        f"{base}/items/{item.id}/edit",
        f"/files/attachments/{attachment.id}/full",
        f"/files/attachments/{attachment.id}/thumb",
    ):
        assert client.get(url).status_code == 404, url
    for url in (f"{base}/submit", f"{base}/delete", f"{base}/items/{item.id}/delete"):
        assert post_form(client, url, page="/applications/").status_code == 404, url
    assert client.get("/applications/").get_data(as_text=True).count(application.number) == 0
    refusals = db.session.scalars(select(AuditLog).where(AuditLog.action == "access_denied")).all()
    assert len(refusals) >= 10


def test_other_applications_item_through_own_url_is_404(client, login_as, foreign):
    _, foreign_item, _ = foreign
    applicant = login_as(Role.APPLICANT)
    own = factories.make_application(applicant.unit, created_by=applicant)
    assert client.get(f"/applications/{own.id}/items/{foreign_item.id}/photos").status_code == 404


def test_district_clerk_cannot_use_the_applicant_pages(client, login_as):
    login_as(Role.ACCEPTOR)
    assert client.get("/applications/").status_code == 403


def test_photos_are_served_only_through_the_access_checked_view(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    item = factories.make_item(application)
    url = f"/applications/{application.id}/items/{item.id}/photos"
    response = post_form(
        client,
        url,
        {"kind": "stamp", "file": (io.BytesIO(jpeg_bytes((900, 600), orientation=6)), "a.jpg")},
        page=url,
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    attachment = db.session.scalar(select(Attachment).where(Attachment.item_id == item.id))
    assert attachment.width == 600 and attachment.height == 900  # EXIF orientation applied
    full = client.get(f"/files/attachments/{attachment.id}/full")
    assert full.status_code == 200 and full.mimetype == "image/jpeg"
    assert full.headers["Cache-Control"] == "private, no-cache"  # revalidated (ETag)
    thumb = client.get(f"/files/attachments/{attachment.id}/thumb")
    assert thumb.status_code == 200
    assert attachment.storage_key not in client.get(url).get_data(as_text=True)
    db.session.refresh(item)
    assert item.attachment_count == 1


def test_fifth_photo_is_refused(login_as, client):
    applicant = factories.make_user(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    item = factories.make_item(application)
    _add_photos(item, applicant, kinds=[AttachmentKind.STAMP] * 4)
    with pytest.raises(photos.PhotoError, match="已有4张照片"):
        _add_photos(item, applicant, kinds=[AttachmentKind.STAMP])


def test_submission_refused_with_missing_photos_naming_the_cylinders(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    complete = factories.make_item(application, product_no="FULL-1")
    only_stamp = factories.make_item(application, product_no="HALF-1")
    factories.make_item(application, product_no="NONE-1")
    _add_photos(complete, applicant)
    _add_photos(only_stamp, applicant, kinds=(AttachmentKind.STAMP, AttachmentKind.STAMP))
    response = post_form(
        client,
        f"/applications/{application.id}/submit",
        {"version": application.version_id},
        page="/applications/",
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "不能提交" in page
    assert "HALF-1（缺监检证书照片）" in page
    assert "NONE-1（照片0张，至少2张" in page
    assert "FULL-1" not in page.split("不能提交")[1].split("</div>")[0]
    db.session.refresh(application)
    assert application.status is ApplicationStatus.DRAFT


def test_submission_refused_with_incomplete_unit_information(login_as):
    applicant = factories.make_user(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    _add_photos(factories.make_item(application), applicant)
    application.contact_phone = ""
    application.credit_code = "91500112MA00000000"
    with pytest.raises(applications.ApplicationError) as refused:
        applications.submit_application(application, applicant, 5, application.version_id)
    assert "单位基本信息：联系电话未填写" in str(refused.value)
    assert "统一社会信用代码" in str(refused.value)


def test_complete_application_is_submitted_and_then_frozen(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    item = factories.make_item(application)
    _add_photos(item, applicant)
    response = post_form(
        client,
        f"/applications/{application.id}/submit",
        {"version": application.version_id},
        page="/applications/",
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/progress")
    db.session.refresh(application)
    assert application.status is ApplicationStatus.SUBMITTED and application.submitted_at
    from regbackoffice.clock import china_date
    from regbackoffice.workdays import add_workdays

    assert application.accept_due_on == add_workdays(china_date(application.submitted_at), 5)
    progress = client.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert "待受理" in progress and "提交申请" in progress and "已提交" in progress
    # Nothing can change any more.
    with pytest.raises(photos.PhotoError):
        _add_photos(item, applicant, kinds=(AttachmentKind.STAMP,))
    with pytest.raises(applications.ApplicationError):
        applications.delete_item(item, applicant)


def test_items_search_and_attachment_filter(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    with_photos = factories.make_item(application, product_no="SEARCH-A1")
    factories.make_item(application, product_no="SEARCH-B2")
    _add_photos(with_photos, applicant)
    base = f"/applications/{application.id}"

    def listed(query):
        page = client.get(f"{base}?{query}").get_data(as_text=True)
        return [p for p in ("SEARCH-A1", "SEARCH-B2") if f"<td>{p}</td>" in page]

    assert listed("q=B2") == ["SEARCH-B2"]
    assert listed("photos=no") == ["SEARCH-B2"]
    assert listed("photos=yes") == ["SEARCH-A1"]
    assert listed("") == ["SEARCH-A1", "SEARCH-B2"]


def test_attachment_filter_follows_what_submission_needs_and_every_gap_is_listed(client, login_as):
    """complete = 2–4 photos with a 钢印 and a 监检证书; the submit block lists all the rest."""
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    complete = factories.make_item(application, product_no="FULL-1")
    _add_photos(complete, applicant)
    stamps_only = factories.make_item(application, product_no="TWO-STAMPS")
    _add_photos(stamps_only, applicant, kinds=(AttachmentKind.STAMP, AttachmentKind.STAMP))
    lacking = [factories.make_item(application, product_no=f"NONE-{n}") for n in range(7)]
    base = f"/applications/{application.id}"

    def listed(query):
        page = client.get(f"{base}?{query}").get_data(as_text=True)
        return sorted(
            p
            for p in ["FULL-1", "TWO-STAMPS"] + [i.product_no for i in lacking]
            if f"<td>{p}</td>" in page
        )

    assert listed("photos=complete") == ["FULL-1"]
    assert listed("photos=incomplete") == sorted(["TWO-STAMPS"] + [i.product_no for i in lacking])
    assert listed("photos=yes") == ["FULL-1", "TWO-STAMPS"]  # uploaded, but not enough
    page = client.get(base).get_data(as_text=True)
    block = page[page.index('id="incomplete-photos"') :]
    assert f'href="{base}?photos=incomplete"' in block and "只看照片不齐全的8只气瓶" in block
    for item in [stamps_only, *lacking]:  # all eight, not the first five
        assert f'/items/{item.id}/photos">{item.product_no}</a>' in block
    assert "TWO-STAMPS</a>：缺监检证书照片" in block
    assert "FULL-1</a>" not in block


def test_bureau_detail_filters_by_complete_photos(client, login_as):
    application = factories.make_submitted_application(factories.make_unit("500112"), items=2)
    gap = factories.make_item(application, product_no="GAP-1")
    login_as(Role.ACCEPTOR, district_code="500112")
    page = client.get(f"/bureau/applications/{application.id}?photos=incomplete")
    html = page.get_data(as_text=True)
    assert "<td>GAP-1</td>" in html and html.count("data-photo-group") == 1
    html = client.get(f"/bureau/applications/{application.id}?photos=complete").get_data(
        as_text=True
    )
    assert "<td>GAP-1</td>" not in html and html.count("data-photo-group") == 2
    assert gap.attachment_count == 0


def test_item_edit_uses_the_import_rules_and_delete_removes_it(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    item = factories.make_item(application, product_no="EDIT-1")
    url = f"/applications/{application.id}/items/{item.id}/edit"
    made = china_today().replace(day=1) - timedelta(days=200)  # never inspected yet
    form = {
        "variety": "2310",
        "product_no": "EDIT-2",
        "medium": "G1",
        "manufacturer": "新制造厂",
        "manufacture_month": made.strftime("%Y-%m"),
        "pressure": "15",
        "volume": "40",
        "last_inspection_date": "",
        # Oxygen: the first inspection within 3 years of manufacture (TSG 23).
        "next_inspection_month": f"{made.year + 3}-{made.month:02d}",
        "internal_no": "",
        "tag_type": "",
        "tag_value": "",
    }
    bad = post_form(client, url, {**form, "volume": "-3"}, page=url)
    assert bad.status_code == 400 and "超出合理范围" in bad.get_data(as_text=True)
    too_late = f"{made.year + 4}-{made.month:02d}"
    late = post_form(client, url, {**form, "next_inspection_month": too_late}, page=url)
    assert late.status_code == 400 and "定期检验周期为3年" in late.get_data(as_text=True)
    assert post_form(client, url, form, page=url).status_code == 302
    db.session.refresh(item)
    assert item.product_no == "EDIT-2" and item.live_identity_key == item.identity_key
    item_id = item.id
    delete = post_form(client, f"/applications/{application.id}/items/{item.id}/delete", page=url)
    assert delete.status_code == 302
    db.session.expire_all()
    assert db.session.get(ApplicationItem, item_id) is None
    assert application.item_count == 0


def test_item_form_shows_each_field_error_beside_its_field(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    item = factories.make_item(application)
    url = f"/applications/{application.id}/items/{item.id}/edit"
    response = post_form(client, url, {"manufacturer": "厂" * 1001}, page=url)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    manufacturer = html[html.index('for="manufacturer"') :].split('<div class="col-md-4">')[0]
    assert "is-invalid" in manufacturer
    assert '<div class="invalid-feedback">制造单位最多100个字</div>' in manufacturer


def test_item_form_fields_carry_their_own_limits_and_types(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    item = factories.make_item(application)
    html = client.get(f"/applications/{application.id}/items/{item.id}/edit").get_data(as_text=True)

    def attributes(name: str) -> str:
        return re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)

    assert 'maxlength="50"' in attributes("product_no")
    assert 'maxlength="100"' in attributes("manufacturer")
    assert 'type="month"' in attributes("manufacture_month")
    assert 'type="date"' in attributes("last_inspection_date")
    pressure = attributes("pressure")
    assert 'type="number"' in pressure and 'step="0.01"' in pressure


def _void(application, reason="照片模糊，请重新申请"):
    """Submitted, then 驳回（退件） by the district's acceptor: the real transitions."""
    applicant = db.session.get(User, application.created_by_id)
    workflow.submit(application, applicant, application.version_id, 5)
    acceptor = factories.make_user(Role.ACCEPTOR, district_code=application.district_code)
    workflow.void(application, acceptor, reason, application.version_id, sod=True)


def test_voided_application_shows_reason_and_excluded_items_and_can_be_copied(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    kept = factories.make_item(application, product_no="COPY-1")
    wrong = factories.make_item(application, product_no="COPY-2")
    _add_photos(kept, applicant)
    wrong.audit_verdict = AuditVerdict.WRONG
    wrong.audit_note = "钢印照片与产品编号不符"
    _void(application)
    # Meanwhile another application claimed COPY-2.
    other = factories.make_application()
    factories.make_item(other, product_no="COPY-2")

    progress = client.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert "照片模糊，请重新申请" in progress and "已作废" in progress
    assert "钢印照片与产品编号不符" in progress
    # The detail page says it too, with the way on.
    detail = client.get(f"/applications/{application.id}").get_data(as_text=True)
    notice = detail[detail.index('id="voided-notice"') :]
    assert "照片模糊，请重新申请" in notice[:400] and "复制为新申请</button>" in notice[:1200]
    assert f'action="/applications/{application.id}/copy"' in notice[:1200]

    response = post_form(
        client,
        f"/applications/{application.id}/copy",
        page=f"/applications/{application.id}/progress",
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "COPY-2已登记或已在其他申请中，未复制" in page
    copy = db.session.scalar(
        select(ApplicationItem).where(
            ApplicationItem.product_no == "COPY-1", ApplicationItem.live_identity_key.is_not(None)
        )
    )
    assert copy.application.copied_from_id == application.id
    assert copy.application.status is ApplicationStatus.DRAFT
    copied_photos = db.session.scalars(
        select(Attachment).where(Attachment.item_id == copy.id)
    ).all()
    original_keys = {
        a.storage_key
        for a in db.session.scalars(select(Attachment).where(Attachment.item_id == kept.id))
    }
    assert len(copied_photos) == 2 and not original_keys & {a.storage_key for a in copied_photos}


def test_only_voided_applications_can_be_copied():
    applicant = factories.make_user(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    with pytest.raises(applications.ApplicationError, match="只有已作废的申请"):
        applications.copy_voided_application(application, applicant)


def test_replace_and_delete_photo_remove_the_old_files_after_commit(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    item = factories.make_item(application)
    _add_photos(item, applicant, kinds=(AttachmentKind.STAMP,))
    attachment = db.session.scalar(select(Attachment).where(Attachment.item_id == item.id))
    old_keys = [attachment.storage_key, attachment.thumbnail_key]
    page = f"/applications/{application.id}/items/{item.id}/photos"
    response = post_form(
        client,
        f"/applications/{application.id}/photos/{attachment.id}/replace",
        {"file": (io.BytesIO(jpeg_bytes(color=(1, 2, 250))), "new.jpg")},
        page=page,
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    db.session.refresh(attachment)
    assert attachment.original_name == "new.jpg"
    assert not any(storage.exists(k) for k in old_keys)
    assert storage.exists(attachment.storage_key)
    new_keys = [attachment.storage_key, attachment.thumbnail_key]

    response = post_form(
        client, f"/applications/{application.id}/photos/{attachment.id}/delete", page=page
    )
    assert response.status_code == 302
    assert not any(storage.exists(k) for k in new_keys)
    db.session.expire_all()
    assert db.session.scalar(select(Attachment).where(Attachment.item_id == item.id)) is None
    assert item.attachment_count == 0


def test_progress_shows_each_step_with_time_outcome_and_who_acted(client, login_as):
    applicant = login_as(Role.APPLICANT)
    clerk = factories.make_user(Role.ACCEPTOR, district_code=applicant.unit.district_code)
    now = datetime.now(UTC)
    application = factories.make_application(
        applicant.unit,
        created_by=applicant,
        status=ApplicationStatus.ACCEPTED,
        submitted_at=now,
        audit_completed_at=now,
        audit_completed_by_id=clerk.id,
        accepted_at=now,
        accepted_by_id=clerk.id,
    )
    page = client.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert "待审核" in page
    accepted_row = page.split("<td>受理</td>")[1].split("</tr>")[0]
    assert "已受理" in accepted_row and clerk.display_name in accepted_row
    reviewed_row = page.split("<td>审核</td>")[1].split("</tr>")[0]
    assert "未进行" in reviewed_row
