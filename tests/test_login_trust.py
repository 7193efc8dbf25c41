"""Login and token trust (issue 15): strangers cannot lock anyone out; the doors leak nothing.

Most tests use the Flask test client with a chosen client address (``REMOTE_ADDR``); the
race, the chunked body and the dropped database connection go through a real HTTP server
(``live_server``) on the committed ``live_app`` database.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
import werkzeug.security
from sqlalchemy import select
from werkzeug.serving import make_server

from regbackoffice import accounts, throttle
from regbackoffice.blueprints.auth.routes import LOGIN_FAILED
from regbackoffice.extensions import db
from regbackoffice.models import AuditLog, AuthThrottle, Role, User, utcnow

from . import factories
from .api_helpers import token_for
from .conftest import csrf_token_from, login, post_form

ATTACKER = "203.0.113.7"
DESK = "198.51.100.20"
TOKEN_URL = "/api/v1/auth/token"


def login_from(client, address: str, user: User | str, password: str = factories.PASSWORD):
    username = user if isinstance(user, str) else user.username
    page = client.get("/login", environ_base={"REMOTE_ADDR": address})
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
        },
        environ_base={"REMOTE_ADDR": address},
    )


def audit_rows(action: str, **filters) -> list[AuditLog]:
    query = select(AuditLog).where(AuditLog.action == action)
    for key, value in filters.items():
        query = query.where(getattr(AuditLog, key) == value)
    return list(db.session.scalars(query.order_by(AuditLog.id)))


def expire_locks(app) -> None:
    """Time passes: every lock ends (the counters live on their own committed connection)."""
    with app.app_context(), db.engine.begin() as conn:
        past = utcnow() - timedelta(seconds=1)
        conn.execute(sa.update(AuthThrottle).values(locked_until=past))


# ---- clerks: per (username, address), account-wide only at a much higher count ----------


def test_five_wrong_passwords_lock_only_the_attackers_address(app, client):
    user = factories.make_user(Role.ACCEPTOR)
    for _ in range(5):
        page = login_from(client, ATTACKER, user, "wrong-Password-1")
        assert LOGIN_FAILED in page.get_data(as_text=True)
    # The attacker's address is refused even with the right password (等保 L2 lockout) …
    refused = login_from(client, ATTACKER, user)
    assert refused.status_code == 200
    assert "本地址登录失败次数过多" in refused.get_data(as_text=True)
    # … while the clerk at her desk logs in: a stranger's failures do not lock her out.
    desk = app.test_client()
    assert login_from(desk, DESK, user).status_code == 302
    assert desk.get("/").status_code == 200
    db.session.refresh(user)
    assert user.locked_until is None
    locks = audit_rows("login_address_locked", actor_id=user.id)
    assert len(locks) == 1 and locks[0].ip == ATTACKER
    [(address, until)] = throttle.locked_addresses(
        throttle.LOGIN, throttle.subject_key(user.username)
    )
    assert address == ATTACKER
    assert timedelta(minutes=14) < until - utcnow() <= timedelta(minutes=15)


def test_a_repeated_lock_from_the_same_address_lasts_twice_as_long(app, client):
    user = factories.make_user(Role.REVIEWER)
    for _ in range(5):
        login_from(client, ATTACKER, user, "wrong-Password-1")
    expire_locks(app)
    for _ in range(5):
        login_from(client, ATTACKER, user, "wrong-Password-1")
    [(address, until)] = throttle.locked_addresses(
        throttle.LOGIN, throttle.subject_key(user.username)
    )
    assert address == ATTACKER
    assert timedelta(minutes=29) < until - utcnow() <= timedelta(minutes=30)
    assert len(audit_rows("login_address_locked", actor_id=user.id)) == 2


def test_unknown_usernames_are_throttled_exactly_like_known_ones(client):
    for _ in range(5):
        login_from(client, ATTACKER, "no-such-clerk", "wrong-Password-1")
    page = login_from(client, ATTACKER, "no-such-clerk", "wrong-Password-1")
    assert "本地址登录失败次数过多" in page.get_data(as_text=True)


def test_account_locks_only_at_the_high_count_and_the_admin_unlocks_it(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_ACCOUNT_MAX_FAILURES", 12)
    clerk = factories.make_user(Role.ACCEPTOR)
    admin = factories.make_user(Role.ADMIN, district_code=None)
    # Three addresses, four failures each: no single address reaches its lock of 5.
    for n in range(3):
        for _ in range(4):
            login_from(client, f"192.0.2.{n + 1}", clerk, "wrong-Password-1")
    db.session.refresh(clerk)
    assert clerk.locked_until is not None
    assert timedelta(minutes=59) < clerk.locked_until - utcnow() <= timedelta(minutes=60)
    assert len(audit_rows("account_locked", object_id=str(clerk.id))) == 1
    # Locked for everyone now, with the generic message.
    page = login_from(client, DESK, clerk)
    assert page.status_code == 200 and LOGIN_FAILED in page.get_data(as_text=True)

    admin_client = app.test_client()
    assert login(admin_client, admin).status_code == 302
    edit = admin_client.get(f"/admin/users/{clerk.id}").get_data(as_text=True)
    assert "账号已锁定至" in edit and "解锁" in edit
    done = post_form(
        admin_client, f"/admin/users/{clerk.id}/unlock", page=f"/admin/users/{clerk.id}"
    )
    assert done.status_code == 302
    [unlocked] = audit_rows("account_unlocked", object_id=str(clerk.id))
    assert unlocked.actor_id == admin.id and unlocked.detail["account_was_locked"] is True
    assert login_from(app.test_client(), DESK, clerk).status_code == 302


def test_admin_unlock_also_lifts_the_address_locks(app, client):
    clerk = factories.make_user(Role.APPROVER)
    admin = factories.make_user(Role.ADMIN, district_code=None)
    for _ in range(5):
        login_from(client, ATTACKER, clerk, "wrong-Password-1")
    admin_client = app.test_client()
    login(admin_client, admin)
    edit = admin_client.get(f"/admin/users/{clerk.id}").get_data(as_text=True)
    assert ATTACKER in edit and "暂停登录" in edit
    post_form(admin_client, f"/admin/users/{clerk.id}/unlock", page=f"/admin/users/{clerk.id}")
    [unlocked] = audit_rows("account_unlocked", object_id=str(clerk.id))
    assert unlocked.detail["addresses_cleared"] == 1
    assert login_from(app.test_client(), ATTACKER, clerk).status_code == 302


def test_unknown_and_known_usernames_cost_one_hash_each(app, client, monkeypatch):
    user = factories.make_user(Role.ACCEPTOR)
    login_from(client, DESK, "warm-up-the-dummy-hash", "wrong-Password-1")
    calls: list[str] = []
    real = werkzeug.security._hash_internal

    def counting(method: str, salt: str, password: str):
        calls.append(method)
        return real(method, salt, password)

    monkeypatch.setattr(werkzeug.security, "_hash_internal", counting)
    login_from(client, DESK, user, "wrong-Password-1")
    known = len(calls)
    calls.clear()
    login_from(client, DESK, "nobody-of-that-name", "wrong-Password-1")
    unknown = len(calls)
    assert known == unknown == 1


def test_a_secret_typed_as_username_is_not_stored_anywhere(client):
    typed = "Secret#Pass2026"
    login_from(client, ATTACKER, typed, "whatever-Else-1")
    [row] = audit_rows("login", outcome="failed")
    assert row.detail["matched"] is False and row.detail["reason"] == "unknown_user"
    assert re.fullmatch(r"[0-9a-f]{12}", row.detail["username_hash"])
    assert typed.lower() not in (str(row.detail) + row.actor_name + str(row.object_id)).lower()
    with db.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT subject FROM auth_throttle")).scalars().all()
    assert stored and all(typed not in s for s in stored)


def test_login_page_message_names_the_per_address_rule(client):
    page = login_from(client, DESK, "nobody", "wrong-Password-1").get_data(as_text=True)
    assert "同一地址连续5次错误，该地址将暂停登录15分钟" in page


# ---- password rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Ab1!", "至少8位"),
        ("12345678", "至少三类"),
        ("password", "至少三类"),
        ("abcdefgh", "至少三类"),
        ("Password1", "常见密码"),
        ("P@ssw0rd", "常见密码"),
        ("Password@123", "常见密码"),
        ("Qwerty123", "常见密码"),
        ("Woaini1314", "常见密码"),
        ("Qwer!5678", "连续或重复"),
        ("Abcd#4321", "连续或重复"),
        ("Aa1Aa1Aa1", "连续或重复"),
        ("zhangsan-2026", "用户名"),
    ],
)
def test_weak_passwords_are_refused_with_a_chinese_reason(password, reason):
    assert reason in (accounts.password_error(password, "zhangsan") or "")


@pytest.mark.parametrize(
    "password", ["demo-pass-2026", factories.PASSWORD, "Gas#2026ping", "Chongqing-Ping7"]
)
def test_good_passwords_pass(password):
    assert accounts.password_error(password, "zhangsan") is None


def test_admin_cannot_create_a_user_with_a_common_password(client, login_as):
    login_as(Role.ADMIN, district_code=None)
    form = {
        "username": "weakling",
        "display_name": "弱密码",
        "role": "supervisor",
        "district_code": "",
        "password": "Password1",
    }
    page = post_form(client, "/admin/users/new", form, page="/admin/users/new")
    assert "常见密码" in page.get_data(as_text=True)
    assert db.session.scalar(select(User).where(User.username == "weakling")) is None


def test_a_weak_existing_password_must_be_changed_before_anything_else(app, client):
    user = factories.make_user(Role.ACCEPTOR)
    user.password_hash = accounts.hash_secret("password1")  # set before the rules existed
    db.session.flush()
    response = login_from(client, DESK, user, "password1")
    assert response.status_code == 302 and response.headers["Location"] == "/password"
    db.session.refresh(user)
    assert user.must_change_password is True
    assert len(audit_rows("password_change_required", object_id=str(user.id))) == 1
    # Every page leads to the change until it is done.
    for path in ("/", "/inbox", "/applications"):
        blocked = client.get(path)
        assert blocked.status_code == 302 and blocked.headers["Location"] == "/password"
    form = client.get("/password").get_data(as_text=True)
    assert "不符合现行密码规则" in form
    token = csrf_token_from(form)
    weak = client.post(
        "/password",
        data={
            "current": "password1",
            "new": "12345678",
            "confirm": "12345678",
            "csrf_token": token,
        },
    )
    assert "至少三类" in weak.get_data(as_text=True)
    done = client.post(
        "/password",
        data={
            "current": "password1",
            "new": "Gas#2026ping",
            "confirm": "Gas#2026ping",
            "csrf_token": token,
        },
    )
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    db.session.refresh(user)
    assert user.must_change_password is False
    [changed] = audit_rows("password_changed", object_id=str(user.id))
    assert changed.detail["forced"] is True
    assert login_from(app.test_client(), DESK, user, "Gas#2026ping").status_code == 302


def test_a_good_password_at_login_sets_no_change_flag(client):
    user = factories.make_user(Role.ACCEPTOR)
    assert login_from(client, DESK, user).headers["Location"] == "/"
    db.session.refresh(user)
    assert user.must_change_password is False


# ---- the token exchange ----------------------------------------------------------------------


def exchange(client, address: str, app_id: str, secret: str):
    return client.post(
        TOKEN_URL,
        json={"app_id": app_id, "app_secret": secret},
        environ_base={"REMOTE_ADDR": address},
    )


def test_wrong_secrets_from_one_address_never_refuse_the_platform_elsewhere(client):
    api_client, secret = factories.make_api_client()
    for _ in range(10):
        assert exchange(client, ATTACKER, api_client.app_id, "wrong").status_code == 401
    throttled = exchange(client, ATTACKER, api_client.app_id, secret)
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60 + 1
    assert "其他地址的调用不受影响" in throttled.get_json()["message"]
    # The filling station's platform, at its own address, still gets its token.
    good = exchange(client, DESK, api_client.app_id, secret)
    assert good.status_code == 200 and good.get_json()["data"]["access_token"]
    assert len(audit_rows("api_auth_locked", object_id=api_client.app_id)) == 1


def test_token_exchange_backoff_doubles_the_wait(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "API_AUTH_MAX_FAILURES", 2)
    api_client, _ = factories.make_api_client()
    for _ in range(2):
        exchange(client, ATTACKER, api_client.app_id, "wrong")
    first = int(exchange(client, ATTACKER, api_client.app_id, "wrong").headers["Retry-After"])
    expire_locks(app)
    for _ in range(2):
        exchange(client, ATTACKER, api_client.app_id, "wrong")
    second = int(exchange(client, ATTACKER, api_client.app_id, "wrong").headers["Retry-After"])
    assert 15 * 60 - 30 < first <= 15 * 60 + 1
    assert 30 * 60 - 30 < second <= 30 * 60 + 1


def test_many_failing_addresses_raise_one_alert_and_lock_nothing(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "API_AUTH_ALERT_FAILURES", 6)
    api_client, secret = factories.make_api_client()
    for n in range(8):
        assert exchange(client, f"192.0.2.{n + 1}", api_client.app_id, "wrong").status_code == 401
    [alert] = audit_rows("api_auth_alert", object_id=api_client.app_id)
    assert alert.outcome == "alert" and alert.detail["failures"] == 6
    assert exchange(client, DESK, api_client.app_id, secret).status_code == 200
    admin_client = app.test_client()
    login(admin_client, factories.make_user(Role.ADMIN, district_code=None))
    page = admin_client.get("/admin/api-clients").get_data(as_text=True)
    assert "鉴权告警" in page and api_client.app_id in page


def test_every_api_401_carries_a_bearer_challenge(client):
    api_client, _ = factories.make_api_client()
    url = "/api/v1/fillings/check"
    body = {"id": "CQ1", "medium_code": "G13"}
    missing = client.post(url, json=body)
    invalid = client.post(url, json=body, headers={"Authorization": "Bearer not-a-token"})
    wrong_secret = exchange(client, DESK, api_client.app_id, "wrong")
    for response in (missing, invalid, wrong_secret):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in invalid.headers["WWW-Authenticate"]
    live = client.post(url, json=body, headers={"Authorization": f"Bearer {token_for(api_client)}"})
    assert "WWW-Authenticate" not in live.headers


def test_options_answers_in_the_envelope(client):
    response = client.open(TOKEN_URL, method="OPTIONS")
    assert response.status_code == 200
    payload = response.get_json()
    assert payload["code"] == "200" and "POST" in payload["data"]["allow"]
    assert "POST" in response.headers["Allow"]
    assert client.open("/api/v1/nowhere", method="OPTIONS").get_json()["code"] == "404"


# ---- through a real HTTP server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(live_app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        serving.join(10)


def committed_user(live_db, **kwargs) -> User:
    user = factories.make_user(Role.ACCEPTOR, **kwargs)
    live_db.session.commit()
    return user


def test_thirty_parallel_wrong_passwords_make_only_five_checks(live_app, live_db, live_server):
    user = committed_user(live_db)
    user_id, username = user.id, user.username
    sessions = []
    for _ in range(30):
        http = requests.Session()
        page = http.get(f"{live_server}/login", timeout=30)
        sessions.append((http, csrf_token_from(page.text)))
    barrier = threading.Barrier(len(sessions))
    pages: list[str] = [""] * len(sessions)

    def attempt(n: int) -> None:
        http, token = sessions[n]
        barrier.wait()
        form = {"username": username, "password": "wrong-Password-1", "csrf_token": token}
        pages[n] = http.post(f"{live_server}/login", data=form, timeout=60).text

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(len(sessions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    live_db.session.rollback()
    checks = live_db.session.scalar(
        select(sa.func.count()).where(
            AuditLog.action == "login",
            AuditLog.actor_id == user_id,
            AuditLog.detail["reason"].as_string() == "bad_password",
        )
    )
    throttled = sum("本地址登录失败次数过多" in page for page in pages)
    assert checks == 5
    assert throttled == 25
    locks = live_db.session.scalar(
        select(sa.func.count()).where(
            AuditLog.action == "login_address_locked", AuditLog.actor_id == user_id
        )
    )
    assert locks == 1


def test_a_chunked_body_over_the_limit_is_413(live_app, live_server, monkeypatch):
    monkeypatch.setitem(live_app.config, "API_MAX_REQUEST_BYTES", 64 * 1024)

    def chunks() -> Iterator[bytes]:
        yield b'{"app_id": "x", "app_secret": "'
        for _ in range(20):
            yield b"a" * 8192
        yield b'"}'

    response = requests.post(
        f"{live_server}{TOKEN_URL}",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "413"


def _terminate_waiting_backends(live_app, holder: sa.Connection) -> int:
    """Wait for the app's backend blocked on the held lock, then terminate it."""
    import time

    for _ in range(400):
        # pg_stat_activity is a snapshot per transaction, and the holder keeps one open.
        holder.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        pids = (
            holder.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            )
            .scalars()
            .all()
        )
        if pids:
            for pid in pids:
                holder.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            return len(pids)
        time.sleep(0.05)
    raise AssertionError("the request never reached the database")


@pytest.mark.parametrize("kind", ["api", "check", "page"])
def test_a_dropped_database_connection_answers_503_with_retry_after(
    live_app, live_db, live_server, kind
):
    unit = factories.make_unit()
    api_client, _ = factories.make_api_client(unit)
    token = token_for(api_client)
    user = factories.make_user(Role.ACCEPTOR)
    live_db.session.commit()
    http = requests.Session()
    if kind == "page":
        page = http.get(f"{live_server}/login", timeout=30)
        form = {"username": user.username, "password": factories.PASSWORD}
        form["csrf_token"] = csrf_token_from(page.text)
        assert http.post(f"{live_server}/login", data=form, timeout=30).status_code == 200
    table = "user_sessions" if kind == "page" else "api_tokens"
    result: dict = {}

    def send() -> None:
        if kind in ("api", "check"):  # the check reads on the driver (driver_sql)
            path, body = "cylinders/query", {"id": "CQ-none"}
            if kind == "check":
                path, body = "fillings/check", {"id": "CQ-none", "medium_code": "G1"}
            result["response"] = http.post(
                f"{live_server}/api/v1/{path}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
        else:
            result["response"] = http.get(f"{live_server}/", timeout=60)

    with live_app.app_context():
        holder = db.engine.connect()
    try:
        holder.execute(sa.text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        request_thread = threading.Thread(target=send)
        request_thread.start()
        assert _terminate_waiting_backends(live_app, holder) >= 1
        holder.rollback()
        request_thread.join(60)
    finally:
        holder.close()
    response = result["response"]
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    if kind != "page":
        assert response.json()["code"] == "503"
    else:
        assert "服务暂时不可用" in response.text and "数据库连接中断" in response.text
    # The pool recovers: the next request is served normally.
    again = (
        http.post(
            f"{live_server}/api/v1/cylinders/query",
            json={"id": "CQ-none"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        if kind == "api"
        else http.get(f"{live_server}/", timeout=30)
    )
    assert again.status_code in (200, 404)


def test_quiet_unlocked_counters_are_pruned_and_locked_ones_kept(app, client):
    for _ in range(5):
        login_from(client, ATTACKER, "sprayed-name-1", "wrong-Password-1")  # locked
    login_from(client, ATTACKER, "sprayed-name-2", "wrong-Password-1")  # one failure
    with db.engine.begin() as conn:
        conn.execute(sa.update(AuthThrottle).values(updated_at=utcnow() - timedelta(days=2)))
    assert throttle.prune() == 1
    with db.engine.connect() as conn:
        left = conn.execute(sa.select(AuthThrottle.subject)).scalars().all()
    assert left == [throttle.subject_key("sprayed-name-1")]


def test_behind_one_trusted_proxy_each_client_has_its_own_throttle(app):
    """Everyone reaches the app from nginx's 127.0.0.1; X-Forwarded-For tells them apart."""
    from regbackoffice import create_app

    proxied = create_app({**app.config, "TRUSTED_PROXIES": 1}).test_client()
    api_client, secret = factories.make_api_client()

    def via_nginx(client_address: str, app_secret: str):
        return proxied.post(
            TOKEN_URL,
            json={"app_id": api_client.app_id, "app_secret": app_secret},
            headers={"X-Forwarded-For": client_address},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )

    for _ in range(10):
        via_nginx(ATTACKER, "wrong")
    assert via_nginx(ATTACKER, secret).status_code == 429
    assert via_nginx(DESK, secret).status_code == 200
    [lock] = audit_rows("api_auth_locked", object_id=api_client.app_id)
    assert lock.ip == ATTACKER
