"""The artist APIs against a real PostgreSQL, Redis and index: what the Navidrome and Jellyfin plugins parse, the
errors, the bearer token, artist radio published as a playlist, and the artist model reloaded by pub/sub after an
analysis by a real worker."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from app import serve
from audio.musicnn import MODEL_NAME
from discovery.artist_similarity import fallback_artist_id
from tests.analysis_runs import run_analysis, start_analysis_workers
from tests.conftest import wait_for
from tests.library import make_library
from tests.seeded_library import seed_arc_library
from voyager_manager import rebuild_from_embeddings

TOKEN = "artist-token-1234567890"
ALPHA_ID = "0f8fad5bd9cb469fa16570867728950e"  # a Jellyfin-style artist id (32 hex digits)
GROUPS = ("Alpha", "Beta", "Gamma", "Delta")  # three songs each, in this order along the arc
GUID = re.compile(r"^[0-9a-f]{32}$")


def _seed(make_config, db, redis, tmp_path: Path, **settings):
    cfg = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"), **settings)
    tracks = seed_arc_library(db, redis, cfg, tmp_path / "music")
    for i, track in enumerate(tracks):
        group = GROUPS[i // 3]
        db.execute("UPDATE tracks SET artist = %s, artist_id = %s WHERE item_id = %s",
                   (group, ALPHA_ID if group == "Alpha" else None, track.item_id))
    rebuild_from_embeddings(db, redis, name=cfg.INDEX_NAME, model=MODEL_NAME, channel=cfg.INDEX_RELOAD_CHANNEL,
                            m=16, ef_construction=100)
    app = serve(cfg)
    client = app.test_client()
    wait_for(lambda: app.extensions["audiomuse"].index.cache("artists") is not None, what="the artist model")
    return app, client, tracks


@pytest.fixture
def library(make_config, db, redis, tmp_path: Path):
    app, client, tracks = _seed(make_config, db, redis, tmp_path)
    yield client, tracks
    app.extensions["audiomuse"].stop_background.set()


def test_similar_artists_answers_what_the_navidrome_plugin_parses(library):
    client, tracks = library
    # The Navidrome plugin sends its artist id in `artist`
    response = client.get(f"/api/similar_artists?artist={ALPHA_ID}&include_component_matches=true&n=10")
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body, list) and [row["artist"] for row in body] == ["Beta", "Gamma", "Delta"]
    for row in body:
        assert isinstance(row["artist"], str) and isinstance(row["artist_id"], str) and row["artist_id"]
        assert isinstance(row["divergence"], float) and row["divergence"] > 0
        assert row["artist_id"] == fallback_artist_id(row["artist"]) and GUID.match(row["artist_id"])
        assert row["track_count"] == 3 and row["query_artist_components"] == 1
        assert isinstance(row["component_matches"], list) and row["component_matches"]
        for match in row["component_matches"]:
            for side, owner in (("artist1_representative_songs", "Alpha"), ("artist2_representative_songs",
                                                                              row["artist"])):
                songs = match[side]
                assert 2 <= len(songs) <= 3
                for song in songs:
                    assert isinstance(song["item_id"], str) and isinstance(song["title"], str)
                    position = next(i for i, t in enumerate(tracks) if t.item_id == song["item_id"])
                    assert GROUPS[position // 3] == owner
    assert [r["divergence"] for r in body] == sorted(r["divergence"] for r in body)
    # without the matches: the same artists, no component_matches
    plain = client.get(f"/api/similar_artists?artist={ALPHA_ID}&include_component_matches=false").get_json()
    assert [r["artist"] for r in plain] == ["Beta", "Gamma", "Delta"] and "component_matches" not in plain[0]
    two = client.get("/api/similar_artists?artist=Alpha&n=2").get_json()
    assert [r["artist"] for r in two] == ["Beta", "Gamma"]


def test_similar_artists_answers_what_the_jellyfin_plugin_parses(library):
    client, _ = library
    for query in (f"artist_id={ALPHA_ID}", "artist_id=0F8FAD5B-D9CB-469F-A165-70867728950E", "artist_id=alpha",
                  f"artist_id={ALPHA_ID}&n=50&ef_search=40"):
        body = client.get(f"/api/similar_artists?{query}").get_json()
        assert [row["artist"] for row in body] == ["Beta", "Gamma", "Delta"], query
        assert all(GUID.match(row["artist_id"]) for row in body)
    delta_id = fallback_artist_id("Delta")
    nearest = client.get(f"/api/similar_artists?artist_id={delta_id}&n=1").get_json()
    assert nearest == [{"artist": "Gamma", "artist_id": fallback_artist_id("Gamma"),
                        "divergence": nearest[0]["divergence"], "track_count": 3}]
    alpha = client.get(f"/api/similar_artists?artist_id={fallback_artist_id('Beta')}&n=3").get_json()
    assert {"artist": "Alpha", "artist_id": ALPHA_ID} in [{k: r[k] for k in ("artist", "artist_id")} for r in alpha]


def test_artist_errors(library):
    client, _ = library
    missing = client.get("/api/similar_artists?n=3")
    assert missing.status_code == 400 and "artist" in missing.get_json()["error"]
    unknown = client.get("/api/similar_artists?artist=Nobody%20Here")
    assert unknown.status_code == 404 and "Nobody Here" in unknown.get_json()["error"]
    assert client.get("/api/similar_artists?artist_id=ffffffffffffffffffffffffffffffff").status_code == 404
    bad = client.get("/api/similar_artists?artist=Alpha&n=0")
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "n"
    assert client.get("/api/artist_tracks").status_code == 400
    assert client.get("/api/artist_radio").status_code == 400
    assert client.get("/api/artist_radio?artist=Nobody").status_code == 404


def test_search_artists_and_artist_tracks(library, db):
    client, tracks = library
    found = client.get("/api/search_artists?query=ALP").get_json()
    assert found == [{"artist": "Alpha", "artist_id": ALPHA_ID, "track_count": 3}]
    assert client.get("/api/search_artists?query=a").get_json() == []
    assert client.get("/api/search_artists").get_json() == []
    several = client.get("/api/search_artists?query=ta").get_json()  # Beta, Delta
    assert sorted(r["artist"] for r in several) == ["Beta", "Delta"]
    assert len(client.get("/api/search_artists?query=ta&start=0&end=1").get_json()) == 1

    songs = client.get(f"/api/artist_tracks?artist={ALPHA_ID}").get_json()
    assert {s["item_id"] for s in songs} == {t.item_id for t in tracks[:3]}
    for song in songs:
        assert set(song) >= {"item_id", "title", "author"} and song["author"] == "Alpha"
        assert isinstance(song["item_id"], str) and isinstance(song["title"], str)
    assert client.get("/api/artist_tracks?artist_id=gamma").get_json()[0]["author"] == "Gamma"
    assert client.get("/api/artist_tracks?artist=Nobody").get_json() == []


def test_artist_radio_is_capped_and_publishable(library, db):
    client, tracks = library
    radio = client.get("/api/artist_radio?artist=Alpha&n=8").get_json()
    assert len(radio) == 8
    authors = [t["author"] for t in radio]
    assert authors[0] == "Alpha" and authors[:4] == ["Alpha", "Beta", "Gamma", "Delta"]
    assert max(authors.count(a) for a in set(authors)) <= 3  # MAX_SONGS_PER_ARTIST
    assert len({t["item_id"] for t in radio}) == 8
    for track in radio:
        assert isinstance(track["item_id"], str) and isinstance(track["distance"], float)
        assert track["title"] and track["artist_id"]
    capped = client.get("/api/artist_radio?artist=Alpha&n=12&max_per_artist=1").get_json()
    assert [t["author"] for t in capped] == ["Alpha", "Beta", "Gamma", "Delta"]
    made = client.post("/api/create_playlist", json={"playlist_name": "Alpha radio", "source": "artist_radio",
                                                     "track_ids": [t["item_id"] for t in radio]})
    assert made.status_code == 201 and made.get_json()["track_count"] == 8
    row = db.fetch_one("SELECT source FROM playlists WHERE name = 'Alpha radio_instant'")
    assert row is not None and row["source"] == "artist_radio"


def test_the_bearer_token_opens_each_artist_route(make_config, db, redis, tmp_path):
    app, client, _ = _seed(make_config, db, redis, tmp_path, ADMIN_PASSWORD="correct horse battery",
                           API_TOKEN=TOKEN)
    try:
        for path in ("/api/similar_artists?artist=Alpha", "/api/search_artists?query=alpha",
                     "/api/artist_tracks?artist=Alpha", "/api/artist_radio?artist=Alpha&n=3"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401, path
            answer = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert answer.status_code == 200 and answer.get_json(), path
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_an_analysis_builds_the_artist_model_and_a_new_one_reloads_it_without_a_restart(
        make_config, db, worker_processes, tmp_path):
    music = tmp_path / "music"
    make_library(music, albums=2, tracks_per_album=2, seconds=4)
    env = {"MUSIC_DIR": str(music), "PLAYLIST_DIR": str(tmp_path / "playlists"), "AUDIO_LOAD_TIMEOUT": "30",
           "REBUILD_INDEX_BATCH_SIZE": "10"}
    app = serve(make_config(**env))
    client = app.test_client()
    try:
        assert client.get("/api/similar_artists?artist=Artist 0").status_code == 503  # nothing analyzed yet
        start_analysis_workers(worker_processes, env)
        assert run_analysis(client, db)["status"] == "SUCCESS"
        assert db.fetch_one("SELECT num_artists FROM artist_models")["num_artists"] == 2
        first = wait_for(lambda: (r := client.get("/api/similar_artists?artist=Artist 0")).status_code == 200
                         and r.get_json(), what="the artist model")
        assert [row["artist"] for row in first] == ["Artist 1"]
        assert first[0]["artist_id"] == fallback_artist_id("Artist 1")  # a music folder has no artist ids
        assert db.fetch_one("SELECT count(*) AS n FROM tracks WHERE artist_id IS NULL")["n"] == 4

        # A new album by a new artist: the next analysis changes the answer of the running app.
        extra = tmp_path / "extra"
        make_library(extra, albums=3, tracks_per_album=2, seconds=4)
        shutil.copytree(extra / "Artist 2", music / "Artist 2")
        assert run_analysis(client, db)["status"] == "SUCCESS"
        second = wait_for(lambda: len(r := client.get("/api/similar_artists?artist=Artist 0").get_json()) == 2 and r,
                          what="the artist model with Artist 2")
        assert {row["artist"] for row in second} == {"Artist 1", "Artist 2"}
        assert client.get("/api/search_artists?query=artist 2").get_json()[0]["track_count"] == 2
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_an_alchemy_artist_item_may_name_the_artist_by_its_media_server_id(library):
    """The reference's alchemy takes an artist's name or id; the id resolves through the artist model to the artist
    whose analyzed songs make the item (the same answer as by name)."""
    client, _ = library
    by_id = client.post("/api/alchemy", json={"items": [{"id": ALPHA_ID, "op": "ADD", "type": "artist"}], "n": 5,
                                              "temperature": 0})
    by_name = client.post("/api/alchemy", json={"items": [{"id": "alpha", "op": "ADD", "type": "artist"}], "n": 5,
                                                "temperature": 0})
    assert by_id.status_code == 200 and by_name.status_code == 200, (by_id.get_json(), by_name.get_json())
    assert [r["item_id"] for r in by_id.get_json()["results"]] == [r["item_id"] for r in by_name.get_json()["results"]]
    assert by_id.get_json()["results"]
    unknown = client.post("/api/alchemy", json={"items": [{"id": "ffffffffffffffffffffffffffffffff", "op": "ADD",
                                                           "type": "artist"}]})
    assert unknown.status_code == 404
