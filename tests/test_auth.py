from datetime import timedelta

from sqlalchemy import select, update

from regbackoffice.blueprints.auth.routes import LOGIN_FAILED
from regbackoffice.extensions import db
from regbackoffice.models import AuditLog, AuthThrottle, Role, UserSession, utcnow

from . import factories
from .conftest import login, post_form


def _audit(action: str, **filters) -> list[AuditLog]:
    query = select(AuditLog).where(AuditLog.action == action)
    for key, value in filters.items():
        query = query.where(getattr(AuditLog, key) == value)
    return list(db.session.scalars(query.order_by(AuditLog.id)))


def test_login_page_is_chinese_and_login_reaches_home(client):
    assert "登录" in client.get("/login").get_data(as_text=True)
    user = factories.make_user(Role.ACCEPTOR)
    response = login(client, user)
    assert response.status_code == 302
    home = client.get("/").get_data(as_text=True)
    assert user.display_name in home and "受理人员" in home and "渝北区" in home


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_wrong_password_unknown_user_and_disabled_user_get_one_generic_message(client):
    user = factories.make_user(Role.REVIEWER)
    disabled = factories.make_user(Role.REVIEWER)
    disabled.active = False
    db.session.flush()
    pages = [
        login(client, user, "wrong-password"),
        login(client, "nobody-here"),
        login(client, disabled),
    ]
    for page in pages:
        assert page.status_code == 200
        assert LOGIN_FAILED in page.get_data(as_text=True)
    reasons = [row.detail["reason"] for row in _audit("login", outcome="failed")]
    assert reasons == ["bad_password", "unknown_user", "disabled"]
    assert all("password" not in row.detail for row in _audit("login"))


def test_five_failures_lock_the_address_for_fifteen_minutes(client):
    """等保 L2 登录失败处理, from the failing address (other addresses: test_login_trust)."""
    from regbackoffice import throttle

    user = factories.make_user(Role.ACCEPTOR)
    for _ in range(5):
        login(client, user, "wrong-password")
    [(_address, until)] = throttle.locked_addresses(
        throttle.LOGIN, throttle.subject_key(user.username)
    )
    assert timedelta(minutes=14) < until - utcnow() <= timedelta(minutes=15)
    assert len(_audit("login_address_locked", actor_id=user.id)) == 1
    # Even the right password is refused from that address while it is locked.
    page = login(client, user)
    assert page.status_code == 200 and "本地址登录失败次数过多" in page.get_data(as_text=True)
    # After the lockout the right password works again.
    with db.engine.begin() as conn:
        conn.execute(update(AuthThrottle).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert login(client, user).status_code == 302


def test_idle_session_expires_after_thirty_minutes(client, login_as):
    user = login_as(Role.APPROVER)
    assert client.get("/").status_code == 200
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    row.last_seen_at = utcnow() - timedelta(minutes=31)
    db.session.flush()
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    db.session.refresh(row)
    assert row.end_reason == "idle"


def test_activity_within_thirty_minutes_keeps_the_session(client, login_as):
    user = login_as(Role.APPROVER)
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    row.last_seen_at = utcnow() - timedelta(minutes=29)
    db.session.flush()
    assert client.get("/").status_code == 200
    db.session.refresh(row)
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)


def test_cookie_copied_before_logout_is_rejected_after_it(app, client, login_as):
    login_as(Role.ACCEPTOR)
    stolen = client.get_cookie("regbo_session").value
    assert post_form(client, "/logout").status_code == 302
    thief = app.test_client()
    thief.set_cookie("regbo_session", stolen)
    response = thief.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_disabling_a_user_ends_their_session_at_once(client, login_as):
    from regbackoffice import accounts

    user = login_as(Role.ACCEPTOR)
    assert client.get("/").status_code == 200
    accounts.set_active(user, False)
    db.session.flush()
    assert client.get("/").status_code == 302


def test_login_form_without_csrf_token_is_refused(client):
    user = factories.make_user(Role.ACCEPTOR)
    response = client.post(
        "/login", data={"username": user.username, "password": factories.PASSWORD}
    )
    assert response.status_code == 400
    assert "页面已过期" in response.get_data(as_text=True)
    db.session.refresh(user)
    assert user.last_login_at is None


def test_logout_without_csrf_token_is_refused_and_session_stays(client, login_as):
    login_as(Role.ACCEPTOR)
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_next_parameter_cannot_redirect_off_site(client):
    user = factories.make_user(Role.ACCEPTOR)
    page = client.get("/login?next=https://evil.example/")
    from .conftest import csrf_token_from

    token = csrf_token_from(page.get_data(as_text=True))
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        client.get("/login")
        response = client.post(
            f"/login?next={target}",
            data={"username": user.username, "password": factories.PASSWORD, "csrf_token": token},
        )
        assert response.headers["Location"] == "/"
        post_form(client, "/logout")
        token = csrf_token_from(client.get("/login").get_data(as_text=True))
