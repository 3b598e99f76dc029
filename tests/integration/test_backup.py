"""Backup and restore (issue 32): analyse, back up, wipe, restore — the same similar-songs answers, byte for byte;
a dump of a newer schema is refused; the backup task from the API, listed and downloaded."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from app import serve
from db.migrate import apply_migrations, schema_version
from db.search import keyword_hits
from services.backup import BackupError, create_backup, list_backups, restore_backup
from tests.conftest import wait_for
from tests.seeded_library import insert_track, seed_groups
from voyager_manager import publish_reload


def _answers(client, tracks) -> list[bytes]:
    return [client.get(f"/api/similar_tracks?item_id={t.item_id}&n=8").data for t in tracks[:4]]


def test_back_up_wipe_restore_gives_the_same_answers_byte_for_byte(make_config, db, redis, tmp_path: Path):
    cfg = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"), BACKUP_KEEP=2)
    tracks = seed_groups(db, redis, cfg, tmp_path / "music")
    app = serve(cfg)
    try:
        client = app.test_client()
        holder = app.extensions["audiomuse"].index
        wait_for(lambda: holder.size == len(tracks), what="the index")
        before = _answers(client, tracks)
        assert all(json.loads(answer) for answer in before)
        made = create_backup(cfg, db)
        assert made.path.stat().st_mode & 0o777 == 0o600 and made.bytes > 0
        with tarfile.open(made.path) as archive:
            assert {"manifest.json", "database.dump"} <= set(archive.getnames())

        db.execute("DROP SCHEMA public CASCADE")  # wiped: nothing of AudioMuse is left in the database
        db.execute("CREATE SCHEMA public")
        loads = holder.loads
        publish_reload(redis, cfg.INDEX_RELOAD_CHANNEL, cfg.INDEX_NAME)
        wait_for(lambda: holder.last_error is not None, what="the reload of nothing to fail")
        assert client.get(f"/api/tracks/{tracks[0].item_id}/audio").status_code >= 500  # no tracks table now

        done = restore_backup(cfg, db, made.path)
        assert done["migrations_applied"] == []  # the dump was of this schema
        loads = holder.loads
        publish_reload(redis, cfg.INDEX_RELOAD_CHANNEL, cfg.INDEX_NAME)
        wait_for(lambda: holder.loads > loads and holder.size == len(tracks)
                 and set(holder.cache_states().values()) == {"ready"}, what="the restored library")
        assert holder.last_error is None
        assert db.fetch_one("SELECT count(*) AS n FROM tracks")["n"] == len(tracks)
        assert _answers(client, tracks) == before
        for _ in range(2):
            create_backup(cfg, db)
        assert len(list_backups(cfg)) == 2  # BACKUP_KEEP
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_a_backup_of_a_newer_schema_or_not_a_backup_is_refused(make_config, db, tmp_path: Path):
    cfg = make_config()
    newer = tmp_path / "newer.audiomuse-backup"
    with tarfile.open(newer, "w") as archive:
        manifest = json.dumps({"format": 1, "schema_version": 9999, "audiomuse_version": "9.9"}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        archive.addfile(info, io.BytesIO(manifest))
    with pytest.raises(BackupError, match="schema is version 9999, newer than this AudioMuse knows"):
        restore_backup(cfg, db, newer)
    junk = tmp_path / "junk.audiomuse-backup"
    junk.write_bytes(b"not a tar file")
    with pytest.raises(BackupError, match="is not an AudioMuse backup"):
        restore_backup(cfg, db, junk)
    assert db.fetch_one("SELECT count(*) AS n FROM schema_version")["n"] > 0  # nothing was touched


def test_the_backup_task_from_the_api_is_listed_and_downloaded(config, db, redis, client, run_worker_burst):
    started = client.post("/api/backup")
    body = started.get_json()
    assert started.status_code == 202 and body["task_type"] == "backup" and body["status"] == "PENDING"
    run_worker_burst()
    listed = client.get("/api/backups").get_json()
    assert len(listed) == 1 and listed[0]["bytes"] > 0
    download = client.get(f"/api/backups/{listed[0]['name']}")
    assert download.status_code == 200 and download.headers["Content-Disposition"].startswith("attachment")
    assert tarfile.open(fileobj=io.BytesIO(download.data)).getnames()[0] == "manifest.json"
    assert client.get("/api/backups/..%2Fsettings.key").status_code == 404
    assert client.get("/api/backups/nope.audiomuse-backup").status_code == 404


def test_a_backup_of_an_older_schema_replaces_the_newer_one_whole(make_config, db, tmp_path: Path):
    """A backup made before a migration (here 0035, the keyword word table), restored into a database that has it:
    nothing of the newer schema stays behind (its table kept the rows of the library being replaced, and the
    migration could not be applied again), the migration is applied to the restored library."""
    cfg = make_config()
    rng = np.random.default_rng(4)
    for number, title in enumerate(["Blue Train", "So What", "Night Train"]):
        insert_track(db, item_id=f"b{number}", title=title, artist="Quintet", vector=rng.normal(size=8))
    newest = schema_version(db)
    db.execute("""DROP TABLE track_search_terms;
                  DROP FUNCTION track_search_terms_sync, track_search_terms_truncate CASCADE;
                  DROP FUNCTION search_term_rank;
                  DELETE FROM schema_version WHERE version = 35""")
    made = create_backup(cfg, db)  # of schema 34
    assert apply_migrations(cfg.database_url) == [35]
    insert_track(db, item_id="b9", title="Train Of Thought", artist="Later", vector=rng.normal(size=8))
    db.execute("DELETE FROM tracks WHERE item_id = 'b1'")

    done = restore_backup(cfg, db, made.path)
    assert done["schema_version"] == 34 and done["migrations_applied"] == [35] and schema_version(db) == newest
    assert [r["item_id"] for r in db.fetch_all("SELECT item_id FROM tracks ORDER BY item_id")] == ["b0", "b1", "b2"]
    assert {h.item_id for h in keyword_hits(db, "train", limit=10, trigram=False)} == {"b0", "b2"}
    stale = db.fetch_one("""SELECT count(*) AS n FROM track_search_terms t
                             WHERE NOT EXISTS (SELECT 1 FROM track_search s WHERE s.item_id = t.item_id)""")
    assert stale["n"] == 0
