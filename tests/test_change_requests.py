"""Change requests after registration: 停用, 启用, 报废, 注销, 更名, 地址变更, 过户, 补领.

Driven through the web client as the unit and the bureau would, and checked downstream
through the JSON API (interlock, /cylinders/query, the changes feed).
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from regbackoffice import change_workflow
from regbackoffice.clock import china_today
from regbackoffice.extensions import db
from regbackoffice.models import (
    AuditLog,
    ChangeKind,
    ChangeRequest,
    ChangeStatus,
    CylinderStatus,
    CylinderStatusChange,
    Role,
    UnitKind,
)

from . import factories
from .api_helpers import assert_envelope, post_json, token_for
from .conftest import csrf_token_from, login, version_from
from .test_api_records import check, codes, inspection, months_after


@pytest.fixture
def actors(app):
    """A use unit's applicant, the district's acceptor and approver, each with a client."""
    unit = factories.make_unit("500112")

    def client_for(user):
        http = app.test_client()
        assert login(http, user).status_code == 302
        return http

    applicant = factories.make_user(Role.APPLICANT, unit=unit)
    acceptor = factories.make_user(Role.ACCEPTOR, district_code="500112")
    approver = factories.make_user(Role.APPROVER, district_code="500112")

    class Actors:
        pass

    a = Actors()
    a.unit, a.client_for = unit, client_for
    a.applicant, a.acceptor, a.approver = applicant, acceptor, approver
    a.unit_http = client_for(applicant)
    a.acceptor_http = client_for(acceptor)
    a.approver_http = client_for(approver)
    return a


def submit(http, kind, data=None, *, query="", **kw):
    page = http.get(f"/changes/new/{kind}{query}")
    assert page.status_code == 200, page.get_data(as_text=True)
    token = csrf_token_from(page.get_data(as_text=True))
    return http.post(
        f"/changes/new/{kind}{query}",
        data={**(data or {}), "csrf_token": token, "kind_form": "1"},
        content_type="multipart/form-data",
        **kw,
    )


def submitted(response) -> ChangeRequest:
    assert response.status_code == 302, response.get_data(as_text=True)
    change_id = int(re.search(r"/changes/(\d+)$", response.headers["Location"]).group(1))
    return db.session.get(ChangeRequest, change_id)


def act(http, change, action, **data):
    page = http.get(f"/changes/{change.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    return http.post(
        f"/changes/{change.id}/{action}",
        data={"csrf_token": csrf_token_from(html), "version": version_from(html), **data},
    )


def reject(http, change, reason):
    page = http.get(f"/changes/{change.id}/reject")
    html = page.get_data(as_text=True)
    return http.post(
        f"/changes/{change.id}/reject",
        data={"csrf_token": csrf_token_from(html), "version": version_from(html), "reason": reason},
    )


def refreshed(change) -> ChangeRequest:
    db.session.expire_all()
    return db.session.get(ChangeRequest, change.id)


def accept_and_approve(a, change):
    assert act(a.acceptor_http, change, "accept").status_code == 302
    assert refreshed(change).status is ChangeStatus.ACCEPTED
    assert act(a.approver_http, change, "approve").status_code == 302
    assert refreshed(change).status is ChangeStatus.APPROVED


def certified_unit(district="500112", items=1):
    """A use unit holding a valid 使用登记证 (where 过户 cylinders go)."""
    from regbackoffice import certificates

    unit = factories.make_unit(district)
    application = factories.make_approved_application(unit, items=items)
    acceptor = factories.make_user(Role.ACCEPTOR, district_code=district)
    certificates.generate(application, acceptor, application.version_id)
    return unit


def feed(client, token, cursor=None):
    """The unit's changes feed (``/api/v1/cylinders/changes``) after ``cursor``."""
    body = {"limit": 100} if cursor is None else {"cursor": cursor, "limit": 100}
    response = post_json(client, "/api/v1/cylinders/changes", body, token)
    return assert_envelope(response, 200)["data"]


def trace_url(cylinder) -> str:
    from urllib.parse import urlencode

    query = {"manufacturer": cylinder.manufacturer, "product_no": cylinder.product_no}
    return "/trace?" + urlencode(query)


def jpeg_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 10, 10)).save(out, "JPEG")
    return out.getvalue()


# --- 停用 / 启用 -------------------------------------------------------------------------


def test_suspend_is_accepted_then_approved_and_the_interlock_refuses_at_once(client, actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    api_client, _ = factories.make_api_client(a.unit)
    token = token_for(api_client)
    assert codes(check(client, token, cylinder.id)) == set()

    change = submitted(
        submit(a.unit_http, "suspend", {"product_nos": cylinder.product_no, "reason": "季节性停产"})
    )
    assert change.status is ChangeStatus.SUBMITTED and change.due_on is not None
    assert change.item_count == 1
    # Nothing changes before the approval.
    assert codes(check(client, token, cylinder.id)) == set()
    cursor = feed(client, token)["cursor"]
    accept_and_approve(a, change)

    assert codes(check(client, token, cylinder.id)) == {"STATUS_STOPPED"}
    changed = feed(client, token, cursor)["cylinders"]
    assert [(c["id"], c["status"]) for c in changed] == [(cylinder.id, "停用")]
    data = assert_envelope(
        post_json(client, "/api/v1/cylinders/query", {"id": cylinder.id}, token), 200
    )["data"]
    assert data["status"] == "停用"
    history = db.session.scalars(
        select(CylinderStatusChange).where(CylinderStatusChange.cylinder_id == cylinder.id)
    ).all()
    assert history[-1].status is CylinderStatus.STOPPED
    actions = db.session.scalars(
        select(AuditLog.action).where(
            AuditLog.object_type == "change_request", AuditLog.object_id == str(change.id)
        )
    ).all()
    assert actions == ["change_submitted", "change_accepted", "change_approved"]


def test_a_long_stop_reported_more_than_30_days_late_is_marked_overdue_report(actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    started = china_today() - timedelta(days=45)
    change = submitted(
        submit(
            a.unit_http,
            "suspend",
            {
                "product_nos": cylinder.product_no,
                "reason": "停产一年",
                "long_stop": "y",
                "effective_on": started.isoformat(),
            },
        )
    )
    assert change.long_stop and change.reported_late
    inbox = a.acceptor_http.get("/inbox?task=suspend-accept").get_data(as_text=True)
    assert change.number in inbox and "逾期报停" in inbox
    accept_and_approve(a, change)
    history = db.session.scalars(
        select(CylinderStatusChange).where(CylinderStatusChange.cylinder_id == cylinder.id)
    ).all()
    assert history[-1].effective_on == started  # the stop took effect when it began


def test_suspend_without_a_reason_is_refused(actors):
    cylinder = factories.make_cylinder(actors.unit)
    response = submit(actors.unit_http, "suspend", {"product_nos": cylinder.product_no})
    assert response.status_code == 302
    page = actors.unit_http.get(response.headers["Location"]).get_data(as_text=True)
    assert "请填写停用原因" in page
    assert db.session.scalar(select(ChangeRequest.id)) is None


def test_resume_is_refused_while_the_inspection_is_overdue_naming_the_date(actors):
    overdue_month = months_after(china_today(), -2)
    cylinder = factories.make_cylinder(
        actors.unit, status=CylinderStatus.STOPPED, next_inspection_month=overdue_month
    )
    response = submit(actors.unit_http, "resume", {"product_nos": cylinder.product_no})
    page = actors.unit_http.get(response.headers["Location"]).get_data(as_text=True)
    assert f"下次检验日期{overdue_month}已过" in page and "检验合格前不能启用" in page
    assert db.session.scalar(select(ChangeRequest.id)) is None


def test_resume_after_a_stop_brings_the_cylinder_back_into_use(client, actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit, status=CylinderStatus.STOPPED)
    token = token_for(factories.make_api_client(a.unit)[0])
    assert codes(check(client, token, cylinder.id)) == {"STATUS_STOPPED"}
    change = submitted(submit(a.unit_http, "resume", query=f"?cylinder={cylinder.id}"))
    accept_and_approve(a, change)
    assert codes(check(client, token, cylinder.id)) == set()


def test_a_cylinder_in_use_cannot_be_resumed_and_names_its_status(actors):
    cylinder = factories.make_cylinder(actors.unit)
    response = submit(actors.unit_http, "resume", {"product_nos": cylinder.product_no})
    page = actors.unit_http.get(response.headers["Location"]).get_data(as_text=True)
    assert f"气瓶{cylinder.product_no}（在用）的使用状态不能申请启用" in page


# --- 报废 / 注销 -------------------------------------------------------------------------


def test_scrap_needs_a_proof_photo_or_a_scrap_record(actors):
    cylinder = factories.make_cylinder(actors.unit)
    response = submit(actors.unit_http, "scrap", {"product_nos": cylinder.product_no})
    page = actors.unit_http.get(response.headers["Location"]).get_data(as_text=True)
    assert "须附报废证明照片" in page
    assert db.session.scalar(select(ChangeRequest.id)) is None


def test_scrap_with_a_photo_is_approved_and_the_interlock_says_scrapped(client, actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    token = token_for(factories.make_api_client(a.unit)[0])
    change = submitted(
        submit(
            a.unit_http,
            "scrap",
            {
                "product_nos": cylinder.product_no,
                "proof_photo": (io.BytesIO(jpeg_bytes()), "报废证明.jpg"),
            },
        )
    )
    assert change.proof_photo_key and change.proof_content_type == "image/jpeg"
    photo = a.acceptor_http.get(f"/changes/{change.id}/proof")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    accept_and_approve(a, change)
    assert codes(check(client, token, cylinder.id)) == {"STATUS_SCRAPPED"}


def test_a_file_that_is_not_an_image_is_refused_as_proof(actors):
    cylinder = factories.make_cylinder(actors.unit)
    response = submit(
        actors.unit_http,
        "scrap",
        {"product_nos": cylinder.product_no, "proof_photo": (io.BytesIO(b"not a photo"), "x.jpg")},
    )
    assert response.status_code == 302
    assert db.session.scalar(select(ChangeRequest.id)) is None


def test_cancel_with_the_inspection_bodys_scrap_record(client, actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    body = factories.make_unit(kind=UnitKind.INSPECTION_BODY)
    inspector = token_for(factories.make_api_client(body, scopes=("inspection", "query"))[0])
    scrap = inspection(cylinder.id, inspect_type="报废处置", conclusion="判废")
    scrap.pop("next_inspection_month")
    assert_envelope(post_json(client, "/api/v1/inspections", {"records": [scrap]}, inspector), 200)
    # The inspection already opened a 注销 task; it is that task the clerk confirms.
    opened = db.session.scalars(select(ChangeRequest)).one()
    assert opened.kind is ChangeKind.CANCEL and opened.inspection_record_id is not None
    # The unit cannot file a second request for the same cylinder meanwhile.
    record_id = opened.inspection_record_id
    response = submit(
        a.unit_http,
        "cancel",
        {"product_nos": cylinder.product_no, "inspection_record_id": str(record_id)},
    )
    page = a.unit_http.get(response.headers["Location"]).get_data(as_text=True)
    assert f"已在办理中的注销申请{opened.number}中" in page


# --- From the inspection bodies -----------------------------------------------------------


def _inspect(client, cylinder, **kw):
    body = factories.make_unit(kind=UnitKind.INSPECTION_BODY)
    inspector = token_for(factories.make_api_client(body, scopes=("inspection", "query"))[0])
    record = inspection(cylinder.id, **kw)
    if kw.get("inspect_type") == "报废处置":
        record.pop("next_inspection_month")
    return assert_envelope(
        post_json(client, "/api/v1/inspections", {"records": [record]}, inspector), 200
    )


def test_an_inspection_scrap_record_opens_a_cancel_task_in_the_districts_inbox(client, actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    token = token_for(factories.make_api_client(a.unit)[0])
    _inspect(client, cylinder, inspect_type="报废处置", conclusion="判废")
    _inspect(client, cylinder, inspect_type="报废处置", conclusion="判废")  # a re-send
    change = db.session.scalars(select(ChangeRequest)).one()
    assert change.status is ChangeStatus.SUBMITTED and change.origin.value == "inspection"
    home = a.acceptor_http.get("/").get_data(as_text=True)
    assert "您有1条注销申请的受理任务需要处理" in home
    inbox = a.acceptor_http.get("/inbox?task=cancel-accept").get_data(as_text=True)
    assert change.number in inbox and "检验判废" in inbox
    detail = a.acceptor_http.get(f"/changes/{change.id}").get_data(as_text=True)
    assert "判废" in detail and "退回使用单位" in detail
    accept_and_approve(a, change)
    assert codes(check(client, token, cylinder.id)) == {"STATUS_CANCELLED"}
    data = assert_envelope(
        post_json(client, "/api/v1/cylinders/query", {"id": cylinder.id}, token), 200
    )["data"]
    assert data["status"] == "注销"
    assert "注销" in client.get(trace_url(cylinder)).get_data(as_text=True)


def test_a_failed_periodic_inspection_opens_a_cancel_task_the_clerk_can_send_back(client, actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    _inspect(client, cylinder, conclusion="不合格")
    change = db.session.scalars(select(ChangeRequest)).one()
    assert change.kind is ChangeKind.CANCEL
    assert reject(a.acceptor_http, change, "请使用单位确认是否维修后复检").status_code == 302
    change = refreshed(change)
    assert change.status is ChangeStatus.REJECTED
    assert change.reject_reason == "请使用单位确认是否维修后复检"
    # The unit sees it among its requests; the cylinder stays 停用, not 注销.
    page = a.unit_http.get("/changes/").get_data(as_text=True)
    assert change.number in page and "已驳回" in page
    db.session.refresh(cylinder)
    assert cylinder.status is CylinderStatus.STOPPED


# --- 更名 / 地址变更 ---------------------------------------------------------------------


def test_rename_applies_to_all_the_units_cylinders(client, actors):
    a = actors
    cylinders = [factories.make_cylinder(a.unit) for _ in range(3)]
    token = token_for(factories.make_api_client(a.unit)[0])
    change = submitted(submit(a.unit_http, "rename", {"new_unit_name": "重庆新名燃气有限公司"}))
    assert change.item_count == 3
    accept_and_approve(a, change)
    db.session.refresh(a.unit)
    assert a.unit.name == "重庆新名燃气有限公司"
    for cylinder in cylinders:
        data = assert_envelope(
            post_json(client, "/api/v1/cylinders/query", {"id": cylinder.id}, token), 200
        )["data"]
        assert data["use_unit_name"] == "重庆新名燃气有限公司"


def test_a_pending_stop_of_one_cylinder_does_not_block_the_units_rename(actors):
    a = actors
    stopping, other = factories.make_cylinder(a.unit), factories.make_cylinder(a.unit)
    suspend = submitted(
        submit(a.unit_http, "suspend", {"product_nos": stopping.product_no, "reason": "检修"})
    )
    rename = submitted(submit(a.unit_http, "rename", {"new_unit_name": "重庆改名燃气有限公司"}))
    accept_and_approve(a, rename)
    for cylinder in (stopping, other):
        db.session.refresh(cylinder)
        assert cylinder.use_unit_name == "重庆改名燃气有限公司"
    # The stop still holds its cylinder and goes on to its own approval.
    accept_and_approve(a, suspend)
    db.session.refresh(stopping)
    assert stopping.status is CylinderStatus.STOPPED


def test_address_change_updates_the_units_address(actors):
    a = actors
    factories.make_cylinder(a.unit)
    change = submitted(submit(a.unit_http, "address", {"new_address": "重庆市渝北区新址路8号"}))
    accept_and_approve(a, change)
    db.session.refresh(a.unit)
    assert a.unit.address == "重庆市渝北区新址路8号"


# --- 过户 --------------------------------------------------------------------------------


def test_transfer_waits_for_the_receiving_unit_then_the_bureau_and_keeps_the_archive_id(
    client, actors
):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    archive_id, qr = cylinder.id, cylinder.qr_content
    receiver_unit = certified_unit()
    receiver = factories.make_user(Role.APPLICANT, unit=receiver_unit)
    receiver_http = a.client_for(receiver)
    old_token = token_for(factories.make_api_client(a.unit)[0])
    new_token = token_for(factories.make_api_client(receiver_unit)[0])
    cursor = assert_envelope(
        post_json(client, "/api/v1/cylinders/changes", {"limit": 100}, new_token), 200
    )["data"]["cursor"]

    change = submitted(
        submit(
            a.unit_http,
            "transfer",
            {"product_nos": cylinder.product_no, "target_credit_code": receiver_unit.credit_code},
        )
    )
    assert change.status is ChangeStatus.AWAITING_RECEIVER
    # Not yet in the bureau's inbox; in the receiving unit's list.
    assert change.number not in a.acceptor_http.get("/inbox?task=transfer-accept").get_data(
        as_text=True
    )
    assert "待本单位确认接收的过户" in receiver_http.get("/changes/").get_data(as_text=True)
    # The sending unit cannot confirm for the receiver.
    token = csrf_token_from(a.unit_http.get("/changes/").get_data(as_text=True))
    sender_try = a.unit_http.post(
        f"/changes/{change.id}/receive", data={"csrf_token": token, "version": change.version_id}
    )
    assert sender_try.status_code == 302
    assert refreshed(change).status is ChangeStatus.AWAITING_RECEIVER
    home = receiver_http.get("/").get_data(as_text=True)
    assert '<a href="/changes/">您有1条过户申请的接收确认任务需要处理</a>' in home
    assert "接收确认任务" not in a.unit_http.get("/").get_data(as_text=True)
    assert act(receiver_http, change, "receive").status_code == 302
    assert refreshed(change).status is ChangeStatus.SUBMITTED
    assert "接收确认任务" not in receiver_http.get("/").get_data(as_text=True)
    accept_and_approve(a, change)

    assert codes(check(client, old_token, archive_id)) == {"NOT_OWNER"}
    assert codes(check(client, new_token, archive_id)) == set()
    data = assert_envelope(
        post_json(client, "/api/v1/cylinders/query", {"id": archive_id}, new_token), 200
    )["data"]
    assert data["id"] == archive_id and data["qr_content"] == qr
    assert data["use_unit_name"] == receiver_unit.name
    feed = assert_envelope(
        post_json(client, "/api/v1/cylinders/changes", {"cursor": cursor, "limit": 100}, new_token),
        200,
    )["data"]
    assert [c["id"] for c in feed["cylinders"]] == [archive_id]
    trace = client.get(trace_url(cylinder)).get_data(as_text=True)
    assert receiver_unit.name in trace and a.unit.name not in trace


def test_the_receiving_unit_may_refuse_a_transfer_with_a_reason(actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    receiver_unit = certified_unit()
    receiver_http = a.client_for(factories.make_user(Role.APPLICANT, unit=receiver_unit))
    change = submitted(
        submit(
            a.unit_http,
            "transfer",
            {"product_nos": cylinder.product_no, "target_credit_code": receiver_unit.credit_code},
        )
    )
    assert reject(receiver_http, change, "未签订转让协议").status_code == 302
    assert refreshed(change).status is ChangeStatus.REJECTED
    db.session.refresh(cylinder)
    assert cylinder.use_unit_id == a.unit.id


def test_transfer_to_a_unit_without_a_certificate_is_refused(actors):
    cylinder = factories.make_cylinder(actors.unit)
    bare = factories.make_unit("500112")
    response = submit(
        actors.unit_http,
        "transfer",
        {"product_nos": cylinder.product_no, "target_credit_code": bare.credit_code},
    )
    page = actors.unit_http.get(response.headers["Location"]).get_data(as_text=True)
    assert f"接收单位{bare.name}尚无有效的使用登记证" in page


def test_transfer_to_an_unknown_credit_code_is_refused(actors):
    cylinder = factories.make_cylinder(actors.unit)
    response = submit(
        actors.unit_http,
        "transfer",
        {"product_nos": cylinder.product_no, "target_credit_code": "91500112MA00000000"},
    )
    page = actors.unit_http.get(response.headers["Location"]).get_data(as_text=True)
    assert "没有对应的已登记使用单位" in page


# --- Selection ---------------------------------------------------------------------------


def test_cylinders_are_picked_from_an_xlsx_with_a_product_no_column(actors):
    cylinders = [factories.make_cylinder(actors.unit) for _ in range(2)]
    book = Workbook()
    sheet = book.active
    sheet.append(["序号", "产品编号"])
    for n, c in enumerate(cylinders, 1):
        sheet.append([n, c.product_no])
    out = io.BytesIO()
    book.save(out)
    change = submitted(
        submit(
            actors.unit_http,
            "suspend",
            {"product_file": (io.BytesIO(out.getvalue()), "list.xlsx"), "reason": "停产"},
        )
    )
    assert change.item_count == 2


def test_another_units_cylinder_is_refused_naming_the_product_no(actors):
    other = factories.make_cylinder(factories.make_unit())
    response = submit(actors.unit_http, "suspend", {"product_nos": other.product_no, "reason": "x"})
    page = actors.unit_http.get(response.headers["Location"]).get_data(as_text=True)
    assert f"产品编号{other.product_no}不是本单位已登记的气瓶" in page


# --- Rejection, versions, separation of duties, scope ------------------------------------


def test_reject_needs_a_reason_and_frees_the_cylinders_for_a_new_request(actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    data = {"product_nos": cylinder.product_no, "reason": "检修"}
    change = submitted(submit(a.unit_http, "suspend", data))
    assert reject(a.acceptor_http, change, "").status_code == 200  # the form asks again
    assert refreshed(change).status is ChangeStatus.SUBMITTED
    assert reject(a.acceptor_http, change, "清单有误").status_code == 302
    assert refreshed(change).status is ChangeStatus.REJECTED
    again = submitted(submit(a.unit_http, "suspend", data))
    assert again.status is ChangeStatus.SUBMITTED


def test_an_approval_from_a_stale_page_answers_409(actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    change = submitted(
        submit(a.unit_http, "suspend", {"product_nos": cylinder.product_no, "reason": "检修"})
    )
    page = a.acceptor_http.get(f"/changes/{change.id}").get_data(as_text=True)
    stale = {"csrf_token": csrf_token_from(page), "version": version_from(page)}
    assert a.acceptor_http.post(f"/changes/{change.id}/accept", data=stale).status_code == 302
    again = a.acceptor_http.post(f"/changes/{change.id}/accept", data=stale)
    assert again.status_code == 409


def test_the_acceptor_may_not_also_approve_the_same_request(actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    change = submitted(
        submit(a.unit_http, "suspend", {"product_nos": cylinder.product_no, "reason": "检修"})
    )
    assert act(a.acceptor_http, change, "accept").status_code == 302
    # The same person, later given the approver role.
    a.acceptor.role = Role.APPROVER
    db.session.flush()
    response = act(a.acceptor_http, change, "approve")
    assert response.status_code == 302
    assert "岗位分离" in a.acceptor_http.get(f"/changes/{change.id}").get_data(as_text=True)
    assert refreshed(change).status is ChangeStatus.ACCEPTED


def test_with_one_step_configured_the_acceptance_approves_at_once(app, client, actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    token = token_for(factories.make_api_client(a.unit)[0])
    app.config["CHANGE_APPROVAL_STEPS"] = 1
    try:
        change = submitted(
            submit(a.unit_http, "suspend", {"product_nos": cylinder.product_no, "reason": "检修"})
        )
        assert "suspend-approve" not in a.approver_http.get("/inbox").get_data(as_text=True)
        assert act(a.acceptor_http, change, "accept").status_code == 302
        assert refreshed(change).status is ChangeStatus.APPROVED
    finally:
        app.config["CHANGE_APPROVAL_STEPS"] = 2
    assert codes(check(client, token, cylinder.id)) == {"STATUS_STOPPED"}


def test_another_districts_bureau_cannot_see_the_request(actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    change = submitted(
        submit(a.unit_http, "suspend", {"product_nos": cylinder.product_no, "reason": "检修"})
    )
    elsewhere = a.client_for(factories.make_user(Role.ACCEPTOR, district_code="500101"))
    assert elsewhere.get(f"/changes/{change.id}").status_code == 404
    assert act_status(elsewhere, change) == 404


def act_status(http, change):
    token = csrf_token_from(http.get("/").get_data(as_text=True))
    return http.post(
        f"/changes/{change.id}/accept", data={"csrf_token": token, "version": change.version_id}
    ).status_code


# --- The inbox ---------------------------------------------------------------------------


def test_each_change_kind_is_its_own_task_in_the_inbox_with_counts_and_deadlines(actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    change = submitted(
        submit(a.unit_http, "suspend", {"product_nos": cylinder.product_no, "reason": "检修"})
    )
    inbox = a.acceptor_http.get("/inbox").get_data(as_text=True)
    for kind in ChangeKind:
        if kind is ChangeKind.TRANSFER:
            assert "过户申请的受理任务" in inbox
        assert f"{kind.label}申请的受理任务" in inbox
    assert "您有<strong>1</strong>条停用申请的受理任务需要处理" in inbox
    listed = a.acceptor_http.get("/inbox?task=suspend-accept").get_data(as_text=True)
    assert change.number in listed and str(change.due_on) in listed
    assert "您有1条停用申请的受理任务需要处理" in a.acceptor_http.get("/").get_data(as_text=True)


def test_an_open_change_past_its_deadline_is_overdue(actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    change = submitted(
        submit(a.unit_http, "suspend", {"product_nos": cylinder.product_no, "reason": "检修"})
    )
    change.due_on = china_today() - timedelta(days=10)
    db.session.flush()
    assert change_workflow.is_overdue(change, china_today())
    listed = a.acceptor_http.get("/inbox?task=suspend-accept").get_data(as_text=True)
    assert "已超期" in listed


def test_docs_workflow_describes_the_change_steps():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "workflow.md").read_text("utf-8")
    section = page.split("## Change requests after registration", 1)[1]
    rows = {
        cells[0]: cells
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| change state")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    by_status = {s.status: s for s in change_workflow.STEPS}
    for status in ChangeStatus:
        _state, label, role, step_label, limit, _rejects = rows[f"change.{status.value}"]
        assert label == status.label
        step = by_status.get(status)
        if step is None:
            assert role.startswith("nobody")
            continue
        assert (role, step_label, limit) == (step.role.value, step.label, step.limit_config)


# --- The dashboard -----------------------------------------------------------------------


def test_the_dashboard_counts_changes_per_month_and_district_and_lists_overdue_ones(app, actors):
    a = actors
    done, late = factories.make_cylinder(a.unit), factories.make_cylinder(a.unit)
    change = submitted(
        submit(a.unit_http, "suspend", {"product_nos": done.product_no, "reason": "检修"})
    )
    accept_and_approve(a, change)
    waiting = submitted(
        submit(
            a.unit_http,
            "scrap",
            {
                "product_nos": late.product_no,
                "proof_photo": (io.BytesIO(jpeg_bytes()), "p.jpg"),
            },
        )
    )
    waiting.due_on = china_today() - timedelta(days=3)
    db.session.flush()
    supervisor = a.client_for(factories.make_user(Role.SUPERVISOR, district_code=None))
    page = supervisor.get("/supervision/").get_data(as_text=True)
    month = china_today().strftime("%Y-%m")
    section = page.split('id="table-changes_monthly"', 1)[1].split("</section>", 1)[0]
    assert month in section and "渝北区" in section
    overdue = page.split('id="table-overdue_changes"', 1)[1].split("</section>", 1)[0]
    assert waiting.number in overdue and "报废" in overdue
    assert change.number not in overdue


def test_the_approver_rejects_at_approval_and_the_acceptor_no_longer_can(actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    change = submitted(
        submit(a.unit_http, "suspend", {"product_nos": cylinder.product_no, "reason": "检修"})
    )
    assert act(a.acceptor_http, change, "accept").status_code == 302
    assert reject(a.acceptor_http, change, "受理后又想驳回").status_code == 302
    assert refreshed(change).status is ChangeStatus.ACCEPTED
    assert reject(a.approver_http, change, "停用原因与现场不符").status_code == 302
    change = refreshed(change)
    assert change.status is ChangeStatus.REJECTED and change.rejected_by_id == a.approver.id
    page = a.unit_http.get(f"/changes/{change.id}").get_data(as_text=True)
    history = page.split('id="change-history"', 1)[1]
    for words in ("提交变更申请", "受理变更申请", "驳回变更申请", "停用原因与现场不符"):
        assert words in history
    db.session.refresh(cylinder)
    assert cylinder.status is CylinderStatus.IN_USE


def test_two_requests_racing_for_one_cylinder_the_second_is_refused_not_failed(app, monkeypatch):
    unit = factories.make_unit()
    applicant = factories.make_user(Role.APPLICANT, unit=unit)
    cylinder = factories.make_cylinder(unit)
    fields = change_workflow.ChangeFields(reason="检修")
    change_workflow.submit(ChangeKind.SUSPEND, unit, applicant, [cylinder], fields, app.config)
    # As if the other request committed after this one looked: only the unique claim stops it.
    monkeypatch.setattr(change_workflow, "_open_claims", lambda cylinders: None)
    with pytest.raises(change_workflow.ChangeError) as refused:
        change_workflow.submit(ChangeKind.SUSPEND, unit, applicant, [cylinder], fields, app.config)
    assert refused.value.status_code == 409 and "刚被另一项变更申请占用" in refused.value.message


def test_sent_back_to_the_unit_it_files_the_cancel_itself_with_the_scrap_record(client, actors):
    a = actors
    cylinder = factories.make_cylinder(a.unit)
    token = token_for(factories.make_api_client(a.unit)[0])
    _inspect(client, cylinder, inspect_type="报废处置", conclusion="判废")
    opened = db.session.scalars(select(ChangeRequest)).one()
    assert reject(a.acceptor_http, opened, "请使用单位核实后自行申请注销").status_code == 302
    # The unit's 注销 form offers the record; choosing it is the proof.
    form = a.unit_http.get("/changes/new/cancel").get_data(as_text=True)
    assert f'value="{opened.inspection_record_id}"' in form
    change = submitted(
        submit(
            a.unit_http,
            "cancel",
            {
                "product_nos": cylinder.product_no,
                "inspection_record_id": str(opened.inspection_record_id),
            },
        )
    )
    assert change.inspection_record_id == opened.inspection_record_id
    assert change.proof_photo_key is None
    accept_and_approve(a, change)
    assert codes(check(client, token, cylinder.id)) == {"STATUS_CANCELLED"}


def test_a_selection_posted_from_the_archive_list_opens_the_form_with_those_cylinders(actors):
    a = actors
    picked = [factories.make_cylinder(a.unit) for _ in range(2)]
    token = csrf_token_from(a.unit_http.get("/changes/").get_data(as_text=True))
    page = a.unit_http.post(
        "/changes/new/suspend",
        data={"csrf_token": token, "cylinder": [c.id for c in picked]},
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert all(c.id in html for c in picked)
    assert db.session.scalar(select(ChangeRequest.id)) is None  # nothing filed yet
    hidden = re.search(r'name="cylinder_ids"[^>]*value="([^"]*)"', html).group(1)
    change = submitted(
        a.unit_http.post(
            "/changes/new/suspend",
            data={
                "csrf_token": csrf_token_from(html),
                "kind_form": "1",
                "cylinder_ids": hidden,
                "reason": "检修",
            },
            content_type="multipart/form-data",
        )
    )
    assert change.item_count == 2
