"""Blocklists and scope on every list (issue 28), against a real PostgreSQL, a real Voyager index and the web
process: one library where six songs each fall to one rule — a blocked artist, album, genre and folder, a 2-hour
mix and a song of another library — and each list asked for n gives n others, in the order it gives without them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app import serve
from audio.musicnn import MODEL_NAME
from tests.conftest import wait_for
from tests.seeded_library import insert_track
from voyager_manager import rebuild_from_embeddings

N = 24
BLOCKED = ["t01", "t02", "t03", "t04", "t05", "t06"]
# what a request blocks: t01 by artist, t02 album, t03 genre, t04 folder, t05 length, t06 library
ASK = {"exclude_artists": "abba", "exclude_albums": "CHRISTMAS HITS", "exclude_genres": "audiobook",
       "exclude_folders": "/music/Podcasts", "max_duration": "3600", "libraries": "music"}
QUERY = "&".join(f"{k}={v}" for k, v in ASK.items())


def seed_blocklist_library(db: Any, redis: Any, config: Any) -> None:
    """t00…t23 on a quarter circle in that order (so neighbours are known), each its own artist; tempo 100 + 2i;
    tags rock 0.9 − 0.01i; genre Rock; file /music/Main/tNN.flac; library Music; 200 s — but for BLOCKED."""
    for i in range(N):
        angle = i * np.pi / 2 / (N - 1)
        vector = np.zeros(8, dtype=np.float32)
        vector[0], vector[1], vector[2 + i % 3] = np.cos(angle), np.sin(angle), 0.01
        item_id = f"t{i:02d}"
        insert_track(db, item_id=item_id, title=f"Song {i:02d}", artist="ABBA" if i == 1 else f"Artist {i:02d}",
                     vector=vector, path="/music/Podcasts/t04.mp3" if i == 4 else f"/music/Main/{item_id}.flac",
                     bpm=100 + 2 * i, duration=7200.0 if i == 5 else 200.0)
        db.execute("UPDATE tracks SET album = %s, genres = %s, library = %s, tags = %s, moods = %s "
                   "WHERE item_id = %s",
                   ("Christmas Hits" if i == 2 else "Album", ["Audiobook"] if i == 3 else ["Rock"],
                    "Spoken" if i == 6 else "Music", json.dumps({"rock": round(0.9 - 0.01 * i, 3)}),
                    json.dumps({"happy": 0.5}), item_id))
    rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME, channel=config.INDEX_RELOAD_CHANNEL,
                            m=16, ef_construction=100)


@pytest.fixture
def site(make_config, db, redis, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "music").mkdir()
    cfg = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"),
                      DUPLICATE_DISTANCE=0.0001)
    seed_blocklist_library(db, redis, cfg)
    app = serve(cfg)
    # the index and the artist model load in the background: wait for both (a busy machine takes its time)
    wait_for(lambda: app.extensions["audiomuse"].index.cache("artists") is not None, what="the artist model")
    yield app.test_client()
    app.extensions["audiomuse"].stop_background.set()


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["item_id"] for item in items]


def allowed(order: list[str], n: int) -> list[str]:
    """The first n of a list's order without the blocked songs: what the list must give with the exclusions."""
    return [i for i in order if i not in BLOCKED][:n]


def test_index_lists_leave_out_every_kind_of_exclusion_and_still_give_n(site):
    plain = site.get("/api/similar_tracks?item_id=t00&n=5")
    assert ids(plain.get_json()) == ["t01", "t02", "t03", "t04", "t05"] and "X-AudioMuse-Excluded" not in plain.headers
    similar = site.get(f"/api/similar_tracks?item_id=t00&n=5&{QUERY}")
    assert ids(similar.get_json()) == ["t07", "t08", "t09", "t10", "t11"]
    assert similar.headers["X-AudioMuse-Excluded"] == "6"  # a bare array: what was excluded is said in headers
    assert json.loads(similar.headers["X-AudioMuse-Exclusions"])["artists"] == ["abba"]
    # a seed the user names is found even when blocked; it is never suggested for another seed
    assert ids(site.get(f"/api/similar_tracks?item_id=t01&n=2&{QUERY}").get_json()) == ["t00", "t07"]

    order = ids(site.get("/api/mixable_tracks?item_id=t00&n=24&mode=vibe&bpm_tolerance=40").get_json()["results"])
    mixable = site.get(f"/api/mixable_tracks?item_id=t00&n=4&mode=vibe&bpm_tolerance=40&{QUERY}").get_json()
    assert ids(mixable["results"]) == allowed(order, 4) and len(mixable["results"]) == 4
    assert mixable["exclusions"]["excluded_tracks"] == 6 and mixable["exclusions"]["libraries"] == ["music"]
    nowhere = site.get("/api/mixable_tracks?item_id=t00&n=2&libraries=Podcasts").get_json()
    assert nowhere["results"] == [] and "no track is in the libraries Podcasts (known: Music, Spoken)" in nowhere[
        "exclusions"]["warnings"][0]

    path = site.get(f"/api/find_path?start_song_id=t00&end_song_id=t23&max_steps=6&{QUERY}").get_json()
    assert ids(path["path"]) == ["t00", "t07", "t09", "t14", "t18", "t23"]

    body = {"items": [{"id": "t00", "op": "ADD"}], "n": 3, "temperature": 0, **ASK}
    alchemy = site.post("/api/alchemy", json=body).get_json()
    assert ids(alchemy["results"]) == ["t07", "t08", "t09"] and "exclusions" in alchemy

    mix = site.post("/api/mix", json={"tracks": ["t00"], "count": 3, **ASK}).get_json()
    assert ids(mix["tracks"]) == ["t07", "t08", "t09"]

    turns = ids(site.get(f"/api/artist_radio?artist=Artist 00&n={N}").get_json())  # artists by divergence
    radio = site.get(f"/api/artist_radio?artist=Artist 00&n=4&{QUERY}")
    assert ids(radio.get_json()) == allowed(turns, 4) and radio.headers["X-AudioMuse-Excluded"] == "6"

    seed_shape = site.get(f"/api/v1/tracks/t00/similar?n=3&{QUERY}").get_json()
    assert [s["track"]["item_id"] for s in seed_shape["similar"]] == ["t07", "t08", "t09"]


def test_the_settings_blocklist_applies_without_asking_and_a_request_narrows_the_scope(site):
    saved = site.post("/api/settings/exclusions", json={"artists": ["Artist 07"], "libraries": ["Music", "Spoken"]})
    assert saved.status_code == 200 and saved.get_json()["artists"] == ["Artist 07"]
    assert ids(site.get("/api/similar_tracks?item_id=t05&n=3").get_json()) == ["t04", "t06", "t03"]
    narrowed = site.get("/api/similar_tracks?item_id=t05&n=3&libraries=Spoken&exclude_artists=ABBA").get_json()
    assert ids(narrowed) == ["t06"]  # the only song of Spoken; a request cannot widen the scope to another library
    unknown = site.get("/api/mixable_tracks?item_id=t05&n=3&libraries=Podcasts").get_json()
    assert unknown["results"] == [] and unknown["exclusions"]["libraries"] == []


def test_database_lists_leave_them_out_and_still_give_n(site):
    wait_for(lambda: site.get("/api/v1/search?q=song").status_code == 200
             and site.post("/api/clap/search", json={"query": "rock"}).status_code == 200, what="the search caches")
    keyword = site.get(f"/api/v1/search?q=song&semantic=false&limit=5&{QUERY}").get_json()
    order = [r["track"]["item_id"] for r in site.get("/api/v1/search?q=song&semantic=false&limit=24").get_json()[
        "results"]]
    found = [r["track"]["item_id"] for r in keyword["results"]]
    assert found == allowed(order, 5) and keyword["totalMatches"] == N - 6
    assert keyword["exclusions"]["excluded_tracks"] == 6

    text = site.post("/api/clap/search", json={"query": "rock music", "limit": 5, **ASK}).get_json()
    assert ids(text["results"]) == ["t00", "t07", "t08", "t09", "t10"]
    words = site.get(f"/api/search/keyword?q=song&limit=3&{QUERY}").get_json()
    assert ids(words["results"]) == allowed(ids(site.get("/api/search/keyword?q=song&limit=24").get_json()["results"]),
                                            3)

    chat = site.post("/chat/api/chatPlaylist", json={"userInput": "rock, 2 songs", **ASK}).get_json()["response"]
    # its LIMIT 6 held one allowed song: it ran again with LIMIT 12
    assert ids(chat["query_results"]) == ["t00", "t07"] and chat["exclusions"]["excluded_tracks"] == 6

    preview = site.post("/api/smart_playlists/preview", json={"rule": "genre = Rock", "order_by": "bpm",
                                                              "size_cap": 5, **ASK}).get_json()
    assert ids(preview["tracks"]) == ["t00", "t07", "t08", "t09", "t10"] and preview["count"] == N - 6


def test_bad_values_are_400s_naming_the_parameter(site):
    for query, parameter in (("max_duration=-1", "max_duration"), ("max_duration=long", "max_duration"),
                             ("exclude_artists=" + "x" * 501, "exclude_artists")):
        answer = site.get(f"/api/similar_tracks?item_id=t00&{query}")
        assert answer.status_code == 400 and answer.get_json()["parameter"] == parameter, query
    for body, parameter in (({"exclude_genres": 5}, "exclude_genres"), ({"folders": [1, 2]}, "folders"),
                            ({"libraries": {"a": 1}}, "libraries")):
        answer = site.post("/api/alchemy", json={"items": [{"id": "t00", "op": "ADD"}], **body})
        assert answer.status_code == 400 and answer.get_json()["parameter"] == parameter, body
    refused = site.post("/api/settings/exclusions", json={"max_duration": "soon"})
    assert refused.status_code == 400 and refused.get_json()["parameter"] == "max_duration"
    assert site.get("/api/settings/exclusions").get_json()["saved"] is False  # nothing was saved
    # unknown keys are ignored, as everywhere
    assert site.get("/api/similar_tracks?item_id=t00&n=1&exclude_moods=sad").status_code == 200
