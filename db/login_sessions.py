"""Login sessions ended by a logout: their ids, kept while their cookies could still be presented."""

from __future__ import annotations

from db.pool import Database


def end_session(db: Database, sid: str) -> None:
    db.execute("INSERT INTO ended_sessions (sid) VALUES (%s) ON CONFLICT (sid) DO NOTHING", (sid,))


def ended_sessions(db: Database, *, within_days: int) -> frozenset[str]:
    """The ids of sessions ended in the last `within_days` days (older ones are forgotten: their cookies have
    expired)."""
    db.execute("DELETE FROM ended_sessions WHERE ended_at < now() - make_interval(days => %s)", (within_days,))
    rows = db.fetch_all("SELECT sid FROM ended_sessions WHERE ended_at >= now() - make_interval(days => %s)",
                        (within_days,))
    return frozenset(row["sid"] for row in rows)
