"""Photos at the applicant's scale: one request per photo named by the zip's rule (多选/拖放),
safe to resend after an error; the zip answers JSON for its progress bar; 下一只 one by one."""

import io
import zipfile

import pytest
from sqlalchemy import select

from regbackoffice.extensions import db
from regbackoffice.models import ApplicationItem, Attachment, AttachmentKind, Role

from . import factories
from .conftest import csrf_token_from
from .test_images import jpeg_bytes


@pytest.fixture
def applicant(login_as):
    return login_as(Role.APPLICANT)


@pytest.fixture
def draft(applicant):
    application = factories.make_application(applicant.unit, created_by=applicant)
    for n in range(3):
        factories.make_item(application, product_no=f"MULTI-{n}")
    return application


def send(client, draft, name, data, token=None):
    token = token or csrf_token_from(
        client.get(f"/applications/{draft.id}/photos/bulk").get_data(as_text=True)
    )
    return client.post(
        f"/applications/{draft.id}/photos/file",
        data={"csrf_token": token, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )


def photos_of(product_no):
    return db.session.scalars(
        select(Attachment).join(Attachment.item).where(Attachment.item.has(product_no=product_no))
    ).all()


def test_each_named_photo_goes_to_its_cylinder(client, draft):
    page = client.get(f"/applications/{draft.id}/photos/bulk").get_data(as_text=True)
    assert 'id="multi-files" multiple' in page and "js/photo-upload.js" in page
    token = csrf_token_from(page)
    stamp = send(client, draft, "MULTI-1_钢印.jpg", jpeg_bytes(color=(1, 2, 3)), token)
    assert stamp.status_code == 200
    assert stamp.get_json()["result"] == {
        "name": "MULTI-1_钢印.jpg",
        "ok": True,
        "message": "已上传为钢印（产品编码或镂空码）",
        "product_no": "MULTI-1",
    }
    send(client, draft, "MULTI-1_监检证书.jpg", jpeg_bytes(color=(9, 9, 9)), token)
    assert sorted(p.kind.value for p in photos_of("MULTI-1")) == [
        AttachmentKind.STAMP.value,
        AttachmentKind.SUPERVISION_CERTIFICATE.value,
    ]


def test_a_resent_photo_is_not_stored_twice(client, draft):
    """继续上传 after a lost answer sends the same file again: one photo, answered 成功."""
    data = jpeg_bytes(color=(50, 60, 70))
    send(client, draft, "MULTI-2_钢印.jpg", data)
    again = send(client, draft, "MULTI-2_钢印.jpg", data).get_json()["result"]
    assert again["ok"] and "未重复保存" in again["message"]
    assert len(photos_of("MULTI-2")) == 1


@pytest.mark.parametrize(
    "name,message",
    [
        ("MULTI-0.jpg", "文件名不符合"),
        ("NOPE-9_钢印.jpg", "本申请中没有产品编号为NOPE-9的气瓶"),
    ],
)
def test_a_misnamed_photo_is_refused_by_the_zips_rule(client, draft, name, message):
    answer = send(client, draft, name, jpeg_bytes()).get_json()["result"]
    assert answer["ok"] is False and message in answer["message"]
    assert db.session.scalars(select(Attachment)).all() == []


def test_a_truncated_photo_is_refused_with_its_reason(client, draft):
    answer = send(client, draft, "MULTI-0_钢印.jpg", jpeg_bytes()[:-40]).get_json()["result"]
    assert answer["ok"] is False and "不完整" in answer["message"]


def test_the_zip_answers_json_for_its_progress_bar(client, draft):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("MULTI-0_钢印.jpg", jpeg_bytes(color=(5, 5, 5)))
        archive.writestr("bad.jpg", jpeg_bytes())
    url = f"/applications/{draft.id}/photos/bulk"
    token = csrf_token_from(client.get(url).get_data(as_text=True))
    response = client.post(
        url,
        data={"csrf_token": token, "file": (io.BytesIO(out.getvalue()), "p.zip")},
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    results = response.get_json()["results"]
    assert sorted((r["name"], r["ok"]) for r in results) == [
        ("MULTI-0_钢印.jpg", True),
        ("bad.jpg", False),
    ]


def test_one_by_one_upload_has_next_cylinder(client, draft):
    ids = db.session.scalars(
        select(ApplicationItem.id)
        .where(ApplicationItem.application_id == draft.id)
        .order_by(ApplicationItem.row_no)
    ).all()
    first = client.get(f"/applications/{draft.id}/items/{ids[0]}/photos").get_data(as_text=True)
    assert f'href="/applications/{draft.id}/items/{ids[1]}/photos">下一只</a>' in first
    last = client.get(f"/applications/{draft.id}/items/{ids[-1]}/photos").get_data(as_text=True)
    assert "已是最后一只" in last and f'/items/{ids[-2]}/photos">上一只</a>' in last


def test_only_a_draft_takes_photos_by_file(client, applicant):
    application = factories.make_submitted_application(applicant.unit, items=1)
    application.created_by_id = applicant.id
    db.session.flush()
    response = send(client, application, "X_钢印.jpg", jpeg_bytes())
    assert response.status_code in (404, 409)
