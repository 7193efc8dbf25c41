"""Change requests, the lifecycle's edges: the sending unit's changes feed after a 过户,
the unit's 撤回, a 判废 record for a cylinder held by another open request, and the
scrap-record list of a large unit. Driven through the web client and the JSON API."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, select

from regbackoffice.clock import china_today
from regbackoffice.extensions import db
from regbackoffice.models import (
    AuditLog,
    ChangeKind,
    ChangeOrigin,
    ChangeRequest,
    ChangeStatus,
    CylinderStatus,
    Role,
    UnitKind,
)

from . import factories
from .api_helpers import assert_envelope, post_json, token_for
from .conftest import csrf_token_from, login, version_from
from .test_api_records import check, codes, inspection
from .test_change_requests import (
    accept_and_approve,
    act,
    certified_unit,
    feed,
    refreshed,
    reject,
    submit,
    submitted,
)


class People:
    pass


@pytest.fixture
def people(app):
    """Two certified use units of one district (A sends, B receives) and its bureau."""

    def client_for(user):
        http = app.test_client()
        assert login(http, user).status_code == 302
        return http

    p = People()
    p.client_for = client_for
    p.unit = certified_unit("500112")
    p.other = certified_unit("500112")
    p.applicant = factories.make_user(Role.APPLICANT, unit=p.unit)
    p.other_applicant = factories.make_user(Role.APPLICANT, unit=p.other)
    p.unit_http = client_for(p.applicant)
    p.other_http = client_for(p.other_applicant)
    p.acceptor_http = client_for(factories.make_user(Role.ACCEPTOR, district_code="500112"))
    p.approver_http = client_for(factories.make_user(Role.APPROVER, district_code="500112"))
    return p


def transfer(p, cylinder, sender_http, receiver_unit, receiver_http) -> ChangeRequest:
    change = submitted(
        submit(
            sender_http,
            "transfer",
            {"product_nos": cylinder.product_no, "target_credit_code": receiver_unit.credit_code},
        )
    )
    assert act(receiver_http, change, "receive").status_code == 302
    accept_and_approve(p, change)
    return change


def suspend(p, cylinder) -> ChangeRequest:
    data = {"product_nos": cylinder.product_no, "reason": "检修"}
    return submitted(submit(p.unit_http, "suspend", data))


def inspect(client, cylinder, **kw):
    body = factories.make_unit(kind=UnitKind.INSPECTION_BODY)
    inspector = token_for(factories.make_api_client(body, scopes=("inspection", "query"))[0])
    record = inspection(cylinder.id, **kw)
    if kw.get("inspect_type") == "报废处置":
        record.pop("next_inspection_month")
    assert_envelope(post_json(client, "/api/v1/inspections", {"records": [record]}, inspector), 200)
    return record


def page_of(http, change) -> str:
    return http.get(f"/changes/{change.id}").get_data(as_text=True)


# --- 1. The sending unit's feed announces the cylinder that left ---------------------------


def test_the_sending_units_feed_returns_a_transferred_cylinder_once_marked_left_unit(
    client, people
):
    p = people
    leaving, staying = factories.make_cylinder(p.unit), factories.make_cylinder(p.unit)
    db.session.commit()  # numbered in the feed
    sender = token_for(factories.make_api_client(p.unit)[0])
    receiver = token_for(factories.make_api_client(p.other)[0])
    cursor = feed(client, sender)["cursor"]
    receiver_cursor = feed(client, receiver)["cursor"]

    transfer(p, leaving, p.unit_http, p.other, p.other_http)

    (left,) = feed(client, sender, cursor)["cylinders"]
    assert left["id"] == leaving.id and left["left_unit"] is True
    assert left["left_on"] == china_today().isoformat()
    assert left["use_unit_name"] == p.other.name
    assert left["district_code"] == p.other.district_code
    # The receiver gets the cylinder as its own, the sender's terminal drops it.
    (arrived,) = feed(client, receiver, receiver_cursor)["cylinders"]
    assert arrived["id"] == leaving.id and arrived["left_unit"] is False
    assert arrived["left_on"] is None
    assert codes(check(client, sender, leaving.id)) == {"NOT_OWNER"}
    # Cursor-stable: from the sender's new cursor nothing comes again.
    after = feed(client, sender, feed(client, sender, cursor)["cursor"])
    assert after["cylinders"] == [] and after["more"] is False
    # A terminal syncing from scratch sees its own cylinder and the departed one, once each.
    everything = feed(client, sender)["cylinders"]
    ours = [(c["id"], c["left_unit"]) for c in everything if c["id"] in (leaving.id, staying.id)]
    assert sorted(ours) == sorted([(staying.id, False), (leaving.id, True)])


def test_the_feed_pages_through_departures_in_change_order(client, people):
    p = people
    first, second = factories.make_cylinder(p.unit), factories.make_cylinder(p.unit)
    db.session.commit()
    sender = token_for(factories.make_api_client(p.unit)[0])
    cursor = feed(client, sender)["cursor"]
    transfer(p, first, p.unit_http, p.other, p.other_http)
    second.internal_no = "N-2"  # a later change of a cylinder that stays
    db.session.commit()
    seen = []
    while True:
        body = {"cursor": cursor, "limit": 1}
        data = assert_envelope(post_json(client, "/api/v1/cylinders/changes", body, sender), 200)[
            "data"
        ]
        seen += [(c["id"], c["left_unit"]) for c in data["cylinders"]]
        cursor = data["cursor"]
        if not data["more"]:
            break
    assert seen == [(first.id, True), (second.id, False)]


def test_a_cylinder_transferred_back_is_the_first_units_own_again_in_its_feed(client, people):
    p = people
    cylinder = factories.make_cylinder(p.unit)
    first = token_for(factories.make_api_client(p.unit)[0])
    second = token_for(factories.make_api_client(p.other)[0])
    cursor = feed(client, first)["cursor"]
    transfer(p, cylinder, p.unit_http, p.other, p.other_http)
    transfer(p, cylinder, p.other_http, p.unit, p.unit_http)
    (back,) = feed(client, first, cursor)["cylinders"]
    assert back["id"] == cylinder.id and back["left_unit"] is False
    assert back["use_unit_name"] == p.unit.name
    (gone,) = [c for c in feed(client, second)["cylinders"] if c["id"] == cylinder.id]
    assert gone["left_unit"] is True and gone["use_unit_name"] == p.unit.name


def test_the_openapi_document_describes_left_unit_in_the_changes_feed(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    text = str(spec["paths"]["/api/v1/cylinders/changes"])
    assert "left_unit" in text and "过户转出" in text
    docs = client.get("/api/docs").get_data(as_text=True)
    assert 'cylinder["left_unit"]' in docs


# --- 2. 撤回 -------------------------------------------------------------------------------


def test_the_unit_withdraws_a_request_before_acceptance_and_the_cylinder_is_free(people):
    p = people
    cylinder = factories.make_cylinder(p.unit)
    change = suspend(p, cylinder)
    page = page_of(p.unit_http, change)
    assert f'action="/changes/{change.id}/withdraw"' in page
    assert re.search(r'data-confirm="撤回该停用申请（1只气瓶）？', page)
    assert act(p.unit_http, change, "withdraw").status_code == 302
    change = refreshed(change)
    assert change.status is ChangeStatus.WITHDRAWN and change.withdrawn_by_id == p.applicant.id
    row = db.session.scalars(select(AuditLog).where(AuditLog.action == "change_withdrawn")).one()
    assert row.object_id == str(change.id)
    assert "使用单位撤回变更申请" in page_of(p.unit_http, change)
    assert "已撤回" in p.unit_http.get("/changes/").get_data(as_text=True)
    # Gone from the bureau's inbox; the cylinder can be named in a new request.
    assert change.number not in p.acceptor_http.get("/inbox?task=suspend-accept").get_data(
        as_text=True
    )
    assert suspend(p, cylinder).status is ChangeStatus.SUBMITTED
    db.session.refresh(cylinder)
    assert cylinder.status is CylinderStatus.IN_USE


def test_a_transfer_awaiting_the_receiver_can_be_withdrawn_by_the_sender_only(people):
    p = people
    cylinder = factories.make_cylinder(p.unit)
    change = submitted(
        submit(
            p.unit_http,
            "transfer",
            {"product_nos": cylinder.product_no, "target_credit_code": p.other.credit_code},
        )
    )
    assert "撤回申请" not in page_of(p.other_http, change)
    html = page_of(p.other_http, change)
    tried = p.other_http.post(
        f"/changes/{change.id}/withdraw",
        data={"csrf_token": csrf_token_from(html), "version": version_from(html)},
    )
    assert tried.status_code == 302
    assert refreshed(change).status is ChangeStatus.AWAITING_RECEIVER
    assert "只有提出申请的使用单位经办人才能撤回" in p.other_http.get(
        tried.headers["Location"]
    ).get_data(as_text=True)
    assert act(p.unit_http, change, "withdraw").status_code == 302
    assert refreshed(change).status is ChangeStatus.WITHDRAWN
    assert "接收确认任务" not in p.other_http.get("/").get_data(as_text=True)


def test_withdrawal_is_refused_once_the_bureau_accepted(people):
    p = people
    cylinder = factories.make_cylinder(p.unit)
    change = suspend(p, cylinder)
    html = page_of(p.unit_http, change)
    stale = {"csrf_token": csrf_token_from(html), "version": version_from(html)}
    assert act(p.acceptor_http, change, "accept").status_code == 302
    assert "撤回申请" not in page_of(p.unit_http, change)
    refused = p.unit_http.post(f"/changes/{change.id}/withdraw", data=stale)
    assert refused.status_code == 302
    shown = p.unit_http.get(refused.headers["Location"]).get_data(as_text=True)
    assert "由区县局受理，不能再撤回" in shown and "审批环节驳回" in shown
    assert refreshed(change).status is ChangeStatus.ACCEPTED


def test_a_withdrawal_from_a_stale_page_answers_409(people):
    p = people
    cylinder = factories.make_cylinder(p.unit)
    change = suspend(p, cylinder)
    html = page_of(p.unit_http, change)
    stale = {"csrf_token": csrf_token_from(html), "version": version_from(html)}
    assert p.unit_http.post(f"/changes/{change.id}/withdraw", data=stale).status_code == 302
    assert p.unit_http.post(f"/changes/{change.id}/withdraw", data=stale).status_code == 302
    assert refreshed(change).status is ChangeStatus.WITHDRAWN
    assert (
        db.session.scalar(select(db.func.count()).where(AuditLog.action == "change_withdrawn")) == 1
    )
    # An old version with the request still open: the version check answers 409.
    again = suspend(p, cylinder)
    html = page_of(p.unit_http, again)
    old = {"csrf_token": csrf_token_from(html), "version": str(again.version_id - 1)}
    assert p.unit_http.post(f"/changes/{again.id}/withdraw", data=old).status_code == 409
    assert refreshed(again).status is ChangeStatus.SUBMITTED


def test_a_cancel_task_opened_by_an_inspection_cannot_be_withdrawn_by_the_unit(client, people):
    p = people
    cylinder = factories.make_cylinder(p.unit)
    inspect(client, cylinder, inspect_type="报废处置", conclusion="判废")
    change = db.session.scalars(select(ChangeRequest)).one()
    assert change.origin is ChangeOrigin.INSPECTION
    assert "撤回申请" not in page_of(p.unit_http, change)
    token = csrf_token_from(p.unit_http.get("/changes/").get_data(as_text=True))
    response = p.unit_http.post(
        f"/changes/{change.id}/withdraw", data={"csrf_token": token, "version": change.version_id}
    )
    shown = p.unit_http.get(response.headers["Location"]).get_data(as_text=True)
    assert "不能撤回" in shown
    assert refreshed(change).status is ChangeStatus.SUBMITTED


# --- 3. A 判废 record for a cylinder held by another open request -------------------------


def test_a_scrap_record_during_a_pending_stop_is_shown_and_opens_the_cancel_when_it_ends(
    client, people
):
    p = people
    cylinder = factories.make_cylinder(p.unit)
    stop = suspend(p, cylinder)
    inspect(client, cylinder, inspect_type="报废处置", conclusion="判废", record_no="JY-2026-0042")
    inspect(  # the same record sent again
        client, cylinder, inspect_type="报废处置", conclusion="判废", record_no="JY-2026-0042"
    )
    assert db.session.scalars(select(ChangeRequest)).all() == [stop]
    warning = "检验机构已判废：记录编号JY-2026-0042"
    assert warning in page_of(p.acceptor_http, stop)
    assert warning in page_of(p.unit_http, stop)
    assert warning in p.acceptor_http.get("/inbox?task=suspend-accept").get_data(as_text=True)
    held = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "change_scrap_record_held")
    ).one()
    assert held.object_id == str(stop.id)
    # The archive took the inspection at once; the stop can no longer be approved.
    db.session.refresh(cylinder)
    assert cylinder.status is CylinderStatus.SCRAPPED
    assert reject(p.acceptor_http, stop, "气瓶已判废").status_code == 302
    cancel = db.session.scalars(
        select(ChangeRequest).where(ChangeRequest.kind == ChangeKind.CANCEL)
    ).one()
    assert cancel.origin is ChangeOrigin.INSPECTION and cancel.status is ChangeStatus.SUBMITTED
    assert cancel.inspection_record_id is not None
    assert cancel.number in p.acceptor_http.get("/inbox?task=cancel-accept").get_data(as_text=True)
    accept_and_approve(p, cancel)
    db.session.refresh(cylinder)
    assert cylinder.status is CylinderStatus.CANCELLED


def test_a_failed_inspection_during_a_request_the_unit_withdraws_opens_the_cancel(client, people):
    p = people
    cylinder = factories.make_cylinder(p.unit)
    stop = suspend(p, cylinder)
    inspect(client, cylinder, conclusion="不合格", record_no="JY-2026-0099")
    assert "检验机构已判废：记录编号JY-2026-0099" in page_of(p.unit_http, stop)
    assert act(p.unit_http, stop, "withdraw").status_code == 302
    cancel = db.session.scalars(
        select(ChangeRequest).where(ChangeRequest.kind == ChangeKind.CANCEL)
    ).one()
    assert cancel.status is ChangeStatus.SUBMITTED and cancel.unit_id == p.unit.id
    assert "尚未注销的气瓶已转入注销任务" in page_of(p.unit_http, stop)


def test_a_failed_inspection_after_acceptance_is_held_until_the_approver_rejects(client, people):
    p = people
    cylinder = factories.make_cylinder(p.unit)
    stop = suspend(p, cylinder)
    assert act(p.acceptor_http, stop, "accept").status_code == 302
    inspect(client, cylinder, conclusion="不合格", record_no="JY-2026-0100")
    # 不合格 made it 停用 already; the 停用 needs 在用, so the approval is refused …
    assert act(p.approver_http, stop, "approve").status_code == 302
    assert refreshed(stop).status is ChangeStatus.ACCEPTED
    # … and the 驳回 at 审批 frees the record's 注销 task.
    assert reject(p.approver_http, stop, "检验不合格，另行注销").status_code == 302
    assert db.session.scalar(
        select(ChangeRequest.id).where(
            ChangeRequest.kind == ChangeKind.CANCEL, ChangeRequest.status == ChangeStatus.SUBMITTED
        )
    )


# --- 4. The scrap-record list of a large unit ---------------------------------------------


def test_the_scrap_form_lists_the_units_newest_scrap_records_in_one_bounded_query(
    app, client, people
):
    p = people
    cylinders = [factories.make_cylinder(p.unit) for _ in range(60)]
    stranger = factories.make_cylinder(factories.make_unit("500112"))
    inspect(client, cylinders[0], conclusion="不合格", record_no="JY-OLD")
    inspect(client, stranger, conclusion="不合格", record_no="JY-STRANGER")
    statements: list[tuple[str, object]] = []

    def seen(_conn, _cursor, statement, parameters, _context, _many):
        if "inspection_records" in statement:
            statements.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        page = p.unit_http.get("/changes/new/cancel").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert f"{cylinders[0].id} " in page and f"{stranger.id} " not in page
    ids = [c.id for c in cylinders]
    # One query, with a LIMIT, that does not carry the unit's cylinder IDs.
    (statement, parameters) = statements[0]
    assert len(statements) == 1 and "LIMIT" in statement.upper()
    assert not any(cid in str(parameters) for cid in ids)


def test_a_scrap_record_of_another_cylinder_is_refused_for_the_request(client, people):
    p = people
    mine, other = factories.make_cylinder(p.unit), factories.make_cylinder(p.unit)
    inspect(client, other, inspect_type="报废处置", conclusion="判废")
    record_id = db.session.scalars(select(ChangeRequest.inspection_record_id)).one()
    response = submit(
        p.unit_http,
        "cancel",
        {"product_nos": mine.product_no, "inspection_record_id": str(record_id)},
    )
    shown = p.unit_http.get(response.headers["Location"]).get_data(as_text=True)
    assert "所选检验记录不是所选气瓶的判废检验记录" in shown
