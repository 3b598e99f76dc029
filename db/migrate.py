"""Numbered SQL migrations, applied in order, exactly once, under a PostgreSQL advisory lock.

Files live in db/migrations/NNNN_name.sql. Each file runs in its own transaction together with the row that
records it in `schema_version`, so a migration is either fully applied and recorded or not at all. The web
process and every worker call `apply_migrations()` at start; the advisory lock makes the simultaneous case safe.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

from db.pool import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# An arbitrary constant that identifies "AudioMuse schema migration" among advisory locks.
ADVISORY_LOCK_KEY = 0x41554D5553450001

log = logging.getLogger(__name__)


class MigrationError(RuntimeError):
    """A migration failed or an applied migration file was edited afterwards."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", path.name)
        if not match:
            raise MigrationError(f"migration file name {path.name!r} is not NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return found


def apply_migrations(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply every migration not yet recorded; return the versions applied by this call."""
    migrations = discover_migrations(directory)
    conn = psycopg2.connect(dsn, connect_timeout=10, application_name="audiomuse-migrate")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            return _apply_locked(conn, migrations)
        finally:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    finally:
        conn.close()


def _apply_locked(conn: psycopg2.extensions.connection, migrations: list[Migration]) -> list[int]:
    with conn.cursor() as cur:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS schema_version (
                   version    INTEGER PRIMARY KEY,
                   name       TEXT NOT NULL,
                   checksum   TEXT NOT NULL,
                   applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
               )"""
        )
        cur.execute("SELECT version, checksum FROM schema_version")
        applied = dict(cur.fetchall())
    done = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                log.warning("migration %04d_%s was edited after it was applied; the database keeps the old one",
                            migration.version, migration.name)
            continue
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.execute(migration.sql)
                cur.execute(
                    "INSERT INTO schema_version (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            conn.commit()
        except psycopg2.Error as exc:
            conn.rollback()
            raise MigrationError(f"migration {migration.version:04d}_{migration.name} failed: {exc}") from exc
        finally:
            conn.autocommit = True
        log.info("applied migration %04d_%s", migration.version, migration.name)
        done.append(migration.version)
    return done


def server_major_version(db: Database) -> int:
    """The PostgreSQL server's major version (16 for 16.4)."""
    row = db.fetch_one("SELECT current_setting('server_version_num')::int / 10000 AS major")
    return int(row["major"]) if row else 0


def schema_version(db: Database) -> int:
    """The highest migration applied, through the process's pool (0 before the first)."""
    row = db.fetch_one("SELECT coalesce(max(version), 0) AS v FROM schema_version")
    return int(row["v"]) if row else 0


def create_database_if_missing(admin_dsn: str, name: str) -> None:
    """Create database `name` on the server `admin_dsn` connects to, unless it exists (the embedded server)."""
    conn = psycopg2.connect(admin_dsn, connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def current_version(dsn: str) -> int:
    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT coalesce(max(version), 0) FROM schema_version")
            row = cur.fetchone()
            return int(row[0]) if row else 0
    finally:
        conn.close()
