from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ... import accounts
from . import bp
from .forms import LoginForm

LOGIN_FAILED = "用户名或密码错误，或账号已被锁定、停用。连续5次错误将锁定15分钟。"


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths; anything else goes home (no open redirect)."""
    if not target:
        return url_for("main.home")
    parts = urlsplit(target)
    same_site = not parts.scheme and not parts.netloc
    if same_site and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("main.home")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.username.data or "", form.password.data or "")
        if user is not None:
            session.clear()  # no fixation: a fresh cookie for the new login
            session["sid"] = accounts.start_session(user, request.remote_addr)
            return redirect(_safe_next(request.args.get("next")))
        flash(LOGIN_FAILED, "danger")
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    token = session.get("sid")
    if token:
        accounts.end_session(token)
    session.clear()
    flash("您已安全退出。", "info")
    return redirect(url_for("auth.login"))
