"""Login, bearer tokens and CSRF for every request.

With no admin password configured (neither ADMIN_PASSWORD nor the /setup page) AudioMuse is open, as most
self-hosted tools on a home network are. Once a password exists, every page and API needs either a login
session or `Authorization: Bearer <API_TOKEN>`; /api/health, /login and static files stay open.

CSRF: a state-changing request that is not bearer-authenticated must carry the session's CSRF token (form field
`csrf_token` or header `X-CSRFToken`) whenever it could come from a browser: always when a password is set,
and in open mode when it carries browser headers (Origin, Sec-Fetch-*, Cookie). Scripts using curl against an
open server keep working; a forged cross-site form never does.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import argon2
import psycopg2
from flask import Flask, Response, abort, g, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from itsdangerous import URLSafeTimedSerializer

from config import Config
from db import api_tokens, app_settings, login_sessions
from db.pool import Database
from db.sealed import SealError

PASSWORD_HASH_KEY = "admin_password_hash"
ENV_TOKEN_NAME = "API_TOKEN"  # the name the token from the environment goes by
FIRST_TOKEN_NAME = "default"  # the token made by /setup
MAX_TOKEN_NAME_LENGTH = 60
SESSION_EPOCH_KEY = "session_epoch"
SETUP_CODE_KEY = "setup_code"
MIN_PASSWORD_LENGTH = 8
SESSION_DAYS = 30  # a login cookie's lifetime (app.py's PERMANENT_SESSION_LIFETIME)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
OPEN_PATHS = {"/api/health", "/login", "/favicon.ico"}

_hasher = argon2.PasswordHasher()
log = logging.getLogger(__name__)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class AuthState:
    """The credentials in force, as read at one moment (the web process reads them again every few seconds, so
    a password set or changed through another replica takes effect everywhere). ADMIN_PASSWORD wins over a
    password set on the setup page."""

    password_hash: str | None = None
    api_tokens: Mapping[str, str] = field(default_factory=dict)  # SHA-256 of each token → its name
    session_epoch: str = "0"  # bumped by "log out everywhere" and by a password change
    setup_code: str | None = None  # required by /setup while an exposed server has no password
    ended_sessions: frozenset[str] = frozenset()  # ids of login sessions that logged out
    token_from_env: bool = False  # API_TOKEN is set: it cannot be rotated or revoked from the Settings page
    _env_password: str = field(default="", repr=False)
    _pepper: str = field(default="", repr=False)  # the session key: the cookie must not carry a plain hash

    @classmethod
    def load(cls, config: Config, db: Database, *, session_key: str) -> AuthState:
        stored = app_settings.get_settings(db, [PASSWORD_HASH_KEY, SESSION_EPOCH_KEY, SETUP_CODE_KEY])
        tokens = api_tokens.token_names_by_hash(db)
        if config.API_TOKEN:  # beside the named ones, which the Settings page manages
            tokens[_sha256(config.API_TOKEN)] = ENV_TOKEN_NAME
        return cls(password_hash=None if config.ADMIN_PASSWORD else stored.get(PASSWORD_HASH_KEY),
                   api_tokens=tokens,
                   session_epoch=stored.get(SESSION_EPOCH_KEY, "0"), setup_code=stored.get(SETUP_CODE_KEY),
                   ended_sessions=login_sessions.ended_sessions(db, within_days=SESSION_DAYS),
                   token_from_env=bool(config.API_TOKEN), _env_password=config.ADMIN_PASSWORD, _pepper=session_key)

    @property
    def enabled(self) -> bool:
        return bool(self._env_password) or self.password_hash is not None

    @property
    def password_from_env(self) -> bool:
        return bool(self._env_password)

    def check_password(self, password: str) -> bool:
        if self._env_password:
            return hmac.compare_digest(password.encode(), self._env_password.encode())
        if self.password_hash is None:
            return False
        try:
            return _hasher.verify(self.password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    @property
    def password_fingerprint(self) -> str:
        """Changes whenever the password does, so older login sessions stop working (stable across restarts)."""
        source = self._env_password or self.password_hash or ""
        return hmac.new(self._pepper.encode(), source.encode(), hashlib.sha256).hexdigest()[:16]

    def session_valid(self, current: object) -> bool:
        get = getattr(current, "get", lambda _key, _default=None: None)
        sid, signed_in = get("sid"), get("iat")
        # iat: a login lasts SESSION_DAYS from sign-in however often its cookie is refreshed, so an ended id need
        # only be remembered that long
        return (get("user") == "admin" and get("pw") == self.password_fingerprint
                and str(get("epoch", "0")) == self.session_epoch
                and isinstance(sid, str) and bool(sid) and sid not in self.ended_sessions
                and isinstance(signed_in, int) and 0 <= time.time() - signed_in < SESSION_DAYS * 86400)

    def sign_in(self, current: Any) -> None:
        """Make `current` (the Flask session) a login session of this state."""
        current.clear()
        current.permanent = True
        current["user"] = "admin"
        current["pw"] = self.password_fingerprint
        current["epoch"] = self.session_epoch
        current["sid"] = secrets.token_urlsafe(18)  # what a logout ends on the server
        current["iat"] = int(time.time())

    def check_token(self, token: str) -> str | None:
        """The name of the token sent, None when it is not one in force. Only hashes are compared: the hash of a
        guess says nothing about how close the guess came."""
        return self.api_tokens.get(_sha256(token))


def set_up(db: Database, password: str) -> str:
    """First-run setup: store the password hash — only if no password exists, in one statement, so two replicas
    (or two browsers) cannot both set one — then a new API token; return the token (shown once)."""
    if not app_settings.insert_setting_if_absent(db, PASSWORD_HASH_KEY, _hasher.hash(password)):
        raise PermissionError("an admin password is already configured")
    token = new_api_token(db, FIRST_TOKEN_NAME)
    app_settings.delete_setting(db, SETUP_CODE_KEY)
    return token


def change_password(db: Database, password: str) -> None:
    """A new password (stored hash) and a new session epoch: every older login session ends."""
    app_settings.set_setting(db, PASSWORD_HASH_KEY, _hasher.hash(password))
    app_settings.increment_setting(db, SESSION_EPOCH_KEY)


def end_session(db: Database, current: Any) -> None:
    """Log out: the session's id is recorded as ended, so its cookie, copied or replayed, no longer counts."""
    sid = current.get("sid")
    if isinstance(sid, str) and sid:
        login_sessions.end_session(db, sid, keep_days=SESSION_DAYS)
    current.clear()


def token_name_problem(name: str) -> str | None:
    """Why `name` cannot name a token, None when it can."""
    if not name.strip():
        return "give the token a name (the script or player that will use it)"
    if len(name) > MAX_TOKEN_NAME_LENGTH:
        return f"a token name has at most {MAX_TOKEN_NAME_LENGTH} characters"
    if name == ENV_TOKEN_NAME:
        return f"{ENV_TOKEN_NAME} is the token from the environment: change it there"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for c in name):
        # control, invisible formatting (zero-width, bidi overrides) or unassigned characters: a name must look
        # like what it is on the Settings page
        return "a token name cannot hold control or invisible characters"
    if "/" in name or name.strip(".") == "":
        return "a token name cannot hold '/' or be only dots (it is part of a URL)"
    return None


def signed_in_by_token() -> str | None:
    """The name of the API token this request came with, None for a login session (or an open server)."""
    name = g.get("api_token_name")
    return name if isinstance(name, str) else None


def new_api_token(db: Database, name: str) -> str:
    """A new API token named `name`, in place of the one of that name (which stops working); returned once, stored
    as its hash."""
    token = secrets.token_urlsafe(32)
    api_tokens.put_token(db, name, _sha256(token))
    return token


def end_all_sessions(db: Database) -> None:
    """Log out everywhere: sessions made before this no longer count."""
    app_settings.increment_setting(db, SESSION_EPOCH_KEY)


def setup_code(db: Database) -> str:
    """The one-time code /setup asks for on an exposed server without a password (made once, kept until setup)."""
    return app_settings.get_or_create_setting(db, SETUP_CODE_KEY, "-".join(
        secrets.token_hex(2).upper() for _ in range(3)))


def session_secret(config: Config, db: Database) -> str:
    """SECRET_KEY, or a random key generated once and kept in the database so sessions survive restarts."""
    return config.SECRET_KEY or app_settings.session_key(db, config, secrets.token_hex(32))


class LazyKeySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions with the signing key fetched on the first request that needs it, so building
    the app reads nothing from the database."""

    def __init__(self, key: Callable[[], str]) -> None:
        self._key = key

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            try:
                app.secret_key = self._key()
            except (psycopg2.Error, SealError) as exc:
                # The database is unreachable (or not migrated yet), or the stored key is sealed with another key:
                # this request gets no session, the next one tries again; pages that need the session fail on
                # their own, /api/health still answers.
                log.warning("session key not available: %s", exc)
                return None
        return super().get_signing_serializer(app)


def csrf_token() -> str:
    token = session.get("csrf_token")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf_token"] = token
    return str(token)


def _is_api(path: str) -> bool:
    """Answered 401 (not a redirect to the login page) without credentials: the API and /metrics."""
    return path.startswith(("/api/", "/chat/api/")) or path == "/metrics"


def _looks_like_browser() -> bool:
    return any(h in request.headers for h in ("Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Cookie"))


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def install_security(app: Flask, get_auth: Callable[[], AuthState], *, exposed: bool,
                     note_token_use: Callable[[str], None] | None = None) -> None:
    """The request guard. `exposed`: the server listens beyond loopback, where it fails closed until a password
    exists: only /setup (with the setup code from the log), /login, /api/health and static files answer. Every
    answer says it may be framed by AudioMuse's own pages only (no clickjacking from another site)."""
    @app.after_request
    def _no_framing(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'self'")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return response

    @app.before_request
    def _guard() -> ResponseReturnValue | None:
        path = request.path
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        # Other schemes (Basic from a reverse proxy's own login) are not ours to judge: ignore them.
        sends_bearer = scheme.lower() == "bearer"
        if (path == "/api/health" or path.startswith("/static/")) and not sends_bearer \
                and request.method not in UNSAFE_METHODS:
            return None  # answers even while the database (and so the auth state) is unreachable
        auth = get_auth()
        bearer = None
        if sends_bearer:
            name = auth.check_token(value.strip()) if value.strip() else None
            if name is None:
                return _unauthorized("invalid API token")
            bearer = value.strip()
            g.api_token_name = name
            if note_token_use is not None:
                note_token_use(name)

        if path in OPEN_PATHS or path.startswith("/static/") or (path == "/setup" and not auth.enabled):
            pass
        elif exposed and not auth.enabled and bearer is None:
            message = ("set an admin password first: open /setup and enter the setup code printed in the server's "
                       "log (or set ADMIN_PASSWORD)")
            if _is_api(path):
                return jsonify({"error": message, "status": 403, "parameter": None}), 403
            return redirect(url_for("auth.setup"))
        elif auth.enabled and bearer is None and not auth.session_valid(session):
            session.clear()  # an ended or expired session's cookie is deleted, not sent back refreshed
            if _is_api(path):
                return _unauthorized("login required: sign in or send 'Authorization: Bearer <API_TOKEN>'")
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

        if request.method in UNSAFE_METHODS and bearer is None and (auth.enabled or _looks_like_browser()):
            sent = request.headers.get("X-CSRFToken") or request.form.get("csrf_token", "")
            expected = session.get("csrf_token")
            if not _same_origin() or not expected or not hmac.compare_digest(str(sent), str(expected)):
                if _is_api(path):
                    resp = jsonify({"error": "CSRF token missing or invalid; reload the page", "status": 403,
                                    "parameter": "csrf_token"})
                    return resp, 403
                abort(403, description="CSRF token missing or invalid; reload the page and try again")
        return None

    @app.context_processor
    def _inject() -> dict[str, object]:
        auth = get_auth()
        return {"csrf_token": csrf_token, "auth_enabled": auth.enabled, "logged_in": auth.session_valid(session)}


def _unauthorized(message: str) -> tuple[Response, int]:
    resp = jsonify({"error": message, "status": 401, "parameter": None})
    resp.headers["WWW-Authenticate"] = 'Bearer realm="AudioMuse"'
    return resp, 401
