"""The plugin-compatibility fixes one by one: mood similarity, max distance, the configuration snapshots, clustering
keys of other clients, alchemy's distance and artist items, task control answers, whose play history a query string
selects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import serve
from tests.seeded_library import seed_arc_library


@pytest.fixture
def library(make_config, db, redis, tmp_path: Path):
    cfg = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"),
                      GEMINI_API_KEY="gemini-secret-key", OPENAI_API_KEY="openai-secret-key",
                      MISTRAL_API_KEY="mistral-secret-key", AI_MODEL_PROVIDER="ollama",
                      OLLAMA_SERVER_URL="http://llm:url-secret-key@ollama.lan:11434")
    tracks = seed_arc_library(db, redis, cfg, tmp_path / "music")
    ids = [t.item_id for t in tracks]
    # the seed likes happy; its nearest neighbour is sad, the second nearest as happy as the seed
    for item_id, moods in ((ids[0], {"happy": 0.9, "sad": 0.1}), (ids[1], {"happy": 0.0, "sad": 1.0}),
                           (ids[2], {"happy": 0.9, "sad": 0.1})):
        db.execute("UPDATE tracks SET moods = %s WHERE item_id = %s", (json.dumps(moods), item_id))
    app = serve(cfg)
    yield app.test_client(), ids
    app.extensions["audiomuse"].stop_background.set()


def test_mood_similarity_moves_songs_of_similar_mood_up(library):
    client, ids = library
    plain = client.get(f"/api/similar_tracks?item_id={ids[0]}&n=3").get_json()
    assert [t["item_id"] for t in plain] == ids[1:4]
    moody = client.get(f"/api/similar_tracks?item_id={ids[0]}&n=3&mood_similarity=true").get_json()
    assert moody[0]["item_id"] == ids[2] and ids[1] not in [t["item_id"] for t in moody[:2]]
    assert [t["distance"] for t in moody] == sorted(t["distance"] for t in moody)
    assert all("audio_distance" in t for t in moody)
    off = client.get(f"/api/similar_tracks?item_id={ids[0]}&n=3&mood_similarity=false").get_json()
    assert off == plain
    bad = client.get(f"/api/similar_tracks?item_id={ids[0]}&mood_weight=2")
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "mood_weight"


def test_max_distance(library):
    client, ids = library
    body = client.get(f"/api/max_distance?item_id={ids[0]}").get_json()
    assert body["farthest_item_id"] == ids[-1] and body["max_distance"] == pytest.approx(1.0, abs=0.01)
    missing = client.get("/api/max_distance")
    assert missing.status_code == 400 and missing.get_json()["parameter"] == "item_id"
    assert client.get("/api/max_distance?item_id=ghost").status_code == 404


def test_find_path_takes_the_navidrome_parameters(library):
    client, ids = library
    query = f"start_song_id={ids[0]}&end_song_id={ids[-1]}&max_steps=5"
    plain = client.get(f"/api/find_path?{query}").get_json()
    extra = client.get(f"/api/find_path?{query}&count=25&mood_pct=100&path_fix_size=false&server=x").get_json()
    assert extra["path"] == plain["path"]
    assert client.get(f"/api/find_path?{query}&mood_pct=300").status_code == 400


def test_config_snapshots_name_models_but_never_keys(library):
    client, _ = library
    config = client.get("/api/config")
    body = config.get_json()
    for key in ("num_clusters_min", "cluster_algorithm", "ai_model_provider", "ollama_model_name",
                "gemini_model_name", "top_n_moods", "mood_labels", "path_distance_metric",
                "alchemy_default_n_results", "alchemy_subtract_distance_angular", "top_n_clustering_playlist"):
        assert key in body, key
    assert body["ai_model_provider"] == "OLLAMA" and "happy" in body["mood_labels"]
    defaults = client.get("/chat/api/config_defaults")
    assert defaults.get_json()["default_ai_provider"] == "OLLAMA"
    assert isinstance(defaults.get_json()["default_gemini_model_name"], str)
    for answer in (config, defaults):
        assert b"secret-key" not in answer.data and not any("api_key" in k for k in answer.get_json())
        assert answer.get_json()["ollama_server_url"] == "http://llm:***@ollama.lan:11434"  # a password in the URL


def test_clustering_start_ignores_other_clients_keys_and_checks_its_own(library):
    client, _ = library
    jellyfin = {"gemini_api_key": "k", "ollama_server_url": "http://o:11434", "ollama_model_name": "m",
                "gemini_model_name": "g", "top_n_clustering_playlist": 3, "clustering_runs": 50}
    started = client.post("/api/clustering/start", json=jellyfin)
    assert started.status_code == 202, started.get_json()
    assert started.get_json()["params"]["top_n_playlists"] == 3 and "gemini_api_key" not in started.get_json()["params"]
    client.post(f"/api/cancel/{started.get_json()['task_id']}")
    bad = client.post("/api/clustering/start", json={"clustering_method": "bogus", "gemini_api_key": "k"})
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "clustering_method"


def test_alchemy_results_have_a_distance_and_artists_are_items(library):
    client, ids = library
    body = client.post("/api/alchemy", json={"items": [{"id": ids[0], "op": "ADD"}], "n": 3,
                                             "temperature": 0}).get_json()
    assert all(t["distance"] == pytest.approx(1 - t["score"], abs=1e-5) for t in body["results"])
    artist = client.post("/api/alchemy", json={"items": [{"id": "ARTIST 5", "op": "ADD", "type": "artist"}],
                                               "n": 3, "temperature": 0}).get_json()
    assert artist["results"][0]["item_id"] == ids[5]  # the artist's one song is the centroid itself
    unknown = client.post("/api/alchemy", json={"items": [{"id": "Nobody", "op": "ADD", "type": "artist"}]})
    assert unknown.status_code == 404
    kind = client.post("/api/alchemy", json={"items": [{"id": "happy:1", "op": "ADD", "type": "mood"}]})
    assert kind.status_code == 400 and "type" in kind.get_json()["parameter"]


def test_create_playlist_says_it_was_created(library):
    client, ids = library
    made = client.post("/api/create_playlist", json={"playlist_name": "Evening", "track_ids": ids[:2]})
    assert made.status_code == 201 and made.get_json()["message"] == "Playlist 'Evening_instant' created successfully!"


def test_task_control_answers_as_the_reference(library, db):
    client, _ = library
    unknown = client.get("/api/status/nope")
    assert unknown.status_code == 404
    assert unknown.get_json()["task_type_from_db"] is None and unknown.get_json()["state"] == "UNKNOWN"
    assert client.post("/api/cancel_all/main_analysis").status_code == 404
    first = client.post("/api/analysis/start", json={}).get_json()["task_id"]
    db.execute("""INSERT INTO task_status (task_id, parent_task_id, task_type, status, progress)
                  VALUES ('child', %s, 'analysis_album', 'PENDING', 0)""", (first,))
    both = client.post("/api/cancel_all/main_analysis").get_json()
    assert both["cancelled_main_tasks"] == [first] and both["cancelled_jobs_count"] == 2  # the child too
    ended = client.post(f"/api/cancel/{first}").get_json()
    assert ended["cancelled_jobs_count"] == 0 and ended["status"] == "REVOKED"
    assert client.get(f"/api/status/{first}").get_json()["task_type_from_db"] == "main_analysis"


def test_query_string_secrets_never_reach_the_log():
    from infra.logs import redact

    line = ("GET /api/sonic_fingerprint/generate?jellyfin_user_identifier=Ann&jellyfin_token=tok123"
            "&navidrome_password=pw9")
    assert "tok123" not in redact(line) and "pw9" not in redact(line) and "Ann" in redact(line)
