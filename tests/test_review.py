"""审核 and 审批: pass on or void; separation of duties; optimistic locking."""

import pytest
from sqlalchemy import select

from regbackoffice.extensions import db
from regbackoffice.models import ApplicationItem, ApplicationStatus, AuditLog, Role

from . import factories
from .conftest import csrf_token_from, login


@pytest.fixture
def accepted():
    return factories.make_accepted_application(factories.make_unit("500112"))


def _post(client, application, action, version=None):
    token = csrf_token_from(
        client.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    )
    db.session.refresh(application)
    return client.post(
        f"/bureau/applications/{application.id}/{action}",
        data={
            "csrf_token": token,
            "version": application.version_id if version is None else version,
        },
    )


def test_reviewer_passes_and_approver_approves(app, client, login_as, accepted):
    reviewer = login_as(Role.REVIEWER, district_code="500112")
    assert "审核通过" in client.get(f"/bureau/applications/{accepted.id}").get_data(as_text=True)
    assert _post(client, accepted, "review").status_code == 302
    db.session.refresh(accepted)
    assert accepted.status is ApplicationStatus.REVIEWED and accepted.reviewed_by_id == reviewer.id
    approver_client = app.test_client()
    approver = factories.make_user(Role.APPROVER, district_code="500112")
    login(approver_client, approver)
    html = approver_client.get("/inbox").get_data(as_text=True)
    assert "您有<strong>1</strong>条使用登记的审批任务需要处理" in html
    assert _post(approver_client, accepted, "approve").status_code == 302
    db.session.refresh(accepted)
    assert accepted.status is ApplicationStatus.APPROVED and accepted.approved_by_id == approver.id
    actions = db.session.scalars(
        select(AuditLog.action).where(
            AuditLog.object_type == "application", AuditLog.object_id == str(accepted.id)
        )
    ).all()
    assert actions[-2:] == ["application_reviewed", "application_approved"]


def test_reviewer_cannot_approve_and_approver_cannot_review(client, login_as, accepted):
    login_as(Role.REVIEWER, district_code="500112")
    assert _post(client, accepted, "approve").status_code == 403
    db.session.refresh(accepted)
    assert accepted.status is ApplicationStatus.ACCEPTED


def test_separation_of_duties_refuses_the_acceptor_reviewing(app, client, accepted):
    from regbackoffice import accounts
    from regbackoffice.models import User

    person = db.session.get(User, accepted.accepted_by_id)
    accounts.update_user(
        person, display_name="x", role=Role.REVIEWER, district_code="500112", unit=None
    )
    db.session.flush()
    login(client, person)
    response = _post(client, accepted, "review")
    message = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "同一人员不能办理同一申请的两个环节" in message
    db.session.refresh(accepted)
    assert accepted.status is ApplicationStatus.ACCEPTED


def test_separation_of_duties_can_be_switched_off(app, client, shadow_app, accepted):
    from regbackoffice import accounts
    from regbackoffice.models import User

    person = db.session.get(User, accepted.accepted_by_id)
    accounts.update_user(
        person, display_name="x", role=Role.REVIEWER, district_code="500112", unit=None
    )
    login(client, person)
    app.config["SEPARATION_OF_DUTIES"] = False
    try:
        assert _post(client, accepted, "review").status_code == 302
    finally:
        app.config["SEPARATION_OF_DUTIES"] = True
    db.session.refresh(accepted)
    assert accepted.status is ApplicationStatus.REVIEWED


def test_double_submitted_review_says_done_and_another_reviewers_stale_page_409(
    app, client, login_as, accepted
):
    login_as(Role.REVIEWER, district_code="500112")
    version = accepted.version_id
    assert _post(client, accepted, "review", version).status_code == 302
    again = _post(client, accepted, "review", version)
    assert again.status_code == 302
    assert "重复提交，未再次办理" in client.get(again.headers["Location"]).get_data(as_text=True)
    other = app.test_client()
    login(other, factories.make_user(Role.REVIEWER, district_code="500112"))
    assert _post(other, accepted, "review", version).status_code == 409


def test_reviewer_voids_with_reason_and_frees_the_cylinders(client, login_as, accepted):
    login_as(Role.REVIEWER, district_code="500112")
    page = client.get(f"/bureau/applications/{accepted.id}/void")
    assert page.status_code == 200
    response = client.post(
        f"/bureau/applications/{accepted.id}/void",
        data={
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
            "reason": "资料不全",
            "confirm": "y",
            "version": accepted.version_id,
        },
    )
    assert response.status_code == 302
    db.session.refresh(accepted)
    assert accepted.status is ApplicationStatus.VOIDED
    keys = db.session.scalars(
        select(ApplicationItem.live_identity_key).where(
            ApplicationItem.application_id == accepted.id
        )
    )
    assert set(keys) == {None}


def test_approver_cannot_void_an_application_waiting_for_review(client, login_as, accepted):
    login_as(Role.APPROVER, district_code="500112")
    assert client.get(f"/bureau/applications/{accepted.id}/void").status_code == 409


def test_other_districts_reviewer_gets_404(client, login_as, accepted):
    login_as(Role.REVIEWER, district_code="500105")
    assert client.get(f"/bureau/applications/{accepted.id}").status_code == 404
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    response = client.post(
        f"/bureau/applications/{accepted.id}/review",
        data={"csrf_token": token, "version": accepted.version_id},
    )
    assert response.status_code == 404
