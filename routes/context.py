"""What every view needs from the web process: configuration, database, Redis, the in-memory index."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis
from flask import current_app

from config import Config
from db.pool import Database
from routes.security import AuthState
from voyager_manager import IndexHolder


@dataclass
class Runtime:
    config: Config
    db: Database
    redis: redis.Redis
    index: IndexHolder
    auth: AuthState
    stop_background: threading.Event  # set to end the web process's background threads (tests, shutdown)


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["audiomuse"]
    return rt
