"""Records that tell the truth (issue 16), through the HTTP API on PostgreSQL.

Inspection intervals and service life, dates that cannot be, late uploads judged as of
their own date, replays answered with the first answer, conflicting lookup keys, the
black-market read-back, who may scrap, and the changes feed.
"""

from __future__ import annotations

from datetime import date, timedelta

import jsonschema_rs
import pytest
from sqlalchemy import func, select

from regbackoffice import api_clients, inspection_rules
from regbackoffice.api_validation import today
from regbackoffice.extensions import db
from regbackoffice.models import CylinderStatus, FillingRecord, InspectionRecord, UnitKind

from . import factories
from .api_helpers import assert_envelope, png_base64, post_json, token_for
from .test_api_records import check, codes, filling, inspection, months_after


@pytest.fixture
def unit():
    return factories.make_unit()


@pytest.fixture
def token(unit):
    client, _ = factories.make_api_client(unit)
    return token_for(client)


@pytest.fixture
def inspector_token():
    body_unit = factories.make_unit(kind=UnitKind.INSPECTION_BODY)
    inspector, _ = factories.make_api_client(body_unit, scopes=("inspection", "query"))
    return token_for(inspector)


def send(client, path, records, token, **headers):
    response = post_json(client, path, {"records": records}, token, **headers)
    return assert_envelope(response, 200)["data"]


# --- Inspection intervals (TSG 23-2021, DESIGN 12) ---------------------------------------


def test_lpg_next_inspection_beyond_four_years_is_refused_naming_the_interval(
    client, unit, inspector_token
):
    cylinder = factories.make_cylinder(unit, next_inspection_month="2027-01")
    inspected = today() - timedelta(days=3)
    too_late = inspection(cylinder.id, next_inspection_month=months_after(inspected, 12 * 99))
    data = send(client, "/api/v1/inspections", [too_late], inspector_token)
    (result,) = data["results"]
    assert result["code"] == "400"
    assert result["errors"][0]["field"] == "next_inspection_month"
    assert "4年" in result["message"] and "检验周期" in result["message"]
    assert db.session.scalar(select(func.count()).select_from(InspectionRecord)) == 0
    db.session.refresh(cylinder)
    assert cylinder.next_inspection_month == "2027-01"  # the interlock keeps working

    in_time = inspection(cylinder.id, next_inspection_month=months_after(inspected, 48))
    assert send(client, "/api/v1/inspections", [in_time], inspector_token)["accepted"] == 1


@pytest.mark.parametrize(
    ("variety", "medium", "years"),
    [
        ("2310", "G9", 2),  # corrosive: chlorine
        ("2320", "G10", 2),  # corrosive: ammonia
        ("2310", "G2", 5),  # compressed inert gas in a seamless cylinder
        ("23T0", "G2", 3),  # the same gas in a special cylinder: not the 5-year row
        ("23T0", "G7", 3),  # cryogenic liquid nitrogen in 低温绝热气瓶
        ("2320", "G16", 4),  # propane in an LPG-type welded cylinder
        ("2310", "G16", 3),  # propane otherwise
        ("2310", "G1", 3),  # others
    ],
)
def test_the_interval_is_keyed_by_variety_and_medium_together(
    client, unit, inspector_token, variety, medium, years
):
    cylinder = factories.make_cylinder(unit, variety_code=variety, medium_code=medium)
    inspected = today() - timedelta(days=3)
    at_limit = inspection(cylinder.id, next_inspection_month=months_after(inspected, 12 * years))
    one_more = inspection(
        cylinder.id, next_inspection_month=months_after(inspected, 12 * years + 1)
    )
    data = send(client, "/api/v1/inspections", [one_more, at_limit], inspector_token)
    assert [r["code"] for r in data["results"]] == ["400", "200"]
    assert f"{years}年" in data["results"][0]["message"]


def test_never_inspected_cylinders_count_from_the_manufacture_month():
    error = inspection_rules.next_inspection_error("2320", "G13", "2024-03", None, "2028-04")
    assert error is not None and "制造年月2024-03" in error and "2028-03" in error
    assert inspection_rules.next_inspection_error("2320", "G13", "2024-03", None, "2028-03") is None
    assert inspection_rules.next_inspection_error("2320", "G13", "2024-03", None, None) is None


def test_the_interval_table_is_configurable(app, client, unit, inspector_token, monkeypatch):
    rules = [{"variety": None, "media": None, "years": 1, "label": "试行", "source": "test"}]
    monkeypatch.setitem(app.config, "INSPECTION_INTERVAL_RULES", rules)
    cylinder = factories.make_cylinder(unit)
    inspected = today() - timedelta(days=3)
    record = inspection(cylinder.id, next_inspection_month=months_after(inspected, 24))
    result = send(client, "/api/v1/inspections", [record], inspector_token)["results"][0]
    assert result["code"] == "400" and "1年" in result["message"]


def test_every_interval_row_records_its_source():
    for rule in inspection_rules.DEFAULT_INSPECTION_INTERVAL_RULES:
        assert rule["source"] and "TSG 23-2021" in rule["source"]


# --- Service life ------------------------------------------------------------------------


def test_service_life_error_uses_the_interlock_rule_and_the_cylinders_own_design_life():
    on = date(2026, 12, 1)
    # 2320/G13 past 12 years: refused whatever the inspections.
    assert "12年" in inspection_rules.service_life_error("2320", "G13", "2014-06", on)
    # Past 8 years without an inspection after year 8: refused, naming 8 years.
    assert "8年" in inspection_rules.service_life_error("2320", "G13", "2018-06", on)
    assert (
        inspection_rules.service_life_error(
            "2320", "G13", "2018-06", on, last_inspection_date=date(2026, 7, 1)
        )
        is None
    )
    # No table row, but the cylinder's own 设计使用年限.
    assert inspection_rules.service_life_error("2310", "G1", "2020-01", on) is None
    assert "5年" in inspection_rules.service_life_error(
        "2310", "G1", "2020-01", on, design_life_years=5
    )


def test_the_interlock_honours_a_cylinders_design_life(client, unit, token):
    cylinder = factories.make_cylinder(
        unit, variety_code="2310", medium_code="G1", manufacture_month="2015-01"
    )
    assert "SERVICE_LIFE_EXCEEDED" not in codes(check(client, token, cylinder.id, "G1"))
    cylinder.design_life_years = 10
    db.session.flush()
    assert "SERVICE_LIFE_EXCEEDED" in codes(check(client, token, cylinder.id, "G1"))


# --- Dates that cannot be ----------------------------------------------------------------


def test_fillings_before_manufacture_or_before_2000_are_refused_per_record(client, unit, token):
    cylinder = factories.make_cylinder(unit, manufacture_month="2022-05")
    records = [
        filling(cylinder.id, fill_date="2022-04-30"),
        filling("CQ-NOT-IN-ARCHIVE", fill_date="1999-12-31"),
        filling(cylinder.id, fill_date="2022-05-01"),
    ]
    data = send(client, "/api/v1/fillings", records, token)
    assert [r["code"] for r in data["results"]] == ["400", "400", "200"]
    assert "制造年月2022-05" in data["results"][0]["message"]
    assert "2000年" in data["results"][1]["message"]
    stored = db.session.scalar(select(func.count()).where(FillingRecord.cylinder_id == cylinder.id))
    assert stored == 1


def test_a_trace_event_before_manufacture_is_refused(client, unit, token):
    cylinder = factories.make_cylinder(unit, manufacture_month="2022-05")
    before = {"time": "2022-04-30 23:00:00", "node": "配送", "actor": "王", "id": cylinder.id}
    after = {**before, "time": "2022-05-01 08:00:00"}
    data = send(client, "/api/v1/traces", [before, after], token)
    assert [r["code"] for r in data["results"]] == ["400", "200"]
    assert data["results"][0]["errors"][0]["field"] == "time"


@pytest.mark.parametrize(
    "fill_date",
    [
        "٢٠٢٦-١١-١٠",  # Arabic-Indic digits
        "２０２６-１１-１０",  # full-width digits
        "0000-01-01",
        "2026-11-10\n",
    ],
)
def test_api_dates_take_ascii_digits_only(client, unit, token, fill_date):
    cylinder = factories.make_cylinder(unit)
    data = send(client, "/api/v1/fillings", [filling(cylinder.id, fill_date=fill_date)], token)
    assert data["results"][0]["code"] == "400"
    assert data["results"][0]["errors"][0]["field"] == "fill_date"


def test_a_manufacture_month_in_other_digits_is_refused_in_lookups(client, unit, token):
    body = {"manufacturer": "测试气瓶制造厂", "product_no": "P1", "manufacture_month": "٢٠٢٢-٠٥"}
    response = post_json(client, "/api/v1/cylinders/query", body, token)
    assert assert_envelope(response, 400)["data"]["errors"][0]["field"] == "manufacture_month"


# --- Late uploads judged as of the fill date ---------------------------------------------


def test_a_fill_sent_after_a_later_scrapping_is_judged_as_of_its_date(
    client, unit, token, inspector_token
):
    cylinder = factories.make_cylinder(unit, next_inspection_month=months_after(today(), 12))
    scrapped_on = today() - timedelta(days=15)
    scrap = inspection(cylinder.id, inspect_type="报废处置", conclusion="报废")
    scrap.pop("next_inspection_month")
    scrap["inspect_date"] = scrapped_on.isoformat()
    send(client, "/api/v1/inspections", [scrap], inspector_token)

    before = filling(cylinder.id, fill_date=(scrapped_on - timedelta(days=15)).isoformat())
    after = filling(cylinder.id, fill_date=(scrapped_on + timedelta(days=1)).isoformat())
    data = send(client, "/api/v1/fillings", [before, after], token)
    assert data["results"][0]["violation"] is False
    assert data["results"][1]["violation"] is True
    assert [r["code"] for r in data["results"][1]["reasons"]] == ["STATUS_SCRAPPED"]
    # The interlock today still refuses it.
    assert "STATUS_SCRAPPED" in codes(check(client, token, cylinder.id))


# --- A replay gets the first answer ------------------------------------------------------


def test_a_resent_record_no_gets_the_first_answer_with_its_violation(client, unit, token):
    cylinder = factories.make_cylinder(unit, status=CylinderStatus.STOPPED)
    record = filling(cylinder.id, record_no="LOST-REPLY-1")
    first = send(client, "/api/v1/fillings", [record], token)["results"][0]
    assert first["violation"] is True
    again = send(client, "/api/v1/fillings", [record], token)
    (replayed,) = again["results"]
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    assert replayed["replay"] is True
    assert replayed["code"] == first["code"] == "200"
    assert replayed["violation"] is True
    assert replayed["reasons"] == first["reasons"]
    assert first["message"] in replayed["message"]
    stored = db.session.scalar(select(func.count()).where(FillingRecord.cylinder_id == cylinder.id))
    assert stored == 1


def test_a_refused_record_does_not_use_up_its_record_no(client, unit, token):
    cylinder = factories.make_cylinder(unit, manufacture_month="2022-05")
    wrong = filling(cylinder.id, record_no="FIX-ME", fill_date="2021-01-01")
    assert send(client, "/api/v1/fillings", [wrong], token)["results"][0]["code"] == "400"
    fixed = filling(cylinder.id, record_no="FIX-ME")
    data = send(client, "/api/v1/fillings", [fixed], token)
    assert data["accepted"] == 1 and "replay" not in data["results"][0]


def test_an_idempotency_key_replay_answers_the_first_violations(client, unit, token):
    cylinder = factories.make_cylinder(unit, status=CylinderStatus.SCRAPPED)
    records = [filling(cylinder.id), filling("CQ-BLACK-77")]
    first = send(client, "/api/v1/fillings", records, token, **{"Idempotency-Key": "lost-1"})
    again = send(client, "/api/v1/fillings", records, token, **{"Idempotency-Key": "lost-1"})
    assert first["replay"] is False and again["replay"] is True
    assert again["results"] == first["results"]
    assert [r["reasons"][0]["code"] for r in again["results"]] == [
        "STATUS_SCRAPPED",
        "NOT_REGISTERED",
    ]


# --- Conflicting keys --------------------------------------------------------------------


def test_lookup_keys_naming_different_cylinders_are_refused(client, unit, token):
    one = factories.make_cylinder(unit)
    other = factories.make_cylinder(unit)
    one.info_code, other.info_code = "CQQ500112AAAAAAAAA1", "CQQ500112AAAAAAAAA2"
    db.session.flush()
    conflicting = {"id": one.id, "info_code": other.info_code}
    for path, extra in (
        ("/api/v1/cylinders/query", {}),
        ("/api/v1/cylinders/trail", {}),
        ("/api/v1/fillings/check", {"medium_code": "G13"}),
    ):
        response = post_json(client, path, {**conflicting, **extra}, token)
        payload = assert_envelope(response, 400)
        assert one.id in payload["message"] and other.id in payload["message"]
    unknown = post_json(
        client, "/api/v1/cylinders/query", {"id": one.id, "info_code": "CQQ-NOBODY"}, token
    )
    assert "不存在的气瓶" in assert_envelope(unknown, 400)["message"]
    agreeing = post_json(
        client, "/api/v1/cylinders/query", {"id": one.id, "info_code": one.info_code}, token
    )
    assert assert_envelope(agreeing, 200)["data"]["id"] == one.id


def test_binding_with_an_id_and_a_triple_of_different_cylinders_is_refused(client, unit, token):
    one = factories.make_cylinder(unit, tag_type=None, qr_content=None)
    other = factories.make_cylinder(unit, tag_type=None, qr_content=None)
    body = {
        "id": one.id,
        "manufacturer": other.manufacturer,
        "product_no": other.product_no,
        "manufacture_month": other.manufacture_month,
        "tag_type": "RFID标签",
        "rfid": "RFID-CONFLICT-1",
        "stamp_photo": png_base64(),
    }
    assert_envelope(post_json(client, "/api/v1/tags/bind", body, token), 400)


# --- Black-market reads -------------------------------------------------------------------


def test_a_platform_reads_back_what_it_sent_under_an_unknown_id(client, unit, token):
    black = "CQ-BLACK-0001"
    data = send(client, "/api/v1/fillings", [filling(black)], token)
    assert data["results"][0]["reasons"][0]["code"] == "NOT_REGISTERED"
    trail = assert_envelope(post_json(client, "/api/v1/cylinders/trail", {"id": black}, token), 200)
    assert trail["data"]["cylinder"] is None
    assert [f["violation_reasons"] for f in trail["data"]["fillings"]] == [["NOT_REGISTERED"]]
    assert "NOT_REGISTERED" in trail["message"]
    # Another unit does not see them; an ID nobody sent is still 404.
    stranger, _ = factories.make_api_client(factories.make_unit())
    other = post_json(client, "/api/v1/cylinders/trail", {"id": black}, token_for(stranger))
    assert_envelope(other, 404)
    assert_envelope(post_json(client, "/api/v1/cylinders/trail", {"id": "CQ-NONE"}, token), 404)


# --- Who may scrap -----------------------------------------------------------------------


def test_only_inspection_bodies_get_the_inspection_scope(unit):
    with pytest.raises(api_clients.ApiClientError, match="检验检测单位"):
        api_clients.issue_client(unit, ["query", "inspection"])
    body_unit = factories.make_unit(kind=UnitKind.INSPECTION_BODY)
    client, _ = api_clients.issue_client(body_unit, ["inspection"])
    assert "inspection" in client.scope_set


def test_a_client_whose_unit_is_no_longer_an_inspection_body_cannot_scrap(client, unit):
    body_unit = factories.make_unit(kind=UnitKind.INSPECTION_BODY)
    inspector, _ = factories.make_api_client(body_unit, scopes=("inspection",))
    inspector_token = token_for(inspector)
    body_unit.kind = UnitKind.USE_UNIT  # the admin changed the unit's kind
    db.session.flush()
    cylinder = factories.make_cylinder(unit)
    scrap = inspection(cylinder.id, inspect_type="报废处置", conclusion="报废")
    response = post_json(client, "/api/v1/inspections", {"records": [scrap]}, inspector_token)
    assert "不是检验检测单位" in assert_envelope(response, 403)["message"]
    db.session.refresh(cylinder)
    assert cylinder.status is CylinderStatus.IN_USE


def test_a_periodic_inspection_of_a_scrapped_cylinder_answers_a_warning(
    client, unit, inspector_token
):
    cylinder = factories.make_cylinder(unit, status=CylinderStatus.SCRAPPED)
    before = (cylinder.last_inspection_date, cylinder.next_inspection_month)
    result = send(client, "/api/v1/inspections", [inspection(cylinder.id)], inspector_token)[
        "results"
    ][0]
    assert result["code"] == "200"
    assert "已报废" in result["warning"] and "警告" in result["message"]
    db.session.refresh(cylinder)
    assert cylinder.status is CylinderStatus.SCRAPPED
    assert (cylinder.last_inspection_date, cylinder.next_inspection_month) == before


def test_binding_a_tag_to_a_scrapped_cylinder_is_refused(client, unit, token):
    cylinder = factories.make_cylinder(
        unit, status=CylinderStatus.SCRAPPED, tag_type=None, qr_content=None
    )
    body = {
        "id": cylinder.id,
        "tag_type": "RFID标签",
        "rfid": "RFID-SCRAPPED-1",
        "stamp_photo": png_base64(),
    }
    assert (
        "已报废"
        in assert_envelope(post_json(client, "/api/v1/tags/bind", body, token), 409)["message"]
    )


# --- The changes feed --------------------------------------------------------------------


def changes(client, token, cursor=None, limit=100):
    response = post_json(
        client, "/api/v1/cylinders/changes", {"cursor": cursor, "limit": limit}, token
    )
    return assert_envelope(response, 200)["data"]


def test_the_changes_feed_pages_a_units_cylinders_oldest_change_first(
    client, unit, token, inspector_token
):
    mine = []
    for _ in range(3):
        mine.append(factories.make_cylinder(unit))
        db.session.commit()  # numbers are assigned at commit, one transaction after another
    factories.make_cylinder(factories.make_unit())  # another unit's: never in this feed
    db.session.commit()

    first = changes(client, token, limit=2)
    assert [c["id"] for c in first["cylinders"]] == [mine[0].id, mine[1].id]
    assert first["more"] is True
    second = changes(client, token, first["cursor"], limit=2)
    assert [c["id"] for c in second["cylinders"]] == [mine[2].id]
    assert second["more"] is False
    # Nothing new: the same cursor comes back.
    idle = changes(client, token, second["cursor"])
    assert idle == {"cylinders": [], "cursor": second["cursor"], "more": False}

    # A change (here a 报废 inspection) brings the cylinder back, with its new record.
    scrap = inspection(mine[0].id, inspect_type="报废处置", conclusion="报废")
    scrap.pop("next_inspection_month")
    send(client, "/api/v1/inspections", [scrap], inspector_token)
    after = changes(client, token, second["cursor"])
    assert [(c["id"], c["status"]) for c in after["cylinders"]] == [(mine[0].id, "报废")]
    # From the beginning, every cylinder once, the changed one last.
    everything = changes(client, token)
    assert [c["id"] for c in everything["cylinders"]] == [mine[1].id, mine[2].id, mine[0].id]


def test_a_tag_binding_is_a_change(client, unit, token):
    cylinder = factories.make_cylinder(unit, tag_type=None, qr_content=None)
    db.session.commit()
    cursor = changes(client, token)["cursor"]
    body = {
        "id": cylinder.id,
        "tag_type": "RFID标签",
        "rfid": "R-FEED-1",
        "stamp_photo": png_base64(),
    }
    info_code = assert_envelope(post_json(client, "/api/v1/tags/bind", body, token), 200)["data"][
        "info_code"
    ]
    (changed,) = changes(client, token, cursor)["cylinders"]
    assert changed["info_code"] == info_code


def test_new_inspection_dates_and_a_certificate_void_are_changes(
    client, unit, token, inspector_token
):
    from regbackoffice import certificates
    from regbackoffice.models import Certificate, Cylinder, Role

    approved = factories.make_approved_application(unit, items=2)
    certificate = certificates.generate(
        approved, factories.make_user(Role.ACCEPTOR), approved.version_id
    )
    db.session.commit()
    first, second = db.session.scalars(
        select(Cylinder).where(Cylinder.application_id == approved.id).order_by(Cylinder.id)
    ).all()
    cursor = changes(client, token)["cursor"]

    # A 定期 inspection moves the inspection dates: the cylinder is in the feed again.
    record = inspection(first.id)
    send(client, "/api/v1/inspections", [record], inspector_token)
    (changed,) = changes(client, token, cursor)["cylinders"]
    assert changed["id"] == first.id
    assert changed["next_inspection_month"] == record["next_inspection_month"]
    cursor = changes(client, token, cursor)["cursor"]

    # 注销: both cylinders become 停用, each once.
    db.session.expire_all()  # the inspection changed the first cylinder in its request
    certificate = db.session.get(Certificate, certificate.id)
    certificates.void_certificate(certificate, factories.make_user(Role.ACCEPTOR), "迁出本市")
    db.session.commit()
    voided = changes(client, token, cursor)["cylinders"]
    assert sorted((c["id"], c["status"]) for c in voided) == [
        (first.id, "停用"),
        (second.id, "停用"),
    ]


@pytest.mark.parametrize("cursor", ["garbage", "c1.", "c1.-1", "c1.١٢"])
def test_a_cursor_not_handed_out_is_refused(client, token, cursor):
    response = post_json(client, "/api/v1/cylinders/changes", {"cursor": cursor}, token)
    assert assert_envelope(response, 400)["data"]["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("limit", [0, 1001, "10", True])
def test_the_page_size_is_1_to_1000(client, token, limit):
    response = post_json(client, "/api/v1/cylinders/changes", {"limit": limit}, token)
    assert assert_envelope(response, 400)["data"]["errors"][0]["field"] == "limit"


def test_a_cursor_past_the_end_cannot_hide_changes_to_come(client, unit, token):
    response = changes(client, token, "c1.999999999999")
    factories.make_cylinder(unit)
    db.session.commit()
    assert len(changes(client, token, response["cursor"])["cylinders"]) == 1


def test_the_feed_needs_the_query_scope(client, unit):
    filler, _ = factories.make_api_client(unit, scopes=("filling",))
    response = post_json(client, "/api/v1/cylinders/changes", {}, token_for(filler))
    assert_envelope(response, 403)


# --- The documentation -------------------------------------------------------------------


def test_the_docs_show_the_data_object_and_a_terminal_sync_loop(client):
    html = client.get("/api/docs").get_data(as_text=True)
    assert "不是装着 JSON 文本的字符串" in html
    assert "local_db.save_cursor" in html and "/api/v1/cylinders/changes" in html
    document = client.get("/api/v1/openapi.json").get_json()
    feed = document["paths"]["/api/v1/cylinders/changes"]["post"]
    assert feed["security"] == [{"bearerAuth": []}]
    assert "cursor" in feed["requestBody"]["content"]["application/json"]["schema"]["properties"]


# --- The OpenAPI document says what the server checks --------------------------------------


def request_schema(client, path):
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"][path]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"id": "CQ\x07BELL"}, 400),  # a control character
        ({"id": "CQ500112\n"}, 400),
        ({"manufacturer": "厂", "product_no": "P", "manufacture_month": "0000-01"}, 400),
        ({"manufacturer": "厂", "product_no": "P", "manufacture_month": "١٩٩٩-٠١"}, 400),
        ({"id": None, "info_code": "CQQ-NOBODY"}, 404),  # null is absent: info_code decides
        ({"id": "   "}, 400),  # spaces only are no value
    ],
)
def test_the_document_and_the_server_agree_on_lookups(client, token, body, status):
    valid = request_schema(client, "/api/v1/cylinders/query").is_valid(body)
    response = post_json(client, "/api/v1/cylinders/query", body, token)
    assert_envelope(response, status)
    assert valid is (status != 400)


def test_a_batch_answers_200_with_a_code_per_record_as_documented(client, unit, token):
    cylinder = factories.make_cylinder(unit)
    document = client.get("/api/v1/openapi.json").get_json()
    record_schema = document["paths"]["/api/v1/fillings"]["post"]["x-record-schema"]
    validator = jsonschema_rs.Draft202012Validator(record_schema, validate_formats=True)
    records = [filling(cylinder.id), filling(cylinder.id, filler="\x00"), "not a record"]
    assert request_schema(client, "/api/v1/fillings").is_valid({"records": records})
    data = send(client, "/api/v1/fillings", records, token)
    assert [r["code"] for r in data["results"]] == ["200", "400", "400"]
    assert [validator.is_valid(r) for r in records] == [True, False, False]


def test_today_is_asked_of_the_clock_again_when_the_second_changes(monkeypatch):
    """A batch's dates are judged on today's date, kept for one second of the clock only:
    past midnight the new day is seen at once (a fill dated today is not 'in the future')."""
    from types import SimpleNamespace

    from regbackoffice import api_validation

    second = [1_000]
    days = {1_000: date(2026, 12, 31), 1_001: date(2027, 1, 1)}
    asked = []

    def china_today():
        asked.append(second[0])
        return days[second[0]]

    monkeypatch.setattr(api_validation, "time", SimpleNamespace(time=lambda: second[0] + 0.5))
    monkeypatch.setattr(api_validation, "china_today", china_today)
    monkeypatch.setattr(api_validation, "_today_by_second", (-1, date.min))
    assert api_validation.today() == date(2026, 12, 31)
    assert api_validation.today() == date(2026, 12, 31)
    assert asked == [1_000]  # once within the second
    second[0] = 1_001
    assert api_validation.today() == date(2027, 1, 1)
    assert asked == [1_000, 1_001]
