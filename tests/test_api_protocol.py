"""The API's protocol: the envelope on every answer, auth, tokens, throttling, scopes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from regbackoffice import api_clients
from regbackoffice.extensions import db
from regbackoffice.models import ApiToken, AuditLog, FillingRecord

from . import factories
from .api_helpers import API_PATHS, assert_envelope, post_json, token_for

TOKEN_URL = "/api/v1/auth/token"


def filling_count() -> int:
    return db.session.scalar(select(func.count()).select_from(FillingRecord))


def test_token_exchange_gives_a_bearer_token_stored_only_as_its_hash(client):
    api_client, secret = factories.make_api_client()
    payload = assert_envelope(
        post_json(client, TOKEN_URL, {"app_id": api_client.app_id, "app_secret": secret}), 200
    )
    data = payload["data"]
    assert data["token_type"] == "Bearer" and data["expires_in"] == 7200
    stored = db.session.scalars(select(ApiToken).where(ApiToken.client_id == api_client.id)).all()
    assert len(stored) == 1 and stored[0].token_hash != data["access_token"]
    query = post_json(client, "/api/v1/cylinders/query", {"id": "CQX"}, data["access_token"])
    assert_envelope(query, 404)  # authenticated: the cylinder just does not exist


def test_wrong_secret_and_unknown_app_id_are_401_and_audited(client):
    api_client, _secret = factories.make_api_client()
    wrong = post_json(client, TOKEN_URL, {"app_id": api_client.app_id, "app_secret": "nope"})
    assert_envelope(wrong, 401)
    unknown = post_json(client, TOKEN_URL, {"app_id": "nobody", "app_secret": "nope"})
    assert_envelope(unknown, 401)
    failures = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "api_auth_failed")
    ).all()
    assert {f.object_id for f in failures} >= {api_client.app_id, "nobody"}
    assert all("nope" not in str(f.detail) for f in failures)


def test_repeated_failures_are_throttled_with_429_at_that_address(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "API_AUTH_MAX_FAILURES", 3)
    api_client, secret = factories.make_api_client()
    for _ in range(3):
        bad = {"app_id": api_client.app_id, "app_secret": "wrong"}
        assert_envelope(post_json(client, TOKEN_URL, bad), 401)
    # Even the right secret waits at that address until the lock has passed.
    good = post_json(client, TOKEN_URL, {"app_id": api_client.app_id, "app_secret": secret})
    payload = assert_envelope(good, 429)
    assert good.headers["Retry-After"]
    assert "过多" in payload["message"]


def test_missing_expired_and_revoked_tokens_are_401(client):
    api_client, _ = factories.make_api_client()
    url = "/api/v1/fillings/check"
    body = {"id": "CQ1", "medium_code": "G13"}
    assert_envelope(post_json(client, url, body), 401)
    assert_envelope(post_json(client, url, body, "not-a-token"), 401)
    expired = token_for(api_client, lifetime=timedelta(seconds=-1))
    assert "过期" in assert_envelope(post_json(client, url, body, expired), 401)["message"]
    live = token_for(api_client)
    assert_envelope(post_json(client, url, body, live), 200)
    api_clients.rotate_secret(api_client)
    db.session.flush()
    assert_envelope(post_json(client, url, body, live), 401)


def test_disabling_a_client_revokes_its_tokens(client):
    api_client, secret = factories.make_api_client()
    live = token_for(api_client)
    api_clients.set_client_active(api_client, False)
    db.session.flush()
    url = "/api/v1/fillings/check"
    assert_envelope(post_json(client, url, {"id": "CQ1", "medium_code": "G13"}, live), 401)
    again = post_json(client, TOKEN_URL, {"app_id": api_client.app_id, "app_secret": secret})
    assert_envelope(again, 401)


def test_inspection_records_need_the_inspection_scope(client):
    api_client, _ = factories.make_api_client(scopes=("query", "filling"))
    token = token_for(api_client)
    response = post_json(client, "/api/v1/inspections", {"records": []}, token)
    assert "inspection" in assert_envelope(response, 403)["message"]
    refusal = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "api_call", AuditLog.outcome == "refused")
    ).all()
    assert any(r.detail.get("status") == 403 for r in refusal)


@pytest.fixture
def token():
    api_client, _ = factories.make_api_client()
    return token_for(api_client)


def test_malformed_json_is_400_and_stores_nothing(client, token):
    before = filling_count()
    response = client.post(
        "/api/v1/fillings",
        data='{"records": [',
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert "JSON" in assert_envelope(response, 400)["message"]
    assert filling_count() == before


def test_wrong_content_type_is_415(client, token):
    response = client.post(
        "/api/v1/fillings",
        data="records=1",
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_envelope(response, 415)


def test_get_is_405_in_the_envelope(client):
    response = client.get("/api/v1/fillings")
    assert_envelope(response, 405)
    assert "POST" in response.headers["Allow"]


def test_unknown_api_path_is_404_in_the_envelope(client):
    assert_envelope(client.post("/api/v1/nothing-here", json={}), 404)


def test_a_20_mb_body_is_413_and_stores_nothing(client, token):
    before = filling_count()
    body = b'{"records": ["' + b"x" * (20 * 1024 * 1024) + b'"]}'
    response = client.post(
        "/api/v1/fillings",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_envelope(response, 413)
    assert filling_count() == before


def test_deeply_nested_json_is_a_clear_400(client, token):
    body = "[" * 100_000 + "]" * 100_000
    response = client.post(
        "/api/v1/fillings",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert "嵌套" in assert_envelope(response, 400)["message"]
    nested = {"records": [{"id": {"a": {"b": {"c": [1, [2, [3]]]}}}}]}
    answer = assert_envelope(post_json(client, "/api/v1/fillings", nested, token), 200)
    assert answer["data"]["rejected"] == 1


def test_a_json_array_body_is_400(client, token):
    assert_envelope(post_json(client, "/api/v1/fillings", [1, 2], token), 400)


def test_csrf_does_not_apply_to_the_api(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    assert_envelope(post_json(client, TOKEN_URL, {"app_id": "a", "app_secret": "b"}), 401)


def test_unexpected_errors_answer_500_with_a_request_id_and_no_traceback(
    client, token, monkeypatch
):
    from regbackoffice import interlock

    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(interlock, "check", explode)
    response = post_json(client, "/api/v1/fillings/check", {"id": "A", "medium_code": "G1"}, token)
    payload = assert_envelope(response, 500)
    assert payload["data"]["request_id"] in payload["message"]
    assert "secret internals" not in response.get_data(as_text=True)


def test_every_call_is_audited_with_client_path_and_counts(client):
    api_client, _ = factories.make_api_client()
    token = token_for(api_client)
    post_json(client, "/api/v1/fillings/check", {"id": "CQ9", "medium_code": "G13"}, token)
    row = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "api_call").order_by(AuditLog.id.desc())
    ).first()
    assert row.actor_type == "api_client" and row.actor_id == api_client.id
    assert row.detail["path"] == "/api/v1/fillings/check" and row.outcome == "ok"
    db.session.refresh(api_client)
    assert api_client.last_seen_at is not None


def test_openapi_document_and_docs_page_are_served(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == set(API_PATHS)
    fill = document["paths"]["/api/v1/fillings"]["post"]
    # Records are answered one by one (200 with per-record codes): their schema is the
    # operation's x-record-schema, not a constraint on the request.
    assert fill["x-record-schema"]["properties"]["filler"]["description"] == "充装人员"
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "充装联锁校验" in html and "http://" not in html.replace("http://localhost", "")


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", API_PATHS)
def test_every_endpoint_answers_other_methods_with_405_in_the_envelope(client, path, method):
    assert_envelope(client.open(path, method=method), 405)


def test_an_idempotency_key_reused_on_another_path_is_409(client, token):
    trace = {"records": [{"time": "2026-01-02 03:04:05", "node": "配送", "actor": "王", "id": "C"}]}
    first = post_json(client, "/api/v1/traces", trace, token, **{"Idempotency-Key": "k"})
    assert_envelope(first, 200)
    other = post_json(client, "/api/v1/fillings", trace, token, **{"Idempotency-Key": "k"})
    assert_envelope(other, 409)
