"""The JSON API on the embedded default (SQLite, the demo): the statements that run straight
on PostgreSQL's driver elsewhere (``driver_sql``) run through SQLAlchemy here."""

from __future__ import annotations

from sqlalchemy import select

from regbackoffice.api_validation import today
from regbackoffice.extensions import db
from regbackoffice.models import AuditLog, CylinderStatus, FillingRecord

from . import factories
from .api_helpers import assert_envelope, post_json, token_for
from .conftest import sqlite_demo_app


def _client_with_cylinders(app, second_status):
    """An API client of a unit with two cylinders (in use, and ``second_status``),
    committed: (the client, its token, the two cylinders, an HTTP test client)."""
    unit = factories.make_unit()
    client, _secret = factories.make_api_client(unit, scopes=["filling", "query"])
    cylinders = (
        factories.make_cylinder(unit),
        factories.make_cylinder(unit, status=second_status),
    )
    token = token_for(client)
    db.session.commit()
    return client, token, cylinders, app.test_client()


def test_the_sqlite_demo_answers_the_interlock_check_and_audits_it(tmp_path_factory):
    with sqlite_demo_app(tmp_path_factory) as app:
        client, token, (fillable, stopped), http = _client_with_cylinders(
            app, CylinderStatus.STOPPED
        )
        for cylinder, expected in ((fillable, True), (stopped, False)):
            body = {"id": cylinder.id, "medium_code": cylinder.medium_code}
            answer = post_json(http, "/api/v1/fillings/check", body, token)
            data = assert_envelope(answer, 200)["data"]
            assert data["fillable"] is expected, data
        audited = db.session.scalars(
            select(AuditLog).where(AuditLog.action == "api_call").order_by(AuditLog.id)
        ).all()
        assert [(a.actor_name, a.detail["fillable"]) for a in audited] == [
            (client.app_id, 1),
            (client.app_id, 0),
        ]


def test_the_sqlite_demo_stores_a_filling_batch_and_answers_a_resent_one(tmp_path_factory):
    with sqlite_demo_app(tmp_path_factory) as app:
        _client, token, (good, scrapped), http = _client_with_cylinders(
            app, CylinderStatus.SCRAPPED
        )
        records = [
            {
                "id": cylinder.id,
                "medium_code": cylinder.medium_code,
                "filler": "张三",
                "fill_date": today().isoformat(),
                "filling_unit_name": "测试充装站",
                "record_no": f"S-{n}",
            }
            for n, cylinder in enumerate((good, scrapped))
        ]
        first = assert_envelope(
            post_json(http, "/api/v1/fillings", {"records": records}, token), 200
        )
        assert [r["violation"] for r in first["data"]["results"]] == [False, True]
        again = assert_envelope(
            post_json(http, "/api/v1/fillings", {"records": records}, token), 200
        )
        assert again["data"]["duplicates"] == 2
        assert again["data"]["results"][1]["reasons"][0]["code"] == "STATUS_SCRAPPED"
        stored = db.session.scalars(select(FillingRecord.record_no).order_by(FillingRecord.id))
        assert list(stored) == ["S-0", "S-1"]
        audited = db.session.scalars(
            select(AuditLog.detail).where(AuditLog.action == "api_call").order_by(AuditLog.id)
        ).all()
        assert [(d["accepted"], d["duplicates"]) for d in audited] == [(2, 0), (0, 2)]
