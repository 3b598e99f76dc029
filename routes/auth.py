"""Login, logout and the first-run setup page."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from routes.context import runtime
from routes.security import MIN_PASSWORD_LENGTH, csrf_token

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this server: an open redirect after login would help phishing. Browsers read '\\' as '/'
    and drop tabs and newlines, so those are refused too."""
    fallback = url_for("pages.analysis")
    if not target or any(c == "\\" or ord(c) < 32 or ord(c) == 127 for c in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return fallback
    return parts.path + (f"?{parts.query}" if parts.query else "")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    auth = runtime().auth
    if not auth.enabled:
        return redirect(url_for("pages.analysis"))
    if request.method == "POST":
        if auth.check_password(request.form.get("password", "")):
            session.clear()
            session.permanent = True
            session["user"] = "admin"
            session["pw"] = auth.password_fingerprint
            csrf_token()
            return redirect(_safe_next(request.form.get("next")))
        time.sleep(0.5)  # slows password guessing a little without locking the admin out
        return render_template("login.html", error="Wrong password.", next=request.form.get("next", "")), 401
    return render_template("login.html", error=None, next=request.args.get("next", ""))


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> str | Response | tuple[str, int]:
    rt = runtime()
    if rt.auth.enabled:
        return redirect(url_for("pages.settings"))
    if request.method == "POST":
        password = request.form.get("password", "")
        if len(password) < MIN_PASSWORD_LENGTH:
            return render_template("setup.html", error=f"The password needs at least {MIN_PASSWORD_LENGTH} "
                                   "characters.", token=None), 400
        if password != request.form.get("confirm", ""):
            return render_template("setup.html", error="The two passwords differ.", token=None), 400
        token = rt.auth.set_up(rt.db, password)
        session.clear()
        session["user"] = "admin"
        session["pw"] = rt.auth.password_fingerprint
        csrf_token()
        return render_template("setup.html", error=None, token=token)
    return render_template("setup.html", error=None, token=None)
