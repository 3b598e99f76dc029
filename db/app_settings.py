"""Queries on app_settings: small server-side values the UI may change (password hash, session key)."""

from __future__ import annotations

import json
from typing import Any

from config import EXCLUSION_SETTINGS, Config
from db.pool import Database
from db.sealed import is_sealed, seal, unseal


def get_setting(db: Database, key: str) -> str | None:
    row = db.fetch_one("SELECT value FROM app_settings WHERE key = %s", (key,))
    return row["value"] if row else None


def set_setting(db: Database, key: str, value: str) -> None:
    db.execute(
        """INSERT INTO app_settings (key, value) VALUES (%s, %s)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()""",
        (key, value),
    )


def get_settings(db: Database, keys: list[str]) -> dict[str, str]:
    """The stored values of `keys` (absent keys are left out), in one query."""
    rows = db.fetch_all("SELECT key, value FROM app_settings WHERE key = ANY(%s)", (keys,))
    return {r["key"]: r["value"] for r in rows}


def insert_setting_if_absent(db: Database, key: str, value: str) -> bool:
    """Store `value` under `key` only if no value is there (one statement, so two processes cannot both win);
    True when this call stored it."""
    row = db.fetch_one("INSERT INTO app_settings (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING "
                       "RETURNING key", (key, value))
    return row is not None


def increment_setting(db: Database, key: str) -> int:
    """Add one to the integer under `key` (0 when absent) and return the new value, atomically."""
    row = db.fetch_one(
        """INSERT INTO app_settings (key, value) VALUES (%s, '1')
           ON CONFLICT (key) DO UPDATE SET value = (app_settings.value::bigint + 1)::text, updated_at = now()
           RETURNING value""", (key,))
    assert row is not None
    return int(row["value"])


def delete_setting(db: Database, key: str) -> None:
    db.execute("DELETE FROM app_settings WHERE key = %s", (key,))


def get_or_create_setting(db: Database, key: str, value: str) -> str:
    """Store `value` under `key` unless a value is there already; return the stored one (race-safe)."""
    db.execute("INSERT INTO app_settings (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", (key, value))
    stored = get_setting(db, key)
    assert stored is not None
    return stored


MEDIA_SETTINGS_KEY = "mediaserver_settings"
SESSION_KEY_KEY = "session_secret_key"
SEALED_KEYS = (MEDIA_SETTINGS_KEY, SESSION_KEY_KEY)  # the values that hold credentials


def media_settings(db: Database, config: Config) -> dict[str, Any]:
    """Media-server settings saved on the Settings page (setting name → value); they override the environment."""
    raw = get_setting(db, MEDIA_SETTINGS_KEY)
    return json.loads(unseal(config, raw)) if raw else {}


def save_media_settings(db: Database, config: Config, values: dict[str, Any]) -> None:
    set_setting(db, MEDIA_SETTINGS_KEY, seal(config, json.dumps(values, sort_keys=True)))


EXCLUSIONS_KEY = "exclusion_settings"


def exclusion_settings(db: Database) -> dict[str, Any]:
    """The blocklists and scope saved on the Settings page (setting name → value); they override the environment."""
    raw = get_setting(db, EXCLUSIONS_KEY)
    values = json.loads(raw) if raw else {}
    return {name: values[name] for name in EXCLUSION_SETTINGS if name in values}


def save_exclusion_settings(db: Database, values: dict[str, Any]) -> None:
    set_setting(db, EXCLUSIONS_KEY, json.dumps({k: v for k, v in values.items() if k in EXCLUSION_SETTINGS},
                                               sort_keys=True))


def effective_config(config: Config, db: Database) -> Config:
    """The configuration with the settings saved on the Settings page applied (media server, blocklists)."""
    saved = {**media_settings(db, config), **exclusion_settings(db)}
    return config.with_overrides(**saved) if saved else config


def session_key(db: Database, config: Config, new_key: str) -> str:
    """The key that signs session cookies: stored sealed, made from `new_key` the first time (race-safe)."""
    stored = get_setting(db, SESSION_KEY_KEY)
    if stored is None:
        insert_setting_if_absent(db, SESSION_KEY_KEY, seal(config, new_key))
        stored = get_setting(db, SESSION_KEY_KEY)
        assert stored is not None
    return unseal(config, stored)


def seal_plaintext(db: Database, config: Config) -> list[str]:
    """Seal the credential values stored before sealing existed; return the keys sealed now (idempotent)."""
    sealed = []
    for key in SEALED_KEYS:
        with db.transaction() as cur:
            cur.execute("SELECT value FROM app_settings WHERE key = %s FOR UPDATE", (key,))
            row = cur.fetchone()
            if row is None or is_sealed(row["value"]):
                continue
            cur.execute("UPDATE app_settings SET value = %s, updated_at = now() WHERE key = %s",
                        (seal(config, row["value"]), key))
            sealed.append(key)
    return sealed
