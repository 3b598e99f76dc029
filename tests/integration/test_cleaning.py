"""Database cleaning with real PostgreSQL, Redis and RQ workers against real media sources (a local folder, the
documented-shape Jellyfin server): files removed → preview → delete exactly the preview → index, map and
playlists without them; and every doubtful listing (server down, a failing album, an empty or mostly missing
library) deleting nothing; the safety limit; cancel; a second run finding nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app import serve
from db import map_projections
from db import playlists as playlist_store
from db import task_status as store
from db.cleaning import delete_orphans
from db.clock import database_now
from mediaserver import Track, get_media_server
from tasks.catalog import MAP, start_task
from tests.cleaning_runs import CleaningSite, seed_tracks
from tests.conftest import wait_for
from tests.fakes.jellyfin import API_KEY, FakeJellyfin
from tests.library import make_library

ALBUMS, PER_ALBUM = 4, 3


def listed(config: Any) -> list[Track]:
    server = get_media_server(config)
    return [t for album in server.list_albums() for t in server.album_tracks(album.album_id)]


@pytest.fixture
def make_site(make_config, db, run_worker_burst) -> Iterator[Callable[..., CleaningSite]]:
    apps: list[Any] = []

    def make(**settings: Any) -> CleaningSite:
        config = make_config(**settings)
        app = serve(config)
        apps.append(app)
        return CleaningSite(app, db, run_worker_burst)

    yield make
    for app in apps:
        app.extensions["audiomuse"].stop_background.set()


@pytest.fixture
def folder_site(make_site, tmp_path: Path, db, redis) -> tuple[CleaningSite, list[Track]]:
    """A local music folder of 4 albums × 3 tracks, all analyzed and indexed."""
    music = tmp_path / "music"
    make_library(music, albums=ALBUMS, tracks_per_album=PER_ALBUM, seconds=1)
    site = make_site(MUSIC_DIR=str(music), PLAYLIST_DIR=str(tmp_path / "playlists"))
    tracks = listed(site.config)
    seed_tracks(db, redis, site.config, tracks)
    return site, tracks


def by_file(tracks: Sequence[Track], music: Path) -> dict[Path, Track]:
    return {music / (t.path or ""): t for t in tracks}


def test_removed_files_are_previewed_then_exactly_those_deleted_everywhere(folder_site, tmp_path, db, redis):
    site, tracks = folder_site
    music = tmp_path / "music"
    files = by_file(tracks, music)
    # Before: the map holds every track, an AudioMuse playlist and a CLAP row hang on tracks about to vanish, and
    # a file that failed analysis is about to vanish too.
    start_task(MAP, {"full": True}, reason="test", db=db, redis=redis, config=site.config)
    site.run_worker()
    assert len(map_projections.load_projection(db, site.config.INDEX_NAME).item_ids) == 12
    gone_album = sorted(p for p in files if "Album 3" in str(p))
    gone_single = sorted(p for p in files if "Album 0" in str(p))[0]
    gone = {files[p].item_id for p in [*gone_album, gone_single]}
    kept = [t.item_id for t in tracks if t.item_id not in gone]
    playlist_store.save_playlist(db, name="Mix", source="similar", item_ids=[*sorted(gone)[:2], *kept[:3]],
                                 mediaserver_playlist=None)
    db.execute("INSERT INTO clap_embeddings (item_id, model, dimensions, vector) VALUES (%s, 'clap', 1, %s)",
               (sorted(gone)[0], np.float32(1).tobytes()))
    db.execute("""INSERT INTO analysis_failures (item_id, title, reason, analysis_version)
                  VALUES ('vanished-broken-file', 'Broken', 'not audio', 1)""")
    for path in gone_album:
        path.unlink()
    gone_single.unlink()

    preview = site.run(dry_run=True)["result"]
    assert preview["dry_run"] is True and preview["refused"] is None
    assert (preview["analyzed_tracks"], preview["tracks_listed"], preview["orphan_count"]) == (12, 8, 4)
    assert set(preview["to_delete"]) == gone and preview["deleted_count"] == 0
    assert {(a["album"], a["tracks"]) for a in preview["orphaned_albums"]} == {("Album 3", 3), ("Album 0", 1)}
    assert {o["item_id"] for o in preview["orphans"]} == gone
    assert site.count("tracks") == 12 and site.count("embeddings") == 12  # a preview deletes nothing
    assert site.count("analysis_failures") == 1 and preview["stale_failures"] == 1

    row = site.run(preview_task_id=store.get_task(db, preview_id := last_cleaning(db, dry_run=True))["task_id"])
    result = row["result"]
    assert result["dry_run"] is False and result["changed_since_preview"] is False
    assert result["deleted_count"] == 4 and result["failed_deletions"] == [] and result["digest"] == preview["digest"]
    assert result["previewed_digest"] == preview["digest"] and preview_id
    remaining = {r["item_id"] for r in db.fetch_all("SELECT item_id FROM tracks")}
    assert remaining == set(kept)
    assert site.count("embeddings") == 8 and site.count("clap_embeddings") == 0
    assert [r["item_id"] for r in db.fetch_all(
        "SELECT item_id FROM playlist_tracks ORDER BY position")] == kept[:3]
    assert site.count("analysis_failures") == 0 and result["failures_removed"] == 1
    # the stored map lost the points at once; the map job started by the run finds nothing left to remove
    assert sorted(map_projections.load_projection(db, site.config.INDEX_NAME).item_ids) == sorted(kept)
    assert result["map_points_removed"] == 4 and result["index_size"] == 8
    map_task = store.get_task(db, result["map_task_id"])
    assert map_task["status"] == "SUCCESS" and map_task["params"]["reason"] == "cleaning", map_task
    # the web process reloaded the index and its caches: similar songs and the map no longer know the tracks
    runtime = site.app.extensions["audiomuse"]
    wait_for(lambda: runtime.index.current is not None and len(runtime.index.current) == 8,
             what="the web process to load the cleaned index")
    similar = site.client.get(f"/api/similar_tracks?item_id={kept[0]}&n=20&max_per_artist=100").get_json()
    assert {t["item_id"] for t in similar} <= set(kept) and len(similar) == 7
    doc = wait_for(lambda: (d := site.client.get("/api/map?percent=100").get_json()) and d.get("total") == 8 and d,
                   what="the map cache without the deleted tracks")
    assert {i["item_id"] for i in doc["items"]} == set(kept)

    again = site.run()["result"]
    assert (again["orphan_count"], again["deleted_count"], again["refused"]) == (0, 0, None)
    assert site.count("tracks") == 8


def last_cleaning(db: Any, *, dry_run: bool) -> str:
    rows = db.fetch_all("""SELECT task_id, result FROM task_status WHERE task_type = 'cleaning'
                           ORDER BY created_at DESC""")
    return next(r["task_id"] for r in rows if r["result"] and r["result"]["dry_run"] is dry_run)


def test_a_confirmed_run_deletes_only_what_the_preview_showed_and_says_what_changed(folder_site, tmp_path, db):
    site, tracks = folder_site
    files = sorted(by_file(tracks, tmp_path / "music").items())
    (first, t1), (second, t2), (third, t3) = files[0], files[4], files[8]
    backup = tmp_path / "backup.bin"
    shutil.copy2(first, backup)
    first.unlink()
    second.unlink()
    preview = site.run(dry_run=True)
    assert set(preview["result"]["to_delete"]) == {t1.item_id, t2.item_id}
    shutil.copy2(backup, first)  # back on the server before the confirmation
    third.unlink()  # gone since the preview: not previewed, so kept for now
    result = site.run(preview_task_id=preview["task_id"])["result"]
    assert result["deleted_count"] == 1 and result["to_delete"] == [t2.item_id]
    assert result["changed_since_preview"] is True
    assert any("1 previewed tracks are listed again" in w and "1 tracks orphaned since were not previewed" in w
               for w in result["warnings"]), result["warnings"]
    remaining = {r["item_id"] for r in db.fetch_all("SELECT item_id FROM tracks")}
    assert t1.item_id in remaining and t3.item_id in remaining and t2.item_id not in remaining


def test_doubtful_listings_delete_nothing(folder_site, tmp_path, db):
    site, tracks = folder_site
    music = tmp_path / "music"
    moved = tmp_path / "unmounted"
    music.rename(moved)  # the disk is not mounted: the folder is missing
    result = site.run()["result"]
    assert "Nothing deleted" in result["refused"] and "does not exist" in result["refused"], result["refused"]
    assert result["listing_complete"] is False and result["deleted_count"] == 0

    music.mkdir()  # mounted, but empty
    result = site.run()["result"]
    assert "listed no albums" in result["refused"] and result["orphan_count"] == 12
    music.rmdir()
    moved.rename(music)

    for path in sorted(by_file(tracks, music))[:7]:  # 5 of 12 left: below CLEANING_MIN_REMAINING_FRACTION
        path.unlink()
    result = site.run()["result"]
    assert "42%" in result["refused"] and "CLEANING_MIN_REMAINING_FRACTION=0.5" in result["refused"]
    assert result["orphan_count"] == 7 and result["to_delete"] == []
    assert site.count("tracks") == 12 and site.count("embeddings") == 12
    last = site.client.get("/api/cleaning/last").get_json()
    assert last["last_run"]["result"]["refused"] == result["refused"] and last["safety_limit"] == 100


def test_the_safety_limit_caps_each_run_and_the_next_runs_finish(make_site, tmp_path, db, redis):
    music = tmp_path / "music"
    make_library(music, albums=ALBUMS, tracks_per_album=PER_ALBUM, seconds=1)
    site = make_site(MUSIC_DIR=str(music), PLAYLIST_DIR=str(tmp_path / "playlists"), CLEANING_SAFETY_LIMIT=2,
                     CLEANING_DELETE_BATCH_SIZE=1)
    tracks = listed(site.config)
    seed_tracks(db, redis, site.config, tracks)
    for path in sorted(by_file(tracks, music))[:3]:
        path.unlink()
    first = site.run()["result"]
    assert (first["orphan_count"], first["deleted_count"], first["safety_limit_applied"]) == (3, 2, True)
    assert "3 orphaned tracks found; this run removes 2 (CLEANING_SAFETY_LIMIT)" in first["warnings"][0]
    second = site.run()["result"]
    assert (second["orphan_count"], second["deleted_count"], second["safety_limit_applied"]) == (1, 1, False)
    third = site.run()["result"]
    assert (third["orphan_count"], third["deleted_count"]) == (0, 0) and site.count("tracks") == 9


def test_the_api_refuses_a_second_run_and_a_preview_that_is_not_one(folder_site):
    site, _ = folder_site
    running = site.start(dry_run=True)
    second = site.client.post("/api/cleaning/start", json={})
    assert second.status_code == 409 and second.get_json()["task_id"] == running
    site.run_worker()
    for body, status, parameter in (({"dry_run": "maybe"}, 400, "dry_run"),
                                    ({"preview_task_id": 5}, 400, "preview_task_id"),
                                    ({"preview_task_id": running, "dry_run": True}, 400, "preview_task_id"),
                                    ({"preview_task_id": "no-such-task"}, 409, "preview_task_id")):
        response = site.client.post("/api/cleaning/start", json=body)
        assert response.status_code == status and response.get_json()["parameter"] == parameter, body
    confirmed = site.run(preview_task_id=running)  # a finished dry run confirms
    refused = site.client.post("/api/cleaning/start", json={"preview_task_id": confirmed["task_id"]})
    assert refused.status_code == 409 and "not a finished cleaning dry run" in refused.get_json()["error"]


def test_a_track_analyzed_again_after_the_listing_began_is_kept(folder_site, db):
    _, tracks = folder_site
    listed_at = database_now(db)
    db.execute("UPDATE tracks SET updated_at = now() WHERE item_id = %s", (tracks[0].item_id,))
    done = delete_orphans(db, [tracks[0].item_id, tracks[1].item_id], listed_at=listed_at)
    assert (done.tracks, done.skipped) == (1, (tracks[0].item_id,))
    again = delete_orphans(db, [tracks[1].item_id], listed_at=listed_at)  # idempotent: gone already
    assert (again.tracks, again.skipped) == (0, (tracks[1].item_id,))


# --- the documented-shape Jellyfin server -------------------------------------------------------------------


@pytest.fixture
def jellyfin(tmp_path: Path) -> Iterator[FakeJellyfin]:
    make_library(tmp_path / "media" / "Music", albums=ALBUMS, tracks_per_album=PER_ALBUM, seconds=1)
    with FakeJellyfin(tmp_path / "media") as fake:
        yield fake


def jellyfin_site(make_site: Callable[..., CleaningSite], fake: FakeJellyfin, tmp_path: Path,
                  **extra: Any) -> CleaningSite:
    return make_site(MEDIASERVER_TYPE="jellyfin", JELLYFIN_URL=fake.url, JELLYFIN_USER_ID="Alice",
                     JELLYFIN_TOKEN=API_KEY, HTTP_RETRIES=0, HTTP_TIMEOUT_SECONDS=1, TEMP_DIR=str(tmp_path / "tmp"),
                     **extra)


def test_jellyfin_partial_answers_and_a_server_that_is_down_delete_nothing(make_site, jellyfin, tmp_path, db, redis):
    site = jellyfin_site(make_site, jellyfin, tmp_path)
    tracks = listed(site.config)
    seed_tracks(db, redis, site.config, tracks)
    removed = tracks[0]
    jellyfin.tracks = [t for t in jellyfin.tracks if t["Id"] != removed.item_id]  # deleted on the server

    # Jellyfin lists every track in pages (Capability.LISTS_ALL_TRACKS): a page of tracks answers 500
    jellyfin.fault(path_contains="/Items", query_contains="IncludeItemTypes=Audio", status=500)
    result = site.run()["result"]
    assert "incomplete" in result["refused"] and "500" in result["refused"], result["refused"]
    assert "the track listing failed" in result["refused"]
    assert result["orphan_count"] >= 1 and result["deleted_count"] == 0 and site.count("tracks") == 12

    jellyfin.faults.clear()  # an album that answers with no tracks although analyzed tracks belong to it
    emptied = tracks[8].album_id
    hidden = [t for t in jellyfin.tracks if t["AlbumId"] == emptied]
    jellyfin.tracks = [t for t in jellyfin.tracks if t["AlbumId"] != emptied]
    result = site.run()["result"]
    assert "listed no tracks although analyzed tracks belong to it" in result["refused"], result["refused"]
    jellyfin.tracks.extend(hidden)

    jellyfin.calls.clear()
    result = site.run()["result"]  # a whole answer: the one removed track goes
    assert (result["refused"], result["deleted_count"], result["to_delete"]) == (None, 1, [removed.item_id])
    listing = [c.query for c in jellyfin.calls_to("/Items") if c.query.get("IncludeItemTypes") == "Audio"]
    assert len(listing) == 1 and "ParentId" not in listing[0]  # one page of tracks, no request per album

    jellyfin.fault(path_contains="/Items", query_contains="IncludeItemTypes=Audio", delay=3.0)
    timed_out = site.run()["result"]  # a page of tracks takes longer than HTTP_TIMEOUT_SECONDS
    assert "incomplete" in timed_out["refused"] and "did not answer within 1 s" in timed_out["refused"], timed_out
    jellyfin.faults.clear()

    jellyfin.stop()  # the server is down
    result = site.run()["result"]
    assert "the album list failed" in result["refused"] and result["deleted_count"] == 0
    assert site.count("tracks") == 11


def test_cancel_while_listing_deletes_nothing(make_site, jellyfin, tmp_path, db, redis, worker_processes):
    env = {"MEDIASERVER_TYPE": "jellyfin", "JELLYFIN_URL": jellyfin.url, "JELLYFIN_USER_ID": "Alice",
           "JELLYFIN_TOKEN": API_KEY, "HTTP_RETRIES": "0", "HTTP_TIMEOUT_SECONDS": "10",
           "TEMP_DIR": str(tmp_path / "tmp")}
    site = make_site(**env)
    tracks = listed(site.config)
    seed_tracks(db, redis, site.config, tracks)
    jellyfin.tracks = jellyfin.tracks[3:]  # three orphans a finished run would delete
    jellyfin.fault(path_contains="/Items", query_contains="IncludeItemTypes=Audio", delay=3.0)  # tracks are slow
    worker_processes("--queues", "high", env=env)
    task_id = site.start()
    wait_for(lambda: (row := store.get_task(db, task_id)) and "Listing the tracks" in (row["message"] or ""),
             timeout=60, what="the listing to get going")
    response = site.client.post(f"/api/cancel/{task_id}")
    assert response.status_code == 200
    row = wait_for(lambda: (r := store.get_task(db, task_id)) and r["finished_at"] and r, timeout=30,
                   what="the cancelled run to end")
    assert row["status"] == "REVOKED" and row["result"] is None
    assert site.count("tracks") == 12 and site.count("embeddings") == 12
    assert json.dumps(row["log"]).count("Cancelled") == 1
