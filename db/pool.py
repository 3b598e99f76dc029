"""A psycopg2 connection pool that is safe across fork().

RQ's default worker forks a work-horse for every job; a connection inherited from the parent must never be
used by the child (both would talk on one socket). `get_database()` therefore keys its pools by process id.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.extras
import psycopg2.pool
from psycopg2.extensions import connection as Connection  # noqa: N812


class Database:
    """A pool of connections to one PostgreSQL database.

    `transaction()` yields a dict-row cursor inside one transaction: commit on success, rollback on error.
    """

    def __init__(self, dsn: str, *, min_connections: int = 1, max_connections: int = 10) -> None:
        self.dsn = dsn
        self._pool = psycopg2.pool.ThreadedConnectionPool(
            min_connections, max_connections, dsn, connect_timeout=10, application_name="audiomuse"
        )
        self._pid = os.getpid()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        conn = self._pool.getconn()
        broken = False
        try:
            yield conn
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except psycopg2.Error:
                broken = True
            raise
        finally:
            if conn.closed:
                broken = True
            self._pool.putconn(conn, close=broken)

    @contextmanager
    def transaction(self) -> Iterator[psycopg2.extras.RealDictCursor]:
        with self.connection() as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            yield cur

    def fetch_one(self, sql: str, params: Any = None) -> dict[str, Any] | None:
        with self.transaction() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
            return dict(row) if row is not None else None

    def fetch_all(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        with self.transaction() as cur:
            cur.execute(sql, params)
            return [dict(r) for r in cur.fetchall()]

    def execute(self, sql: str, params: Any = None) -> int:
        """Run one statement; return the number of rows it touched."""
        with self.transaction() as cur:
            cur.execute(sql, params)
            return cur.rowcount

    def close(self) -> None:
        if os.getpid() == self._pid and not self._pool.closed:
            self._pool.closeall()


_pools: dict[tuple[int, str], Database] = {}
_pools_lock = threading.Lock()


def get_database(dsn: str, *, min_connections: int = 1, max_connections: int = 10) -> Database:
    """The pool for `dsn` in this process, created on first use (a forked child gets its own)."""
    key = (os.getpid(), dsn)
    with _pools_lock:
        db = _pools.get(key)
        if db is None:
            db = Database(dsn, min_connections=min_connections, max_connections=max_connections)
            _pools[key] = db
        return db


def close_all() -> None:
    with _pools_lock:
        for (pid, _), db in list(_pools.items()):
            if pid == os.getpid():
                db.close()
        _pools.clear()
