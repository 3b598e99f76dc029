"""Backup and restore: AudioMuse's database and its settings key in one file.

    python -m services.backup create           # a backup in DATA_DIR/backups (the oldest beyond BACKUP_KEEP go)
    python -m services.backup list
    python -m services.backup restore FILE     # into this install's database, empty or not

A backup is a tar file (`*.audiomuse-backup`) holding `manifest.json` (format, time, schema version, AudioMuse
version), `database.dump` (pg_dump's custom format, consistent: one snapshot) and, when the settings key is the
file `DATA_DIR/settings.key` rather than SETTINGS_KEY, that file, without which the sealed settings in the dump
could not be opened. pg_dump and pg_restore are the embedded PostgreSQL's own when their major version serves the
database, else those on PATH of at least the server's major version.

A restore refuses a dump whose schema is newer than this code knows. It replaces what the dump holds
(`pg_restore --clean --if-exists`, in one transaction: a failure leaves the database as it was; a dump of an older
schema replaces the whole `public` schema instead, in one transaction too, so that nothing of the newer schema
stays), applies the migrations the dump predates, restores the key file, gives the chat's read-only role its grants
again, and announces a reload: the web process reloads the index, the map and every cache without a restart.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors

from config import VERSION, Config
from db.migrate import apply_migrations, discover_migrations, schema_version, server_major_version
from db.pool import Database
from db.sealed import KEY_FILE

SUFFIX = ".audiomuse-backup"
FORMAT = 1
_NAME = re.compile(r"audiomuse-\d{8}-\d{6}(-\d+)?" + re.escape(SUFFIX))


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why."""


@dataclass(frozen=True)
class BackupFile:
    name: str
    path: Path
    bytes: int
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bytes": self.bytes, "created_at": self.created_at.isoformat()}


def backup_folder(config: Config) -> Path:
    return Path(config.DATA_DIR) / "backups"


def list_backups(config: Config) -> list[BackupFile]:
    """The backups in DATA_DIR/backups, newest first."""
    folder = backup_folder(config)
    found = []
    for path in folder.glob("*" + SUFFIX) if folder.is_dir() else []:
        if _NAME.fullmatch(path.name):
            stat = path.stat()
            found.append(BackupFile(path.name, path, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)))
    return sorted(found, key=lambda b: b.name, reverse=True)


def backup_path(config: Config, name: str) -> Path | None:
    """The backup called `name`, when it is one (no path may leave the folder)."""
    return next((b.path for b in list_backups(config) if b.name == name), None)


def create_backup(config: Config, db: Database) -> BackupFile:
    """A consistent backup of the database and the settings key in DATA_DIR/backups; backups beyond BACKUP_KEEP,
    oldest first, are removed."""
    folder = backup_folder(config)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    pg_dump = _tool("pg_dump", server_major_version(db))
    stamp = datetime.now(UTC)
    name = f"audiomuse-{stamp:%Y%m%d-%H%M%S}{SUFFIX}"
    number = 1
    while (folder / name).exists():
        number += 1
        name = f"audiomuse-{stamp:%Y%m%d-%H%M%S}-{number}{SUFFIX}"
    key_file = Path(config.DATA_DIR) / KEY_FILE
    manifest = {"format": FORMAT, "created_at": stamp.isoformat(), "schema_version": schema_version(db),
                "audiomuse_version": VERSION, "settings_key": "env" if config.SETTINGS_KEY else
                "file" if key_file.is_file() else "none"}
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        dump = Path(scratch) / "database.dump"
        _run([pg_dump, "--format=custom", "--no-owner", "--no-acl", "--file", str(dump), "--dbname",
              config.database_url], "pg_dump")
        partial = folder / (name + ".partial")
        with tarfile.open(partial, "w") as archive:
            _add_bytes(archive, "manifest.json", json.dumps(manifest, indent=2).encode())
            archive.add(dump, arcname="database.dump")
            if manifest["settings_key"] == "file":
                archive.add(key_file, arcname=KEY_FILE)
        partial.chmod(0o600)
        partial.replace(folder / name)
    for old in list_backups(config)[max(1, config.BACKUP_KEEP):]:
        old.path.unlink(missing_ok=True)
    path = folder / name
    return BackupFile(name, path, path.stat().st_size, stamp)


def restore_backup(config: Config, db: Database, path: Path) -> dict[str, Any]:
    """Restore the backup at `path` into this install's database (see the module's notes); what it restored."""
    try:
        archive = tarfile.open(path, "r")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{path} is not an AudioMuse backup: {exc}") from None
    with archive, tempfile.TemporaryDirectory() as scratch:
        manifest = _manifest(archive, path)
        newest = max(m.version for m in discover_migrations())
        if int(manifest["schema_version"]) > newest:
            raise BackupError(f"the backup's database schema is version {manifest['schema_version']}, newer than this "
                              f"AudioMuse knows ({newest}): restore it with AudioMuse "
                              f"{manifest.get('audiomuse_version') or 'of that version'} or later")
        dump = Path(scratch) / "database.dump"
        _extract(archive, "database.dump", dump)
        major = server_major_version(db)
        pg_restore = _tool("pg_restore", major)
        clean = [pg_restore, "--clean", "--if-exists", "--no-owner", "--no-acl"]
        if int(manifest["schema_version"]) < _schema_version_or_none(db, default=0):
            # --clean drops what the dump holds: the tables and functions of the migrations it predates would stay
            # (with the rows of the library being replaced) and those migrations could not be applied again
            script = Path(scratch) / "database.sql"
            _run([*clean, "--file", str(script), str(dump)], "pg_restore")
            _run([_tool("psql", major), "--no-psqlrc", "--quiet", "--single-transaction", "--set", "ON_ERROR_STOP=1",
                  "--command", "DROP SCHEMA public CASCADE", "--command", "CREATE SCHEMA public",
                  "--file", str(script), "--dbname", config.database_url], "restoring the dump")
        else:
            _run([*clean, "--single-transaction", "--dbname", config.database_url, str(dump)], "pg_restore")
        applied = apply_migrations(config.database_url)
        key_restored = False
        if manifest.get("settings_key") == "file" and not config.SETTINGS_KEY:
            key_file = Path(config.DATA_DIR) / KEY_FILE
            key_file.parent.mkdir(parents=True, exist_ok=True)
            if key_file.is_file():
                key_file.replace(key_file.with_name(KEY_FILE + ".before-restore"))
            _extract(archive, KEY_FILE, key_file)
            key_file.chmod(0o600)
            key_restored = True
    return {"schema_version": int(manifest["schema_version"]), "migrations_applied": applied,
            "settings_key_restored": key_restored, "created_at": manifest.get("created_at")}


def _manifest(archive: tarfile.TarFile, path: Path) -> dict[str, Any]:
    try:
        member = archive.extractfile("manifest.json")
        manifest = json.loads(member.read()) if member is not None else None
    except (KeyError, ValueError, tarfile.TarError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or \
            not isinstance(manifest.get("schema_version"), int):
        raise BackupError(f"{path} is not an AudioMuse backup (no manifest of format {FORMAT})")
    return manifest


def _extract(archive: tarfile.TarFile, member: str, target: Path) -> None:
    try:
        source = archive.extractfile(member)
    except KeyError:
        source = None
    if source is None:
        raise BackupError(f"the backup has no {member}")
    with source, target.open("wb") as out:
        shutil.copyfileobj(source, out)


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    info.mode = 0o600
    archive.addfile(info, io.BytesIO(data))


def _tool(name: str, server_major: int) -> str:
    """The embedded PostgreSQL's `name` when its major version serves the server, else one on PATH that does."""
    candidates = []
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    found = []
    for candidate in candidates:
        major = _major_of(candidate)
        if major is not None:
            found.append((major, candidate))
    usable = sorted((m, c) for m, c in found if m >= server_major)
    if not usable:
        have = ", ".join(f"{c} ({m})" for m, c in found) or "none"
        raise BackupError(f"no {name} of PostgreSQL {server_major} or newer (the database's version) was found; "
                          f"have: {have}. Install the PostgreSQL client of that version")
    return str(usable[0][1])


def _major_of(binary: Path) -> int | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else None


def _schema_version_or_none(db: Database, *, default: int) -> int:
    """This database's schema version; `default` when it has none (an emptied database)."""
    try:
        return schema_version(db)
    except psycopg2.errors.UndefinedTable:  # nothing of AudioMuse to replace
        return default


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise BackupError(f"{what} failed: {lines[-1][:300] if lines else f'exit status {done.returncode}'}")


def main(argv: list[str] | None = None) -> int:
    import config as config_module
    from db.chat_queries import ensure_chat_role
    from infra.connections import get_db, get_redis
    from voyager_manager import publish_reload

    parser = argparse.ArgumentParser(description="Back up or restore AudioMuse's database and settings key")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create", help="write a backup to DATA_DIR/backups")
    commands.add_parser("list", help="list the backups in DATA_DIR/backups")
    restore = commands.add_parser("restore", help="restore a backup into this install")
    restore.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    config = config_module.load_or_exit()
    config_module.install(config)
    db = get_db(config)
    try:
        if args.command == "create":
            made = create_backup(config, db)
            print(f"{made.path} ({made.bytes:,} bytes)")
        elif args.command == "list":
            for backup in list_backups(config):
                print(f"{backup.name}\t{backup.bytes:,} bytes\t{backup.created_at:%Y-%m-%d %H:%M:%S} UTC")
        else:
            done = restore_backup(config, db, args.file)
            ensure_chat_role(db, config.AI_CHAT_DB_USER_NAME, config.AI_CHAT_DB_USER_PASSWORD)
            publish_reload(get_redis(config), config.INDEX_RELOAD_CHANNEL, config.INDEX_NAME)
            print(f"restored {args.file} (schema {done['schema_version']}, made {done['created_at']}); "
                  "the web process reloads the library now")
    except BackupError as exc:
        print(f"audiomuse backup: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.umask(0o077)
    raise SystemExit(main())
