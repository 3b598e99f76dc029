"""The reference's clients, replayed: the exact requests the Navidrome plugin, the Jellyfin plugin (InstantMix, its
proxied routes, its scheduled tasks) and the two LMS mixers send (method, path, query, body, Bearer header) against
the real app on an analyzed library behind a password, with every field each client parses checked with its JSON
type. The library's ids are a Jellyfin server's (32 hex digits, the plugin's `ToString("N")` form)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app import serve
from tests.fakes.jellyfin import API_KEY, FakeJellyfin
from tests.library import make_library
from tests.seeded_library import seed_arc

TOKEN = "plugin-token-1234567890"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def site(make_config, db, redis, tmp_path: Path):
    make_library(tmp_path / "media" / "Music", albums=4, tracks_per_album=3, seconds=1)
    with FakeJellyfin(tmp_path / "media", libraries={"Music": "music"}) as fake:
        cfg = make_config(ADMIN_PASSWORD="a long admin password", API_TOKEN=TOKEN, MEDIASERVER_TYPE="jellyfin",
                          JELLYFIN_URL=fake.url, JELLYFIN_USER_ID="Bob", JELLYFIN_TOKEN=API_KEY, HTTP_RETRIES=0,
                          SONIC_FINGERPRINT_TOP_N_SONGS=5)
        seed_arc(db, redis, cfg, [(t["Id"], t["Name"], "") for t in fake.tracks])
        app = serve(cfg)
        yield app.test_client(), fake, [t["Id"] for t in fake.tracks]
        app.extensions["audiomuse"].stop_background.set()


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_rows(rows: Any, fields: dict[str, type]) -> None:
    """Each row has each field with the JSON type the client's parser needs (a string item_id above all)."""
    assert isinstance(rows, list)
    for row in rows:
        for name, kind in fields.items():
            value = row[name]
            assert is_number(value) if kind is float else isinstance(value, kind), (name, value)


TRACK = {"item_id": str, "title": str, "author": str, "album": str, "distance": float}


# --- Navidrome plugin (newest main.go) ------------------------------------------------------------------------
def test_navidrome_similar_tracks_and_sonic_path(site):
    client, _, ids = site
    similar = client.get(f"/api/similar_tracks?eliminate_duplicates=true&item_id={ids[0]}&n=20"
                         f"&radius_similarity=true&server=home", headers=BEARER)
    assert similar.status_code == 200  # only 200 counts as success
    check_rows(similar.get_json(), TRACK)
    assert all(0 <= row["distance"] <= 1 for row in similar.get_json())  # its similarity is 1 - distance
    path = client.get(f"/api/find_path?count=25&end_song_id={ids[-1]}&max_steps=25&mood_pct=100"
                      f"&path_fix_size=false&server=home&start_song_id={ids[0]}", headers=BEARER)
    assert path.status_code == 200
    check_rows(path.get_json()["path"], {"item_id": str, "title": str, "author": str, "album": str})
    assert path.get_json()["path"][0]["item_id"] == ids[0]


def test_without_the_bearer_token_a_plugin_gets_401(site):
    client, _, ids = site
    assert client.get(f"/api/similar_tracks?item_id={ids[0]}&n=5").status_code == 401
    assert client.get(f"/api/max_distance?item_id={ids[0]}").status_code == 401


# --- Jellyfin plugin ------------------------------------------------------------------------------------------------
def instant_mix(client: Any, seeds: list[str], limit: int = 200) -> list[str]:
    """InstantMixController.AddSimilarTracksFromSeeds: one call per seed, 404 skips the seed, any other failure
    stops the mix; ids must parse as GUIDs."""
    per_seed = math.ceil(limit / len(seeds)) * (2 if len(seeds) > 1 else 1)
    mix: list[str] = []
    for seed in seeds:
        answer = client.get(f"/api/similar_tracks?n={per_seed}&item_id={seed}&server=jf", headers=BEARER)
        if answer.status_code == 404:
            continue
        assert answer.status_code == 200, answer.get_json()
        rows = answer.get_json()
        rows = rows if isinstance(rows, list) else rows["results"]
        check_rows(rows, {"item_id": str})
        mix += [str(uuid.UUID(row["item_id"])) for row in rows if row.get("is_seed") is not True]
    return mix


def test_jellyfin_instant_mix_for_song_album_artist_and_playlist_seeds(site):
    client, fake, ids = site
    albums: dict[str, list[str]] = {}
    for track in fake.tracks:
        albums.setdefault(track["AlbumId"], []).append(track["Id"])
    album = next(iter(albums.values()))
    assert len(instant_mix(client, [ids[0]])) == 11  # song: the rest of the library
    assert instant_mix(client, album)  # album: every track of the album, shuffled
    assert instant_mix(client, [ids[5]])  # artist: the artist's tracks (one each here)
    # playlist: up to 20 of its songs; an id the backend does not know is a 404 that skips the seed
    assert instant_mix(client, [ids[3], "0" * 32, ids[7]])
    assert client.get(f"/api/similar_tracks?n=5&item_id={'0' * 32}", headers=BEARER).status_code == 404


def test_jellyfin_more_like_this_and_proxied_discovery_routes(site):
    client, _, ids = site
    eliminate = client.get(f"/api/similar_tracks?n=4&item_id={ids[2]}&eliminate_duplicates=false&server=jf",
                           headers=BEARER)
    check_rows(eliminate.get_json(), TRACK)
    by_name = client.get("/api/search_tracks?title=" + "&artist=Artist%201&server=jf", headers=BEARER)
    assert by_name.status_code == 200
    check_rows(by_name.get_json(), {"item_id": str, "title": str, "author": str})
    far = client.get(f"/api/max_distance?item_id={ids[0]}&server=jf", headers=BEARER)
    assert far.status_code == 200
    assert is_number(far.get_json()["max_distance"]) and isinstance(far.get_json()["farthest_item_id"], str)
    path = client.get(f"/api/find_path?start_song_id={ids[0]}&end_song_id={ids[6]}&max_steps=4&server=jf",
                      headers=BEARER).get_json()
    check_rows(path["path"], {"item_id": str, "title": str, "author": str})
    assert is_number(path["total_distance"])
    made = client.post("/api/create_playlist?server=jf", json={"playlist_name": "Mix", "track_ids": ids[:3]},
                       headers=BEARER)
    assert made.status_code == 201 and made.get_json()["message"] == "Playlist 'Mix_instant' created successfully!"
    alchemy = client.post("/api/alchemy", json={"items": [{"id": ids[0], "op": "ADD"}], "n": 3, "temperature": 0},
                          headers=BEARER)
    check_rows(alchemy.get_json()["results"], TRACK)
    listed = client.get("/api/playlists", headers=BEARER)
    assert listed.status_code == 200 and isinstance(listed.get_json(), dict)
    assert client.get("/", headers=BEARER).status_code == 200  # its health check: any 2xx
    assert client.get("/api/config", headers=BEARER).status_code == 200
    assert client.get("/chat/api/config_defaults", headers=BEARER).status_code == 200
    # not in this product: a JSON error the plugin reads `error` from
    for path_ in ("/api/sem_grove/search", "/api/hyperbolic/similar", "/api/lyrics/search/text"):
        missing = client.post(path_, json={"item_id": ids[0], "limit": 5}, headers=BEARER)
        assert missing.status_code == 404 and isinstance(missing.get_json()["error"], str)


def test_jellyfin_scheduled_tasks_and_task_control(site):
    client, fake, _ = site
    analysis = client.post("/api/analysis/start", data="{}", content_type="application/json", headers=BEARER)
    assert analysis.status_code == 202
    assert isinstance(analysis.get_json()["task_id"], str) and analysis.get_json()["task_type"] == "main_analysis"
    clustering = client.post("/api/clustering/start", data="{}", content_type="application/json", headers=BEARER)
    assert clustering.status_code == 202 and clustering.get_json()["task_type"] == "main_clustering"
    task_id = analysis.get_json()["task_id"]

    status = client.get(f"/api/status/{task_id}", headers=BEARER).get_json()
    assert status["task_id"] == task_id and status["task_type_from_db"] == "main_analysis"
    assert isinstance(status["state"], str) and isinstance(status["status_message"], str)
    assert is_number(status["progress"]) and is_number(status["running_time_seconds"])
    assert isinstance(status["details"], dict)
    active = client.get("/api/active_tasks", headers=BEARER).get_json()
    assert active["task_id"] in (task_id, clustering.get_json()["task_id"])
    assert isinstance(client.get("/api/last_task", headers=BEARER).get_json()["task_id"], str)

    cancelled = client.post("/api/cancel_all/main_clustering", headers=BEARER)
    assert cancelled.status_code == 200
    assert cancelled.get_json()["cancelled_main_tasks"] == [clustering.get_json()["task_id"]]
    assert isinstance(cancelled.get_json()["message"], str)
    none_left = client.post("/api/cancel_all/main_clustering", headers=BEARER)
    assert none_left.status_code == 404 and "No active tasks" in none_left.get_json()["message"]
    one = client.post(f"/api/cancel/{task_id}", headers=BEARER)
    assert one.status_code == 200 and one.get_json()["cancelled_jobs_count"] == 1
    again = client.post(f"/api/cancel/{task_id}", headers=BEARER)
    assert again.status_code == 200 and again.get_json()["cancelled_jobs_count"] == 0

    # the fingerprint task: one GET per Jellyfin user, by name, no token; a bare list of GUID ids and numbers
    now = datetime.now(UTC)
    fake.set_played("Alice", fake.tracks[0]["Id"], 7, now - timedelta(days=2))
    fake.set_played("Alice", fake.tracks[1]["Id"], 3, now - timedelta(days=9))
    alice = client.get("/api/sonic_fingerprint/generate?jellyfin_user_identifier=Alice&server=jf", headers=BEARER)
    assert alice.status_code == 200 and alice.get_json()
    check_rows(alice.get_json(), {"item_id": str, "title": str, "author": str, "distance": float})
    assert all(uuid.UUID(row["item_id"]) for row in alice.get_json())
    bob = client.get("/api/sonic_fingerprint/generate?jellyfin_user_identifier=Bob", headers=BEARER)
    assert bob.status_code == 200 and bob.get_json() == []  # "returned no tracks"


# --- LMS mixers -----------------------------------------------------------------------------------------------------
def extract_tracks(body: Any) -> list[dict[str, Any]]:
    """The mixers' _extractTracks: a bare array, or the first array under results, path or query_results; a body
    holding `error` is a failure whatever the status."""
    assert not (isinstance(body, dict) and "error" in body), body
    if isinstance(body, list):
        return body
    return next(body[key] for key in ("results", "path", "query_results") if isinstance(body.get(key), list))


def test_lms_mixers(site):
    client, _, ids = site
    for query in (f"item_id={ids[0]}&n=20&eliminate_duplicates=true",
                  f"item_id={ids[0]}&n=10&eliminate_duplicates=true&radius_similarity=true&mood_similarity=true"):
        rows = extract_tracks(client.get(f"/api/similar_tracks?{query}", headers=BEARER).get_json())
        assert rows and all(isinstance(r["item_id"], str) for r in rows)
    path = extract_tracks(client.get(f"/api/find_path?start_song_id={ids[0]}&end_song_id={ids[-1]}&max_steps=10",
                                     headers=BEARER).get_json())
    assert path[0]["item_id"] == ids[0]
    legacy = client.post("/api/alchemy", json={"add": [ids[0], ids[1]], "sub": [ids[-1]], "n": 5}, headers=BEARER)
    assert legacy.status_code == 200 and extract_tracks(legacy.get_json())
    items = client.post("/api/alchemy", json={"items": [{"id": ids[0], "op": "ADD", "type": "song"},
                                                        {"id": ids[-1], "op": "SUBTRACT", "type": "song"}], "n": 5},
                        headers=BEARER)
    check_rows(extract_tracks(items.get_json()), {"item_id": str, "distance": float})
    found = extract_tracks(client.get("/api/search_tracks?artist=Artist%202", headers=BEARER).get_json())
    assert found and isinstance(found[0]["item_id"], str)
    assert extract_tracks(client.get("/api/sonic_fingerprint/generate?n=25", headers=BEARER).get_json()) == []
    for start in ("/api/analysis/start", "/api/clustering/start"):
        assert client.post(start, json={}, headers=BEARER).status_code == 202
    active = client.get("/api/active_tasks", headers=BEARER).get_json()
    assert isinstance(active["details"]["status_message"], str) and isinstance(active["status"], str)
    assert isinstance(active["task_type"], str) and is_number(active["progress"])
    assert is_number(active["running_time_seconds"])
