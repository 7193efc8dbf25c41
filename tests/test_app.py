import flask
import pytest

from regbackoffice import create_app
from regbackoffice.config import ConfigError, load_config


def test_production_without_secret_key_refuses_to_start(tmp_path):
    with pytest.raises(ConfigError, match="REGBO_SECRET_KEY is not set"):
        load_config(str(tmp_path), {"REGBO_ENV": "production"})
    with pytest.raises(ConfigError):
        load_config(str(tmp_path), {})  # production is the default mode


def test_development_defaults_to_sqlite_in_instance_and_inline_jobs(tmp_path):
    config = load_config(str(tmp_path), {"REGBO_ENV": "development"})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'regbackoffice.db'}"
    assert config["REDIS_URL"] is None
    assert config["STORAGE_DIR"] == str(tmp_path / "files")
    assert config["SESSION_COOKIE_SECURE"] is False


def test_production_cookies_are_secure_and_postgres_urls_use_psycopg3(tmp_path):
    config = load_config(
        str(tmp_path),
        {"REGBO_SECRET_KEY": "k" * 40, "REGBO_DATABASE_URL": "postgresql://u@h/db"},
    )
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


def test_create_app_runs_no_database_query(tmp_path):
    # An unreachable database: building the app must not touch it.
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none", "TESTING": True}
    )
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/login", "/inbox", "/api/v1/auth/token"} <= rules


@pytest.fixture
def crashing_app(app):
    crashing = create_app(dict(app.config))

    @crashing.route("/boom")
    def boom():
        raise RuntimeError("secret internal detail")

    return crashing


def test_unexpected_error_page_is_chinese_without_traceback(crashing_app):
    response = crashing_app.test_client().get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "系统错误" in body and "请求编号" in body
    assert "secret internal detail" not in body and "Traceback" not in body


def test_unknown_page_is_a_chinese_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and "页面不存在" in response.get_data(as_text=True)


def test_api_paths_answer_errors_in_the_envelope(client):
    response = client.post("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["code"] == "404"


def test_oversized_request_is_a_chinese_413(client):
    app = client.application
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post(
        "/login",
        data=b"x" * (limit + 1),
        content_type="application/octet-stream",
        headers={"Referer": "http://localhost/applications/1"},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 413 and "文件过大" in page
    assert 'href="http://localhost/applications/1">返回上一页</a>' in page


def test_security_headers_forbid_inline_script_and_framing(client):
    headers = client.get("/login").headers
    csp = headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_a_header_the_view_set_itself_is_kept_and_the_others_added(app):
    from flask import Response

    from regbackoffice.security import _set_headers

    with app.test_request_context("/"):
        response = _set_headers(Response(headers={"x-frame-options": "SAMEORIGIN"}))
    assert response.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_templates_contain_no_inline_script():
    """The CSP would block them: scripts live in static/js."""
    import re
    from pathlib import Path

    templates = Path(__file__).resolve().parents[1] / "regbackoffice" / "templates"
    for path in templates.rglob("*.html"):
        text = path.read_text("utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline script in {path}"
        handler = r"\son(click|change|submit|load|input|key\w+|mouse\w+|focus|blur|error)\s*="
        assert not re.search(handler, text), f"inline event handler in {path}"


@pytest.fixture
def stale_app(app):
    """An app with a route whose row another transaction changes before it commits."""
    from sqlalchemy import update

    from regbackoffice.extensions import db
    from regbackoffice.models import Application

    from . import factories

    stale = create_app(dict(app.config))
    application = factories.make_application()

    @stale.route("/stale")
    def change() -> str:
        row = db.session.get(Application, application.id)
        row.contact_name = "我的修改"
        # Meanwhile someone else saved the same application (version bumped).
        with db.session.no_autoflush:
            db.session.execute(
                update(Application)
                .where(Application.id == application.id)
                .values(version_id=Application.version_id + 1)
                .execution_options(synchronize_session=False)
            )
        return "saved"

    return stale


def test_a_concurrent_change_answers_409_not_500(stale_app):
    response = stale_app.test_client().get("/stale")
    assert response.status_code == 409 and "数据已变化" in response.get_data(as_text=True)


def _production_app(tmp_path, **extra):
    from regbackoffice import create_app

    return create_app(
        {
            "REGBO_ENV": "production",
            "TESTING": False,
            "SECRET_KEY": "production-test-key",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}",
            "STORAGE_DIR": str(tmp_path / "files"),
            **extra,
        }
    )


def test_production_answers_carry_hsts_and_session_cookie_is_secure_httponly_samesite(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("REGBO_ENV", "production")
    monkeypatch.setenv("REGBO_SECRET_KEY", "production-test-key")
    app = _production_app(tmp_path)
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    response = app.test_client().get("/login", base_url="https://regbo.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookie = response.headers["Set-Cookie"]
    assert "regbo_session=" in cookie
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_development_answers_have_no_hsts(tmp_path, monkeypatch):
    monkeypatch.setenv("REGBO_ENV", "development")
    app = _production_app(tmp_path, REGBO_ENV="development", SESSION_COOKIE_SECURE=False)
    response = app.test_client().get("/login")
    assert "Strict-Transport-Security" not in response.headers


def test_trusted_proxy_setting_makes_audit_ip_the_clients(tmp_path, monkeypatch):
    monkeypatch.setenv("REGBO_ENV", "production")
    monkeypatch.setenv("REGBO_SECRET_KEY", "production-test-key")
    monkeypatch.setenv("REGBO_TRUSTED_PROXIES", "1")
    app = _production_app(tmp_path)
    seen = {}

    @app.get("/_ip")
    def _ip():
        from flask import request

        seen["ip"], seen["scheme"] = request.remote_addr, request.scheme
        return "ok"

    app.test_client().get(
        "/_ip", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    )
    assert seen == {"ip": "203.0.113.7", "scheme": "https"}


def test_the_api_gets_no_cookie_session_and_the_pages_do(app):
    # The JSON API authenticates by bearer token: its calls never open (or sign) the cookie.
    interface = app.session_interface
    with app.test_request_context("/api/v1/fillings/check", method="POST"):
        assert interface.is_null_session(interface.open_session(app, flask.request))
    with app.test_request_context("/login"):
        assert not interface.is_null_session(interface.open_session(app, flask.request))


def _hooks_run_for(app, path: str, method: str = "GET") -> dict[str, list]:
    """The request hooks Flask runs for ``path``, as it picks them (by request.blueprints)."""
    with app.test_request_context(path, method=method):
        names = [None, *reversed(flask.request.blueprints)]
    return {
        registry: [hook for name in names for hook in getattr(app, registry).get(name, [])]
        for registry in ("before_request_funcs", "after_request_funcs", "teardown_request_funcs")
    }


def test_the_api_runs_only_the_app_wide_hooks_and_the_pages_run_them_all(app):
    from regbackoffice import security, transaction
    from regbackoffice.blueprints.api.routes import _options_in_the_envelope

    api = _hooks_run_for(app, "/api/v1/fillings/check", "POST")
    assert api == {
        "before_request_funcs": [],
        "after_request_funcs": [
            transaction._finish,
            security._set_headers,
            _options_in_the_envelope,
        ],
        "teardown_request_funcs": [transaction._teardown],
    }
    # A page, and a URL of no blueprint (a 404), run every hook the app has but the API's:
    # CSRF, the page limits, read-only users and the others, and the app-wide ones.
    for path in ("/login", "/no/such/page"):
        page = _hooks_run_for(app, path, "POST")
        for registry, hooks in page.items():
            scopes = getattr(app, registry)
            assert set(hooks) == {h for s, per in scopes.items() if s != "api" for h in per}
        names = {getattr(h, "__name__", "") for h in page["before_request_funcs"]}
        assert {"csrf_protect", "check_page_limits", "_refuse_writes_by_read_only_users"} <= names
