"""Analysis end to end: a generated library, real RQ workers, real PostgreSQL and Redis, the real musicnn model."""

from __future__ import annotations

import os
import signal
import struct
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from app import serve
from audio.musicnn import MODEL_NAME
from db import task_status as store
from tests.analysis_runs import run_analysis, start_analysis_workers
from tests.conftest import wait_for
from tests.library import make_library, rhythmic_piece, write_track


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    make_library(root, albums=3, tracks_per_album=3, seconds=10)
    return root


@pytest.fixture
def analysis_env(library, make_config, tmp_path):
    """(web test client, worker environment) for a library in MUSIC_DIR."""
    env = {"MUSIC_DIR": str(library), "PLAYLIST_DIR": str(tmp_path / "playlists"), "AUDIO_LOAD_TIMEOUT": "30",
           "REBUILD_INDEX_BATCH_SIZE": "2", "MAX_QUEUED_ANALYSIS_JOBS": "2"}
    app = serve(make_config(**env))
    yield app.test_client(), env
    app.extensions["audiomuse"].stop_background.set()






def test_analysis_end_to_end(analysis_env, db, worker_processes):
    client, env = analysis_env
    start_analysis_workers(worker_processes, env)
    task = run_analysis(client, db)
    assert task["status"] == "SUCCESS", task
    assert task["progress"] == 100
    result = task["result"]
    assert (result["albums_total"], result["tracks_analyzed"], result["tracks_failed"]) == (3, 9, 0)
    assert result["index_size"] == 9
    assert result["providers"] == {"musicnn": ["CPUExecutionProvider"]} and result["provider_fallbacks"] == []
    health = client.get("/api/health").get_json()["analysis"]
    assert health == {"onnx_providers": "auto", "last_run_providers": {"musicnn": ["CPUExecutionProvider"]},
                      "provider_fell_back": False}
    for answer in (client.get("/api/last_task").get_json(), client.get(f"/api/status/{task['task_id']}").get_json()):
        assert answer["task_type"] == "main_analysis" and answer["status"] == "SUCCESS"
        assert answer["details"]["tracks_analyzed"] == 9

    rows = db.fetch_all("SELECT * FROM tracks ORDER BY item_id")
    assert len(rows) == 9
    for row in rows:
        assert row["analysis_model"] == MODEL_NAME and row["analysis_version"] >= 1
        assert len(row["tags"]) == 50 and set(row["moods"]) == {"danceable", "aggressive", "happy", "party",
                                                                 "relaxed", "sad"}
        assert 60 <= row["tempo_bpm"] <= 200 and row["camelot"]
        assert row["audio_access"] == "direct" and row["content_fingerprint"]
        assert row["library"] == row["artist"]  # a music folder's libraries are its top-level (artist) folders
    assert db.fetch_one("SELECT count(*) AS n FROM embeddings WHERE model = %s", (MODEL_NAME,))["n"] == 9
    # the folder's genre tags are kept, and the recommended tags are the predicted ones they do not say
    assert {r["title"]: r["genres"] for r in rows if r["title"].startswith("Song 1-")} == {
        "Song 1-0": ["Jazz", "Blues"], "Song 1-1": ["Jazz", "Blues"], "Song 1-2": []}  # 1-2 is an untagged WAV
    jazzy = next(r for r in rows if r["title"] == "Song 1-0")
    recommended = client.get(f"/api/tracks/{jazzy['item_id']}/recommended-tags?limit=3").get_json()
    assert recommended["track_id"] == jazzy["item_id"] and recommended["available"] is True
    expected = [t for t in sorted(jazzy["tags"], key=lambda t: (-jazzy["tags"][t], t))
                if jazzy["tags"][t] >= 0.1 and t not in ("jazz", "blues")][:3]
    assert [t["name"] for t in recommended["tags"]] == expected
    assert client.get(f"/api/tracks/{jazzy['item_id']}/recommended-tags?limit=0").status_code == 400
    assert client.get("/api/tracks/nope/recommended-tags").status_code == 404

    # The web process hears the reload message and answers nearest-neighbour queries.
    wait_for(lambda: client.get("/api/health").get_json()["index"]["size"] == 9, what="the index reload")
    some = rows[0]["item_id"]
    neighbours = client.get(f"/api/similar_tracks?item_id={some}&n=5&max_per_artist=10").get_json()
    # The generated pieces are much alike: some fall within the near-duplicate distance and are left out.
    assert 1 <= len(neighbours) <= 5 and some not in [n["item_id"] for n in neighbours]
    assert neighbours == sorted(neighbours, key=lambda n: n["distance"])

    # Then the map job places every track, and the web process serves the new map when it hears of it.
    assert result["map_task_id"]
    mapped = wait_for(lambda: (doc := client.get("/api/map?percent=100").get_json()) and doc.get("total") == 9
                      and "too few" in (doc.get("fallback_reason") or "") and doc, timeout=120,
                      what="the map of the analyzed library")
    assert mapped["projection"] == "pca" and "9 tracks are too few for UMAP" in mapped["fallback_reason"]
    assert {i["item_id"] for i in mapped["items"]} == {r["item_id"] for r in rows}
    assert all(i["top_mood"] == max(r["tags"], key=r["tags"].get) for i in mapped["items"]
               for r in rows if r["item_id"] == i["item_id"])
    assert store.get_task(db, result["map_task_id"])["status"] == "SUCCESS"

    library_page = client.get("/api/tracks?q=Song%201-&top_n=3").get_json()
    assert library_page["total"] == 3 and len(library_page["tracks"][0]["top_tags"]) == 3

    # A second run analyzes nothing again.
    again = run_analysis(client, db)
    assert again["status"] == "SUCCESS"
    assert (again["result"]["tracks_analyzed"], again["result"]["tracks_skipped"]) == (0, 9)
    assert again["result"]["albums_unchanged"] == 3


@pytest.mark.drill
def test_bad_files_are_recorded_and_the_rest_goes_on(analysis_env, library, db, worker_processes, drill_summary):
    client, env = analysis_env
    bad = library / "Broken" / "Album"
    bad.mkdir(parents=True)
    (bad / "empty.mp3").write_bytes(b"")
    (bad / "tag_only.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00")  # an ID3 tag and no audio frame
    # a WAV head promising a megabyte of 16-bit samples, and none of them
    (bad / "head_only.wav").write_bytes(b"RIFF" + struct.pack("<I", 36 + 1_000_000) + b"WAVEfmt " +
                                        struct.pack("<IHHIIHH", 16, 1, 1, 22050, 44100, 2, 16) + b"data" +
                                        struct.pack("<I", 1_000_000))
    (bad / "random.flac").write_bytes(np.random.default_rng(1).bytes(20000))
    (bad / "notes.ogg").write_text("this is not audio at all\n" * 50)
    good = rhythmic_piece(bpm=120, seconds=8, root_hz=220, seed=5)
    truncated = write_track(bad / "truncated.mp3", good, title="Truncated", artist="Broken", album="Album",
                            track_number=4)
    truncated.write_bytes(truncated.read_bytes()[:700])
    write_track(bad / "zero.wav", np.zeros(0, dtype=np.float32), title="Zero", artist="Broken", album="Album",
                track_number=5)
    write_track(bad / "fine.flac", good, title="Fine", artist="Broken", album="Album", track_number=6)
    start_analysis_workers(worker_processes, env)

    task = run_analysis(client, db)
    assert task["status"] == "SUCCESS"
    result = task["result"]
    assert result["tracks_analyzed"] == 10  # 9 generated + fine.flac
    failures = {Path(f["path"]).name: f["reason"] for f in result["failures"]}
    assert set(failures) == {"empty.mp3", "random.flac", "notes.ogg", "truncated.mp3", "zero.wav", "tag_only.mp3",
                             "head_only.wav"}, failures
    assert "empty file" in failures["empty.mp3"]
    assert all(reason for reason in failures.values())
    summary = client.get("/api/analysis/summary").get_json()
    assert {Path(f["file_path"]).name for f in summary["failures"]} == set(failures)
    # Known failures are not retried while the file is unchanged.
    again = run_analysis(client, db)
    assert again["result"]["tracks_failed"] == 0 and again["result"]["tracks_analyzed"] == 0
    drill_summary(f"{len(failures)} kinds of corrupt file among 10 good tracks — 10 analysed, {len(failures)} "
                  "recorded with their reason and shown in the summary, the run succeeded, none retried unchanged")


def test_hanging_decoder_is_stopped(analysis_env, library, db, worker_processes, tmp_path):
    client, env = analysis_env
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nsleep 600\n")
    fake.chmod(0o755)
    odd = library / "Odd" / "Album"
    odd.mkdir(parents=True)
    (odd / "stuck.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 4000)  # libsndfile refuses → ffmpeg
    env = dict(env, FFMPEG_BINARY=str(fake), AUDIO_LOAD_TIMEOUT="3")
    start_analysis_workers(worker_processes, env)
    task = run_analysis(client, db)
    assert task["status"] == "SUCCESS"
    reasons = {Path(f["path"]).name: f["reason"] for f in task["result"]["failures"]}
    assert "longer than 3 s" in reasons["stuck.m4a"]
    assert task["result"]["tracks_analyzed"] == 9
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(fake) in " ".join(p.info["cmdline"] or [])]


@pytest.mark.drill
def test_killed_worker_mid_album_then_rerun_completes(analysis_env, library, db, worker_processes, drill_summary):
    client, env = analysis_env
    long_album = library / "Long" / "Album"
    for i in range(6):
        write_track(long_album / f"{i:02d}.flac", rhythmic_piece(bpm=100 + i, seconds=40, root_hz=180 + i, seed=i),
                    title=f"Long {i}", artist="Long", album="Album", track_number=i + 1)
    orchestrator, album_worker = start_analysis_workers(worker_processes, env)
    response = client.post("/api/analysis/start", json={"num_recent_albums": 1})
    main_id = response.get_json()["task_id"]
    wait_for(lambda: db.fetch_one("SELECT 1 FROM tracks WHERE album_id = 'Long/Album'"), timeout=120,
             what="the first track of the long album")
    os.killpg(album_worker.pid, signal.SIGKILL)
    album_worker.wait()
    saved = db.fetch_one("SELECT count(*) AS n FROM tracks WHERE album_id = 'Long/Album'")["n"]
    assert 1 <= saved < 6
    # Every saved track has its embedding: no half rows.
    assert db.fetch_one("""SELECT count(*) AS n FROM tracks t LEFT JOIN embeddings e USING (item_id)
                           WHERE t.album_id = 'Long/Album' AND e.item_id IS NULL""")["n"] == 0
    worker_processes("--queues", "default", env=env)  # a new worker reconciles the dead one's job
    main = wait_for(lambda: (r := store.get_task(db, main_id))["finished_at"] and r, timeout=120,
                    what="the first run to end")
    assert main["result"]["albums_failed"] == 1

    rerun = run_analysis(client, db)
    assert rerun["status"] == "SUCCESS"
    assert db.fetch_one("SELECT count(*) AS n FROM tracks WHERE album_id = 'Long/Album'")["n"] == 6
    assert db.fetch_one("SELECT count(*) AS n FROM embeddings")["n"] == 15
    assert rerun["result"]["tracks_analyzed"] == 15 - saved
    drill_summary(f"album worker killed (kill -9) after {saved}/6 tracks of an album — the album recorded as failed, "
                  f"the next run analysed the other {15 - saved}: 15/15 with embeddings, 0 half rows")


def test_a_running_analysis_shows_tracks_in_progress_apart_and_progress_per_track(make_config, db, worker_processes,
                                                                                 tmp_path):
    """While a run goes on, the tracks being analyzed are listed as 'analyzing now', never as failures, and the
    main task's progress moves track by track before the first album has finished."""
    music = tmp_path / "music"
    for t in range(6):
        write_track(music / "Artist" / "Long album" / f"{t + 1:02d} Part {t}.flac",
                    rhythmic_piece(bpm=100 + 4 * t, seconds=30, root_hz=220, seed=t), title=f"Part {t}",
                    artist="Artist", album="Long album", track_number=t + 1)
    env = {"MUSIC_DIR": str(music), "PLAYLIST_DIR": str(tmp_path / "playlists"), "AUDIO_LOAD_TIMEOUT": "60"}
    app = serve(make_config(**env))
    client = app.test_client()
    try:
        start_analysis_workers(worker_processes, env)
        started = client.post("/api/analysis/start", json={"num_recent_albums": 0})
        assert started.status_code == 202
        task_id = started.get_json()["task_id"]
        failures_seen, analyzing_seen, early_progress = [], [], []
        while True:
            summary = client.get("/api/analysis/summary").get_json()
            failures_seen += summary["failures"]
            analyzing_seen += summary["analyzing_now"]
            main = client.get(f"/api/status/{task_id}").get_json()
            album_done = db.fetch_one("SELECT count(*) AS n FROM task_status WHERE parent_task_id = %s AND "
                                      "finished_at IS NOT NULL", (task_id,))["n"]
            if album_done == 0 and main["progress"] > 0:
                early_progress.append((main["current"], main["total"], main["progress"], main["status_message"]))
            if main["finished_at"]:
                break
            time.sleep(0.05)
        assert main["status"] == "SUCCESS" and main["result"]["tracks_analyzed"] == 6
        assert failures_seen == [], failures_seen
        assert {a["title"] for a in analyzing_seen} and all(a["title"].startswith("Part") for a in analyzing_seen)
        assert early_progress, "the progress stayed at 0 until the album finished"
        current, total, progress, message = early_progress[-1]
        assert 1 <= current < total == 6 and 0 < progress < 95
        assert "tracks/min" in message and "ETA" in message
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_an_attempt_is_a_failure_only_once_its_task_has_ended(db, client):
    """The attempt marker of a live task is 'analyzing now'; the same marker of a task that ended (its worker died)
    is a failure with the crash reason."""
    from db import tracks as track_store
    from mediaserver import Track

    store.insert_task(db, task_id="album-task", task_type="album_analysis", parent_task_id=None)
    db.execute("UPDATE task_status SET status = 'PROGRESS' WHERE task_id = 'album-task'")
    track = Track(item_id="t1", title="Song", artist="Band", album="Album", album_artist="Band", album_id="a",
                  path="/music/song.flac", signature="1:2")
    track_store.mark_attempt(db, track=track, version=1, task_id="album-task")
    body = client.get("/api/analysis/summary").get_json()
    assert body["failures"] == [] and [a["item_id"] for a in body["analyzing_now"]] == ["t1"]
    store.fail_task(db, "album-task", "worker died")
    body = client.get("/api/analysis/summary").get_json()
    assert [f["item_id"] for f in body["failures"]] == ["t1"] and body["analyzing_now"] == []
    assert "worker stopped" in body["failures"][0]["reason"]
    track_store.record_failure(db, track=track, reason="not audio", version=1, task_id="album-task", retryable=False)
    assert [f["reason"] for f in client.get("/api/analysis/summary").get_json()["failures"]] == ["not audio"]


def test_library_stats_and_the_filters_behind_each_plot(db, client):
    """Every bar and key of the at-a-glance plots lists exactly the tracks it counts."""
    import json

    rng = np.random.default_rng(4)
    tag_names = ["rock", "pop", "jazz", "ambient", "electronic"]
    for i in range(40):
        tags = {name: float(rng.random()) for name in tag_names}
        moods = {"happy": float(rng.random()), "sad": float(rng.random()), "relaxed": float(rng.random())}
        db.execute(
            """INSERT INTO tracks (item_id, title, artist, tempo_bpm, camelot, energy, loudness_lufs, tags, moods,
                                   analysis_model, analysis_version, analyzed_at)
               VALUES (%s, %s, 'A', %s, %s, %s, %s, %s, %s, 'm', 1, now())""",
            (f"t{i}", f"T{i}", float(rng.uniform(70, 170)), ["8A", "9B", "3A"][i % 3], float(rng.random()),
             float(rng.uniform(-20, -6)), json.dumps(tags), json.dumps(moods)))
    db.execute("INSERT INTO tracks (item_id, title, artist) VALUES ('pending', 'Not analyzed', 'B')")
    stats = client.get("/api/analysis/library_stats").get_json()
    assert stats["tracks"] == 40
    assert sum(b["count"] for b in stats["tempo"]) == 40 and all(b["high"] - b["low"] == 5 for b in stats["tempo"])
    assert {k["key"]: k["count"] for k in stats["camelot"]} == {"8A": 14, "9B": 13, "3A": 13}
    assert sum(t["count"] for t in stats["tags"]) == 3 * 40 and sum(m["count"] for m in stats["moods"]) == 40

    def listed(**params) -> int:
        return client.get("/api/tracks", query_string={**params, "limit": 500}).get_json()["total"]

    for column, low, high in (("tempo", "min_bpm", "max_bpm"), ("energy", "min_energy", "max_energy"),
                              ("loudness", "min_loudness", "max_loudness")):
        for bin_ in stats[column]:
            assert listed(**{low: bin_["low"], high: bin_["high"]}) == bin_["count"], (column, bin_)
    for key in stats["camelot"]:
        assert listed(camelot=key["key"]) == key["count"]
    for tag in stats["tags"]:
        assert listed(tag=tag["name"]) == tag["count"]
    for mood in stats["moods"]:
        assert listed(mood=mood["name"]) == mood["count"]
    assert listed(camelot="8A", min_bpm=0, max_bpm=1000, q="T1") == len(
        [i for i in range(40) if i % 3 == 0 and "T1" in f"T{i}"])
    bad = client.get("/api/tracks?min_bpm=fast")
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "min_bpm"
