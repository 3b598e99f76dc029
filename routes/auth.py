"""Login, logout (here or everywhere), password change and the first-run setup page."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from routes.context import runtime
from routes.ratelimit import clear, over_limit
from routes.security import (
    MIN_PASSWORD_LENGTH,
    change_password,
    csrf_token,
    end_all_sessions,
    end_session,
    new_api_token,
    revoke_api_token,
    set_up,
)

bp = Blueprint("auth", __name__)

LOGIN_FAILURES_ALLOWED = 5  # per client address and window; then the form refuses until the window ends
LOGIN_WINDOW_SECONDS = 15 * 60


def _safe_next(target: str | None) -> str:
    """Only a path on this server: an open redirect after login would help phishing. Browsers read '\\' as '/'
    and drop tabs and newlines, so those are refused too."""
    fallback = url_for("pages.home")
    if not target or any(c == "\\" or ord(c) < 32 or ord(c) == 127 for c in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return fallback
    return parts.path + (f"?{parts.query}" if parts.query else "")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    rt = runtime()
    auth = rt.auth
    if not auth.enabled:
        return redirect(url_for("pages.home"))
    if request.method == "POST":
        # The attempt is counted (one atomic INCR) before the password is checked: parallel guesses cannot all pass
        # a check of the count made before any of them failed. A right password clears the count.
        wait = over_limit(rt.redis, "login-failures", limit=LOGIN_FAILURES_ALLOWED,
                          window_seconds=LOGIN_WINDOW_SECONDS)
        if wait is not None:
            minutes = max(1, round(wait / 60))
            return render_template("login.html", error=f"Too many wrong passwords from your address: try again in "
                                   f"{minutes} min.", next=request.form.get("next", "")), 429
        if auth.check_password(request.form.get("password", "")):
            clear(rt.redis, "login-failures")
            auth.sign_in(session)
            csrf_token()
            return redirect(_safe_next(request.form.get("next")))
        return render_template("login.html", error="Wrong password.", next=request.form.get("next", "")), 401
    return render_template("login.html", error=None, next=request.args.get("next", ""))


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """End this session, on the server too: its cookie, copied or replayed, no longer signs anyone in."""
    rt = runtime()
    end_session(rt.db, session)
    rt.forget_auth()
    return redirect(url_for("auth.login"))


@bp.route("/settings/token", methods=["POST"])
def api_token() -> tuple[str, int] | str:
    """Rotate (a new token, shown once; the old one stops working) or revoke (no stored token works) the API
    token scripts and players send as `Authorization: Bearer`."""
    rt = runtime()
    action = request.form.get("action", "")
    if rt.auth.token_from_env:
        return render_template("token_result.html", token=None, action=action,
                               error="The token comes from API_TOKEN: change or remove it there and restart."), 409
    if action == "rotate":
        token = new_api_token(rt.db)
    elif action == "revoke":
        revoke_api_token(rt.db)
        token = None
    else:
        return render_template("token_result.html", token=None, action=action,
                               error="Choose to rotate or to revoke the token."), 400
    rt.forget_auth()
    return render_template("token_result.html", token=token, action=action, error=None)


@bp.route("/logout/everywhere", methods=["POST"])
def logout_everywhere() -> Response:
    """End every login session, this one included (a lost laptop, a shared browser)."""
    rt = runtime()
    end_all_sessions(rt.db)
    rt.forget_auth()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/settings/password", methods=["POST"])
def password() -> str | Response | tuple[str, int]:
    rt = runtime()
    auth = rt.auth

    def refuse(message: str, status: int) -> tuple[str, int]:
        return render_template("password_result.html", error=message), status

    if auth.password_from_env:
        return refuse("The password comes from ADMIN_PASSWORD: change it there and restart.", 409)
    if not auth.check_password(request.form.get("current", "")):
        return refuse("The current password is wrong.", 403)
    new = request.form.get("password", "")
    if len(new) < MIN_PASSWORD_LENGTH:
        return refuse(f"The new password needs at least {MIN_PASSWORD_LENGTH} characters.", 400)
    if new != request.form.get("confirm", ""):
        return refuse("The two new passwords differ.", 400)
    change_password(rt.db, new)
    rt.forget_auth()
    rt.auth.sign_in(session)  # this browser stays in; every other session has ended
    csrf_token()
    return render_template("password_result.html", error=None)


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> str | Response | tuple[str, int]:
    rt = runtime()
    auth = rt.auth
    if auth.enabled:
        return redirect(url_for("pages.settings"))
    needs_code = rt.config.exposed

    def again(message: str, status: int) -> tuple[str, int]:
        return render_template("setup.html", error=message, token=None, needs_code=needs_code), status

    if request.method == "POST":
        if needs_code:
            sent = request.form.get("setup_code", "").strip().upper()
            if not auth.setup_code or not hmac.compare_digest(sent.encode(), auth.setup_code.encode()):
                return again("Wrong setup code: it is printed in the server's log at start-up.", 403)
        password = request.form.get("password", "")
        if len(password) < MIN_PASSWORD_LENGTH:
            return again(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.", 400)
        if password != request.form.get("confirm", ""):
            return again("The two passwords differ.", 400)
        try:
            token = set_up(rt.db, password)
        except PermissionError:
            rt.forget_auth()
            return redirect(url_for("auth.login"))  # set meanwhile (another browser or replica)
        rt.forget_auth()
        rt.auth.sign_in(session)
        csrf_token()
        return render_template("setup.html", error=None, token=token, needs_code=False)
    return render_template("setup.html", error=None, token=None, needs_code=needs_code)
