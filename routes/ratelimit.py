"""Per-client rate limits kept in Redis (so every web replica counts the same), for the endpoints a stranger could
use as a tool: the login form (password guessing) and the media-server connection test (probing hosts)."""

from __future__ import annotations

import logging

import redis
from flask import request

log = logging.getLogger(__name__)


def client_address() -> str:
    """The client as this server sees it (behind a reverse proxy: the proxy, unless it is the only client)."""
    return request.remote_addr or "unknown"


def over_limit(connection: redis.Redis, name: str, *, limit: int, window_seconds: int) -> int | None:
    """Count one use of `name` by this client; the seconds to wait when it used `name` more than `limit` times in
    the current window, else None. If Redis cannot count, the use is allowed (the rest of the app needs Redis too,
    and a limiter must not lock the admin out)."""
    key = f"audiomuse:ratelimit:{name}:{client_address()}"
    try:
        count = int(connection.incr(key))
        if count == 1:  # the window starts with the first use (EXPIRE NX needs Redis 7; the embedded one is 6.2)
            connection.expire(key, window_seconds)
        ttl = int(connection.ttl(key))
        if ttl < 0:  # a key left without expiry (a crash between the two calls): start its window now
            connection.expire(key, window_seconds)
            ttl = window_seconds
    except redis.RedisError as exc:
        log.warning("rate limit %s not counted: %s", name, exc)
        return None
    return max(ttl, 1) if count > limit else None


def clear(connection: redis.Redis, name: str) -> None:
    try:
        connection.delete(f"audiomuse:ratelimit:{name}:{client_address()}")
    except redis.RedisError:
        pass
