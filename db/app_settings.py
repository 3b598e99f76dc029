"""Queries on app_settings: small server-side values the UI may change (password hash, session key)."""

from __future__ import annotations

import json
from typing import Any

from config import Config
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


MEDIA_SETTINGS_KEY = "mediaserver_settings"


def media_settings(db: Database) -> dict[str, Any]:
    """Media-server settings saved on the Settings page (setting name → value); they override the environment."""
    raw = get_setting(db, MEDIA_SETTINGS_KEY)
    return json.loads(raw) if raw else {}


def save_media_settings(db: Database, values: dict[str, Any]) -> None:
    set_setting(db, MEDIA_SETTINGS_KEY, json.dumps(values, sort_keys=True))


def effective_config(config: Config, db: Database) -> Config:
    """The configuration with the saved media-server settings applied."""
    saved = media_settings(db)
    return config.with_overrides(**saved) if saved else config
