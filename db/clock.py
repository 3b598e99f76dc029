"""The database server's clock: what every process and host agree on (timestamps are written with it)."""

from __future__ import annotations

from datetime import datetime

from db.pool import Database


def database_now(db: Database) -> datetime:
    """now() of the database server (aware, UTC offset), so worker and host clocks never matter."""
    row = db.fetch_one("SELECT now() AS now")
    assert row is not None
    moment: datetime = row["now"]
    return moment
