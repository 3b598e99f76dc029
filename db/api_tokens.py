"""The named API tokens scripts and players send as `Authorization: Bearer`: their hashes, never the tokens."""

from __future__ import annotations

from typing import Any

from db.pool import Database


def token_names_by_hash(db: Database) -> dict[str, str]:
    """SHA-256 of each stored token → its name (read with the auth state, every few seconds)."""
    return {row["sha256"]: row["name"] for row in db.fetch_all("SELECT name, sha256 FROM api_tokens")}


def list_tokens(db: Database) -> list[dict[str, Any]]:
    return db.fetch_all("SELECT name, created_at, last_used_at FROM api_tokens ORDER BY lower(name), name")


def put_token(db: Database, name: str, sha256: str) -> None:
    """Store a token under `name`, replacing the one of that name (which stops working)."""
    db.execute("""INSERT INTO api_tokens (name, sha256) VALUES (%s, %s)
                  ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, created_at = now(), last_used_at = NULL""",
               (name, sha256))


def delete_token(db: Database, name: str) -> bool:
    """Revoke the token of that name; False when there is none."""
    return db.execute("DELETE FROM api_tokens WHERE name = %s", (name,)) > 0


def note_used(db: Database, name: str) -> None:
    db.execute("UPDATE api_tokens SET last_used_at = now() WHERE name = %s", (name,))
