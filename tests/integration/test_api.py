"""The JSON API: health, the error shape, task listings, and hot reload of the Voyager index."""

from __future__ import annotations

import numpy as np

from tests.conftest import wait_for
from tests.integration import jobs
from voyager_manager import build_index, load_index, publish_reload, store_index


def test_health_without_a_worker_is_degraded(client):
    response = client.get("/api/health")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "degraded"
    assert body["database"]["ok"] and body["database"]["schema_version"] >= 1
    assert body["redis"]["ok"]
    assert body["workers"] == {"ok": False, "count": 0}
    assert body["index"]["loaded"] is False and body["index"]["size"] == 0
    assert body["version"]


def test_health_with_a_worker_is_ok(client, worker_processes):
    worker_processes()
    body = wait_for(lambda: (r := client.get("/api/health")).status_code == 200 and r.get_json(),
                    what="the worker to register")
    assert body["status"] == "ok" and body["workers"]["count"] == 1


def test_one_error_shape(client):
    missing = client.get("/api/status/nope")
    assert missing.status_code == 404
    body = missing.get_json()
    assert {k: body[k] for k in ("error", "status", "parameter")} == {"error": "no task with id 'nope'", "status": 404,
                                                                      "parameter": "task_id"}
    assert body["state"] == "UNKNOWN" and body["task_type_from_db"] is None  # the reference's fields beside it
    unknown_route = client.get("/api/no_such_route")
    assert unknown_route.status_code == 404 and set(unknown_route.get_json()) == {"error", "status", "parameter"}
    wrong_method = client.get("/api/cancel/abc")
    assert wrong_method.status_code == 405 and wrong_method.get_json()["status"] == 405


def test_active_and_last_task(config, client, run_worker_burst):
    assert client.get("/api/active_tasks").get_json() == {}
    assert client.get("/api/last_task").get_json()["status"] == "NO_PREVIOUS_MAIN_TASK"
    first = jobs.start(jobs.count_to, {"n": 2}, config=config)
    second = jobs.start(jobs.other_kind, {}, config=config)
    active = client.get("/api/active_tasks").get_json()
    assert active["task_id"] == second and active["state"] == "PENDING"
    assert {t["task_id"] for t in active["all_active"]} == {first, second}
    run_worker_burst()
    assert client.get("/api/active_tasks").get_json() == {}
    last = client.get("/api/last_task").get_json()
    assert last["task_id"] == second and last["status"] == "SUCCESS" and last["running_time_seconds"] >= 0


def test_index_round_trip_and_hot_reload(config, db, redis, app, client):
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 200)).astype(np.float32)
    item_ids = [f"track-{i}" for i in range(300)]
    index = build_index(item_ids, vectors)
    store_index(db, config.INDEX_NAME, index, item_ids, model="test")

    loaded = load_index(db, config.INDEX_NAME)
    assert loaded is not None and len(loaded) == 300
    nearest = loaded.query(vectors[42], 5, query_ef=100)
    assert nearest[0][0] == "track-42" and nearest[0][1] < 1e-4

    assert client.get("/api/health").get_json()["index"]["size"] == 0  # the web process has not reloaded yet

    def size() -> int:
        return client.get("/api/health").get_json()["index"]["size"]

    for _ in range(10):  # the listener may not have subscribed yet when the first message goes out
        publish_reload(redis, config.INDEX_RELOAD_CHANNEL, config.INDEX_NAME)
        try:
            wait_for(lambda: size() == 300, timeout=2, what="the hot reload")
            break
        except AssertionError:
            continue
    assert size() == 300


def test_damaged_stored_index_keeps_the_previous_one(config, db, redis, app, client):
    item_ids = ["a", "b", "c"]
    store_index(db, config.INDEX_NAME, build_index(item_ids, np.eye(3, dtype=np.float32)), item_ids, model="test")
    holder = app.extensions["audiomuse"].index
    assert holder.reload() and holder.size == 3
    item_ids = ["a", "b", "c", "d"]  # a new index whose stored bytes are damaged (the loaded one is never re-read)
    store_index(db, config.INDEX_NAME, build_index(item_ids, np.eye(4, dtype=np.float32)), item_ids, model="test")
    db.execute("UPDATE voyager_index_chunks SET data = 'garbage'::bytea")
    (config.index_dir / f"{config.INDEX_NAME}.voyager").unlink(missing_ok=True)  # else the file kept there is read
    assert holder.reload() is False
    assert holder.size == 3 and "checksum" in holder.last_error
    shown = client.get("/api/health").get_json()["index"]["error"]  # an open endpoint: the cause, not the details
    assert shown == "the stored index could not be loaded (see the server log)" and "checksum" not in shown


def test_caches_are_rebuilt_with_the_index_and_alone_on_their_own_message(config, db, app):
    """Caches registered on the index holder are built against each newly loaded index and swapped in with it; the
    message '<index>:<cache>' rebuilds one cache only; a failing build keeps the previous value and says why."""
    holder = app.extensions["audiomuse"].index
    builds: list[tuple[str, int]] = []
    failing = {"on": False}

    def sizes(db_, loaded):
        builds.append(("sizes", len(loaded) if loaded else 0))
        if failing["on"]:
            raise RuntimeError("map projection missing")
        return {"size": len(loaded) if loaded else 0}

    def other(db_, loaded):
        builds.append(("other", len(loaded) if loaded else 0))
        return len(builds)

    holder.add_cache("sizes", sizes)
    holder.add_cache("other", other)
    item_ids = ["a", "b", "c"]
    store_index(db, config.INDEX_NAME, build_index(item_ids, np.eye(3, dtype=np.float32)), item_ids, model="test")
    holder.handle_message(config.INDEX_NAME)
    assert holder.size == 3 and holder.cache("sizes") == {"size": 3} and builds == [("sizes", 3), ("other", 3)]
    index_before = holder.current

    holder.handle_message(f"{config.INDEX_NAME}:sizes")
    assert builds[-1] == ("sizes", 3) and len(builds) == 3 and holder.current is index_before

    failing["on"] = True
    holder.handle_message(f"{config.INDEX_NAME}:sizes")
    assert holder.cache("sizes") == {"size": 3} and "map projection missing" in holder.cache_errors["sizes"]
    holder.handle_message(f"{config.INDEX_NAME}:nope")  # unknown cache: ignored
    holder.handle_message("another_index")  # not ours: ignored
    assert len(builds) == 4 and holder.current is index_before
    failing["on"] = False
    holder.handle_message(f"{config.INDEX_NAME}:sizes")
    assert "sizes" not in holder.cache_errors


def test_bad_input_that_used_to_crash_is_a_400(client, db, tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    nested = client.post("/api/create_playlist", data=deep, content_type="application/json")
    assert nested.status_code == 400 and nested.get_json()["parameter"] == "body"
    huge = client.get("/api/tracks?offset=9223372036854775808")
    assert huge.status_code == 400 and huge.get_json()["parameter"] == "offset"
    db.execute("""INSERT INTO tracks (item_id, title, artist, file_path, analyzed_at)
                  VALUES ('a', 'Song', 'Band', '/music/a.flac', now()),
                         ('b', 'Other', 'Band', E'/music/b.flac\n#EXTINF:1,evil\nhttp://evil.example/x', now())""")
    emoji = client.post("/api/create_playlist", json={"playlist_name": "🎵" * 60, "track_ids": ["a"]})
    assert emoji.status_code == 400 and emoji.get_json()["parameter"] == "playlist_name"  # 240 bytes in UTF-8
    odd_source = client.post("/api/create_playlist", json={"playlist_name": "x", "track_ids": ["a"],
                                                           "source": "anything"})
    assert odd_source.status_code == 400 and odd_source.get_json()["parameter"] == "source"
    exported = client.post("/api/playlist.m3u8", json={"playlist_name": "x", "track_ids": ["a", "b"]})
    assert exported.status_code == 200
    lines = exported.get_data(as_text=True).splitlines()
    assert "/music/a.flac" in lines and not any("evil" in line for line in lines)


def test_health_and_task_answers_hold_no_internal_details(client, config, run_worker_burst, make_config):
    import config as config_module
    from app import create_app

    task_id = jobs.start(jobs.explode, {"value": 42}, config=config)
    run_worker_burst()
    answer = client.get(f"/api/status/{task_id}").get_json()
    assert answer["error"] == "ValueError: bad input 42" and "Traceback" not in str(answer)
    try:
        down = create_app(make_config(DATABASE_URL="postgresql://nobody:pw@127.0.0.1:9/nothing")).test_client()
        body = down.get("/api/health").get_json()
        assert body["database"] == {"ok": False, "error": "unreachable"} and "nobody" not in str(body)
    finally:
        config_module.install(config)
