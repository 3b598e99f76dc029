"""What every view needs from the web process: configuration, database, Redis, the in-memory index, the auth state."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import redis
from flask import current_app

from config import Config
from db import api_tokens
from db import search as search_store
from db.app_settings import effective_config, exclusion_settings
from db.chat_queries import ChatRole
from db.pool import Database
from mediaserver import MediaServer, UserCredentials, get_media_server
from routes.security import ENV_TOKEN_NAME, AuthState, session_secret
from services.chat import AiCallLog, NameCache, ProviderPacer
from services.text_search import TextModel
from voyager_manager import IndexHolder

log = logging.getLogger(__name__)
AUTH_CACHE_SECONDS = 2.0
TOKEN_USE_NOTE_SECONDS = 300.0  # a token's "last used" is written at most this often per web process


@dataclass
class Runtime:
    config: Config
    db: Database
    redis: redis.Redis
    index: IndexHolder
    text_model: TextModel
    clap_model: TextModel | None = None  # the CLAP text encoder, with CLAP_ENABLED
    chat_role: ChatRole | None = None  # set up at start-up (start_web_process)
    chat_calls: AiCallLog = field(default_factory=AiCallLog)
    chat_pacer: ProviderPacer = field(default_factory=ProviderPacer)
    chat_names: NameCache = field(default_factory=NameCache)
    stop_background: threading.Event = field(default_factory=threading.Event)  # ends the background threads
    metrics: Any = None  # routes.metrics.WebMetrics, set by app.serve
    _session_key: str | None = field(default=None, repr=False)
    _auth: AuthState | None = field(default=None, repr=False)
    _auth_read_at: float = field(default=0.0, repr=False)
    _exclusions: dict[str, Any] = field(default_factory=dict, repr=False)  # read with the credentials
    _trigram: bool | None = field(default=None, repr=False)
    _token_use_noted: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def session_key(self) -> str:
        """SECRET_KEY, or the key kept in the database (created there on first use)."""
        with self._lock:
            if self._session_key is None:
                self._session_key = session_secret(self.config, self.db)
            return self._session_key

    @property
    def auth(self) -> AuthState:
        """The credentials in force, read from the database at most AUTH_CACHE_SECONDS ago: a password set or
        changed through another web replica counts here within that time."""
        key = self.session_key
        with self._lock:
            now = time.monotonic()
            if self._auth is None or now - self._auth_read_at > AUTH_CACHE_SECONDS:
                self._auth = AuthState.load(self.config, self.db, session_key=key)
                self._exclusions = exclusion_settings(self.db)
                self._auth_read_at = now
            return self._auth

    @property
    def saved_exclusions(self) -> dict[str, Any]:
        """The blocklists and scope saved on the Settings page (setting name → value), read with the credentials
        at most AUTH_CACHE_SECONDS ago: the lists need no database trip for them, and a change through another
        web replica counts here within that time."""
        self.auth  # noqa: B018 -- reads both again when they are older than that
        with self._lock:
            return self._exclusions

    def media_server(self, *, user: UserCredentials | None = None) -> MediaServer:
        """The media server in force (the Settings page's saved values over the environment's), as `user` when
        a request passes a media-server user's credentials."""
        return get_media_server(effective_config(self.config, self.db), user=user)

    @property
    def trigram(self) -> bool:
        """Whether pg_trgm is installed (asked once per process: installing it needs a restart to be used)."""
        with self._lock:
            if self._trigram is None:
                self._trigram = search_store.trigram_available(self.db)
            return self._trigram

    def note_token_use(self, name: str) -> None:
        """Record that the token `name` signed a request in (shown on Settings): one write per token every
        TOKEN_USE_NOTE_SECONDS, not one per request."""
        now = time.monotonic()
        with self._lock:
            noted = self._token_use_noted.get(name)
            if noted is not None and now - noted < TOKEN_USE_NOTE_SECONDS:
                return
            self._token_use_noted[name] = now
        if name == ENV_TOKEN_NAME:
            return
        try:
            api_tokens.note_used(self.db, name)
        except psycopg2.Error as exc:  # a note, not worth failing the request it came with
            log.warning("could not record the use of API token %r: %s", name, exc)

    def forget_auth(self) -> None:
        """Read the credentials (and the saved blocklists) again on the next request (this process just changed
        them)."""
        with self._lock:
            self._auth = None
            self._token_use_noted.clear()  # a token made again under a name is noted at its first use


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["audiomuse"]
    return rt
