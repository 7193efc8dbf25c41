"""No internal words on screen: every audited action, object and detail in the clerk's words."""

import ast
from pathlib import Path

from sqlalchemy import select

from regbackoffice import attachment_audit, audit, history
from regbackoffice.extensions import db
from regbackoffice.models import ApplicationItem, AttachmentKind, AuditVerdict, Role, User

from . import factories

PACKAGE = Path(__file__).resolve().parents[1] / "regbackoffice"
NOT_DETAIL = {
    "object_type",
    "object_id",
    "actor",
    "outcome",
    "ip",
    "actor_name",
    "relaxed_commit",
    "batched",
}


def _audit_calls():
    """(action, detail keys, object_type) of every audit call written in the package."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in {"record", "record_now", "record_refusal", "_record"} or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            keys = {kw.arg for kw in node.keywords if kw.arg and kw.arg not in NOT_DETAIL}
            object_type = next(
                (
                    kw.value.value
                    for kw in node.keywords
                    if kw.arg == "object_type" and isinstance(kw.value, ast.Constant)
                ),
                None,
            )
            yield first.value, keys, object_type, path.name


def test_every_audited_action_detail_and_object_has_words():
    calls = list(_audit_calls())
    assert len(calls) > 30  # the scan finds the audit calls
    for action, keys, object_type, where in calls:
        assert action in history.AUDIT_ACTION_LABELS, (action, where)
        unnamed = keys - set(history.AUDIT_DETAIL_LABELS) - history.HIDDEN_DETAILS
        assert not unnamed, (action, unnamed, where)
        assert object_type is None or object_type in history.OBJECT_LABELS, (object_type, where)


def test_the_audit_log_page_shows_words_not_codes(client, login_as):
    application = factories.make_application()
    audit.record(
        "photo_added",
        object_type="application",
        object_id=application.id,
        product_no="P-1",
        kind=AttachmentKind.STAMP.value,
        sha256="ab" * 32,
    )
    audit.record("export", object_type="dashboard", object_id="status", table="在办申请", rows=3)
    db.session.flush()
    login_as(Role.ADMIN)
    html = client.get("/admin/audit").get_data(as_text=True)
    assert f"申请 {application.number}" in html
    assert "照片类型：钢印（产品编码或镂空码）" in html and "产品编号：P-1" in html
    assert "导出数据" in html and "监管看板 status" in html and "表格：在办申请" in html
    for internal in ("sha256", "kind=", "ab" * 32, f"application {application.id}<"):
        assert internal not in html, internal


def test_the_applicants_history_says_what_the_clerk_saved_in_a_sentence(client, login_as):
    application = factories.make_submitted_application(items=2, photos=False)
    acceptor = factories.make_user(Role.ACCEPTOR, district_code=application.district_code)
    items = db.session.scalars(
        select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    ).all()
    attachment_audit.save_verdicts(
        application,
        acceptor,
        [attachment_audit.VerdictEntry(i.id, AuditVerdict.CORRECT, "", 0) for i in items],
    )
    login_as(db.session.get(User, application.created_by_id))
    page = client.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert "保存2只气瓶的审核结果" in page
    assert "更新：" not in page and "冲突：" not in page
