"""Counting the statements this process sends to PostgreSQL during a block, for tests that a job's queries stay
bounded whatever the library's size.

Every query of the application goes through a dict-row cursor (db.pool.Database, db.listing), which db.pool looks up
as `psycopg2.extras.RealDictCursor` each time it opens one; inside `counted_statements()` that name is a subclass
that counts each round trip: one per `execute` (whatever the SQL holds), one per parameter set of `executemany`, one
per COPY. Only statements sent from the thread that entered the block are counted (a task's heartbeat thread beats
by the clock, not by the size of the work); server-side named cursors, which the no-change path does not use, are
not counted. Run the job in-process (an RQ SimpleWorker) for its statements to be seen.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg2.extras


@dataclass
class StatementCount:
    statements: list[str] = field(default_factory=list)  # the first line of each, in order

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def counted_statements() -> Iterator[StatementCount]:
    counted = StatementCount()
    thread = threading.get_ident()
    original = psycopg2.extras.RealDictCursor

    def note(sql: Any, times: int = 1) -> None:
        if threading.get_ident() == thread:
            text = sql.decode() if isinstance(sql, bytes) else str(sql)
            counted.statements.extend([" ".join(text.split())[:120]] * times)

    class CountingCursor(original):  # type: ignore[misc, valid-type]
        def execute(self, query: Any, vars: Any = None) -> Any:  # noqa: A002 (psycopg2's signature)
            note(query)
            return super().execute(query, vars)

        def executemany(self, query: Any, vars_list: Any) -> Any:
            vars_list = list(vars_list)
            note(query, len(vars_list))
            return super().executemany(query, vars_list)

        def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> Any:
            note(sql)
            return super().copy_expert(sql, file, size)

    psycopg2.extras.RealDictCursor = CountingCursor  # type: ignore[misc]
    try:
        yield counted
    finally:
        psycopg2.extras.RealDictCursor = original  # type: ignore[misc]
