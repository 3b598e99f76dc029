"""What every view needs from the web process: configuration, database, Redis, the in-memory index, the auth state."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis
from flask import current_app

from config import Config
from db.pool import Database
from routes.security import AuthState, session_secret
from voyager_manager import IndexHolder


@dataclass
class Runtime:
    config: Config
    db: Database
    redis: redis.Redis
    index: IndexHolder
    stop_background: threading.Event = field(default_factory=threading.Event)  # ends the background threads
    _session_key: str | None = field(default=None, repr=False)
    _auth: AuthState | None = field(default=None, repr=False)
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
        """The credentials in force, read from the database on first use."""
        key = self.session_key
        with self._lock:
            if self._auth is None:
                self._auth = AuthState.load(self.config, self.db, session_key=key)
            return self._auth


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["audiomuse"]
    return rt
