import pytest
from flask import Blueprint
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from regbackoffice import access, create_app
from regbackoffice.extensions import db
from regbackoffice.models import (
    Application,
    ApplicationItem,
    AuditLog,
    Cylinder,
    District,
    Role,
)

from . import factories


@pytest.fixture
def two_districts():
    """An application, item and cylinder in 渝北区 (500112) and in 江北区 (500105)."""
    world = {}
    for code in ("500112", "500105"):
        unit = factories.make_unit(code)
        application = factories.make_application(unit)
        world[code] = {
            "unit": unit,
            "application": application,
            "item": factories.make_item(application),
            "cylinder": factories.make_cylinder(unit),
        }
    return world


def _refusals() -> list[AuditLog]:
    return list(db.session.scalars(select(AuditLog).where(AuditLog.action == "access_denied")))


@pytest.mark.parametrize("role", [Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER])
def test_district_clerk_sees_own_district_and_gets_404_for_another(shadow_app, role, two_districts):
    clerk = factories.make_user(role, district_code="500112")
    with shadow_app.test_request_context("/x"):
        for model, key in (
            (Application, "application"),
            (ApplicationItem, "item"),
            (Cylinder, "cylinder"),
        ):
            own = two_districts["500112"][key]
            other = two_districts["500105"][key]
            pk = own.id
            assert access.get_or_404(model, pk, clerk).id == own.id
            with pytest.raises(NotFound):
                access.get_or_404(model, other.id, clerk)
        listed = db.session.scalars(access.visible(Application, clerk)).all()
    assert all(a.district_code == "500112" for a in listed)
    assert two_districts["500105"]["application"].id not in {a.id for a in listed}


def test_applicant_gets_404_for_another_units_objects_in_the_same_district(
    shadow_app, two_districts
):
    own_unit = two_districts["500112"]["unit"]
    applicant = factories.make_user(Role.APPLICANT, unit=own_unit)
    neighbour = factories.make_unit("500112")
    foreign = factories.make_application(neighbour)
    with shadow_app.test_request_context("/x"):
        assert access.get_or_404(Application, two_districts["500112"]["application"].id, applicant)
        with pytest.raises(NotFound):
            access.get_or_404(Application, foreign.id, applicant)
        with pytest.raises(NotFound):
            access.get_or_404(ApplicationItem, factories.make_item(foreign).id, applicant)


def test_refusal_is_audited_and_kept_after_the_request_rolls_back(client, login_as, two_districts):
    """A real request: the 404 rolls back the request, the audit row survives."""
    app = client.application
    foreign_id = two_districts["500105"]["application"].id
    user = login_as(Role.ACCEPTOR, district_code="500112")
    bp_app = _app_with_probe_route(app)
    probe = bp_app.test_client()
    probe.set_cookie("regbo_session", client.get_cookie("regbo_session").value)
    response = probe.get(f"/probe/{foreign_id}")
    assert response.status_code == 404
    assert "不在您的管辖范围内" in response.get_data(as_text=True)
    rows = _refusals()
    assert [(r.actor_id, r.object_id) for r in rows] == [(user.id, str(foreign_id))]


def _app_with_probe_route(template_app):
    """A second app on the same database with one route that uses the mechanism."""
    probe_app = create_app(dict(template_app.config))
    bp = Blueprint("probe", __name__)

    @bp.route("/probe/<int:application_id>")
    @access.roles_required(Role.ACCEPTOR)
    def probe(application_id: int) -> str:
        return access.get_or_404(Application, application_id).number or ""

    probe_app.register_blueprint(bp)
    return probe_app


def test_wrong_role_gets_403_and_an_audit_row(client, login_as, two_districts):
    probe = _app_with_probe_route(client.application).test_client()
    user = login_as(Role.REVIEWER, district_code="500112")
    probe.set_cookie("regbo_session", client.get_cookie("regbo_session").value)
    response = probe.get(f"/probe/{two_districts['500112']['application'].id}")
    assert response.status_code == 403 and "无权访问" in response.get_data(as_text=True)
    denied = db.session.scalars(select(AuditLog).where(AuditLog.action == "role_denied")).all()
    assert [r.actor_id for r in denied] == [user.id]


def test_supervisor_cannot_post_anything_but_logout(client, login_as):
    from .conftest import post_form

    login_as(Role.SUPERVISOR, district_code=None)
    assert post_form(client, "/login").status_code in (302, 403)
    response = post_form(client, "/some/form/endpoint")
    assert response.status_code == 403
    assert post_form(client, "/logout").status_code == 302


def test_every_model_with_user_data_has_a_scope():
    for model in (Application, ApplicationItem, Cylinder):
        assert model in access.SCOPES
    with pytest.raises(TypeError):
        access.scope_clause(District, None)
