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
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import argon2
import psycopg2
from flask import Flask, Response, abort, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from itsdangerous import URLSafeTimedSerializer

from config import Config
from db import app_settings
from db.pool import Database

PASSWORD_HASH_KEY = "admin_password_hash"
API_TOKEN_HASH_KEY = "api_token_sha256"
SESSION_KEY_KEY = "session_secret_key"
MIN_PASSWORD_LENGTH = 8
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
OPEN_PATHS = {"/api/health", "/login", "/favicon.ico"}

_hasher = argon2.PasswordHasher()
log = logging.getLogger(__name__)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class AuthState:
    """The credentials in force. The env password wins over one set on the setup page."""

    password_hash: str | None = None
    password_from_env: bool = False
    api_token_sha256: str | None = None
    _env_password: str = field(default="", repr=False)
    _pepper: str = field(default="", repr=False)  # the session key: the cookie must not carry a plain hash
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, config: Config, db: Database, *, session_key: str) -> AuthState:
        state = cls(_pepper=session_key)
        if config.ADMIN_PASSWORD:
            state.password_hash = _hasher.hash(config.ADMIN_PASSWORD)
            state.password_from_env = True
            state._env_password = config.ADMIN_PASSWORD
        else:
            state.password_hash = app_settings.get_setting(db, PASSWORD_HASH_KEY)
        state.api_token_sha256 = (_sha256(config.API_TOKEN) if config.API_TOKEN
                                  else app_settings.get_setting(db, API_TOKEN_HASH_KEY))
        return state

    @property
    def enabled(self) -> bool:
        return self.password_hash is not None

    def check_password(self, password: str) -> bool:
        if self.password_hash is None:
            return False
        try:
            return _hasher.verify(self.password_hash, password)
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            return False

    @property
    def password_fingerprint(self) -> str:
        """Changes whenever the password does, so older login sessions stop working (stable across restarts:
        the env password is hashed with a fresh salt at every start, so its fingerprint comes from the text)."""
        source = self._env_password or self.password_hash or ""
        return hmac.new(self._pepper.encode(), source.encode(), hashlib.sha256).hexdigest()[:16]

    def session_valid(self, current: object) -> bool:
        return (getattr(current, "get", lambda _k: None)("user") == "admin"
                and current.get("pw") == self.password_fingerprint)  # type: ignore[attr-defined]

    def check_token(self, token: str) -> bool:
        return self.api_token_sha256 is not None and hmac.compare_digest(_sha256(token), self.api_token_sha256)

    def set_up(self, db: Database, password: str) -> str:
        """First-run setup: store the password hash and a new API token; return the token (shown once)."""
        with self._lock:
            if self.enabled:
                raise PermissionError("an admin password is already configured")
            token = secrets.token_urlsafe(32)
            app_settings.set_setting(db, PASSWORD_HASH_KEY, _hasher.hash(password))
            app_settings.set_setting(db, API_TOKEN_HASH_KEY, _sha256(token))
            self.password_hash = app_settings.get_setting(db, PASSWORD_HASH_KEY)
            self.api_token_sha256 = _sha256(token)
            return token


def session_secret(config: Config, db: Database) -> str:
    """SECRET_KEY, or a random key generated once and kept in the database so sessions survive restarts."""
    return config.SECRET_KEY or app_settings.get_or_create_setting(db, SESSION_KEY_KEY, secrets.token_hex(32))


class LazyKeySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions with the signing key fetched on the first request that needs it, so building
    the app reads nothing from the database."""

    def __init__(self, key: Callable[[], str]) -> None:
        self._key = key

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            try:
                app.secret_key = self._key()
            except psycopg2.Error:
                # The database is unreachable (or not migrated yet): this request gets no session, the next one
                # tries again; pages that need the session fail on their own, /api/health still answers.
                log.warning("session key not available yet (database unreachable)", exc_info=True)
                return None
        return super().get_signing_serializer(app)


def csrf_token() -> str:
    token = session.get("csrf_token")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf_token"] = token
    return str(token)


def _is_api(path: str) -> bool:
    return path.startswith(("/api/", "/chat/api/"))


def _looks_like_browser() -> bool:
    return any(h in request.headers for h in ("Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Cookie"))


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def install_security(app: Flask, get_auth: Callable[[], AuthState]) -> None:
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
            if not value.strip() or not auth.check_token(value.strip()):
                return _unauthorized("invalid API token")
            bearer = value.strip()

        if path in OPEN_PATHS or path.startswith("/static/") or (path == "/setup" and not auth.enabled):
            pass
        elif auth.enabled and bearer is None and not auth.session_valid(session):
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
