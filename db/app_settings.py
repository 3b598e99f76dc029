"""Queries on app_settings: small server-side values the UI may change (password hash, session key)."""

from __future__ import annotations

from db.pool import Database


def get_setting(db: Database, key: str) -> str | None:
    row = db.fetch_one("SELECT value FROM app_settings WHERE key = %s", (key,))
    return row["value"] if row else None


def set_setting(db: Database, key: str, value: str) -> None:
    db.execute(
        """INSERT INTO app_settings (key, value) VALUES (%s, %s)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()""",
        (key, value),
    )


def get_or_create_setting(db: Database, key: str, value: str) -> str:
    """Store `value` under `key` unless a value is there already; return the stored one (race-safe)."""
    db.execute("INSERT INTO app_settings (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", (key, value))
    stored = get_setting(db, key)
    assert stored is not None
    return stored
