"""Process-wide handles to PostgreSQL and Redis, built from the configuration."""

from __future__ import annotations

import os
import threading

import redis

from config import Config
from db.pool import Database, get_database

_redis_clients: dict[tuple[int, str], redis.Redis] = {}
_lock = threading.Lock()


def get_db(config: Config) -> Database:
    if not config.database_url:
        raise RuntimeError("no PostgreSQL configured: set DATABASE_URL or start through launcher.py")
    return get_database(config.database_url, min_connections=config.DB_POOL_MIN, max_connections=config.DB_POOL_MAX)


def get_redis(config: Config) -> redis.Redis:
    """A Redis client for this process (redis-py pools its own connections; a forked child gets a new one)."""
    if not config.REDIS_URL:
        raise RuntimeError("no Redis configured: set REDIS_URL or start through launcher.py")
    key = (os.getpid(), config.REDIS_URL)
    with _lock:
        client = _redis_clients.get(key)
        if client is None:
            # A hung Redis must not hold a web thread for ever: every command times out (RQ's worker raises its own
            # connection's timeout above its blocking dequeue).
            client = redis.Redis.from_url(config.REDIS_URL, socket_connect_timeout=config.REDIS_TIMEOUT_SECONDS,
                                          socket_timeout=config.REDIS_TIMEOUT_SECONDS, health_check_interval=30,
                                          retry_on_timeout=False)
            _redis_clients[key] = client
        return client
