"""The music map with real PostgreSQL, Redis and RQ: the projection job, the web process's cache (rebuilt on the
reload message, no restart), /api/map and its companions."""

from __future__ import annotations

import gzip
import json
from typing import Any

import numpy as np

from audio.musicnn import MODEL_NAME
from db import map_projections
from db import task_status as store
from discovery.map_cache import sample_size
from tasks.catalog import MAP, start_task
from tests.conftest import wait_for
from tests.seeded_library import insert_track
from voyager_manager import rebuild_from_embeddings

TAGS = ("rock", "electronic", "jazz")


def seed(db: Any, redis: Any, config: Any, n: int, *, start: int = 0, reindex: bool = True) -> list[str]:
    """n tracks in three sound groups (a tight cluster of vectors and a top tag each), indexed."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 24))
    rng = np.random.default_rng(start + 1)
    made = []
    for i in range(start, start + n):
        group = i % 3
        item_id = f"t{i:04d}"
        insert_track(db, item_id=item_id, title=f"Song {i}", artist=f"Artist {group}",
                     vector=centres[group] + 0.05 * rng.normal(size=24))
        db.execute("UPDATE tracks SET tags = %s WHERE item_id = %s",
                   (json.dumps({TAGS[group]: 0.8, TAGS[(group + 1) % 3]: 0.3, "ambient": 0.1}), item_id))
        made.append(item_id)
    if reindex:
        rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME,
                                channel=config.INDEX_RELOAD_CHANNEL, m=16, ef_construction=100)
    return made


def served(client: Any, percent: int = 100) -> dict[str, Any]:
    response = client.get(f"/api/map?percent={percent}")
    return response.get_json() if response.status_code == 200 else {}


def run_map_job(config: Any, db: Any, redis: Any, run_worker_burst: Any, *, full: bool) -> dict[str, Any]:
    task_id = start_task(MAP, {"full": full}, reason="test", db=db, redis=redis, config=config).task_id
    run_worker_burst()
    row = store.get_task(db, task_id)
    assert row["status"] == "SUCCESS", row
    return row


def test_an_empty_library_is_a_map_without_songs(client):
    doc = wait_for(lambda: served(client), what="the first map cache")
    assert doc["items"] == [] and doc["total"] == 0 and "analysis" in doc["message"]


def test_the_job_maps_the_library_and_the_web_process_serves_it_without_a_restart(
        app, client, config, db, redis, run_worker_burst):
    tracks = seed(db, redis, config, 45)
    # Before any projection the map is served at once from a PCA of the index, and says so.
    first = wait_for(lambda: (doc := served(client)) and doc["total"] == 45 and doc, what="the PCA map")
    assert first["projection"] == "pca" and first["fallback_reason"] == "no map projection has been computed yet"

    row = run_map_job(config, db, redis, run_worker_burst, full=True)
    assert row["result"]["mode"] == "full" and row["result"]["method"] == "umap"
    stored = map_projections.load_projection(db, config.INDEX_NAME)
    assert stored is not None and sorted(stored.item_ids) == tracks and stored.params["metric"] == "cosine"

    doc = wait_for(lambda: (d := served(client)) and d["projection"] == "umap" and d, what="the UMAP map")
    assert doc["total"] == doc["count"] == 45 and doc["built_at"]
    by_id = {i["item_id"]: i for i in doc["items"]}
    assert by_id["t0000"]["top_mood"] == "rock" and by_id["t0001"]["mood_vector"] == {
        "electronic": 0.8, "jazz": 0.3, "ambient": 0.1}
    # the stored coordinates are the ones served
    for item_id, xy in zip(stored.item_ids, stored.coords, strict=True):
        np.testing.assert_allclose(by_id[item_id]["embedding_2d"], xy, atol=1e-4)
    # songs of one sound group lie together
    xy = {g: np.array([by_id[t]["embedding_2d"] for t in tracks if int(t[1:]) % 3 == g]) for g in range(3)}
    spread = max(float(np.linalg.norm(v - v.mean(axis=0), axis=1).mean()) for v in xy.values())
    assert min(float(np.linalg.norm(xy[a].mean(axis=0) - xy[b].mean(axis=0)))
               for a, b in ((0, 1), (0, 2), (1, 2))) > 2 * spread


def test_samples_gzip_and_headers(app, client, config, db, redis):
    seed(db, redis, config, 30)
    wait_for(lambda: served(client).get("total") == 30, what="the map")
    full = client.get("/api/map?percent=100", headers={"Accept-Encoding": "identity"})
    assert full.headers["Cache-Control"] == "no-store" and "Content-Encoding" not in full.headers
    squeezed = client.get("/api/map?percent=100", headers={"Accept-Encoding": "gzip, deflate"})
    assert squeezed.headers["Content-Encoding"] == "gzip" and squeezed.headers["Cache-Control"] == "no-store"
    assert gzip.decompress(squeezed.data) == full.data
    ids_at = {p: [i["item_id"] for i in served(client, p)["items"]] for p in (25, 50, 75, 100)}
    for p in (25, 50, 75):
        assert ids_at[p] == ids_at[100][:sample_size(30, p)]
    assert client.get("/api/map").get_json()["percent"] == 25  # the default
    for bad in ("33", "abc", "-25", "1000"):
        answer = client.get(f"/api/map?percent={bad}")
        assert answer.status_code == 400 and answer.get_json()["parameter"] == "percent"


def test_new_tracks_are_placed_at_once_and_then_by_the_job_without_a_full_build(
        app, client, config, db, redis, run_worker_burst):
    seed(db, redis, config, 45)
    run_map_job(config, db, redis, run_worker_burst, full=True)
    built = map_projections.load_projection(db, config.INDEX_NAME)
    wait_for(lambda: served(client).get("projection") == "umap", what="the UMAP map")

    new = seed(db, redis, config, 3, start=45)  # analyzed and indexed; the job has not run yet
    doc = wait_for(lambda: (d := served(client)) and d["total"] == 48 and d, what="the map with the new tracks")
    assert doc["placed_now"] == 3 and doc["projection"] == "umap"

    row = run_map_job(config, db, redis, run_worker_burst, full=False)
    assert row["result"]["mode"] == "incremental" and row["result"]["placed"] == 3
    after = map_projections.load_projection(db, config.INDEX_NAME)
    assert after.built_at == built.built_at and after.placed_count == 3 and after.full_count == 45
    old = {i: xy for i, xy in zip(built.item_ids, built.coords, strict=True)}
    for item_id, xy in zip(after.item_ids, after.coords, strict=True):
        if item_id in old:
            np.testing.assert_array_equal(xy, old[item_id])  # nothing already mapped moved
    doc = wait_for(lambda: (d := served(client)) and d.get("placed_since_build") == 3 and d, what="the new map")
    assert doc["placed_now"] == 0
    by_id = {i["item_id"]: np.array(i["embedding_2d"]) for i in doc["items"]}
    for item_id in new:  # each new song lands nearer its own group than any other
        group = int(item_id[1:]) % 3
        centre = {g: np.mean([by_id[t] for t in by_id if int(t[1:]) % 3 == g and t not in new], axis=0)
                  for g in range(3)}
        assert min(centre, key=lambda g: np.linalg.norm(by_id[item_id] - centre[g])) == group

    # Removed tracks (what cleaning does) leave the map at the next update; nothing changed is a no-op.
    db.execute("DELETE FROM embeddings WHERE item_id = ANY(%s)", (new[:2],))
    db.execute("DELETE FROM tracks WHERE item_id = ANY(%s)", (new[:2],))
    rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME,
                            channel=config.INDEX_RELOAD_CHANNEL, m=16, ef_construction=100)
    row = run_map_job(config, db, redis, run_worker_burst, full=False)
    assert (row["result"]["mode"], row["result"]["removed"], row["result"]["tracks"]) == ("incremental", 2, 46)
    assert run_map_job(config, db, redis, run_worker_burst, full=False)["result"]["mode"] == "unchanged"
    wait_for(lambda: served(client).get("total") == 46, what="the map without the removed tracks")


def test_many_new_tracks_make_the_next_update_a_full_build(config, db, redis, run_worker_burst):
    seed(db, redis, config, 20)
    run_map_job(config, db, redis, run_worker_burst, full=True)
    seed(db, redis, config, 10, start=20)  # 10 > 25 % of 20
    assert run_map_job(config, db, redis, run_worker_burst, full=False)["result"]["mode"] == "full"
    assert map_projections.load_projection(db, config.INDEX_NAME).full_count == 30


def test_a_small_library_is_mapped_with_pca_and_umap_once_it_grows(config, db, redis, run_worker_burst):
    seed(db, redis, config, 10)
    first = run_map_job(config, db, redis, run_worker_burst, full=False)["result"]
    assert first["method"] == "pca" and "10 tracks are too few" in first["fallback_reason"]
    seed(db, redis, config, 2, start=10)  # 12 tracks, still too few for UMAP: the two are placed
    second = run_map_job(config, db, redis, run_worker_burst, full=False)["result"]
    assert (second["mode"], second["method"], second["placed"]) == ("incremental", "pca", 2)
    seed(db, redis, config, 8, start=12)  # 20 tracks: UMAP can run now, so a full build
    third = run_map_job(config, db, redis, run_worker_burst, full=False)["result"]
    assert (third["mode"], third["method"]) == ("full", "umap")


def test_rebuild_answers_202_refuses_a_second_and_shows_the_job(app, client, config, db, redis, run_worker_burst):
    seed(db, redis, config, 20)
    response = client.post("/api/map/rebuild")
    assert response.status_code == 202
    body = response.get_json()
    assert body["task_type"] == "map_projection" and body["status"] == "PENDING" and body["task_id"]
    again = client.post("/api/map/rebuild")
    assert again.status_code == 409 and again.get_json()["task_id"] == body["task_id"]
    run_worker_burst()
    status = client.get(f"/api/status/{body['task_id']}").get_json()
    assert status["status"] == "SUCCESS" and status["progress"] == 100 and "Mapped 20 tracks" in status[
        "status_message"]
    assert any("Fitting UMAP" in line["message"] for line in status["log"])
    last = client.get("/api/map/status").get_json()["last_job"]
    assert last["task_id"] == body["task_id"] and last["status"] == "SUCCESS"


def test_a_failed_projection_job_is_reported_and_the_map_still_served(
        app, client, config, db, redis, run_worker_burst):
    seed(db, redis, config, 20)
    wait_for(lambda: served(client).get("total") == 20, what="the PCA map")
    # An embedding of another size among the stored ones: the job cannot stack them and fails with the reason.
    insert_track(db, item_id="odd", title="Odd", artist="Nobody", vector=np.ones(3))
    task_id = start_task(MAP, {"full": True}, reason="test", db=db, redis=redis, config=config).task_id
    run_worker_burst()
    assert store.get_task(db, task_id)["status"] == "FAILURE"
    status = client.get("/api/map/status").get_json()
    assert status["last_job"]["status"] == "FAILURE" and status["last_job"]["message"]
    assert status["served"]["projection"] == "pca"
    assert served(client)["total"] == 20


def test_points_of_songs_by_id(app, client, config, db, redis):
    seed(db, redis, config, 12)
    doc = wait_for(lambda: (d := served(client, 25)) and d.get("total") == 12 and d, what="the map")
    shown = {i["item_id"] for i in doc["items"]}
    hidden = next(f"t{i:04d}" for i in range(12) if f"t{i:04d}" not in shown)  # not in the 25 % sample
    body = client.post("/api/map/points", json={"item_ids": [hidden, "nope"]}).get_json()
    full = {i["item_id"]: i["embedding_2d"] for i in served(client)["items"]}
    assert body == {"points": {hidden: full[hidden]}, "missing": ["nope"]}
    for bad in ({"item_ids": "t0001"}, {"item_ids": [1]}, {"item_ids": ["x"] * 1001}):
        answer = client.post("/api/map/points", json=bad)
        assert answer.status_code == 400 and answer.get_json()["parameter"] == "item_ids"


def test_the_map_page_is_built(client):
    page = client.get("/map")
    assert page.status_code == 200 and b"map-plot" in page.data and b"not built yet" not in page.data


def test_the_binary_map_is_the_json_map_and_its_points_are_named_by_index(app, client, config, db, redis,
                                                                         run_worker_burst):
    from discovery.map_cache import decode_binary_map

    seed(db, redis, config, 45)
    run_map_job(config, db, redis, run_worker_burst, full=True)
    wait_for(lambda: served(client).get("projection") == "umap", what="the UMAP map")
    for percent in (25, 100):
        answer = client.get(f"/api/map?percent={percent}&format=binary")
        assert answer.status_code == 200 and answer.mimetype == "application/octet-stream"
        assert answer.headers["Cache-Control"] == "no-store" and int(answer.headers["Content-Length"]) == len(
            answer.data)
        binary = decode_binary_map(answer.data)
        doc = served(client, percent)
        assert binary.header["count"] == doc["count"] and binary.header["total"] == 45
        assert binary.header["projection"] == "umap" and binary.header["built_at"] == doc["built_at"]
        x0, y0, x1, y1 = binary.header["bounds"]
        step = max(x1 - x0, y1 - y0) / 65535
        np.testing.assert_allclose(binary.coords, [i["embedding_2d"] for i in doc["items"]], atol=step / 2 + 1e-4)
        assert [binary.header["tags"][c] for c in binary.codes] == [i["top_mood"] for i in doc["items"]]
    # the names of points by index, as the page asks on hover, click and lasso
    version = binary.header["version"]
    body = client.post("/api/map/items", json={"version": version, "indices": [3, 0, 44]}).get_json()
    assert body["version"] == version
    assert [i["index"] for i in body["items"]] == [3, 0, 44]
    for item in body["items"]:
        full = doc["items"][item["index"]]
        assert {k: item[k] for k in ("item_id", "title", "artist", "album", "top_mood", "embedding_2d")} == {
            k: full[k] for k in ("item_id", "title", "artist", "album", "top_mood", "embedding_2d")}
    assert client.get(f"/api/map/items?version={version}&indices=2,1").get_json()["items"][1]["index"] == 1
    for bad, parameter in (({"indices": [1]}, "version"), ({"version": version, "indices": [45]}, "indices"),
                           ({"version": version, "indices": "x"}, "indices"),
                           ({"version": version, "indices": [-1]}, "indices"),
                           ({"version": version, "indices": list(range(1001))}, "indices")):
        answer = client.post("/api/map/items", json=bad)
        assert answer.status_code == 400 and answer.get_json()["parameter"] == parameter, bad
    answer = client.get("/api/map?format=svg")
    assert answer.status_code == 400 and answer.get_json()["parameter"] == "format"

    # New songs change the map: indices of the old one are refused, naming the new version.
    seed(db, redis, config, 3, start=45)
    wait_for(lambda: decode_binary_map(client.get("/api/map?format=binary").data).header["version"] != version,
             what="the rebuilt map")
    stale = client.post("/api/map/items", json={"version": version, "indices": [0]})
    assert stale.status_code == 409 and stale.get_json()["version"] != version


def test_an_empty_library_is_an_empty_binary_map(client):
    from discovery.map_cache import decode_binary_map

    binary = wait_for(lambda: (r := client.get("/api/map?format=binary")).status_code == 200 and r.data,
                      what="the first map cache")
    decoded = decode_binary_map(binary)
    assert decoded.header["total"] == 0 and len(decoded.coords) == 0 and "analysis" in decoded.header["message"]


def test_the_embeddings_are_read_into_one_array_without_copies(db):
    import io
    import tracemalloc

    from db.tracks import all_embeddings

    n, d = 20_000, 200
    vectors = np.random.default_rng(3).normal(size=(n, d)).astype("<f4")
    tracks = io.StringIO("".join(f"e{i:06d}\tSong {i}\n" for i in range(n)))
    rows = io.StringIO("".join(f"e{i:06d}\t{MODEL_NAME}\t{d}\t\\\\x{vectors[i].tobytes().hex()}\n" for i in range(n)))
    with db.transaction() as cur:
        cur.copy_from(tracks, "tracks", columns=("item_id", "title"))
        cur.copy_from(rows, "embeddings", columns=("item_id", "model", "dimensions", "vector"))
    tracemalloc.start()
    item_ids, read = all_embeddings(db, MODEL_NAME)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert item_ids == [f"e{i:06d}" for i in range(n)]
    np.testing.assert_array_equal(read, vectors)
    # the array (16 MB) and the ids, not the rows' bytes, their join and a converted copy besides (3 × 16 MB)
    assert peak < 1.5 * vectors.nbytes
