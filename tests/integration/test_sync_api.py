"""GET /api/sync: the paged {id, fp} index, fp's stability, full rows by id (embedding, map coordinates), limits and
auth, on a library whose vectors are known."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from app import serve
from audio.musicnn import MODEL_NAME
from db.map_projections import save_projection
from tests.seeded_library import seed_arc_library

TOKEN = "sync-token-1234567890"


@pytest.fixture
def library(make_config, db, redis, tmp_path: Path):
    cfg = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"))
    tracks = seed_arc_library(db, redis, cfg, tmp_path / "music")
    app = serve(cfg)
    yield app.test_client(), sorted(t.item_id for t in tracks), cfg
    app.extensions["audiomuse"].stop_background.set()


def index(client) -> dict[str, str]:
    return {t["id"]: t["fp"] for t in client.get("/api/sync?fields=index").get_json()["tracks"]}


def test_index_pages_have_no_duplicates_or_gaps(library):
    client, ids, _ = library
    seen, page, pages = [], 1, 0
    while page is not None:
        body = client.get(f"/api/sync?fields=index&limit=5&page={page}").get_json()
        assert body["total_tracks"] == 12 and len(body["tracks"]) <= 5
        assert all(isinstance(t["id"], str) and len(t["fp"]) == 16 for t in body["tracks"])
        seen += [t["id"] for t in body["tracks"]]
        assert body["has_more"] == (body["next_page"] is not None)
        page, pages = body["next_page"], pages + 1
    assert pages == 3 and seen == ids
    past = client.get("/api/sync?fields=index&limit=5&page=4").get_json()
    assert past["tracks"] == [] and past["has_more"] is False and past["next_page"] is None


def test_fp_changes_with_the_analysis_only(library, db):
    client, ids, _ = library
    before = index(client)
    assert index(client) == before and len(set(before.values())) == 12
    db.execute("UPDATE tracks SET title = 'Renamed', analyzed_at = now() WHERE item_id = %s", (ids[0],))
    assert index(client) == before  # metadata and the time of analysis are no part of the result
    db.execute("UPDATE tracks SET tempo_bpm = tempo_bpm + 1 WHERE item_id = %s", (ids[1],))
    db.execute("UPDATE embeddings SET vector = %s WHERE item_id = %s",
               (np.ones(16, dtype="<f4").tobytes(), ids[2]))
    db.execute("UPDATE tracks SET moods = '{\"happy\": 0.5}' WHERE item_id = %s", (ids[3],))
    after = index(client)
    assert {i for i in ids if after[i] != before[i]} == {ids[1], ids[2], ids[3]}


def test_full_rows_by_id_with_embedding_and_map_coordinates(library, db):
    client, ids, cfg = library
    save_projection(db, name=cfg.INDEX_NAME, model=MODEL_NAME, method="pca", params={}, fallback_reason=None,
                    item_ids=[ids[0]], coords=np.array([[1.5, -2.0]]), full_build=True, placed_count=0)
    body = client.get(f"/api/sync?ids={ids[1]},{ids[0]},ghost").get_json()
    assert [t["id"] for t in body["tracks"]] == [ids[0], ids[1]]
    assert body["total_tracks"] == 2 and body["has_more"] is False and body["next_page"] is None
    first = body["tracks"][0]
    stored = db.fetch_one("SELECT vector FROM embeddings WHERE item_id = %s", (ids[0],))["vector"]
    assert base64.b64decode(first["embedding"]) == bytes(stored) and first["embedding_dimensions"] == 16
    assert (first["umap_x"], first["umap_y"]) == (1.5, -2.0) and body["tracks"][1]["umap_x"] is None
    for name in ("title", "artist", "album", "tempo", "key", "energy", "moods", "fp"):
        assert name in first
    assert first["fp"] == index(client)[ids[0]]
    lean = client.get(f"/api/sync?ids={ids[0]}&include_embeddings=false").get_json()["tracks"][0]
    assert "embedding" not in lean
    paged = client.get("/api/sync?limit=4&page=3").get_json()
    assert [t["id"] for t in paged["tracks"]] == ids[8:12] and paged["has_more"] is False


def test_limits(library):
    client, _, _ = library
    assert client.get("/api/sync?fields=index&limit=5000").get_json()["limit"] == 1000
    assert client.get("/api/sync?limit=5000").get_json()["limit"] == 500
    for query, parameter in (("page=0", "page"), ("limit=0", "limit"), ("fields=all", "fields"),
                             ("ids=" + ",".join(f"x{i}" for i in range(501)), "ids")):
        bad = client.get(f"/api/sync?{query}")
        assert bad.status_code == 400 and bad.get_json()["parameter"] == parameter, query


def test_behind_auth(make_config, db, redis, tmp_path: Path):
    cfg = make_config(ADMIN_PASSWORD="a long admin password", API_TOKEN=TOKEN, MUSIC_DIR=str(tmp_path / "music"))
    seed_arc_library(db, redis, cfg, tmp_path / "music")
    app = serve(cfg)
    try:
        client = app.test_client()
        assert client.get("/api/sync?fields=index").status_code == 401
        ok = client.get("/api/sync?fields=index", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and len(ok.get_json()["tracks"]) == 12
    finally:
        app.extensions["audiomuse"].stop_background.set()
