"""逐只审核: one cylinder at a time, saved through the pager's save with its revisions."""

import re

import pytest
from sqlalchemy import select

from regbackoffice.extensions import db
from regbackoffice.models import ApplicationItem, AuditLog, AuditVerdict, Role

from . import factories
from .conftest import csrf_token_from, login


@pytest.fixture
def application():
    return factories.make_submitted_application(factories.make_unit("500112"), items=35)


@pytest.fixture
def acceptor(login_as):
    return login_as(Role.ACCEPTOR, district_code="500112")


def reader_page(client, application, **query):
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    url = f"/bureau/applications/{application.id}/audit/read" + (f"?{suffix}" if suffix else "")
    return client.get(url).get_data(as_text=True)


def window(client, application, offset=0) -> dict:
    response = client.get(f"/bureau/applications/{application.id}/audit/cylinders?offset={offset}")
    assert response.status_code == 200
    return response.get_json()


def save(client, application, token, cylinder, verdict="correct", note="", rev=None):
    item_id = cylinder["id"]
    return client.post(
        f"/bureau/applications/{application.id}/audit/verdict",
        data={
            "csrf_token": token,
            "item": item_id,
            f"verdict-{item_id}": verdict,
            f"note-{item_id}": note,
            f"rev-{item_id}": cylinder["rev"] if rev is None else rev,
        },
    )


def item_of(cylinder) -> ApplicationItem:
    item = db.session.get(ApplicationItem, cylinder["id"])
    db.session.refresh(item)
    return item


def test_reader_opens_at_the_first_cylinder_not_yet_audited(client, acceptor, application):
    token = csrf_token_from(reader_page(client, application))
    for cylinder in window(client, application)["items"][:7]:
        assert save(client, application, token, cylinder).get_json()["ok"]
    html = reader_page(client, application)
    assert 'data-start="7"' in html and 'data-total="35"' in html
    assert "已审核 7 / 35" in html


def test_reader_window_gives_the_cylinders_data_and_reading_size_photos(
    client, acceptor, application
):
    reader_page(client, application)
    first = window(client, application)
    assert first["total"] == 35 and len(first["items"]) == 30
    second = window(client, application, 30)
    assert len(second["items"]) == 5
    rows = [c["row_no"] for c in first["items"] + second["items"]]
    assert rows == sorted(rows) and len(set(rows)) == 35
    cylinder = first["items"][0]
    kinds = [p["kind"] for p in cylinder["photos"]]
    assert kinds == ["stamp", "supervision_certificate"]
    stamp = cylinder["photos"][0]
    assert "/view?v=" in stamp["view"] and "/thumb?v=" in stamp["thumb"]
    assert stamp["alt"] == f"产品编号 {cylinder['product_no']} 的钢印照片"
    assert ["制造单位", item_of(cylinder).manufacturer] in cylinder["facts"]


def test_one_key_verdict_is_saved_with_a_new_revision(client, acceptor, application):
    token = csrf_token_from(reader_page(client, application))
    cylinder = window(client, application)["items"][0]
    answer = save(client, application, token, cylinder).get_json()
    assert answer["ok"] and answer["verdict"] == "correct" and answer["rev"] == cylinder["rev"] + 1
    assert answer["progress"] == {"total": 35, "audited": 1, "wrong": 0}
    assert item_of(cylinder).audit_verdict is AuditVerdict.CORRECT
    wrong = save(
        client, application, token, {**cylinder, "rev": answer["rev"]}, "wrong", "钢印模糊"
    )
    assert wrong.get_json()["verdict"] == "wrong"
    assert item_of(cylinder).audit_note == "钢印模糊"


def test_wrong_without_a_note_is_refused_in_the_reader(client, acceptor, application):
    token = csrf_token_from(reader_page(client, application))
    cylinder = window(client, application)["items"][0]
    response = save(client, application, token, cylinder, "wrong", "  ")
    assert response.status_code == 400 and "必须填写备注" in response.get_json()["message"]
    assert item_of(cylinder).audit_verdict is AuditVerdict.PENDING


def test_a_stale_reader_save_never_overwrites_and_answers_the_current_verdict(
    app, client, acceptor, application
):
    """Another clerk (or this clerk's pager in another tab) changed it after the reader loaded."""
    token = csrf_token_from(reader_page(client, application))
    seen = window(client, application)["items"][3]
    other = app.test_client()
    login(other, factories.make_user(Role.ACCEPTOR, district_code="500112"))
    other_token = csrf_token_from(reader_page(other, application))
    assert save(other, application, other_token, seen, "wrong", "编号与钢印不符").get_json()["ok"]
    answer = save(client, application, token, seen, "correct").get_json()
    assert answer["ok"] is False and answer["conflict"] is True
    assert answer["verdict"] == "wrong" and answer["note"] == "编号与钢印不符"
    assert item_of(seen).audit_verdict is AuditVerdict.WRONG
    saves = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "attachment_audit_saved")
    ).all()
    assert [s.detail["conflicts"] for s in saves] == [0, 1]


def test_reader_saves_are_refused_without_the_csrf_token(client, acceptor, application):
    reader_page(client, application)
    cylinder = window(client, application)["items"][0]
    assert save(client, application, "forged", cylinder).status_code == 400
    assert item_of(cylinder).audit_verdict is AuditVerdict.PENDING


def test_reader_is_reached_from_the_detail_page_and_the_pager(client, acceptor, application):
    detail = client.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    assert f"/bureau/applications/{application.id}/audit/read" in detail
    html = reader_page(client, application)
    assert re.search(r'id="reader-note"', html) and "错误备注" in html
