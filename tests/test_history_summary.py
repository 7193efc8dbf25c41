"""办理记录 at 1,000 cylinders: photo uploads and verdict saves fold into one line per person
and day; every step and decision keeps its own line (the applicant's 使用登记进度 too)."""

import re

from regbackoffice import attachment_audit, history, photos
from regbackoffice.extensions import db
from regbackoffice.models import ApplicationItem, AttachmentKind, AuditVerdict, Role, User

from . import factories
from .test_images import jpeg_bytes


def _photographed_draft(applicant, cylinders=6):
    application = factories.make_application(applicant.unit, created_by=applicant)
    for n in range(cylinders):
        item = factories.make_item(application, product_no=f"HIST-{n}")
        for kind in AttachmentKind:
            photos.add_photo(item, kind, jpeg_bytes(), filename="p.jpg", actor=applicant)
    return application


def test_photo_uploads_fold_into_one_line_and_steps_stay(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = _photographed_draft(applicant)
    lines = history.timeline(application)
    uploads = [line for line in lines if line.action == "photo_added"]
    assert len(uploads) == 1 and uploads[0].count == 12
    assert re.fullmatch(r"12张，\d\d:\d\d–\d\d:\d\d", uploads[0].words)
    page = client.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert page.count("上传照片</td>") == 1 and "12张，" in page
    assert page.count('<tr><td class="text-nowrap">') == 1  # one line, not twelve


def test_verdict_saves_fold_but_acceptance_steps_are_each_shown(client, login_as):
    application = factories.make_submitted_application(factories.make_unit("500112"), items=5)
    clerk = login_as(Role.ACCEPTOR, district_code="500112")
    for item in db.session.query(ApplicationItem).filter_by(application_id=application.id):
        attachment_audit.save_verdicts(
            application,
            db.session.get(User, clerk.id),
            [attachment_audit.VerdictEntry(item.id, AuditVerdict.CORRECT, "", item.audit_revision)],
        )
    db.session.flush()
    html = client.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    record = html[html.index("办理记录") :]
    assert record.count("审核附件（保存审核结果）") == 1
    assert "保存5只气瓶的审核结果，分5次" in record
    assert "提交申请" in record
