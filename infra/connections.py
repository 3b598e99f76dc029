"""Process-wide handles to PostgreSQL and Redis, built from the configuration."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from config import Config
from db.pool import Database, get_database

log = logging.getLogger(__name__)
T = TypeVar("T")
_redis_clients: dict[tuple[int, str, float], redis.Redis] = {}
_lock = threading.Lock()


def get_db(config: Config) -> Database:
    if not config.database_url:
        raise RuntimeError("no PostgreSQL configured: set DATABASE_URL or start through launcher.py")
    return get_database(config.database_url, min_connections=config.DB_POOL_MIN, max_connections=config.DB_POOL_MAX)


def get_redis(config: Config, *, outage_seconds: float = 0) -> redis.Redis:
    """A Redis client for this process (redis-py pools its own connections; a forked child gets a new one).
    `outage_seconds`: a command whose connection fails is tried again, backing off, for about that long (a worker
    riding out a Redis restart; the web process answers 503 at once instead)."""
    if not config.REDIS_URL:
        raise RuntimeError("no Redis configured: set REDIS_URL or start through launcher.py")
    key = (os.getpid(), config.REDIS_URL, outage_seconds)
    with _lock:
        client = _redis_clients.get(key)
        if client is None:
            # A hung Redis must not hold a web thread for ever: every command times out (RQ's worker raises its own
            # connection's timeout above its blocking dequeue).
            client = redis.Redis.from_url(config.REDIS_URL, socket_connect_timeout=config.REDIS_TIMEOUT_SECONDS,
                                          socket_timeout=config.REDIS_TIMEOUT_SECONDS, health_check_interval=30,
                                          retry_on_timeout=False,
                                          **({"retry": OutageRetry(outage_seconds)} if outage_seconds else {}))
            _redis_clients[key] = client
        return client


OUTAGE_BACKOFF = ExponentialBackoff(cap=2.0, base=0.25)


class OutageRetry(Retry):
    """redis-py's retry of a failed connection, saying once per command that Redis is away."""

    def __init__(self, seconds: float) -> None:
        retries, waited = 0, 0.0
        while waited < seconds:  # backing off to 2 s, the waits add up to at least `seconds`
            retries += 1
            waited += OUTAGE_BACKOFF.compute(retries)
        # Only connection errors (refused, dropped, Redis still loading its data): a command that timed out may
        # have run.
        super().__init__(OUTAGE_BACKOFF, retries, supported_errors=(redis.exceptions.ConnectionError,))
        self.seconds = seconds

    def call_with_retry(self, do: Callable[[], T], fail: Callable[..., Any],
                        is_retryable: Callable[[Exception], bool] | None = None,
                        with_failure_count: bool = False) -> T:
        told = False

        def fail_and_say(error: Exception, *failures: int) -> Any:
            nonlocal told
            if not told:
                told = True
                log.warning("Redis is unreachable (%s); trying again for up to %g s", error, self.seconds)
            return fail(error, *failures)

        def retryable(error: Exception) -> bool:  # a wrong password or ACL is no outage: it will not pass
            if isinstance(error, (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)):
                return False
            return is_retryable is None or is_retryable(error)

        return super().call_with_retry(do, fail_and_say, retryable, with_failure_count)
