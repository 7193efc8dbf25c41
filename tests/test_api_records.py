"""Interlock, filling/inspection/trace batches, idempotency, query and trail."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from regbackoffice import api_records
from regbackoffice.api_validation import today
from regbackoffice.extensions import db
from regbackoffice.models import (
    ApiRecordKey,
    AuditLog,
    CylinderStatus,
    FillingRecord,
    InspectionRecord,
    TraceEvent,
    utcnow,
)

from . import factories
from .api_helpers import assert_envelope, post_json, token_for


@pytest.fixture
def unit():
    return factories.make_unit()


@pytest.fixture
def api_client(unit):
    client, _ = factories.make_api_client(unit)
    return client


@pytest.fixture
def token(api_client):
    return token_for(api_client)


@pytest.fixture
def inspector_token():
    """A client of an inspection body (检验检测单位): the only kind that sends inspections."""
    body_unit = factories.make_unit(kind=factories.UnitKind.INSPECTION_BODY)
    inspector, _ = factories.make_api_client(body_unit, scopes=("inspection", "query"))
    return token_for(inspector)


def month(offset_months: int) -> str:
    d = today()
    total = d.year * 12 + d.month - 1 + offset_months
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def check(client, token, cylinder_id, medium="G13"):
    response = post_json(
        client, "/api/v1/fillings/check", {"id": cylinder_id, "medium_code": medium}, token
    )
    return assert_envelope(response, 200)["data"]


def codes(data) -> set[str]:
    return {r["code"] for r in data["reasons"]}


def filling(cylinder_id, **kw):
    record = {
        "medium_code": "G13",
        "filler": "张三",
        "fill_date": today().isoformat(),
        "filling_unit_name": "测试充装站",
        "id": cylinder_id,
    }
    record.update(kw)
    return record


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- Interlock --------------------------------------------------------------------------


def test_a_registered_cylinder_in_order_is_fillable(client, unit, token):
    cylinder = factories.make_cylinder(unit, next_inspection_month=month(6))
    data = check(client, token, cylinder.id)
    assert data == {"id": cylinder.id, "fillable": True, "reasons": []}


def test_interlock_not_registered(client, token):
    data = check(client, token, "CQ500112FFFFFFFFFF")
    assert not data["fillable"] and codes(data) == {"NOT_REGISTERED"}


def test_interlock_stopped_and_scrapped(client, unit, token):
    stopped = factories.make_cylinder(unit, status=CylinderStatus.STOPPED)
    scrapped = factories.make_cylinder(unit, status=CylinderStatus.SCRAPPED)
    assert codes(check(client, token, stopped.id)) == {"STATUS_STOPPED"}
    assert codes(check(client, token, scrapped.id)) == {"STATUS_SCRAPPED"}


def test_interlock_inspection_overdue_from_the_month_after_next_inspection(client, unit, token):
    overdue = factories.make_cylinder(unit, next_inspection_month=month(-1))
    due_this_month = factories.make_cylinder(unit, next_inspection_month=month(0))
    assert codes(check(client, token, overdue.id)) == {"INSPECTION_OVERDUE"}
    assert check(client, token, due_this_month.id)["fillable"]


def test_interlock_medium_mismatch(client, unit, token):
    cylinder = factories.make_cylinder(unit, medium_code="G13")
    data = check(client, token, cylinder.id, medium="G2")
    assert codes(data) == {"MEDIUM_MISMATCH"}
    assert "G2" in data["reasons"][0]["message"]


def test_interlock_not_owner(client, token):
    other_unit = factories.make_unit()
    cylinder = factories.make_cylinder(other_unit)
    assert codes(check(client, token, cylinder.id)) == {"NOT_OWNER"}


def test_interlock_service_life_of_welded_lpg_cylinders(client, unit, token):
    years_ago = today().year - 9
    old = factories.make_cylinder(
        unit,
        variety_code="2320",
        medium_code="G13",
        manufacture_month=f"{years_ago}-01",
        last_inspection_date=date(years_ago + 4, 1, 10),
    )
    assert codes(check(client, token, old.id)) == {"SERVICE_LIFE_EXCEEDED"}
    # Inspected after year 8: usable to year 12.
    reinspected = factories.make_cylinder(
        unit,
        variety_code="2320",
        medium_code="G13",
        manufacture_month=f"{years_ago}-01",
        last_inspection_date=date(years_ago + 8, 3, 1),
    )
    assert check(client, token, reinspected.id)["fillable"]
    very_old = factories.make_cylinder(
        unit,
        variety_code="2320",
        medium_code="G13",
        manufacture_month=f"{today().year - 13}-01",
        last_inspection_date=today() - timedelta(days=30),
    )
    assert codes(check(client, token, very_old.id)) == {"SERVICE_LIFE_EXCEEDED"}
    # A seamless cylinder of the same age is not covered by the rule.
    seamless = factories.make_cylinder(
        unit, variety_code="2310", medium_code="G13", manufacture_month=f"{years_ago}-01"
    )
    assert check(client, token, seamless.id)["fillable"]


def test_check_by_info_code_and_reasons_combine(client, unit, token):
    cylinder = factories.make_cylinder(unit, status=CylinderStatus.STOPPED)
    cylinder.info_code = "CQQ500112ABCDEF0123"
    db.session.flush()
    response = post_json(
        client,
        "/api/v1/fillings/check",
        {"info_code": cylinder.info_code, "medium_code": "G1"},
        token,
    )
    assert codes(assert_envelope(response, 200)["data"]) == {"STATUS_STOPPED", "MEDIUM_MISMATCH"}


@pytest.mark.parametrize("bad_id", ["CQ\x00NUL", "CQ\ud800LONE", "  ", "x" * 51])
def test_a_check_with_an_impossible_id_is_refused_as_such_not_a_server_error(
    client, unit, token, bad_id
):
    # The check reads the cylinder together with the token, before validating the body:
    # an ID PostgreSQL cannot even take must still be answered by the validation.
    body = {"id": bad_id, "medium_code": "G13"}
    data = assert_envelope(post_json(client, "/api/v1/fillings/check", body, token), 400)["data"]
    assert [e["field"] for e in data["errors"]] == ["id"]


def test_an_unknown_key_with_a_lone_surrogate_is_named_back_in_valid_json(client, unit, token):
    # JSON may carry "\udc00"; UTF-8 cannot: the answer that names the key escapes it.
    raw = b'{"id": "CQ1", "medium_code": "G13", "\\udc00x": 1}'
    response = client.post(
        "/api/v1/fillings/check",
        data=raw,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    data = assert_envelope(response, 400)["data"]
    assert data["errors"] == [{"field": "\udc00x", "message": "未知字段“\udc00x”"}]


# --- Fillings ---------------------------------------------------------------------------


def test_fillings_are_stored_and_violations_kept_with_their_reasons(client, unit, token):
    good = factories.make_cylinder(unit)
    scrapped = factories.make_cylinder(unit, status=CylinderStatus.SCRAPPED)
    records = [filling(good.id), filling(scrapped.id), filling("CQ500112BLACKMARKET")]
    response = post_json(client, "/api/v1/fillings", {"records": records}, token)
    data = assert_envelope(response, 200)["data"]
    assert (data["accepted"], data["duplicates"], data["rejected"]) == (3, 0, 0)
    assert [r["violation"] for r in data["results"]] == [False, True, True]
    assert data["results"][2]["reasons"][0]["code"] == "NOT_REGISTERED"
    stored = {
        r.cylinder_id: r
        for r in db.session.scalars(
            select(FillingRecord).where(FillingRecord.cylinder_id.in_([r["id"] for r in records]))
        )
    }
    assert stored[scrapped.id].violation_reasons == ["STATUS_SCRAPPED"]
    assert stored["CQ500112BLACKMARKET"].violation_reasons == ["NOT_REGISTERED"]
    # Visible to supervisors: listed as 违规充装.
    listed = {r.cylinder_id for r in api_records.violations()}
    assert {scrapped.id, "CQ500112BLACKMARKET"} <= listed and good.id not in listed
    # And in the cylinder's trail.
    trail = post_json(client, "/api/v1/cylinders/trail", {"id": scrapped.id}, token)
    fillings = assert_envelope(trail, 200)["data"]["fillings"]
    assert fillings[0]["violation"] and fillings[0]["violation_reasons"] == ["STATUS_SCRAPPED"]


def test_a_batch_writes_its_audit_row_with_its_counts_in_its_own_transaction(
    client, unit, token, api_client
):
    good = factories.make_cylinder(unit)
    scrapped = factories.make_cylinder(unit, status=CylinderStatus.SCRAPPED)
    records = [
        filling(good.id, record_no="A-1"),
        filling(scrapped.id, record_no="A-2"),
        filling(good.id, record_no="A-1"),
        filling(good.id, fill_date="1999-12-31"),
    ]
    response = post_json(client, "/api/v1/fillings", {"records": records}, token)
    assert_envelope(response, 200)
    row = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "api_call").order_by(AuditLog.id.desc())
    ).first()
    assert (row.actor_type, row.actor_id, row.outcome) == ("api_client", api_client.id, "ok")
    assert row.detail == {
        "path": "/api/v1/fillings",
        "status": 200,
        "records": 4,
        "accepted": 2,
        "duplicates": 1,
        "rejected": 1,
        "violations": 1,
    }
    # Its keys, rows and audit row were one transaction: all three are there.
    assert count(ApiRecordKey) == 2 and count(FillingRecord) == 2


def test_a_filling_for_another_units_cylinder_is_a_not_owner_violation(client, token):
    cylinder = factories.make_cylinder(factories.make_unit())
    response = post_json(client, "/api/v1/fillings", {"records": [filling(cylinder.id)]}, token)
    result = assert_envelope(response, 200)["data"]["results"][0]
    assert [r["code"] for r in result["reasons"]] == ["NOT_OWNER"]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"fill_date": "2026-02-30"}, "fill_date", "不是有效日期"),
        ({"fill_date": "2026/01/05"}, "fill_date", "yyyy-mm-dd"),
        ({"fill_date": (date.today() + timedelta(days=3)).isoformat()}, "fill_date", "将来"),
        ({"medium_code": "G99"}, "medium_code", "不是充装介质编码"),
        ({"filler": "一二三四五六七八九十十一"}, "filler", "超过10个字符"),
        ({"filler": 12345}, "filler", "应为字符串"),
        ({"filling_unit_name": ["a"]}, "filling_unit_name", "应为字符串"),
        ({"id": "x" * 51}, "id", "超过50个字符"),
        ({"id": None}, "id", "缺少ID"),
        ({"colour": "red"}, "colour", "未知字段"),
    ],
)
def test_invalid_fillings_are_answered_per_field_and_not_stored(
    client, unit, token, overrides, field, words
):
    cylinder = factories.make_cylinder(unit)
    before = count(FillingRecord)
    records = [filling(cylinder.id, **overrides), filling(cylinder.id)]
    response = post_json(client, "/api/v1/fillings", {"records": records}, token)
    data = assert_envelope(response, 200)["data"]
    assert (data["accepted"], data["rejected"]) == (1, 1)
    bad = data["results"][0]
    assert bad["code"] == "400" and words in bad["message"]
    assert any(e["field"] == field and words in e["message"] for e in bad["errors"])
    assert count(FillingRecord) == before + 1


def test_a_batch_over_500_or_not_a_list_is_refused_whole(client, unit, token):
    before = count(FillingRecord)
    big = {"records": [filling("CQ1")] * 501}
    assert (
        "500" in assert_envelope(post_json(client, "/api/v1/fillings", big, token), 400)["message"]
    )
    wrong = assert_envelope(post_json(client, "/api/v1/fillings", {"records": "x"}, token), 400)
    assert wrong["data"]["errors"][0]["field"] == "records"
    assert count(FillingRecord) == before


def test_duplicates_by_record_no_are_stored_once(client, unit, token):
    cylinder = factories.make_cylinder(unit)
    first = [filling(cylinder.id, record_no="R-1"), filling(cylinder.id, record_no="R-1")]
    data = assert_envelope(post_json(client, "/api/v1/fillings", {"records": first}, token), 200)[
        "data"
    ]
    assert (data["accepted"], data["duplicates"]) == (1, 1)
    again = [filling(cylinder.id, record_no="R-1"), filling(cylinder.id, record_no="R-2")]
    data = assert_envelope(post_json(client, "/api/v1/fillings", {"records": again}, token), 200)[
        "data"
    ]
    # The re-sent R-1 is answered with its first answer, flagged as a replay.
    assert [r["code"] for r in data["results"]] == ["200", "200"]
    assert [r.get("replay", False) for r in data["results"]] == [True, False]
    assert (data["accepted"], data["duplicates"]) == (1, 1)
    stored = db.session.scalar(select(func.count()).where(FillingRecord.cylinder_id == cylinder.id))
    assert stored == 2


def test_a_resent_filling_is_answered_with_its_first_verdict_and_its_words(client, unit, token):
    cylinder = factories.make_cylinder(unit)
    batch = {
        "records": [
            filling(cylinder.id, record_no="W-1"),
            filling(cylinder.id, record_no="W-2", medium_code="G1"),  # not its medium
        ]
    }
    first = assert_envelope(post_json(client, "/api/v1/fillings", batch, token), 200)["data"]
    assert [r["violation"] for r in first["results"]] == [False, True]
    again = assert_envelope(post_json(client, "/api/v1/fillings", batch, token), 200)["data"]
    assert again["duplicates"] == 2
    for earlier, replay in zip(first["results"], again["results"], strict=True):
        assert replay["replay"] is True and replay["record_no"] == earlier["record_no"]
        assert (replay["violation"], replay.get("reasons")) == (
            earlier["violation"],
            earlier.get("reasons"),
        )
        assert replay["message"].endswith(f"首次答复：{earlier['message']}")
    assert first["results"][1]["message"].startswith("已接收，记为违规充装：充装介质G1")
    # The key keeps the verdict; the words its reasons spell out are made again from them.
    kept = db.session.scalar(
        select(ApiRecordKey.answer).where(
            ApiRecordKey.record_no == "W-2", ApiRecordKey.kind == "filling"
        )
    )
    assert kept == {
        "code": "200",
        "violation": True,
        "reasons": first["results"][1]["reasons"],
    }


def test_a_batch_with_an_accepted_record_marks_when_the_client_last_sent_data(
    client, unit, api_client, token
):
    # 最近数据 on the admin's 接口客户端 page: written at most once a minute per client.
    cylinder = factories.make_cylinder(unit)
    refused = {"records": [filling(cylinder.id, fill_date="1999-01-01")]}
    assert_envelope(post_json(client, "/api/v1/fillings", refused, token), 200)
    db.session.refresh(api_client)
    assert api_client.last_data_at is None  # nothing was accepted
    good = {"records": [filling(cylinder.id)]}
    assert_envelope(post_json(client, "/api/v1/fillings", good, token), 200)
    db.session.refresh(api_client)
    first = api_client.last_data_at
    assert first is not None and utcnow() - first < timedelta(minutes=1)
    assert_envelope(post_json(client, "/api/v1/fillings", good, token), 200)
    db.session.refresh(api_client)
    assert api_client.last_data_at == first  # within the minute: the row is not rewritten


def test_record_no_is_per_client(client, unit, token):
    cylinder = factories.make_cylinder(unit)
    other, _ = factories.make_api_client(unit)
    body = {"records": [filling(cylinder.id, record_no="SAME")]}
    assert (
        assert_envelope(post_json(client, "/api/v1/fillings", body, token), 200)["data"]["accepted"]
        == 1
    )
    other_token = token_for(other)
    assert (
        assert_envelope(post_json(client, "/api/v1/fillings", body, other_token), 200)["data"][
            "accepted"
        ]
        == 1
    )


def test_idempotency_key_replays_the_first_answer_and_refuses_a_different_body(client, unit, token):
    cylinder = factories.make_cylinder(unit)
    body = {"records": [filling(cylinder.id), filling(cylinder.id, filler="李四")]}
    first = post_json(client, "/api/v1/fillings", body, token, **{"Idempotency-Key": "k-1"})
    first_data = assert_envelope(first, 200)["data"]
    assert first_data["accepted"] == 2
    retry = post_json(client, "/api/v1/fillings", body, token, **{"Idempotency-Key": "k-1"})
    data = assert_envelope(retry, 200)["data"]
    assert data == {**first_data, "replay": True}
    assert retry.headers["Idempotent-Replayed"] == "true"
    stored = db.session.scalar(select(func.count()).where(FillingRecord.cylinder_id == cylinder.id))
    assert stored == 2
    changed = {"records": [filling(cylinder.id, filler="王五")]}
    conflict = post_json(client, "/api/v1/fillings", changed, token, **{"Idempotency-Key": "k-1"})
    assert "Idempotency-Key" in assert_envelope(conflict, 409)["message"]


# --- Inspections ------------------------------------------------------------------------


def months_after(day: date, months: int) -> str:
    total = day.year * 12 + day.month - 1 + months
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def inspection(cylinder_id, **kw):
    inspected = today() - timedelta(days=2)
    record = {
        "inspect_date": inspected.isoformat(),
        "inspection_org": "重庆市特种设备检测研究院",
        # 2320 + G13 (the factory's cylinder): every 4 years.
        "next_inspection_month": months_after(inspected, 48),
        "conclusion": "合格",
        "inspect_type": "定期",
        "id": cylinder_id,
    }
    record.update(kw)
    return record


def test_periodic_inspection_updates_the_archive(client, unit):
    cylinder = factories.make_cylinder(unit, next_inspection_month=month(-2))
    body_unit = factories.make_unit(kind=factories.UnitKind.INSPECTION_BODY)
    inspector, _ = factories.make_api_client(body_unit, scopes=("inspection",))
    token = token_for(inspector)
    response = post_json(
        client, "/api/v1/inspections", {"records": [inspection(cylinder.id)]}, token
    )
    assert assert_envelope(response, 200)["data"]["accepted"] == 1
    db.session.refresh(cylinder)
    assert cylinder.last_inspection_date == today() - timedelta(days=2)
    assert cylinder.next_inspection_month == months_after(today() - timedelta(days=2), 48)


def test_scrapping_inspection_sets_status_scrapped(client, unit, token, inspector_token):
    cylinder = factories.make_cylinder(unit)
    record = inspection(cylinder.id, inspect_type="报废处置", conclusion="报废")
    record.pop("next_inspection_month")
    assert_envelope(
        post_json(client, "/api/v1/inspections", {"records": [record]}, inspector_token), 200
    )
    db.session.refresh(cylinder)
    assert cylinder.status is CylinderStatus.SCRAPPED
    assert codes(check(client, token, cylinder.id)) == {"STATUS_SCRAPPED"}


def test_failed_inspection_stops_the_cylinder(client, unit, token, inspector_token):
    cylinder = factories.make_cylinder(unit)
    record = inspection(cylinder.id, conclusion="不合格")
    record.pop("next_inspection_month")
    data = assert_envelope(
        post_json(client, "/api/v1/inspections", {"records": [record]}, inspector_token), 200
    )["data"]
    assert "停用" in data["results"][0]["message"]
    db.session.refresh(cylinder)
    assert cylinder.status is CylinderStatus.STOPPED


def test_an_older_inspection_does_not_roll_the_archive_back(client, unit, token, inspector_token):
    cylinder = factories.make_cylinder(unit, last_inspection_date=today() - timedelta(days=10))
    before = cylinder.next_inspection_month
    old = inspection(cylinder.id, inspect_date=(today() - timedelta(days=400)).isoformat())
    assert_envelope(
        post_json(client, "/api/v1/inspections", {"records": [old]}, inspector_token), 200
    )
    db.session.refresh(cylinder)
    assert cylinder.next_inspection_month == before


def test_inspection_of_an_unknown_cylinder_or_without_next_month_is_rejected(
    client, unit, token, inspector_token
):
    cylinder = factories.make_cylinder(unit)
    no_next = inspection(cylinder.id)
    no_next.pop("next_inspection_month")
    records = [
        inspection("CQ-UNKNOWN"),
        no_next,
        inspection(cylinder.id, next_inspection_month="2030-13"),
    ]
    data = assert_envelope(
        post_json(client, "/api/v1/inspections", {"records": records}, inspector_token), 200
    )["data"]
    assert data["rejected"] == 3
    assert count(InspectionRecord) == 0


# --- Traces, query, trail ---------------------------------------------------------------


def test_traces_and_the_trail_newest_first(client, unit, token):
    cylinder = factories.make_cylinder(unit)
    day = today() - timedelta(days=5)
    events = [
        {
            "time": f"{day.isoformat()} 08:00:00",
            "node": "充装",
            "actor": "充装站",
            "id": cylinder.id,
        },
        {
            "time": f"{day.isoformat()} 15:30:00",
            "node": "配送",
            "actor": "王师傅",
            "id": cylinder.id,
        },
        {
            "time": f"{day.isoformat()} 25:00:00",
            "node": "配送",
            "actor": "王师傅",
            "id": cylinder.id,
        },
        {
            "time": f"{day.isoformat()} 09:00:00",
            "node": "维修",
            "actor": "王师傅",
            "id": cylinder.id,
        },
    ]
    data = assert_envelope(post_json(client, "/api/v1/traces", {"records": events}, token), 200)[
        "data"
    ]
    assert (data["accepted"], data["rejected"]) == (2, 2)
    fills = [
        filling(cylinder.id, fill_date=(today() - timedelta(days=9)).isoformat()),
        filling(cylinder.id, fill_date=(today() - timedelta(days=1)).isoformat()),
    ]
    assert_envelope(post_json(client, "/api/v1/fillings", {"records": fills}, token), 200)
    trail = assert_envelope(
        post_json(client, "/api/v1/cylinders/trail", {"id": cylinder.id}, token), 200
    )["data"]
    assert trail["cylinder"]["id"] == cylinder.id
    assert [t["node"] for t in trail["traces"]] == ["配送", "充装"]
    assert trail["traces"][0]["time"] == f"{day.isoformat()} 15:30:00"
    assert [f["fill_date"] for f in trail["fillings"]] == [
        (today() - timedelta(days=1)).isoformat(),
        (today() - timedelta(days=9)).isoformat(),
    ]
    assert count(TraceEvent) >= 2


def test_query_by_id_identity_and_qr_content(client, unit, token):
    cylinder = factories.make_cylinder(unit, qr_content="https://trace.example.invalid/q/abc")
    by_id = assert_envelope(
        post_json(client, "/api/v1/cylinders/query", {"id": cylinder.id}, token), 200
    )["data"]
    assert by_id["status"] == "在用" and by_id["volume_l"] == 35.5
    triple = {
        "manufacturer": cylinder.manufacturer,
        "product_no": cylinder.product_no,
        "manufacture_month": cylinder.manufacture_month,
    }
    assert (
        assert_envelope(post_json(client, "/api/v1/cylinders/query", triple, token), 200)["data"][
            "id"
        ]
        == cylinder.id
    )
    qr = {"qr_content": cylinder.qr_content}
    assert (
        assert_envelope(post_json(client, "/api/v1/cylinders/query", qr, token), 200)["data"]["id"]
        == cylinder.id
    )
    missing = post_json(client, "/api/v1/cylinders/query", {"manufacturer": "x"}, token)
    assert assert_envelope(missing, 400)["data"]["errors"]
    bad_month = dict(triple, manufacture_month="2022-5")
    assert_envelope(post_json(client, "/api/v1/cylinders/query", bad_month, token), 400)


def test_violations_are_visible_to_supervisors_and_the_districts_concerned(client, unit, token):
    from regbackoffice.access import visible
    from regbackoffice.models import Role

    scrapped = factories.make_cylinder(unit, status=CylinderStatus.SCRAPPED)
    records = [filling(scrapped.id), filling("CQ500112UNKNOWN01")]
    assert_envelope(post_json(client, "/api/v1/fillings", {"records": records}, token), 200)
    violations = visible(FillingRecord, factories.make_user(Role.SUPERVISOR)).where(
        FillingRecord.violation.is_(True)
    )
    assert {r.cylinder_id for r in db.session.scalars(violations)} >= {
        scrapped.id,
        "CQ500112UNKNOWN01",
    }
    # 渝北区 (the cylinder's and the filling station's district) sees both; 江北区 neither.
    yubei = factories.make_user(Role.ACCEPTOR, district_code="500112")
    jiangbei = factories.make_user(Role.ACCEPTOR, district_code="500105")
    seen = {r.cylinder_id for r in db.session.scalars(visible(FillingRecord, yubei))}
    assert {scrapped.id, "CQ500112UNKNOWN01"} <= seen
    assert not db.session.scalars(
        visible(FillingRecord, jiangbei).where(FillingRecord.cylinder_id == scrapped.id)
    ).all()


def test_the_trail_masks_names_sent_by_other_clients(client, unit, token):
    cylinder = factories.make_cylinder(unit)
    record = filling(cylinder.id, filler="张三丰")
    assert_envelope(post_json(client, "/api/v1/fillings", {"records": [record]}, token), 200)
    own = post_json(client, "/api/v1/cylinders/trail", {"id": cylinder.id}, token)
    assert assert_envelope(own, 200)["data"]["fillings"][0]["filler"] == "张三丰"
    other, _ = factories.make_api_client(factories.make_unit(), scopes=("query",))
    seen = post_json(client, "/api/v1/cylinders/trail", {"id": cylinder.id}, token_for(other))
    assert assert_envelope(seen, 200)["data"]["fillings"][0]["filler"] == "张**"


# --- Record quota -----------------------------------------------------------------------


def test_a_client_over_its_record_quota_gets_429_with_retry_after_and_nothing_stored(
    app, client, unit, token
):
    other_client, _ = factories.make_api_client(factories.make_unit())
    other = token_for(other_client)
    unknown = [filling(f"CQ-UNKNOWN-{n}") for n in range(3)]
    configured = app.config["API_RECORD_RATE_LIMIT"]
    app.config["API_RECORD_RATE_LIMIT"] = "5 per minute"
    try:
        first = post_json(client, "/api/v1/fillings", {"records": unknown}, token)
        assert assert_envelope(first, 200)["data"]["accepted"] == 3
        stored = count(FillingRecord)
        second = post_json(client, "/api/v1/fillings", {"records": unknown}, token)
        answer = assert_envelope(second, 429)
        assert "超过本接口客户端的限额（5 per minute）" in answer["message"]
        assert 1 <= int(second.headers["Retry-After"]) <= 60
        assert count(FillingRecord) == stored  # the refused batch stored nothing
        # Another client's quota is its own.
        third = post_json(client, "/api/v1/fillings", {"records": unknown[:2]}, other)
        assert assert_envelope(third, 200)["data"]["accepted"] == 2
    finally:
        app.config["API_RECORD_RATE_LIMIT"] = configured
