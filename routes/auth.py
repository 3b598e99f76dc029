"""Login, logout (here or everywhere), password change, the first-run setup page and the named API tokens."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from db import api_tokens
from routes.context import runtime
from routes.errors import ApiError
from routes.ratelimit import clear, over_limit
from routes.security import (
    FIRST_TOKEN_NAME,
    MIN_PASSWORD_LENGTH,
    change_password,
    csrf_token,
    end_all_sessions,
    end_session,
    new_api_token,
    set_up,
    signed_in_by_token,
    token_name_problem,
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
    """Make a named API token (shown once; one of the same name stops working: a rotation), or revoke one, from
    the Settings page. Scripts and players send a token as `Authorization: Bearer`."""
    rt = runtime()
    action = request.form.get("action", "")
    name = request.form.get("name", FIRST_TOKEN_NAME).strip()

    def refused(message: str, status: int) -> tuple[str, int]:
        return render_template("token_result.html", token=None, name=name,
                               error=message[0].upper() + message[1:] + "."), status

    if signed_in_by_token():
        return refused(TOKENS_NEED_A_SESSION, 403)
    if action not in ("new", "rotate", "revoke"):
        return refused("choose to make or to revoke a token", 400)
    problem = token_name_problem(name)
    if problem:
        return refused(problem, 400)
    token = None
    replaced = name in rt.auth.api_tokens.values()
    if action == "revoke":
        if not api_tokens.delete_token(rt.db, name):
            return refused(f"there is no token named {name}", 404)
    else:
        token = new_api_token(rt.db, name)
    rt.forget_auth()
    return render_template("token_result.html", token=token, replaced=replaced, name=name, error=None)


TOKENS_NEED_A_SESSION = ("API tokens are managed from a signed-in browser, not with a token (a leaked token must "
                         "not be able to make itself another)")


def _refuse_a_token() -> None:
    if signed_in_by_token():
        raise ApiError(403, TOKENS_NEED_A_SESSION)


@bp.get("/api/tokens")
def list_api_tokens() -> Response:
    """The named tokens (never a token or its hash): name, made, last used; and whether API_TOKEN is set."""
    rt = runtime()
    _refuse_a_token()
    tokens = [{"name": t["name"], "created_at": t["created_at"].isoformat(),
               "last_used_at": t["last_used_at"].isoformat() if t["last_used_at"] else None}
              for t in api_tokens.list_tokens(rt.db)]
    return jsonify({"tokens": tokens, "environment_token": rt.auth.token_from_env})


@bp.post("/api/tokens")
def make_api_token() -> tuple[Response, int]:
    """{"name": ...} → 201 {"name", "token"}: the token is shown this once; one of the same name is replaced."""
    rt = runtime()
    _refuse_a_token()
    body = request.get_json(silent=True)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str):
        raise ApiError(400, "send {\"name\": \"...\"}: the script or player that will use the token",
                       parameter="name")
    problem = token_name_problem(name.strip())
    if problem:
        raise ApiError(400, problem, parameter="name")
    token = new_api_token(rt.db, name.strip())
    rt.forget_auth()
    return jsonify({"name": name.strip(), "token": token}), 201


@bp.delete("/api/tokens/<path:name>")
def revoke_named_api_token(name: str) -> Response:
    rt = runtime()
    _refuse_a_token()
    problem = token_name_problem(name)
    if problem:
        raise ApiError(400, problem, parameter="name")
    if not api_tokens.delete_token(rt.db, name):
        raise ApiError(404, f"no token named {name}", parameter="name")
    rt.forget_auth()
    return Response(status=204)


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
