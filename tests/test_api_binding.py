"""信息化标签绑定 through the API."""

from __future__ import annotations

import base64
import re

from sqlalchemy import select

from regbackoffice import storage
from regbackoffice.extensions import db
from regbackoffice.models import TagBinding, TagType

from . import factories
from .api_helpers import assert_envelope, png_base64, post_json, token_for

URL = "/api/v1/tags/bind"
INFO_CODE = re.compile(r"^CQ[QR]\d{6}[0-9A-F]{10}$")


def bind_body(cylinder, **kw):
    body = {
        "id": cylinder.id,
        "tag_type": "二维码",
        "qr_content": f"https://trace.example.invalid/q/{cylinder.id}",
        "stamp_photo": png_base64(),
    }
    body.update(kw)
    return body


def setup_unit():
    unit = factories.make_unit()
    api_client, _ = factories.make_api_client(unit)
    return unit, token_for(api_client)


def test_binding_returns_an_info_code_and_stores_the_photo(client):
    unit, token = setup_unit()
    cylinder = factories.make_cylinder(unit, qr_content=None)
    data = assert_envelope(post_json(client, URL, bind_body(cylinder), token), 200)["data"]
    assert data["id"] == cylinder.id and INFO_CODE.match(data["info_code"])
    db.session.refresh(cylinder)
    assert cylinder.info_code == data["info_code"] and cylinder.tag_type is TagType.QR
    binding = db.session.scalar(select(TagBinding).where(TagBinding.cylinder_id == cylinder.id))
    assert storage.read(binding.stamp_photo_key).startswith(b"\x89PNG")
    # Findable by the code it was given.
    query = post_json(client, "/api/v1/cylinders/query", {"info_code": data["info_code"]}, token)
    assert assert_envelope(query, 200)["data"]["id"] == cylinder.id


def test_binding_the_same_tag_again_returns_the_same_code(client):
    unit, token = setup_unit()
    cylinder = factories.make_cylinder(unit)
    first = assert_envelope(post_json(client, URL, bind_body(cylinder), token), 200)["data"]
    again = assert_envelope(post_json(client, URL, bind_body(cylinder), token), 200)["data"]
    assert again["info_code"] == first["info_code"]


def test_a_tag_bound_to_another_cylinder_is_409(client):
    unit, token = setup_unit()
    first, second = factories.make_cylinder(unit), factories.make_cylinder(unit)
    body = bind_body(first)
    assert_envelope(post_json(client, URL, body, token), 200)
    clash = dict(body, id=second.id)
    assert "其他气瓶" in assert_envelope(post_json(client, URL, clash, token), 409)["message"]
    other_tag = bind_body(first, qr_content="https://trace.example.invalid/q/other")
    assert_envelope(post_json(client, URL, other_tag, token), 409)


def test_unit_a_client_cannot_bind_unit_b_cylinder(client):
    _unit_a, token_a = setup_unit()
    unit_b = factories.make_unit()
    cylinder = factories.make_cylinder(unit_b)
    response = post_json(client, URL, bind_body(cylinder), token_a)
    assert_envelope(response, 403)
    db.session.refresh(cylinder)
    assert cylinder.info_code is None


def test_rfid_binding_by_identity_triple(client):
    unit, token = setup_unit()
    cylinder = factories.make_cylinder(unit)
    body = {
        "manufacturer": cylinder.manufacturer,
        "product_no": cylinder.product_no,
        "manufacture_month": cylinder.manufacture_month,
        "tag_type": "RFID标签",
        "rfid": "E2003412B802011A",
        "stamp_photo": png_base64(),
    }
    data = assert_envelope(post_json(client, URL, body, token), 200)["data"]
    assert data["info_code"].startswith("CQR")
    db.session.refresh(cylinder)
    assert cylinder.rfid_code == "E2003412B802011A"


def test_bad_photos_and_missing_tag_values_are_400(client):
    unit, token = setup_unit()
    cylinder = factories.make_cylinder(unit)
    not_base64 = bind_body(cylinder, stamp_photo="@@@")
    assert assert_envelope(post_json(client, URL, not_base64, token), 400)["data"]["errors"]
    not_image = bind_body(cylinder, stamp_photo=base64.b64encode(b"GIF89a....").decode())
    answer = assert_envelope(post_json(client, URL, not_image, token), 400)
    assert answer["data"]["errors"][0]["field"] == "stamp_photo"
    no_value = bind_body(cylinder)
    no_value.pop("qr_content")
    assert_envelope(post_json(client, URL, no_value, token), 400)
    wrong_type = bind_body(cylinder, tag_type="NFC")
    assert_envelope(post_json(client, URL, wrong_type, token), 400)
    db.session.refresh(cylinder)
    assert cylinder.info_code is None


def test_a_qr_tag_must_be_an_http_url_as_at_import(client):
    unit, token = setup_unit()
    cylinder = factories.make_cylinder(unit)
    imported_url = cylinder.qr_content
    for content in ("ABC123", "javascript:alert(1)", "ftp://trace.example.invalid/q/1"):
        answer = assert_envelope(
            post_json(client, URL, bind_body(cylinder, qr_content=content), token), 400
        )
        (error,) = answer["data"]["errors"]
        assert (
            error["field"] == "qr_content" and "不是http://或https://开头的网址" in error["message"]
        )
    db.session.refresh(cylinder)
    assert cylinder.qr_content == imported_url and cylinder.info_code is None


def test_qr_binding_by_identity_triple_names_the_cylinder_not_the_new_tag(client):
    unit, token = setup_unit()
    cylinder = factories.make_cylinder(unit)
    body = {
        "manufacturer": cylinder.manufacturer,
        "product_no": cylinder.product_no,
        "manufacture_month": cylinder.manufacture_month,
        "tag_type": "二维码",
        "qr_content": "https://trace.example.invalid/q/new",
        "stamp_photo": png_base64(),
    }
    data = assert_envelope(post_json(client, URL, body, token), 200)["data"]
    assert data["id"] == cylinder.id


def test_a_qr_url_registered_for_another_cylinder_cannot_be_bound(client):
    unit, token = setup_unit()
    cylinder = factories.make_cylinder(unit, qr_content=None)
    factories.make_cylinder(unit, qr_content="https://trace.example.invalid/q/taken")
    body = bind_body(cylinder, qr_content="https://trace.example.invalid/q/taken")
    assert "其他气瓶" in assert_envelope(post_json(client, URL, body, token), 409)["message"]


def test_a_tag_imported_for_another_cylinder_of_a_live_application_cannot_be_bound(client):
    """一瓶一码 across the doors: the import refuses a bound tag, the binding refuses a tag
    a live application claims for another cylinder (or an RFID code in the archive)."""
    from regbackoffice.imports.reader import parse_workbook

    from .xlsx_helpers import good_row, workbook_bytes

    unit, token = setup_unit()
    cylinder = factories.make_cylinder(unit, qr_content=None)
    application = factories.make_application()
    url = "https://trace.example.invalid/q/pending"
    rows = parse_workbook(workbook_bytes([good_row("PENDING-1", tag_value=url)]))
    assert factories.import_under_job(application, rows).imported == 1
    refused = assert_envelope(
        post_json(client, URL, bind_body(cylinder, qr_content=url), token), 409
    )
    assert refused["message"] == (
        f"该二维码已用于申请{application.number}中的另一只气瓶，不能绑定到本气瓶：一瓶一码"
    )
    factories.make_cylinder(unit, tag_type=TagType.RFID, qr_content=None, rfid_code="E200-TAKEN")
    body = bind_body(cylinder, tag_type="RFID标签", rfid="E200-TAKEN")
    body.pop("qr_content")
    refused = assert_envelope(post_json(client, URL, body, token), 409)
    assert refused["message"] == "该RFID编码已登记在其他气瓶的档案中，不能绑定到本气瓶"
