"""Login sessions ended by a logout: their ids, kept while their cookies could still be presented."""

from __future__ import annotations

from db.pool import Database


def end_session(db: Database, sid: str, *, keep_days: int) -> None:
    """Record the session as ended, and forget those ended more than `keep_days` ago (their logins have expired)."""
    with db.transaction() as cur:
        cur.execute("INSERT INTO ended_sessions (sid) VALUES (%s) ON CONFLICT (sid) DO NOTHING", (sid,))
        cur.execute("DELETE FROM ended_sessions WHERE ended_at < now() - make_interval(days => %s)", (keep_days,))


def ended_sessions(db: Database, *, within_days: int) -> frozenset[str]:
    """The ids of sessions ended in the last `within_days` days (read only: the auth state is read every few
    seconds)."""
    rows = db.fetch_all("SELECT sid FROM ended_sessions WHERE ended_at >= now() - make_interval(days => %s)",
                        (within_days,))
    return frozenset(row["sid"] for row in rows)
