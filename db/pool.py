"""A psycopg2 connection pool that is safe across fork() and survives a PostgreSQL restart.

RQ's default worker forks a work-horse for every job; a connection inherited from the parent must never be
used by the child (both would talk on one socket). `get_database()` therefore keys its pools by process id.

A pooled connection whose server went away (a restart, `pg_terminate_backend`) looks fine until it is used. An
idle connection has nothing to read, so one whose socket is readable holds the server's goodbye (or EOF): it is
replaced at check-out, before any statement is sent. A single statement run through `fetch_one`/`fetch_all`/
`execute` that still meets a dead connection is sent once more on a fresh one, when nothing can have been applied
(the connection broke before the commit); multi-statement transactions fail and the caller decides.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg2
import psycopg2.extras
import psycopg2.pool
from psycopg2.extensions import connection as Connection  # noqa: N812

log = logging.getLogger(__name__)
T = TypeVar("T")
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


def _gone(conn: Connection) -> bool:
    """Whether an idle pooled connection is dead: closed, or its socket has something to read (the server's
    termination notice or EOF; an idle connection of ours never has anything else to read)."""
    if conn.closed:
        return True
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg2.Error):
        return True
    return bool(readable)


class Database:
    """A pool of connections to one PostgreSQL database.

    `transaction()` yields a dict-row cursor inside one transaction: commit on success, rollback on error.
    """

    def __init__(self, dsn: str, *, min_connections: int = 1, max_connections: int = 10) -> None:
        self.dsn = dsn
        # Nothing is opened yet: a process starts (and says what is wrong) while PostgreSQL is down; up to
        # `min_connections` are kept open once made.
        self._pool = psycopg2.pool.ThreadedConnectionPool(
            0, max_connections, dsn, connect_timeout=10, application_name="audiomuse"
        )
        self._pool.minconn = min_connections
        self._pid = os.getpid()

    def _checkout(self) -> Connection:
        """A live connection from the pool; dead ones met on the way are closed and replaced."""
        for _ in range(self._pool.maxconn + 1):
            conn = self._pool.getconn()
            if not _gone(conn):
                return conn
            log.info("replacing a PostgreSQL connection the server closed")
            self._pool.putconn(conn, close=True)
        raise psycopg2.OperationalError("no live PostgreSQL connection could be opened")

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        conn = self._checkout()
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
    def rolled_back(self) -> Iterator[psycopg2.extras.RealDictCursor]:
        """A transaction that always ends in a rollback: nothing it changed, session settings included, outlives
        it on the pooled connection."""
        conn = self._checkout()
        broken = False
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                yield cur
        finally:
            try:
                conn.rollback()
            except psycopg2.Error:
                broken = True
            self._pool.putconn(conn, close=broken or bool(conn.closed))

    @contextmanager
    def transaction(self) -> Iterator[psycopg2.extras.RealDictCursor]:
        with self.connection() as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            yield cur

    def _one_statement(self, run: Callable[[Any], T]) -> T:
        """Run `run(cursor)` in its own transaction; if the connection breaks before the commit, once more on a
        fresh one (nothing was applied: the transaction never committed)."""
        for attempt in (1, 2):
            conn = self._checkout()
            try:
                with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                    result = run(cur)
            except BaseException as exc:
                broken = bool(conn.closed)
                if not broken:
                    try:
                        conn.rollback()
                    except psycopg2.Error:
                        broken = True
                self._pool.putconn(conn, close=broken)
                if attempt == 1 and broken and isinstance(exc, CONNECTION_ERRORS):
                    log.info("PostgreSQL connection lost before the commit; sending the statement once more")
                    continue
                raise
            try:
                conn.commit()
            except BaseException:
                # A commit that failed may or may not have been applied: never sent again.
                self._pool.putconn(conn, close=True)
                raise
            self._pool.putconn(conn)
            return result
        raise AssertionError("unreachable")

    def fetch_one(self, sql: str, params: Any = None) -> dict[str, Any] | None:
        def run(cur: Any) -> dict[str, Any] | None:
            cur.execute(sql, params)
            row = cur.fetchone()
            return dict(row) if row is not None else None

        return self._one_statement(run)

    def fetch_all(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        def run(cur: Any) -> list[dict[str, Any]]:
            cur.execute(sql, params)
            return [dict(r) for r in cur.fetchall()]

        return self._one_statement(run)

    def execute(self, sql: str, params: Any = None) -> int:
        """Run one statement; return the number of rows it touched."""
        def run(cur: Any) -> int:
            cur.execute(sql, params)
            return int(cur.rowcount)

        return self._one_statement(run)

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
