"""Clustering end to end: a generated four-style library, real RQ workers on real PostgreSQL and Redis, playlists
published to the local media source (and to a real MPD), AI naming through a local LLM server."""

from __future__ import annotations

import contextlib
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from app import serve
from db import task_status as store
from mediaservers.mpd import Mpd
from tests.conftest import wait_for
from tests.fakes.llm import FakeLLM
from tests.integration.test_mpd import start_mpd
from tests.style_library import seed_style_library, write_style_files


def settings_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"MUSIC_DIR": str(tmp_path / "music"), "PLAYLIST_DIR": str(tmp_path / "playlists"),
           "ITERATIONS_PER_BATCH_JOB": "5", "MAX_CONCURRENT_BATCH_JOBS": "2",
           "CLUSTERING_BATCH_CHECK_INTERVAL_SECONDS": "0.1"}
    env.update(extra)
    return env


@pytest.fixture
def clustering_site(make_config, db, tmp_path):
    """(web test client, worker environment, tracks by style) for a seeded four-style library."""
    by_style = seed_style_library(db, tmp_path / "music", per_style=12)
    env = settings_env(tmp_path)
    app = serve(make_config(**env))
    yield app.test_client(), env, by_style
    app.extensions["audiomuse"].stop_background.set()


def start_workers(worker_processes: Any, env: dict[str, str], album_workers: int = 2) -> list[Any]:
    """The orchestrator worker (queue high) and batch workers (queue default), as supervisord runs them."""
    return [worker_processes("--queues", "high", env=env)] + [
        worker_processes("--queues", "default", env=env) for _ in range(album_workers)]


def run_clustering(client: Any, db: Any, payload: dict[str, Any], *, timeout: float = 180) -> dict[str, Any]:
    response = client.post("/api/clustering/start", json=payload)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["task_type"] == "main_clustering" and body["status"] == "PENDING"
    return wait_for(lambda: (row := store.get_task(db, body["task_id"])) and row["finished_at"] and row,
                    timeout=timeout, what="the clustering task to end")


def style_of(title: str) -> str:
    return title.split()[0].lower()


CUSTOM = {"clustering_method": "kmeans", "clustering_runs": 20, "num_clusters_min": 3, "num_clusters_max": 6,
          "pca_components_min": 0, "pca_components_max": 4, "top_n_playlists": 4, "min_playlist_size": 4,
          "max_songs_per_artist": 10, "seed": 11}


def test_preset_run_publishes_coherent_named_playlists(clustering_site, db, worker_processes, tmp_path):
    client, env, by_style = clustering_site
    start_workers(worker_processes, env)
    task = run_clustering(client, db, {"preset": True, "seed": 5})
    assert task["status"] == "SUCCESS", task
    result = task["result"]
    assert result["seed"] == 5 and result["failed_batches"] == 0
    assert result["best_history"] and result["best_score"] == result["best_history"][-1]["score"]
    playlists = client.get("/api/playlists?source=clustering").get_json()["playlists"]
    assert len(playlists) >= 2
    for playlist in playlists:
        assert playlist["name"].endswith("_automatic")
        styles = Counter(style_of(t["title"]) for t in playlist["tracks"])
        # the four styles are far apart: a playlist is (almost) one style
        assert styles.most_common(1)[0][1] >= 0.8 * len(playlist["tracks"]), (playlist["name"], styles)
        m3u = (tmp_path / "playlists" / f"{playlist['name']}.m3u8")
        assert m3u.exists(), sorted(os.listdir(tmp_path / "playlists"))
        assert m3u.read_text().count("#EXTINF") == len(playlist["tracks"])
        assert playlist["mediaserver_playlist"]
    dominant = [Counter(style_of(t["title"]) for t in p["tracks"]).most_common(1)[0][0] for p in playlists]
    assert len(set(dominant)) == len(dominant)  # different playlists, different styles
    # what the reference's clients read of a finished clustering, through both task routes
    for answer in (client.get("/api/last_task").get_json(), client.get(f"/api/status/{task['task_id']}").get_json()):
        assert answer["task_type"] == "main_clustering" and answer["status"] == "SUCCESS"
        assert answer["details"]["best_score"] == result["best_score"]
        assert answer["details"]["num_playlists_created"] == len(playlists)


def test_rerun_updates_the_automatic_playlists_in_place_and_leaves_pinned_ones(clustering_site, db, worker_processes,
                                                                               tmp_path):
    """Run 1 publishes four playlists (an older run's Stale_automatic is deleted); one is pinned. Run 2 repeats the
    search: the three other names are the same files with the run's songs, the pinned playlist is untouched (file
    and record), and the cluster that would take its name is named "<name>_2"."""
    client, env, _ = clustering_site
    start_workers(worker_processes, env, album_workers=1)
    playlist_dir = tmp_path / "playlists"
    playlist_dir.mkdir(parents=True, exist_ok=True)
    (playlist_dir / "Stale_automatic.m3u8").write_text("#EXTM3U\n")
    (playlist_dir / "My own list.m3u8").write_text("#EXTM3U\n")
    first = run_clustering(client, db, dict(CUSTOM, top_n_playlists=4))
    assert first["status"] == "SUCCESS", first
    assert first["result"]["published"] == {"server": "local", "created": 4, "updated": 0, "deleted": 1,
                                            "pinned": [], "failures": [], "left_out": []}
    before = {p["name"]: p for p in client.get("/api/clustering/playlists").get_json()["playlists"]}
    assert len(before) == 4
    pinned = sorted(before)[0]
    pinned_file = playlist_dir / before[pinned]["mediaserver_playlist"]
    pinned_text = pinned_file.read_text()
    (playlist_dir / before[sorted(before)[1]]["mediaserver_playlist"]).write_text("#EXTM3U\n")  # emptied by hand
    assert client.post(f"/api/clustering/playlists/{pinned}/pin").get_json()["playlist"]["pinned"] is True

    second = run_clustering(client, db, dict(CUSTOM, top_n_playlists=4))
    assert second["status"] == "SUCCESS", second
    renamed = pinned.removesuffix("_automatic") + "_2_automatic"
    made = [p["name"] for p in second["result"]["playlists"]]
    assert sorted(made) == sorted([*(set(before) - {pinned}), renamed])
    assert second["result"]["published"] == {"server": "local", "created": 1, "updated": 3, "deleted": 0,
                                             "pinned": [pinned], "failures": [], "left_out": []}
    assert second["result"]["num_playlists_created"] == 4
    after = {p["name"]: p for p in client.get("/api/clustering/playlists").get_json()["playlists"]}
    playlists = {p["name"]: p for p in client.get("/api/playlists?source=clustering").get_json()["playlists"]}
    for name in made:
        file = playlist_dir / after[name]["mediaserver_playlist"]
        assert file.read_text().count("#EXTINF") == len(playlists[name]["tracks"]) == after[name]["track_count"] > 0
        if name != renamed:
            assert after[name]["mediaserver_playlist"] == before[name]["mediaserver_playlist"]  # the same file
    assert pinned_file.read_text() == pinned_text and after[pinned] == before[pinned] | {
        "pinned": True, "pinned_at": after[pinned]["pinned_at"]}
    # the same search, the same songs: the new cluster of the pinned name holds the pinned playlist's songs
    assert [t["item_id"] for t in playlists[renamed]["tracks"]] == [t["item_id"] for t in playlists[pinned]["tracks"]]
    files = sorted(p.name for p in playlist_dir.iterdir())
    assert files == sorted([*(after[n]["mediaserver_playlist"] for n in after), "My own list.m3u8"])


def test_same_seed_gives_the_same_playlists(clustering_site, db, worker_processes):
    client, env, _ = clustering_site
    start_workers(worker_processes, env)
    payload = dict(CUSTOM, clustering_runs=30)
    runs = []
    for _ in range(2):
        task = run_clustering(client, db, payload)
        assert task["status"] == "SUCCESS", task
        playlists = client.get("/api/playlists?source=clustering").get_json()["playlists"]
        runs.append(sorted((p["name"], [t["item_id"] for t in p["tracks"]]) for p in playlists))
        assert task["result"]["best_params"]
    assert runs[0] == runs[1]
    other = run_clustering(client, db, dict(payload, seed=99))
    assert other["status"] == "SUCCESS"
    playlists = client.get("/api/playlists?source=clustering").get_json()["playlists"]
    # another seed shuffles (at least) the order of songs differently
    assert sorted((p["name"], [t["item_id"] for t in p["tracks"]]) for p in playlists) != runs[0]


def test_ai_names_come_from_the_llm_and_fall_back_when_unusable(clustering_site, db, worker_processes):
    client, env, _ = clustering_site
    with FakeLLM(answer="**Late Night Neon Grooves**") as llm:
        env = dict(env, OLLAMA_SERVER_URL=llm.url, AI_REQUEST_TIMEOUT_SECONDS="5")
        start_workers(worker_processes, env, album_workers=1)
        task = run_clustering(client, db, dict(CUSTOM, ai_model_provider="ollama"))
    assert task["status"] == "SUCCESS", task
    names = sorted(p["name"] for p in client.get("/api/playlists?source=clustering").get_json()["playlists"])
    # the first playlist takes the AI's (cleaned) name; the same answer for the others is a duplicate → feature names
    assert "Late Night Neon Grooves_automatic" in names
    assert len(names) == len(set(names)) >= 2
    assert any("Late Night" not in n for n in names)


def freeze_a_running_batch(db: Any, task_id: str, workers: list[Any]) -> dict[str, Any]:
    """SIGSTOP the worker of a batch that is running and still unfinished after the stop (a batch that ends
    between the query and the signal would not do: its worker is let go and another batch is picked)."""
    pids = {w.pid for w in workers}
    while True:
        row = wait_for(lambda: db.fetch_one(
            "SELECT task_id, worker_pid FROM task_status WHERE parent_task_id = %s AND status IN "
            "('STARTED', 'PROGRESS') AND worker_pid = ANY(%s) LIMIT 1", (task_id, list(pids))), timeout=60,
            what="a running batch")
        os.kill(row["worker_pid"], signal.SIGSTOP)
        if store.get_task(db, row["task_id"])["finished_at"] is None:
            return row
        os.kill(row["worker_pid"], signal.SIGCONT)


def test_hung_batch_is_timed_out_and_the_task_still_finishes(make_config, db, worker_processes, tmp_path):
    seed_style_library(db, tmp_path / "music", per_style=12)
    env = settings_env(tmp_path, ITERATIONS_PER_BATCH_JOB="25", CLUSTERING_BATCH_TIMEOUT_MINUTES="0.2",
                       MAX_CONCURRENT_BATCH_JOBS="2")
    app = serve(make_config(**env))
    client = app.test_client()
    workers = start_workers(worker_processes, env)
    response = client.post("/api/clustering/start", json=dict(CUSTOM, clustering_runs=300))
    task_id = response.get_json()["task_id"]
    frozen = freeze_a_running_batch(db, task_id, workers[1:])
    try:
        task = wait_for(lambda: (r := store.get_task(db, task_id)) and r["finished_at"] and r, timeout=180,
                        what="the clustering task to end")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(frozen["worker_pid"], signal.SIGCONT)
        app.extensions["audiomuse"].stop_background.set()
    assert task["status"] == "SUCCESS", task
    assert task["result"]["failed_batches"] == 1
    assert task["result"]["batch_failures"][0].endswith("timed out after 0.2 min")
    assert store.get_task(db, frozen["task_id"])["status"] == "FAILURE"
    # the hung worker (on this host) was killed: nothing of it is left running
    hung = next(w for w in workers if w.pid == frozen["worker_pid"])
    assert hung.wait(10) == -signal.SIGKILL


def test_cancel_stops_the_task_and_its_running_batches(clustering_site, db, worker_processes):
    client, env, _ = clustering_site
    start_workers(worker_processes, env)
    # batches that run for a long time (a run's settings come with its request)
    response = client.post("/api/clustering/start", json=dict(CUSTOM, clustering_runs=20_000,
                                                               iterations_per_batch_job=2000))
    task_id = response.get_json()["task_id"]
    running = wait_for(lambda: db.fetch_one(
        "SELECT task_id FROM task_status WHERE parent_task_id = %s AND current_item > 0", (task_id,)),
        timeout=60, what="a batch under way")
    assert client.post(f"/api/cancel/{task_id}").status_code == 200
    task = wait_for(lambda: (r := store.get_task(db, task_id)) and r["finished_at"] and r, timeout=60,
                    what="the task to stop")
    assert task["status"] == "REVOKED"
    wait_for(lambda: not db.fetch_one("SELECT 1 FROM task_status WHERE parent_task_id = %s AND finished_at IS NULL",
                                      (task_id,)), timeout=30, what="every batch to stop")
    batch = store.get_task(db, running["task_id"])
    assert batch["status"] == "REVOKED" and batch["current_item"] < batch["total_items"] == 2000
    children = db.fetch_all("SELECT status FROM task_status WHERE parent_task_id = %s", (task_id,))
    assert {c["status"] for c in children} == {"REVOKED"} and len(children) <= 2
    assert client.get("/api/playlists?source=clustering").get_json()["playlists"] == []


def test_media_server_down_keeps_the_playlists_and_says_so(make_config, db, worker_processes, tmp_path):
    by_style = seed_style_library(db, tmp_path / "music", per_style=12)
    env = settings_env(tmp_path, MEDIASERVER_TYPE="jellyfin", JELLYFIN_URL="http://127.0.0.1:9",
                       JELLYFIN_USER_ID="u", JELLYFIN_TOKEN="t", HTTP_RETRIES="0", HTTP_TIMEOUT_SECONDS="2")
    app = serve(make_config(**env))
    # the blocklist saved on the Settings page: no playlist holds a song of the first artist of each style
    blocked = [t for tracks in by_style.values() for t in tracks if t.artist.endswith(" Artist 0")]
    saved = app.test_client().post("/api/settings/exclusions", json={"artists": sorted({t.artist for t in blocked})})
    assert saved.status_code == 200
    start_workers(worker_processes, env, album_workers=1)
    task = run_clustering(app.test_client(), db, CUSTOM)
    app.extensions["audiomuse"].stop_background.set()
    assert task["status"] == "FAILURE"
    assert "saved in AudioMuse but could not be published" in task["message"]
    playlists = app.test_client().get("/api/playlists?source=clustering").get_json()["playlists"]
    assert len(playlists) >= 2 and all(p["mediaserver_playlist"] is None for p in playlists)
    assert not {t.item_id for t in blocked} & {t["item_id"] for p in playlists for t in p["tracks"]}


def test_start_refuses_bad_parameters_an_empty_library_and_a_second_run(make_config, db, tmp_path):
    app = serve(make_config(**settings_env(tmp_path)))
    client = app.test_client()
    empty = client.post("/api/clustering/start", json={"preset": True})
    assert empty.status_code == 409 and "run an analysis first" in empty.get_json()["error"]
    seed_style_library(db, tmp_path / "music", per_style=2)
    bad = client.post("/api/clustering/start", json={"num_clusters_min": 9, "num_clusters_max": 3})
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "num_clusters_max"
    assert client.post("/api/clustering/start", json={"clustering_method": "magic"}).get_json()["parameter"] \
        == "clustering_method"
    assert client.post("/api/clustering/start", json={"clustering_runs": 0}).status_code == 400
    # a key that is no parameter is ignored (other clients send keys of their own); the known ones are still checked
    typo = client.post("/api/clustering/start", json={"num_cluster_max": 9, "clustering_runs": 0})
    assert typo.status_code == 400 and typo.get_json()["parameter"] == "clustering_runs"
    first = client.post("/api/clustering/start", json=CUSTOM)
    assert first.status_code == 202
    second = client.post("/api/clustering/start", json=CUSTOM)
    assert second.status_code == 409 and second.get_json()["task_id"] == first.get_json()["task_id"]
    preset = client.get("/api/clustering/preset").get_json()
    assert preset["library_size"] == 8 and preset["params"]["clustering_method"] == "kmeans"
    app.extensions["audiomuse"].stop_background.set()


def test_start_takes_the_clustering_settings_under_their_lowercase_names(make_config, db, tmp_path):
    """Scripts written for the reference send the Settings table's names in lower case: accepted per run, with
    the environment variable's range."""
    app = serve(make_config(**settings_env(tmp_path)))
    client = app.test_client()
    seed_style_library(db, tmp_path / "music", per_style=3)
    settings = {"stratified_sampling_target_percentile": 60, "min_songs_per_genre_for_stratification": 5,
                "sampling_percentage_change_per_run": 0.3, "top_n_elites": 3, "exploitation_start_fraction": 0.4,
                "iterations_per_batch_job": 4, "max_concurrent_batch_jobs": 1, "mutation_int_abs_delta": 2,
                "mutation_float_abs_delta": 0.02, "mutation_kmeans_coord_fraction": 0.1,
                "exploitation_probability_config": 0.5, "cluster_algorithm": "kmeans", "clustering_runs": 8}
    started = client.post("/api/clustering/start", json=settings)
    assert started.status_code == 202, started.get_json()
    params = started.get_json()["params"]
    assert all(params[k] == v for k, v in settings.items() if k != "cluster_algorithm")
    assert params["clustering_method"] == "kmeans"
    client.post(f"/api/cancel/{started.get_json()['task_id']}")
    too_big = client.post("/api/clustering/start", json={"top_n_elites": 0})
    assert too_big.status_code == 400 and too_big.get_json()["parameter"] == "top_n_elites"
    app.extensions["audiomuse"].stop_background.set()


def test_playlists_are_published_to_a_real_mpd(make_config, db, worker_processes, tmp_path):
    music = tmp_path / "music"
    write_style_files(music, per_style=12)
    mpd_server = start_mpd(tmp_path / "mpd", music, songs=48)
    try:
        adapter = Mpd("127.0.0.1", mpd_server.port, music_directory=music, timeout=10)
        seed_style_library(db, music, per_style=12, server=adapter, write_files=False)
        env = settings_env(tmp_path, MEDIASERVER_TYPE="mpd", MPD_PORT=str(mpd_server.port),
                           MPD_MUSIC_DIRECTORY=str(music))
        client = mpd_server.client()
        client.save("Old_automatic")  # an empty playlist from an earlier run: replaced
        client.disconnect()
        app = serve(make_config(**env))
        start_workers(worker_processes, env, album_workers=1)
        task = run_clustering(app.test_client(), db, CUSTOM)
        app.extensions["audiomuse"].stop_background.set()
        assert task["status"] == "SUCCESS", task
        stored = {p["name"]: [t["item_id"] for t in p["tracks"]]
                  for p in app.test_client().get("/api/playlists?source=clustering").get_json()["playlists"]}
        client = mpd_server.client()
        on_mpd = {entry["playlist"] for entry in client.listplaylists()}
        assert on_mpd == set(stored) and len(stored) >= 2
        for name, item_ids in stored.items():
            assert client.listplaylist(name) == item_ids  # MPD song URIs, in the shuffled order
        client.disconnect()
    finally:
        mpd_server.stop()


def test_killed_batch_worker_is_recorded_and_the_search_goes_on(make_config, db, worker_processes, tmp_path):
    seed_style_library(db, tmp_path / "music", per_style=12)
    env = settings_env(tmp_path, ITERATIONS_PER_BATCH_JOB="100")  # batches of a few seconds: time to kill one
    app = serve(make_config(**env))
    client = app.test_client()
    worker_processes("--queues", "high", env=env)
    batch_worker = worker_processes("--queues", "default", env=env)
    task_id = client.post("/api/clustering/start", json=dict(CUSTOM, clustering_runs=300)).get_json()["task_id"]
    running = freeze_a_running_batch(db, task_id, [batch_worker])
    os.killpg(batch_worker.pid, signal.SIGKILL)
    batch_worker.wait()
    worker_processes("--queues", "default", env=env)  # a new worker fails the dead one's batch, then carries on
    task = wait_for(lambda: (r := store.get_task(db, task_id)) and r["finished_at"] and r, timeout=180,
                    what="the clustering task to end")
    app.extensions["audiomuse"].stop_background.set()
    assert task["status"] == "SUCCESS", task
    assert store.get_task(db, running["task_id"])["status"] == "FAILURE"
    assert task["result"]["failed_batches"] >= 1
    assert len(client.get("/api/playlists?source=clustering").get_json()["playlists"]) >= 2


def test_preset_on_a_tiny_library_still_makes_playlists(make_config, db, worker_processes, tmp_path):
    seed_style_library(db, tmp_path / "music", per_style=3, styles=("rock", "ambient"))
    env = settings_env(tmp_path)
    app = serve(make_config(**env))
    start_workers(worker_processes, env, album_workers=1)
    task = run_clustering(app.test_client(), db, {"preset": True, "seed": 3})
    app.extensions["audiomuse"].stop_background.set()
    assert task["status"] == "SUCCESS", task
    playlists = app.test_client().get("/api/playlists?source=clustering").get_json()["playlists"]
    assert sorted(len(p["tracks"]) for p in playlists) == [3, 3]
    assert all(len({style_of(t["title"]) for t in p["tracks"]}) == 1 for p in playlists)


def test_ranges_a_small_library_cannot_fill_are_fitted_and_the_result_reads_plainly(clustering_site, db,
                                                                                    worker_processes):
    """The default ranges (20-60 clusters, playlists of 8) on 48 songs: the start says what it lowers, the run does
    it, and the result tells the quality on a 0-100 scale and how many songs the playlists cover."""
    client, env, _ = clustering_site
    start_workers(worker_processes, env, album_workers=1)
    started = client.post("/api/clustering/start", json={"clustering_runs": 10, "seed": 3,
                                                         "enable_clustering_embeddings": True})
    assert started.status_code == 202
    body = started.get_json()
    assert body["params"]["num_clusters_max"] == 6 and body["params"]["num_clusters_min"] == 6
    assert body["adjustments"] and "48 songs fill at most 6 playlists of 8" in body["adjustments"][0]
    task = wait_for(lambda: (row := store.get_task(db, body["task_id"])) and row["finished_at"] and row,
                    timeout=180, what="the clustering task to end")
    assert task["status"] == "SUCCESS", task
    result = task["result"]
    assert len(result["playlists"]) >= 2 and result["adjustments"] == body["adjustments"]
    assert 0 <= result["quality"] <= 100 and result["quality_parts"]
    assert set(result["quality_parts"]) == {"mood_purity", "mood_diversity"}  # the weighted parts
    assert result["library_size"] == 48
    assert result["songs_covered"] == len({t for p in client.get("/api/playlists?source=clustering").get_json()[
        "playlists"] for t in (x["item_id"] for x in p["tracks"])})
    assert f"of {result['songs_covered']} of 48 songs" in task["message"]


def test_reference_settings_that_used_to_fail_now_relax_and_say_so(clustering_site, db, worker_processes):
    """The reference's client settings (DBSCAN, 20 runs, the default ranges) on a small library by few artists: no
    run found two clusters (or the best one's playlists lost their songs to the per-artist cap) and the task ended
    in FAILURE. Now it relaxes, publishes, and the result and message say what it relaxed."""
    client, env, _ = clustering_site
    start_workers(worker_processes, env, album_workers=1)
    task = run_clustering(client, db, {"clustering_method": "dbscan", "clustering_runs": 20, "seed": 4,
                                       "min_playlist_size": 10, "auto_parameter_discovery": False})
    assert task["status"] == "SUCCESS", task
    result = task["result"]
    assert result["relaxed"] == ["none of the 20 dbscan runs found two or more clusters (20 invalid): kmeans, "
                                 "2 clusters, no PCA instead"]
    assert "relaxed: " in task["message"]
    assert result["calibration_runs"] == 40 and result["discovered"] == []
    playlists = client.get("/api/playlists?source=clustering").get_json()["playlists"]
    assert len(playlists) >= 1 and all(len(p["tracks"]) >= 3 for p in playlists)


def test_discovery_fits_spectral_to_the_library_on_by_default(clustering_site, db, worker_processes):
    client, env, _ = clustering_site
    start_workers(worker_processes, env, album_workers=1)
    task = run_clustering(client, db, {"clustering_method": "spectral", "clustering_runs": 20, "seed": 4,
                                       "playlists_wanted": 2})
    assert task["status"] == "SUCCESS", task
    result = task["result"]
    assert result["auto_parameter_discovery"] is True
    # 48 songs, playlists of 8: 2 wanted → 2..3 clusters (clusters of at least 16 songs on average)
    assert result["discovered"] == ["spectral_n_clusters_min..spectral_n_clusters_max aimed at 2 playlists: 2..3"]
    assert result["best_params"]["n_clusters"] in (2, 3)
    assert result["relaxed"] == []
    assert max(p["size"] for p in result["playlists"]) >= 8
