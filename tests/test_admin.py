from datetime import timedelta

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from regbackoffice.extensions import db
from regbackoffice.models import ApiClient, ApiToken, AuditLog, Role, Unit, User, utcnow

from . import factories
from .conftest import login, post_form


@pytest.fixture
def admin(login_as):
    return login_as(Role.ADMIN, district_code=None)


def _user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))


def test_admin_creates_a_district_clerk(client, admin):
    response = post_form(
        client,
        "/admin/users/new",
        {
            "username": "clerk-yb",
            "display_name": "王受理",
            "role": "acceptor",
            "district_code": "500112",
            "password": "pw-12345678",
        },
        page="/admin/users/new",
    )
    assert response.status_code == 302
    clerk = _user("clerk-yb")
    assert clerk.role is Role.ACCEPTOR and clerk.district_code == "500112"


def test_admin_creates_an_applicant_by_unit_credit_code(client, admin):
    unit = factories.make_unit("500105")
    post_form(
        client,
        "/admin/users/new",
        {
            "username": "app-jb",
            "display_name": "赵经办",
            "role": "applicant",
            "unit_credit_code": unit.credit_code.lower(),
            "password": "pw-12345678",
        },
        page="/admin/users/new",
    )
    assert _user("app-jb").unit_id == unit.id


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"role": "reviewer", "district_code": ""}, "审核人员必须指定所属区县"),
        (
            {"role": "applicant", "unit_credit_code": "91110000802100433B"},
            "找不到该统一社会信用代码对应的单位",
        ),
        ({"role": "approver", "district_code": "500112", "password": "short"}, "密码至少8位"),
    ],
)
def test_user_form_errors_are_specific_and_nothing_is_stored(client, admin, data, message):
    form = {"username": "bad-user", "display_name": "x", "password": "pw-12345678", **data}
    response = post_form(client, "/admin/users/new", form, page="/admin/users/new")
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert _user("bad-user") is None


def test_disabling_a_user_from_the_admin_page_ends_their_session(app, client, admin):
    clerk = factories.make_user(Role.ACCEPTOR)
    clerk_client = app.test_client()
    assert login(clerk_client, clerk).status_code == 302
    assert clerk_client.get("/").status_code == 200
    page = f"/admin/users/{clerk.id}"
    assert (
        post_form(client, f"/admin/users/{clerk.id}/active", {"active": "0"}, page=page).status_code
        == 302
    )
    response = clerk_client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    db.session.refresh(clerk)
    assert clerk.active is False


def test_admin_cannot_disable_themselves(client, admin):
    post_form(
        client, f"/admin/users/{admin.id}/active", {"active": "0"}, page=f"/admin/users/{admin.id}"
    )
    db.session.refresh(admin)
    assert admin.active is True


def test_password_reset_ends_sessions_unlocks_and_new_password_works(app, client, admin):
    clerk = factories.make_user(Role.REVIEWER)
    clerk.locked_until = utcnow() + timedelta(minutes=10)
    db.session.flush()
    response = post_form(
        client,
        f"/admin/users/{clerk.id}/password",
        {"password": "new-pass-123"},
        page=f"/admin/users/{clerk.id}",
    )
    assert response.status_code == 302
    assert login(app.test_client(), clerk, "new-pass-123").status_code == 302


def test_changing_a_users_district_ends_their_sessions(app, client, admin):
    clerk = factories.make_user(Role.ACCEPTOR, district_code="500112")
    clerk_client = app.test_client()
    login(clerk_client, clerk)
    post_form(
        client,
        f"/admin/users/{clerk.id}",
        {"display_name": "x", "role": "acceptor", "district_code": "500105"},
        page=f"/admin/users/{clerk.id}",
    )
    db.session.refresh(clerk)
    assert clerk.district_code == "500105"
    assert clerk_client.get("/").status_code == 302


def test_unit_with_a_broken_credit_code_is_refused_with_the_reason(client, admin):
    response = post_form(
        client,
        "/admin/units/new",
        {
            "kind": "use_unit",
            "name": "坏代码公司",
            "credit_code": "91110000802100433C",
            "district_code": "500112",
        },
        page="/admin/units/new",
    )
    assert "统一社会信用代码校验位错误" in response.get_data(as_text=True)
    assert db.session.scalar(select(Unit).where(Unit.name == "坏代码公司")) is None


def test_unit_is_created_with_a_valid_code(client, admin):
    response = post_form(
        client,
        "/admin/units/new",
        {
            "kind": "inspection_body",
            "name": "好检验站",
            "credit_code": "91110000802100433B",
            "district_code": "500105",
        },
        page="/admin/units/new",
    )
    assert response.status_code == 302
    unit = db.session.scalar(select(Unit).where(Unit.name == "好检验站"))
    assert unit.credit_code == "91110000802100433B" and unit.district_code == "500105"


def test_api_client_secret_is_shown_once_and_stored_hashed(client, admin):
    unit = factories.make_unit()
    response = post_form(
        client,
        "/admin/api-clients",
        {
            "unit_credit_code": unit.credit_code,
            "scopes": ["filling", "query"],
            "description": "充装平台",
        },
        page="/admin/api-clients",
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "仅显示这一次" in body
    stored = db.session.scalar(select(ApiClient).where(ApiClient.unit_id == unit.id))
    secret = body.split('user-select-all">')[1].split("<")[0]
    assert check_password_hash(stored.secret_hash, secret)
    assert secret not in client.get("/admin/api-clients").get_data(as_text=True)


def test_the_inspection_scope_is_refused_for_a_unit_that_is_not_an_inspection_body(client, admin):
    unit = factories.make_unit()
    response = post_form(
        client,
        "/admin/api-clients",
        {"unit_credit_code": unit.credit_code, "scopes": ["query", "inspection"]},
        page="/admin/api-clients",
    )
    assert "只有检验检测单位可以提交检验记录" in response.get_data(as_text=True)
    assert db.session.scalar(select(ApiClient).where(ApiClient.unit_id == unit.id)) is None


def test_rotating_and_revoking_an_api_client_revoke_its_tokens(client, admin):
    from regbackoffice import api_clients

    api_client, _ = api_clients.issue_client(factories.make_unit(), ["query"])
    token = ApiToken(
        client_id=api_client.id, token_hash="a" * 64, expires_at=utcnow() + timedelta(hours=2)
    )
    db.session.add(token)
    db.session.flush()
    response = post_form(
        client, f"/admin/api-clients/{api_client.id}/rotate", page="/admin/api-clients"
    )
    assert "仅显示这一次" in response.get_data(as_text=True)
    db.session.refresh(token)
    assert token.revoked_at is not None
    post_form(
        client,
        f"/admin/api-clients/{api_client.id}/active",
        {"active": "0"},
        page="/admin/api-clients",
    )
    db.session.refresh(api_client)
    assert api_client.active is False


def test_reference_page_lists_the_seed_tables(client, admin):
    body = client.get("/admin/reference").get_data(as_text=True)
    assert body.count("市场监督管理局") >= 42 and "液化石油气" in body and "特种气瓶" in body


def test_audit_viewer_filters_by_action_for_admin_and_supervisor(app, client, admin):
    login(app.test_client(), "nobody", "whatever")
    body = client.get("/admin/audit?action=login&outcome=failed").get_data(as_text=True)
    assert "unknown_user" in body
    assert ">登录<" in body, "actions are shown in words"
    supervisor_client = app.test_client()
    login(supervisor_client, factories.make_user(Role.SUPERVISOR, district_code=None))
    assert supervisor_client.get("/admin/audit").status_code == 200


@pytest.mark.parametrize("role", [Role.ACCEPTOR, Role.APPLICANT, Role.SUPERVISOR])
def test_non_admins_cannot_manage_users(client, login_as, role):
    login_as(role, district_code=None if role is Role.SUPERVISOR else "500112")
    assert client.get("/admin/users").status_code == 403
    refused = db.session.scalars(select(AuditLog).where(AuditLog.action == "role_denied")).all()
    assert len(refused) == 1


def test_clerk_cannot_read_the_audit_log(client, login_as):
    login_as(Role.ACCEPTOR)
    assert client.get("/admin/audit").status_code == 403
