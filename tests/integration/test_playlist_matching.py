"""Playlist matching with real PostgreSQL, Redis and an RQ worker on the local folder: the user's .m3u8 playlists
are read, profiled (and re-profiled only when they change), new songs are suggested for the playlist whose sound
they share (scored over the whole library, checked against numpy over every row), accepting adds the song to the
playlist file, a rejection is never suggested again, and a playlist can be extended with songs that fit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app import serve
from audio.moods import MOODS
from audio.musicnn import MSD_TAGS
from db import playlist_matching as match_store
from db import task_status as store
from tests.seeded_library import insert_track, seed_groups


@pytest.fixture
def site(make_config, db, redis, run_worker_burst, tmp_path: Path) -> Any:
    music, playlists = tmp_path / "music", tmp_path / "playlists"
    config = make_config(MUSIC_DIR=str(music), PLAYLIST_DIR=str(playlists))
    tracks = seed_groups(db, redis, config, music)  # 24 files in three sound groups (i % 3)
    playlists.mkdir()
    group0 = [t for i, t in enumerate(tracks) if i % 3 == 0]
    (playlists / "Rock night.m3u8").write_text(
        "#EXTM3U\n" + "".join(f"{music / (t.path or '')}\n" for t in group0[:3]), encoding="utf-8")
    (playlists / "Old_automatic.m3u8").write_text(f"{music / (tracks[1].path or '')}\n", encoding="utf-8")
    app = serve(config)
    client = app.test_client()
    yield client, tracks, group0, playlists, run_worker_burst
    app.extensions["audiomuse"].stop_background.set()


def match(client: Any, db: Any, run: Any) -> dict[str, Any]:
    started = client.post("/api/playlists/match", json={"full": True})
    assert started.status_code == 202 and started.get_json()["task_type"] == "playlist_matching"
    run()
    row = store.get_task(db, started.get_json()["task_id"])
    assert row["status"] == "SUCCESS", row
    return row["result"]


def test_suggest_accept_reject_and_extend(site, db):
    client, tracks, group0, playlists, run = site
    first = match(client, db, run)
    assert (first["playlists"], first["generated_skipped"], first["profiles_computed"]) == (1, 1, 1)
    mine = client.get("/api/playlists/mine").get_json()["playlists"]
    assert {(p["name"], p["generated"]) for p in mine} == {("Rock night", False), ("Old_automatic", True)}
    suggestions = client.get("/api/playlists/suggestions").get_json()["suggestions"]
    suggested = {s["item_id"] for s in suggestions if s["playlist_name"] == "Rock night"}
    members = {t.item_id for t in group0[:3]}
    others = {t.item_id for t in group0[3:]}
    assert suggested and suggested <= others, (suggested, others)  # only songs of the same sound, not members
    assert all("sounds like the playlist" in s["reasons"][0] for s in suggestions)

    take, refuse = sorted(suggested)[:2]
    accepted = client.post("/api/playlists/suggestions/accept",
                           json={"item_id": take, "playlist_id": "Rock night.m3u8"})
    assert accepted.status_code == 200 and accepted.get_json()["added"] is True
    path_of = {t.item_id: t.path for t in tracks}
    assert str(path_of[take]) in (playlists / "Rock night.m3u8").read_text(encoding="utf-8")
    assert client.post("/api/playlists/suggestions/reject",
                       json={"item_id": refuse, "playlist_id": "Rock night.m3u8"}).get_json() == {"rejected": True}

    second = match(client, db, run)  # the playlist changed (one song more): its profile is computed again
    assert (second["profiles_computed"], second["profiles_kept"]) == (1, 0)
    again = {s["item_id"] for s in client.get("/api/playlists/suggestions").get_json()["suggestions"]}
    assert refuse not in again and take not in again  # rejected: never again; accepted: a member now
    third = match(client, db, run)  # nothing changed: nothing recomputed
    assert (third["profiles_computed"], third["profiles_kept"]) == (0, 1)
    decided = client.get("/api/playlists/suggestions?status=all").get_json()["suggestions"]
    assert {(s["item_id"], s["status"]) for s in decided} >= {(take, "accepted"), (refuse, "rejected")}

    extend = client.get("/api/playlists/Rock night.m3u8/continue?n=4").get_json()
    ids = [r["item_id"] for r in extend["results"]]
    assert len(ids) == 4 and set(ids) <= others - {take} and not set(ids) & members
    assert extend["results"][0]["reasons"][1].startswith("close to ")
    added = client.post("/api/playlists/Rock night.m3u8/add", json={"item_ids": ids[:2]}).get_json()
    assert added["added"] == 2
    text = (playlists / "Rock night.m3u8").read_text(encoding="utf-8")
    assert all(str(path_of[i]) in text for i in ids[:2])


def test_blocked_songs_are_never_suggested_nor_continue_a_playlist(site, db):
    client, tracks, _, _, run = site
    album_1 = {t.item_id for t in tracks if "/Album 1/" in (t.path or "")}  # a relative folder: at any depth
    assert client.post("/api/settings/exclusions", json={"folders": ["Album 1"]}).status_code == 200
    match(client, db, run)
    stored = {r["item_id"] for r in db.fetch_all("SELECT item_id FROM playlist_suggestions")}
    assert stored and not stored & album_1  # the job never suggested them
    listed = client.get("/api/playlists/suggestions").get_json()
    assert {s["item_id"] for s in listed["suggestions"]} == stored and listed["exclusions"]["folders"] == ["Album 1"]

    client.post("/api/settings/exclusions", json={"folders": []})
    order = [r["item_id"] for r in client.get("/api/playlists/Rock night.m3u8/continue?n=30").get_json()["results"]]
    assert set(order) & album_1
    extend = client.get("/api/playlists/Rock night.m3u8/continue?n=4&exclude_folders=Album 1").get_json()
    assert [r["item_id"] for r in extend["results"]] == [i for i in order if i not in album_1][:4]


def test_an_empty_listing_keeps_the_decisions_and_a_bad_accept_changes_nothing(site, db):
    client, tracks, group0, playlists, run = site
    match(client, db, run)
    song = sorted(s["item_id"] for s in client.get("/api/playlists/suggestions").get_json()["suggestions"])[0]
    client.post("/api/playlists/suggestions/reject", json={"item_id": song, "playlist_id": "Rock night.m3u8"})
    before = (playlists / "Rock night.m3u8").read_text(encoding="utf-8")
    unknown = client.post("/api/playlists/suggestions/accept",
                          json={"item_id": "nope", "playlist_id": "Rock night.m3u8"})
    assert unknown.status_code == 404 and (playlists / "Rock night.m3u8").read_text(encoding="utf-8") == before
    hidden = playlists.parent / "hidden"
    playlists.rename(hidden)  # the playlist folder is not there (unmounted): the server lists no playlist
    result = match(client, db, run)
    assert result.get("kept_unlisted") is True
    decided = client.get("/api/playlists/suggestions?status=rejected").get_json()["suggestions"]
    assert [(s["item_id"], s["status"]) for s in decided] == [(song, "rejected")]
    hidden.rename(playlists)


def test_the_profile_holds_the_clap_centroid_when_tracks_have_clap_embeddings(site, db):
    client, tracks, group0, playlists, run = site
    match(client, db, run)
    assert "clap_centroid" not in db.fetch_one("SELECT profile FROM playlist_profiles")["profile"]
    for n, t in enumerate(tracks):  # as CLAP_ENABLED analysis stores them: one 4-d embedding per track
        vector = np.array([1.0, float(n % 3), 0.0, 0.0], dtype="<f4")
        db.execute("INSERT INTO clap_embeddings (item_id, model, dimensions, vector) VALUES (%s, 'clap-test', 4, %s)",
                   (t.item_id, vector.tobytes()))
    result = match(client, db, run)
    assert result["profiles_computed"] == 1  # a CLAP model now: the profile's kind changed, so it is recomputed
    row = db.fetch_one("SELECT profile_kind, profile FROM playlist_profiles")
    assert row["profile_kind"].endswith("+clap:clap-test") and row["profile"]["clap_members"] == 3
    assert row["profile"]["clap_centroid"] == pytest.approx([1.0, 0.0, 0.0, 0.0])  # group 0: n % 3 == 0


def test_errors_name_the_field(site):
    client, *_ = site
    assert client.post("/api/playlists/match", json={"since": "x"}).get_json()["parameter"] == "since"
    assert client.get("/api/playlists/suggestions?since=yesterday").get_json()["parameter"] == "since"
    assert client.post("/api/playlists/suggestions/accept", json={"item_id": "x"}).get_json()["parameter"] == \
        "playlist_id"
    unknown = client.post("/api/playlists/suggestions/reject", json={"item_id": "x", "playlist_id": "nope"})
    assert unknown.status_code == 404 and unknown.get_json()["parameter"] == "playlist_id"
    assert client.get("/api/playlists/nope/continue").status_code == 404


def test_a_killed_matching_worker_is_failed_and_the_next_run_completes(make_config, db, redis, worker_processes,
                                                                     tmp_path):
    """The job's writes are upserts keyed by what they depend on: the playlists read before a SIGKILL stay, the dead
    worker's task is failed when a worker starts, and the next run finishes the work (nothing is lost or doubled)."""
    import os
    import signal

    from mediaserver import get_media_server
    from tests.cleaning_runs import seed_tracks
    from tests.conftest import wait_for
    from tests.fakes.jellyfin import API_KEY, FakeJellyfin
    from tests.library import make_library

    make_library(tmp_path / "media" / "Music", albums=4, tracks_per_album=3, seconds=1)
    with FakeJellyfin(tmp_path / "media") as fake:
        env = {"MEDIASERVER_TYPE": "jellyfin", "JELLYFIN_URL": fake.url, "JELLYFIN_USER_ID": "Alice",
               "JELLYFIN_TOKEN": API_KEY, "HTTP_RETRIES": "0", "HTTP_TIMEOUT_SECONDS": "10",
               "TEMP_DIR": str(tmp_path / "tmp"), "TASK_DEAD_AFTER_SECONDS": "2"}
        app = serve(make_config(**env))
        try:
            config = app.extensions["audiomuse"].config
            server = get_media_server(config)
            tracks = [t for a in server.list_albums() for t in server.album_tracks(a.album_id)]
            seed_tracks(db, redis, config, tracks)
            for n in range(4):
                fake.add_playlist(f"Mix {n}", [t.item_id for t in tracks[3 * n:3 * n + 3]])
            fake.fault(path_contains="/Playlists/", delay=1.5, times=2)  # the first two reads are slow
            worker = worker_processes("--queues", "high", env=env)
            client = app.test_client()
            task_id = client.post("/api/playlists/match", json={"full": True}).get_json()["task_id"]
            wait_for(lambda: db.fetch_one("SELECT count(*) AS n FROM user_playlists")["n"] >= 1, timeout=60,
                     what="the first playlist to be stored")
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            assert db.fetch_one("SELECT count(*) AS n FROM playlist_profiles")["n"] == 0  # killed before profiling
            worker_processes("--queues", "high", env=env)  # a new worker fails the dead one's task
            dead = wait_for(lambda: (r := store.get_task(db, task_id)) and r["finished_at"] and r, timeout=60,
                            what="the killed run to be failed")
            assert dead["status"] == "FAILURE"
            again = client.post("/api/playlists/match", json={"full": True}).get_json()["task_id"]
            done = wait_for(lambda: (r := store.get_task(db, again)) and r["finished_at"] and r, timeout=60,
                            what="the next run")
            assert done["status"] == "SUCCESS" and done["result"]["profiles_computed"] == 4, done["result"]
            assert db.fetch_one("SELECT count(*) AS n FROM user_playlists")["n"] == 4
        finally:
            app.extensions["audiomuse"].stop_background.set()


def test_new_songs_are_scored_against_the_whole_library(make_config, db, redis, run_worker_burst, tmp_path):
    """The job run for the songs analyzed since a cutoff, on a planted library, against the same figures computed
    straight over every row with numpy: only new songs are suggested, their z-scores are over the whole library (a
    new song nearer a playlist than the other new songs, but farther than most of the library, is not suggested),
    and the stored profiles are the members' mean vector and tags."""
    rng = np.random.default_rng(12)
    centres = rng.normal(size=(3, 16))
    planted: dict[str, np.ndarray] = {}
    for i in range(240):  # three sound groups, analysed ten days ago
        planted[f"old{i:03d}"] = centres[i % 3] + 0.6 * rng.normal(size=16)
    for i in range(18):  # new songs of group 2, far from both playlists
        planted[f"new{i:02d}"] = centres[2] + 0.6 * rng.normal(size=16)
    planted["new-close"] = centres[0] + 0.2 * rng.normal(size=16)
    planted["new-between"] = 0.45 * centres[0] + 0.55 * centres[2] + 0.2 * rng.normal(size=16)
    for item_id, vector in planted.items():
        insert_track(db, item_id=item_id, title=f"Title {item_id}", artist="Band", vector=vector)
        db.execute("UPDATE tracks SET tags = %s, moods = %s WHERE item_id = %s",
                   (json.dumps({"rock": float(rng.random()), "jazz": float(rng.random())}),
                    json.dumps({"happy": float(rng.random())}), item_id))
    db.execute("UPDATE tracks SET analyzed_at = now() - interval '10 days' WHERE item_id LIKE 'old%'")
    playlists = {"group0": [f"old{i:03d}" for i in range(0, 30, 3)], "group1": [f"old{i:03d}" for i in range(1, 31, 3)]}
    for playlist_id, members in playlists.items():
        match_store.save_user_playlist(db, playlist_id=playlist_id, name=playlist_id, item_ids=members,
                                       content_hash=playlist_id, generated=False)

    ids = sorted(planted)
    vectors = np.array([planted[i] for i in ids], dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    new = np.array([not i.startswith("old") for i in ids])

    def z(values: np.ndarray, over: np.ndarray) -> np.ndarray:
        return (values - values[over].mean()) / values[over].std()

    expected: dict[tuple[str, str], float] = {}
    fits_old = fits_among_new = 0
    everyone = np.ones(len(ids), dtype=bool)
    for playlist_id, members in playlists.items():
        rows = [ids.index(m) for m in members]
        centroid = vectors[rows].mean(axis=0)
        to_centroid, nearest = vectors @ (centroid / np.linalg.norm(centroid)), (vectors @ vectors[rows].T).max(1)
        score = (z(to_centroid, everyone) + z(nearest, everyone)) / 2
        assert not np.any(np.abs(score - 1.0) < 1e-3)  # no song on the threshold: float noise cannot flip one
        fits_old += int(np.sum(score[~new] >= 1.0)) - len(rows)
        among_new = (z(to_centroid, new) + z(nearest, new)) / 2
        if playlist_id == "group0":
            fits_among_new = int(among_new[ids.index("new-between")] >= 1.0)
            assert score[ids.index("new-between")] < 1.0 and score[ids.index("new-close")] >= 1.0
        expected.update({(ids[r], playlist_id): float(score[r]) for r in np.flatnonzero(new & (score >= 1.0))})
    assert fits_old > 0 and fits_among_new == 1  # the premises: old songs fit too; scored among new songs only,
    # new-between would have been suggested

    config = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"))
    app = serve(config)
    try:
        cutoff = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        started = app.test_client().post("/api/playlists/match", json={"full": False, "since": cutoff})
        assert started.status_code == 202
        run_worker_burst()
        row = store.get_task(db, started.get_json()["task_id"])
    finally:
        app.extensions["audiomuse"].stop_background.set()
    assert row["status"] == "SUCCESS", row
    assert row["result"]["songs_scored"] == 20 and row["result"]["profiles_computed"] == 2
    stored = {(r["item_id"], r["playlist_id"]): r for r in db.fetch_all("SELECT * FROM playlist_suggestions")}
    assert set(stored) == set(expected) and ("new-close", "group0") in stored
    for pair, score in expected.items():
        assert stored[pair]["score"] == pytest.approx(score, abs=2e-4)
        assert stored[pair]["reasons"][1].startswith("close to Title old")

    tags = {i: r for i, r in ((r["item_id"], r) for r in db.fetch_all("SELECT item_id, tags, moods FROM tracks"))}
    for profile in db.fetch_all("SELECT playlist_id, members, centroid, tag_profile FROM playlist_profiles"):
        members = playlists[profile["playlist_id"]]
        centroid = vectors[[ids.index(m) for m in members]].mean(axis=0)
        np.testing.assert_allclose(np.frombuffer(profile["centroid"], "<f4"), centroid / np.linalg.norm(centroid),
                                   atol=1e-6)
        means = np.array([[tags[m]["tags"].get(t, 0.0) for t in MSD_TAGS] + [tags[m]["moods"].get(x, 0.0)
                                                                             for x in MOODS] for m in members]).mean(0)
        np.testing.assert_allclose(np.frombuffer(profile["tag_profile"], "<f4"), means / np.linalg.norm(means),
                                   atol=1e-6)
        assert profile["members"] == 10
