from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ... import accounts
from ...clock import format_china
from . import bp
from .forms import LoginForm, PasswordChangeForm

LOGIN_FAILED = "用户名或密码错误，或账号已被锁定、停用。"

# Pages a user who must change her password may still reach.
_ALLOWED_BEFORE_CHANGE = frozenset({"auth.change_password", "auth.logout", "static"})


def login_failed_message() -> str:
    config = current_app.config
    minutes = int(config["LOGIN_LOCKOUT"].total_seconds() // 60)
    return (
        f"{LOGIN_FAILED}同一地址连续{config['LOGIN_MAX_FAILURES']}次错误，"
        f"该地址将暂停登录{minutes}分钟。"
    )


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
        result = accounts.authenticate(
            form.username.data or "", form.password.data or "", request.remote_addr
        )
        if result.user is not None:
            session.clear()  # no fixation: a fresh cookie for the new login
            session["sid"] = accounts.start_session(result.user, request.remote_addr)
            if result.user.must_change_password:
                flash("您的密码不符合现行密码规则，请先修改密码。", "warning")
                return redirect(url_for("auth.change_password"))
            return redirect(_safe_next(request.args.get("next")))
        if result.throttled_until is not None:
            # Same for every username, existing or not: tells nothing about the account.
            flash(
                f"本地址登录失败次数过多，已暂停登录，请于{format_china(result.throttled_until)}"
                "后再试；如忘记密码请联系系统管理员。",
                "danger",
            )
        else:
            flash(login_failed_message(), "danger")
    return render_template("auth/login.html", form=form)


@bp.route("/password", methods=["GET", "POST"])
def change_password() -> Response | str:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.path))
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            accounts.change_own_password(
                current_user._get_current_object(),
                form.current.data or "",
                form.new.data or "",
                keep_session=session.get("sid", ""),
            )
        except accounts.AccountError as exc:
            form.new.errors = [*form.new.errors, str(exc)]
        else:
            flash("密码已修改，您在其他地方的登录已全部退出。", "success")
            return redirect(url_for("main.home"))
    return render_template(
        "auth/password.html", form=form, forced=current_user.must_change_password
    )


@bp.before_app_request
def _require_password_change() -> Response | None:
    """A weak password found at login: nothing else until it is changed."""
    if request.endpoint in _ALLOWED_BEFORE_CHANGE:  # a page hook: the API never runs it
        return None
    user = current_user
    if user.is_authenticated and getattr(user, "must_change_password", False):
        return redirect(url_for("auth.change_password"))
    return None


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    token = session.get("sid")
    if token:
        accounts.end_session(token)
    session.clear()
    flash("您已安全退出。", "info")
    response = redirect(url_for("auth.login"))
    # Photos are kept in the browser's private cache (photo_files): a shared PC forgets them.
    response.headers["Clear-Site-Data"] = '"cache"'
    return response
