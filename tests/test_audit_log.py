"""The audit log: append-only in PostgreSQL, retention job, no secrets, no forged lines."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from regbackoffice import audit_retention
from regbackoffice.extensions import db
from regbackoffice.models import AuditLog, Role, utcnow

from . import factories
from .api_helpers import assert_envelope, post_json
from .conftest import login, post_form


def _old_row(days: int, action: str = "old_event") -> AuditLog:
    row = AuditLog(
        action=action, outcome="ok", actor_type="system", at=utcnow() - timedelta(days=days)
    )
    db.session.add(row)
    db.session.flush()
    return row


def _refused_by_database(statement: str, **params) -> str:
    with pytest.raises(sa.exc.DBAPIError) as caught, db.session.begin_nested():
        db.session.execute(sa.text(statement), params)
    return str(caught.value.orig)


def test_database_refuses_update_delete_and_truncate_of_audit_rows():
    row = _old_row(1)
    message = _refused_by_database(
        "UPDATE audit_log SET outcome = 'ok', action = 'forged' WHERE id = :i", i=row.id
    )
    assert "append-only" in message
    assert "append-only" in _refused_by_database("DELETE FROM audit_log WHERE id = :i", i=row.id)
    assert "append-only" in _refused_by_database("TRUNCATE audit_log")
    db.session.expire_all()
    assert db.session.get(AuditLog, row.id).action == "old_event"


def test_the_prune_bypass_allows_delete_but_never_update():
    row = _old_row(1)
    db.session.execute(sa.text("SET LOCAL regbo.audit_prune = 'on'"))
    try:
        assert "append-only" in _refused_by_database(
            "UPDATE audit_log SET action = 'forged' WHERE id = :i", i=row.id
        )
        deleted = db.session.execute(sa.text("DELETE FROM audit_log WHERE id = :i"), {"i": row.id})
        assert deleted.rowcount == 1
    finally:
        db.session.execute(sa.text("SET LOCAL regbo.audit_prune = 'off'"))


def test_prune_deletes_only_rows_past_retention_and_records_itself():
    old = _old_row(200, "ancient")
    recent = _old_row(179, "recent")
    old_id, recent_id = old.id, recent.id
    assert audit_retention.prune(180) >= 1
    db.session.expire_all()
    assert db.session.get(AuditLog, old_id) is None
    assert db.session.get(AuditLog, recent_id) is not None
    pruned = db.session.scalars(select(AuditLog).where(AuditLog.action == "audit_pruned")).one()
    assert pruned.detail["older_than_days"] == 180 and pruned.detail["deleted"] >= 1
    # The bypass closed with the job: an ordinary delete is refused again.
    assert "append-only" in _refused_by_database("DELETE FROM audit_log WHERE id = :i", i=recent_id)


def test_prune_refuses_less_than_180_days():
    _old_row(100)
    with pytest.raises(audit_retention.RetentionError, match="至少保留 180 天"):
        audit_retention.prune(179)


def test_prune_audit_command(app):
    old_id = _old_row(400).id
    db.session.commit()
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["prune-audit", "--older-than-days", "30"])
    assert refused.exit_code == 1 and "至少保留 180 天" in refused.output
    done = runner.invoke(args=["prune-audit", "--older-than-days", "180"])
    assert done.exit_code == 0, done.output
    assert "pruned" in done.output
    db.session.expire_all()
    assert db.session.get(AuditLog, old_id) is None


def _all_audit_text() -> str:
    rows = db.session.scalars(select(AuditLog)).all()
    return "\n".join(
        json.dumps(
            [r.action, r.actor_name, r.object_id, r.ip, r.outcome, r.detail], ensure_ascii=False
        )
        for r in rows
    )


def test_no_secrets_in_audit_rows_after_login_token_exchange_and_client_issue(client):
    admin = factories.make_user(Role.ADMIN, district_code=None)
    bad = login(client, admin.username, "wrong-password-123")
    assert bad.status_code == 200
    assert login(client, admin).status_code == 302
    unit = factories.make_unit()
    issued = post_form(
        client,
        "/admin/api-clients",
        {"unit_credit_code": unit.credit_code, "scopes": ["query"], "description": "平台"},
        page="/admin/api-clients",
    )
    body = issued.get_data(as_text=True)
    secret = body.split('user-select-all">')[1].split("<")[0]
    from regbackoffice.models import ApiClient

    api_client = db.session.scalar(select(ApiClient).where(ApiClient.unit_id == unit.id))
    rotated = post_form(
        client, f"/admin/api-clients/{api_client.id}/rotate", page="/admin/api-clients"
    )
    new_secret = rotated.get_data(as_text=True).split('user-select-all">')[1].split("<")[0]
    api = client.application.test_client()
    token = assert_envelope(
        post_json(
            api, "/api/v1/auth/token", {"app_id": api_client.app_id, "app_secret": new_secret}
        ),
        200,
    )["data"]["access_token"]
    post_json(api, "/api/v1/auth/token", {"app_id": api_client.app_id, "app_secret": secret})
    assert_envelope(post_json(api, "/api/v1/cylinders/query", {"id": "CQX"}, token), 404)

    text = _all_audit_text()
    assert "login" in text and "api" in text  # the events were audited ...
    for value in (factories.PASSWORD, "wrong-password-123", secret, new_secret, token):
        assert value not in text  # ... without the secrets


def test_control_characters_in_username_and_path_cannot_forge_log_lines(client, login_as):
    forged = "mallory\n2026-01-01 login ok admin\r\x1b[31m\u2028"
    login(client, forged, "whatever-123")
    login_as(Role.APPLICANT)
    client.get("/admin/users%0a2026-01-01%20login%20ok%20admin")
    rows = db.session.scalars(
        select(AuditLog).where(AuditLog.action.in_(["login", "role_denied"]))
    ).all()
    texts = [json.dumps(r.detail, ensure_ascii=False) + (r.actor_name or "") for r in rows]
    # An unknown username is not stored at all, only a keyed hash (test_login_trust).
    assert rows and not any("mallory" in t for t in texts)
    for row in rows:
        for value in [row.actor_name, *map(str, row.detail.values())]:
            assert all(ch.isprintable() for ch in value), repr(value)


def test_a_nul_character_in_a_form_or_query_is_refused_not_a_server_error(client):
    assert login(client, "mallory\x00", "whatever-123").status_code == 400
    assert client.get("/verify/x?\x00=1").status_code == 400
    assert client.get("/login?next=%00").status_code == 400
