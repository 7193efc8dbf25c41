"""Public pages (no login): 追溯信息展示, search, certificate verification, rate limit."""

from __future__ import annotations

import pytest

from regbackoffice import api_records, trace
from regbackoffice.extensions import db

from . import factories


@pytest.fixture
def overdue_cylinder():
    unit = factories.make_unit("500112", name="渝北演示燃气有限公司")
    cylinder = factories.make_cylinder(
        unit, next_inspection_month="2020-01", manufacturer="重庆追溯测试气瓶厂"
    )
    cylinder.info_code = "CQQ500112TEST01"
    db.session.flush()
    api_client, _secret = factories.make_api_client(unit)
    filled = api_records.submit_batch(
        api_client,
        "filling",
        [
            {
                "id": cylinder.id,
                "medium_code": cylinder.medium_code,
                "filler": "王小明",
                "fill_date": "2026-01-10",
                "filling_unit_name": "渝北充装站",
            }
        ],
    )
    traced = api_records.submit_batch(
        api_client,
        "trace",
        [
            {
                "id": cylinder.id,
                "time": "2026-01-10 09:00:00",
                "node": "充装",
                "actor": "渝北充装站",
            },
            {"id": cylinder.id, "time": "2026-01-11 15:30:00", "node": "配送", "actor": "李大力"},
        ],
    )
    assert filled.accepted == 1 and traced.accepted == 2
    return cylinder


def test_trace_page_marks_an_overdue_cylinder_and_masks_personal_names(client, overdue_cylinder):
    response = client.get(f"/trace/{overdue_cylinder.info_code}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "超期未检" in html
    assert 'class="col-7 overdue" id="next-inspection">2020-01（已超期，不得充装）' in html
    assert "渝北演示燃气有限公司" in html  # 使用单位
    assert overdue_cylinder.certificate_no in html and overdue_cylinder.product_no in html
    assert "王**" in html and "王小明" not in html  # 充装人员
    assert "李**" in html and "李大力" not in html  # a person in the trace timeline
    assert "渝北充装站" in html  # a unit stays readable
    assert overdue_cylinder.id not in html  # the archive ID is not one to publish
    assert "登录" not in html


def test_a_cylinder_in_time_is_not_marked(client):
    cylinder = factories.make_cylinder(next_inspection_month="2099-12")
    cylinder.info_code = "CQQ500112TEST02"
    db.session.flush()
    html = client.get("/trace/CQQ500112TEST02").get_data(as_text=True)
    assert "超期未检" not in html and "2099-12" in html


def test_unknown_info_code_says_not_registered(client):
    response = client.get("/trace/CQQ-NOT-THERE")
    assert response.status_code == 404
    assert "未查询到" in response.get_data(as_text=True)


def test_search_by_manufacturer_and_product_no(client, overdue_cylinder):
    # Full-width input is normalised (NFKC) like the archive's identity key.
    wide_no = overdue_cylinder.product_no.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    response = client.get(
        "/trace", query_string={"manufacturer": " 重庆追溯测试气瓶厂 ", "product_no": wide_no}
    )
    assert response.status_code == 200 and "王**" in response.get_data(as_text=True)
    missing = client.get("/trace", query_string={"manufacturer": "某厂", "product_no": "X1"})
    assert missing.status_code == 404 and "未查询到" in missing.get_data(as_text=True)
    empty = client.get("/trace", query_string={"manufacturer": "", "product_no": ""})
    text = empty.get_data(as_text=True)
    assert "请填写制造单位" in text and "请填写产品编号" in text


def test_verification_of_an_unknown_certificate_number(client):
    response = client.get("/verify/瓶渝11299999(26)")
    assert response.status_code == 404
    assert "未查询到" in response.get_data(as_text=True)


def test_public_pages_are_rate_limited_per_address(app, client):
    app.config["PUBLIC_RATE_LIMIT"] = "3 per minute"
    try:
        statuses = [client.get(url).status_code for url in ["/trace", "/verify/X", "/trace/Y"]]
        assert statuses == [200, 404, 404]
        limited = client.get("/trace")
        assert limited.status_code == 429
        assert "查询过于频繁" in limited.get_data(as_text=True)
        assert int(limited.headers["Retry-After"]) > 0
        # Another address still gets in; the back office is not limited.
        other = client.get("/trace", environ_base={"REMOTE_ADDR": "10.0.0.9"})
        assert other.status_code == 200
        assert client.get("/login").status_code == 200
    finally:
        app.config["PUBLIC_RATE_LIMIT"] = "30 per minute"


@pytest.mark.parametrize(
    ("actor", "shown"),
    [
        ("张三", "张*"),
        ("欧阳小明", "欧***"),
        ("渝北燃气站", "渝北燃气站"),
        ("江北区某公司", "江北区某公司"),
    ],
)
def test_trace_actors_that_are_persons_are_masked(actor, shown):
    assert trace.public_actor(actor) == shown
