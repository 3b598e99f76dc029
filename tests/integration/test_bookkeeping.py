"""The analysis run's bookkeeping on a server that lists its whole library (Capability.LISTS_ALL_TRACKS): the
listing is compared with the stored analysis in PostgreSQL, so a run where nothing changed launches no album job
and sends as many statements for 400 tracks as for 40; a changed or new track launches exactly its album."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from psycopg2.extras import execute_values
from rq import Queue, SimpleWorker
from rq.registry import FinishedJobRegistry, StartedJobRegistry

import config as config_module
from app import serve
from audio.analyze import ANALYSIS_VERSION
from audio.musicnn import MODEL_NAME
from config import Config
from db import listing as listing_store
from db import task_status as store
from db import tracks as track_store
from mediaserver import Track, get_media_server
from tasks.analysis import MAX_ATTEMPTS, _up_to_date
from tasks.catalog import ANALYSIS, start_task
from tests.analysis_runs import run_analysis, start_analysis_workers
from tests.conftest import _wipe
from tests.library import make_library, rhythmic_piece, write_track
from tests.statement_count import StatementCount, counted_statements
from voyager_manager import rebuild_from_embeddings

DIMENSIONS = 200


def make_folder(root: Path, *, albums: int, tracks_per_album: int = 10) -> None:
    """`albums` folders of short WAV files (their content is never read: the tracks are seeded as analyzed)."""
    noise = np.random.default_rng(0).normal(scale=0.1, size=2205).astype(np.float32)
    for a in range(albums):
        for t in range(tracks_per_album):
            path = root / f"Artist {a % 7}" / f"Album {a}" / f"{t + 1:02d} Song {a}-{t}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, noise, 22050)


def seed_analyzed(db: Any, redis: Any, config: Config) -> list[Track]:
    """Store every track of the configured server as an album job would have after analyzing it (with a random
    embedding, no library yet), and build the index from them; the tracks."""
    server = get_media_server(config)
    tracks = [t for album in server.list_albums() for t in server.album_tracks(album.album_id)]
    rng = np.random.default_rng(1)
    with db.transaction() as cur:
        execute_values(cur, """INSERT INTO tracks (item_id, title, artist, album, album_artist, album_id, file_path,
                                                   source_signature, content_fingerprint, analysis_model,
                                                   analysis_version, analyzed_at, genres, artist_id)
                               VALUES %s""",
                       [(t.item_id, t.title, t.artist, t.album, t.album_artist, t.album_id, t.path, t.signature,
                         "fp", MODEL_NAME, ANALYSIS_VERSION, "now", list(t.genres), t.artist_id) for t in tracks])
        execute_values(cur, "INSERT INTO embeddings (item_id, model, dimensions, vector) VALUES %s",
                       [(t.item_id, MODEL_NAME, DIMENSIONS, rng.normal(size=DIMENSIONS).astype("<f4").tobytes())
                        for t in tracks])
    rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME, channel=config.INDEX_RELOAD_CHANNEL,
                            m=config.VOYAGER_M, ef_construction=config.VOYAGER_EF_CONSTRUCTION)
    return tracks


def run_in_process(db: Any, redis: Any, config: Config) -> tuple[dict[str, Any], StatementCount]:
    """Start an analysis and run just its main task in this process (a SimpleWorker on the main tasks' queue, one
    job), counting its statements; its task_status row and the count. Follow-ups an earlier run queued are
    dropped first (they would run before it)."""
    Queue("high", connection=redis).empty()
    started = start_task(ANALYSIS, {"num_recent_albums": 0, "top_n_moods": 3}, db=db, redis=redis, config=config)
    worker = SimpleWorker([Queue("high", connection=redis)], connection=redis, name=f"test-{uuid.uuid4().hex[:6]}")
    with counted_statements() as counted:
        worker.work(burst=True, max_jobs=1, with_scheduler=False)
    row = store.get_task(db, started.task_id)
    assert row is not None and row["finished_at"] is not None
    return row, counted


def test_a_run_where_nothing_changed_launches_nothing_and_its_statements_do_not_grow(
        services: dict[str, str], make_config: Callable[..., Config], tmp_path: Path) -> None:
    from infra.connections import get_db, get_redis

    counts: dict[int, StatementCount] = {}
    for albums in (4, 40):
        _wipe(services)
        music = tmp_path / f"music-{albums}"
        make_folder(music, albums=albums)
        config = make_config(MUSIC_DIR=str(music), PLAYLIST_DIR=str(tmp_path / "playlists"))
        config_module.install(config)
        db, redis = get_db(config), get_redis(config)
        tracks = seed_analyzed(db, redis, config)
        assert len(tracks) == 10 * albums
        db.execute("UPDATE tracks SET genres = '{Stale}' WHERE item_id = %s", (tracks[0].item_id,))
        built = db.fetch_one("SELECT built_at FROM voyager_indexes WHERE name = %s", (config.INDEX_NAME,))

        row, counts[albums] = run_in_process(db, redis, config)

        assert row["status"] == store.SUCCESS, row
        result = row["result"]
        assert (result["albums_total"], result["albums_launched"], result["albums_unchanged"],
                result["albums_done"]) == (albums, 0, albums, albums)
        assert (result["tracks_skipped"], result["tracks_analyzed"], result["tracks_failed"]) == (10 * albums, 0, 0)
        assert f"albums {albums}/{albums} done (0 launched, {albums} unchanged" in row["message"]
        # no album job: no child row, nothing queued, started or finished on the album jobs' queue
        assert db.fetch_one("SELECT count(*) AS n FROM task_status WHERE parent_task_id = %s",
                            (row["task_id"],))["n"] == 0
        assert Queue("default", connection=redis).count == 0
        assert not StartedJobRegistry("default", connection=redis).get_job_ids()
        assert not FinishedJobRegistry("default", connection=redis).get_job_ids()
        # the index is kept, and its size reported
        assert result["index_size"] == 10 * albums
        assert db.fetch_one("SELECT built_at FROM voyager_indexes WHERE name = %s", (config.INDEX_NAME,)) == built
        # what album jobs set for unchanged tracks is set from the listing: genres as the files say, libraries
        assert db.fetch_one("SELECT genres FROM tracks WHERE item_id = %s", (tracks[0].item_id,))["genres"] == []
        assert db.fetch_all("SELECT DISTINCT library FROM tracks ORDER BY library") == [
            {"library": f"Artist {a}"} for a in range(min(albums, 7))]
        # no statement per album or per track (the album job's lookups by item id)
        assert not [s for s in counts[albums].statements if "ANY(" in s], counts[albums].statements
    assert {"map_task_id", "smart_playlists_task_id"} <= set(result)  # the genres changed: playlists may too
    # and once the listing's metadata is in, another such run does not even make the web process reload, nor start
    # the map, smart playlists or playlist matching, which would find nothing new
    listener = redis.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(config.INDEX_RELOAD_CHANNEL)
    again, _ = run_in_process(db, redis, config)
    assert again["status"] == store.SUCCESS and again["result"]["index_size"] == 400
    assert not {"map_task_id", "smart_playlists_task_id", "playlist_matching_task_id"} & set(again["result"])
    assert db.fetch_one("SELECT count(*) AS n FROM task_status WHERE created_at >= %s",
                        (again["created_at"],))["n"] == 1  # the run itself
    assert listener.get_message(timeout=0.5) is None
    listener.close()
    small, large = counts[4], counts[40]
    # reports and cancel checks go by the clock (at most one a second), so a slower run may send one or two more
    assert small.count <= large.count <= small.count + 4, (small.statements, large.statements)
    assert large.count < 60, large.statements


class _Song:
    """A listed track as db.listing reads it."""

    def __init__(self, item_id: str, album_id: str, signature: str | None = "sig") -> None:
        self.item_id, self.album_id, self.signature = item_id, album_id, signature
        self.genres: tuple[str, ...] = ("Odd \"genre\", {with} \\ \t things",)
        self.artist_id: str | None = None


def test_the_comparison_judges_each_track_as_an_album_job_does(db: Any) -> None:
    """Each kind of stored state, compared in SQL, gives the album jobs _up_to_date would give, track by track."""
    listed = {
        "same": [_Song("s1", "same"), _Song("s2", "same")],
        "changed": [_Song("c1", "changed"), _Song("c2", "changed", signature="new")],
        "new": [_Song("n1", "new"), _Song("n2", "new")],
        "failed-for-good": [_Song("p1", "failed-for-good")],
        "failed-retry": [_Song("r1", "failed-retry")],
        "failed-too-often": [_Song("m1", "failed-too-often")],
        "failed-then-changed": [_Song("fc1", "failed-then-changed", signature="other")],
        "old-version": [_Song("o1", "old-version")],
        "no-embedding": [_Song("e1", "no-embedding")],
        "no-signature": [_Song("ns1", "no-signature", signature=None)],
        "clap": [_Song("k1", "clap")],
        "empty": [],
    }
    songs = [s for album in listed.values() for s in album]
    for song in songs:
        if song.item_id in ("n2", "p1", "r1", "m1", "fc1"):
            continue
        version = ANALYSIS_VERSION - 1 if song.item_id == "o1" else ANALYSIS_VERSION
        db.execute("""INSERT INTO tracks (item_id, album_id, source_signature, analysis_version, genres)
                      VALUES (%s, %s, 'sig', %s, '{}')""", (song.item_id, song.album_id, version))
        if song.item_id != "e1":
            db.execute("INSERT INTO embeddings (item_id, model, dimensions, vector) VALUES (%s, 'm', 1, %s)",
                       (song.item_id, b"\0\0\0\0"))
            db.execute("INSERT INTO clap_embeddings (item_id, model, dimensions, vector) VALUES (%s, %s, 1, %s)",
                       (song.item_id, "other:1" if song.item_id == "k1" else "clap:1", b"\0\0\0\0"))
    for item_id, retryable, attempts in (("p1", False, 1), ("r1", True, MAX_ATTEMPTS - 1),
                                         ("m1", True, MAX_ATTEMPTS), ("fc1", False, 1)):
        db.execute("""INSERT INTO analysis_failures (item_id, source_signature, reason, analysis_version, retryable,
                                                     attempts)
                      VALUES (%s, 'sig', 'bad', %s, %s, %s)""", (item_id, ANALYSIS_VERSION, retryable, attempts))
    state = track_store.analysis_state(db, [s.item_id for s in songs])
    tracks = {s.item_id: Track(item_id=s.item_id, title="", artist="", album="", album_artist="",
                               album_id=s.album_id, signature=s.signature) for s in songs}
    expected = {s.album_id for s in songs if not _up_to_date(state.get(s.item_id), tracks[s.item_id])}
    assert expected == {"changed", "new", "failed-retry", "failed-then-changed", "old-version", "no-embedding",
                        "no-signature"}

    for clap_model, also in ((None, set()), ("clap:1", {"clap"})):
        with listing_store.staged_listing(db) as staged:
            assert staged.add_albums((album, "Lib") for album in listed) == len(listed)
            assert staged.add_tracks([songs[:5], songs[5:]]) == len(songs)
            found = staged.compare(version=ANALYSIS_VERSION, max_attempts=MAX_ATTEMPTS, clap_model=clap_model)
        assert set(found.pending) == expected | also
        assert found.pending["changed"] == 2 and found.pending["new"] == 2
        unchanged = set(listed) - set(found.pending)
        assert found.unchanged_albums == len(unchanged)
        assert found.unchanged_tracks == sum(len(listed[a]) for a in unchanged)
    # the staging tables went with the block, and the odd genre went through COPY intact
    assert db.fetch_one("SELECT to_regclass('pg_temp.listing_tracks') AS t")["t"] is None
    with listing_store.staged_listing(db) as staged:
        staged.add_albums((album, "Lib") for album in listed)
        staged.add_tracks([songs])
        assert staged.save_metadata() == {"genres": 9, "artist_id": 0, "library": 9}
    assert db.fetch_one("SELECT genres, library FROM tracks WHERE item_id = 's1'") == {
        "genres": [songs[0].genres[0]], "library": "Lib"}


def test_a_listing_that_fails_midway_stages_nothing_and_says_why(db: Any) -> None:
    from mediaserver import MediaServerError

    def pages() -> Any:
        yield [_Song("a1", "a")]
        raise MediaServerError("Jellyfin answered 500")

    with pytest.raises(MediaServerError, match="answered 500"), listing_store.staged_listing(db) as staged:
        staged.add_tracks(pages())
    with listing_store.staged_listing(db) as staged:  # the connection is fine for the next run
        assert staged.add_tracks([[_Song("b1", "b")]]) == 1


def test_only_the_albums_of_changed_and_new_tracks_are_launched(make_config: Callable[..., Config], db: Any,
                                                                 worker_processes: Any, tmp_path: Path) -> None:
    music = tmp_path / "music"
    make_library(music, albums=3, tracks_per_album=2, seconds=4)
    broken = music / "Artist 2" / "Album 2" / "03 Broken.flac"
    broken.write_text("not audio\n" * 100)  # fails for good: not tried again while unchanged
    env = {"MUSIC_DIR": str(music), "PLAYLIST_DIR": str(tmp_path / "playlists"), "AUDIO_LOAD_TIMEOUT": "30"}
    app = serve(make_config(**env))
    client = app.test_client()
    try:
        start_analysis_workers(worker_processes, env)
        first = run_analysis(client, db)
        assert first["status"] == store.SUCCESS
        assert (first["result"]["tracks_analyzed"], first["result"]["tracks_failed"]) == (6, 1)

        touched = music / "Artist 0" / "Album 0" / "01 Song 0-0.flac"
        os.utime(touched)  # a new signature, the same content
        write_track(music / "Artist 1" / "Album 1" / "09 New.flac",
                    rhythmic_piece(bpm=128, seconds=4, root_hz=300, seed=77), title="New", artist="Artist 1",
                    album="Album 1", track_number=9)
        next((music / "Artist 2" / "Album 2").glob("02 *")).unlink()  # removed: left to cleaning, as before
        second = run_analysis(client, db)
    finally:
        app.extensions["audiomuse"].stop_background.set()
    assert second["status"] == store.SUCCESS
    result = second["result"]
    children = db.fetch_all("SELECT params FROM task_status WHERE parent_task_id = %s", (second["task_id"],))
    assert sorted(c["params"]["album_id"] for c in children) == ["Artist 0/Album 0", "Artist 1/Album 1"]
    assert (result["albums_launched"], result["albums_unchanged"], result["albums_done"]) == (2, 2, 3)
    assert (result["tracks_analyzed"], result["tracks_failed"], result["tracks_skipped"]) == (1, 0, 6)
    assert db.fetch_one("SELECT count(*) AS n FROM tracks")["n"] == 7  # the removed track stays until cleaning
    assert result["index_size"] == 7
