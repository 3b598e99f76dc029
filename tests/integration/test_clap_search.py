"""Text search with CLAP end to end: workers embed the tracks with a CLAP-shaped audio model during analysis, the
web process loads the embeddings and answers with the CLAP-shaped text model (tests/clap_models.py); a model change
embeds again; a model of the wrong shape is refused at start-up by the web process and by the worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app, serve
from audio.clap import ClapModelError, model_identity
from db import task_status as store
from tests.analysis_runs import run_analysis, start_analysis_workers
from tests.clap_models import tone, write_audio_model, write_clap_models, write_text_model
from tests.conftest import REPO_ROOT, wait_for
from tests.integration.test_text_search import library, seed
from tests.library import write_track

SR = 44_100


@pytest.fixture
def music(tmp_path: Path) -> Path:
    """Two high-pitched and two low-pitched tracks, an album of each."""
    root = tmp_path / "music"
    for number, (title, hertz) in enumerate((("Glass", (6000.0, 8500.0)), ("Bells", (7000.0, 9500.0)),
                                             ("Drone", (70.0, 110.0)), ("Rumble", (90.0, 130.0)))):
        album = "Bright Things" if number < 2 else "Dark Things"
        write_track(root / album / f"{number + 1:02d} {title}.flac", tone(hertz, seconds=12, sr=SR, seed=number),
                    title=title, artist="Tones", album=album, track_number=number + 1, sr=SR)
    return root


def _stop(workers, db, *runs) -> None:  # type: ignore[no-untyped-def]
    """Stop the workers once the map jobs that followed the runs are done (a worker ends its job first)."""
    for run in runs:
        map_id = run["result"].get("map_task_id")
        if map_id:
            wait_for(lambda m=map_id: (row := store.get_task(db, m)) and row["finished_at"], timeout=120,
                     what="the map job after the run")
    for worker in workers:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)


def _search(client, query: str) -> dict:
    response = client.post("/api/clap/search", json={"query": query, "limit": 10})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_clap_embeds_during_analysis_answers_queries_and_a_new_model_embeds_again(music, make_config, db, tmp_path,
                                                                                 worker_processes):
    models = write_clap_models(tmp_path / "clap")
    env = {"MUSIC_DIR": str(music), "AUDIO_LOAD_TIMEOUT": "30", "CLAP_ENABLED": "true", **models}
    app = serve(make_config(**env))
    try:
        client = app.test_client()
        orchestrator, album_worker = start_analysis_workers(worker_processes, env)
        task = run_analysis(client, db)
        assert task["status"] == "SUCCESS", task
        result = task["result"]
        assert (result["tracks_analyzed"], result["clap_embedded"], result["clap_failed"]) == (4, 4, 0)
        assert "; CLAP 4 embedded, 0 failed;" in task["message"]
        audio_name = model_identity(models["CLAP_AUDIO_MODEL_PATH"])
        rows = db.fetch_all("SELECT c.model, c.dimensions, t.title FROM clap_embeddings c "
                            "JOIN tracks t USING (item_id)")
        assert sorted((r["title"], r["model"], r["dimensions"]) for r in rows) == [
            (title, audio_name, 512) for title in ("Bells", "Drone", "Glass", "Rumble")]

        stats = wait_for(lambda: (s := client.get("/api/clap/stats").get_json())["clap"]["songs"] == 4 and s,
                         what="the CLAP embeddings in the web process")
        assert stats["engine"] == "clap" and stats["clap"]["audio_model"] == audio_name
        assert stats["model"] == model_identity(models["CLAP_TEXT_MODEL_PATH"]) == stats["clap"]["text_model"]
        assert stats["clap"]["memory_bytes"] >= 4 * 512 * 4
        bright, dark = _search(client, "bright"), _search(client, "Dark music")
        assert bright["engine"] == "clap" and bright["audio_model"] == audio_name
        assert {r["title"] for r in bright["results"][:2]} == {"Glass", "Bells"}
        assert {r["title"] for r in dark["results"][:2]} == {"Drone", "Rumble"}
        assert bright["results"][0]["similarity"] > 0 > bright["results"][-1]["similarity"]
        semantic = client.get("/search/semantic?q=bright&limit=2").get_json()
        assert semantic["available"] is True and semantic["engine"] == "clap"
        assert {r["title"] for r in semantic["results"]} == {"Glass", "Bells"}
        warm = client.post("/api/clap/warmup").get_json()
        assert warm["engine"] == "clap" and warm["active"] is True and warm["model"] == stats["model"]
        # (503 while the default engine's cache is still built in the background)
        top = wait_for(lambda: (r := client.get("/api/clap/top_queries")).status_code == 200 and r.get_json(),
                       what="the suggested queries")
        assert top["engine"] == "clap"

        again = run_analysis(client, db)  # nothing changed: nothing embedded again
        assert (again["result"]["tracks_skipped"], again["result"]["clap_embedded"]) == (4, 0)

        # Another audio model: the workers (restarted on it) embed the unchanged tracks again.
        _stop((orchestrator, album_worker), db, task, again)
        new_model = write_audio_model(tmp_path / "clap" / "audio-v2.onnx", scale=2.0)
        env["CLAP_AUDIO_MODEL_PATH"] = str(new_model)
        workers = start_analysis_workers(worker_processes, env)
        third = run_analysis(client, db)
        assert (third["result"]["tracks_analyzed"], third["result"]["tracks_skipped"],
                third["result"]["clap_embedded"]) == (0, 4, 4)
        assert {r["model"] for r in db.fetch_all("SELECT model FROM clap_embeddings")} == {model_identity(new_model)}
        wait_for(lambda: client.get("/api/clap/stats").get_json()["clap"]["audio_model"] == model_identity(new_model),
                 what="the new embeddings in the web process")
        assert {r["title"] for r in _search(client, "bright")["results"][:2]} == {"Glass", "Bells"}

        # A model that gives no usable embedding: counted and reported, the tracks' analysis and embeddings stand.
        _stop(workers, db, third)
        env["CLAP_AUDIO_MODEL_PATH"] = str(write_audio_model(tmp_path / "clap" / "nan.onnx", broken=True))
        start_analysis_workers(worker_processes, env)
        fourth = run_analysis(client, db)
        assert fourth["status"] == "SUCCESS" and "; CLAP 0 embedded, 4 failed;" in fourth["message"]
        assert (fourth["result"]["tracks_failed"], fourth["result"]["clap_failed"]) == (0, 4)
        assert all("CLAP: the CLAP audio model gave an empty or non-finite embedding" == f["reason"]
                   for f in fourth["result"]["clap_failures"]) and len(fourth["result"]["clap_failures"]) == 4
        assert {r["model"] for r in db.fetch_all("SELECT model FROM clap_embeddings")} == {model_identity(new_model)}
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_without_clap_embeddings_the_default_engine_answers(make_config, tmp_path, db, redis):
    app = serve(make_config(CLAP_ENABLED=True, **write_clap_models(tmp_path / "clap")))
    try:
        client = app.test_client()
        seed(db, redis, app.extensions["audiomuse"].config, library())
        wait_for(lambda: client.get("/api/clap/stats").get_json()["songs"] > 0, what="the text-search cache")
        answer = _search(client, "calm piano")
        assert answer["engine"] == "concepts" and answer["count"] > 0
        stats = client.get("/api/clap/stats").get_json()
        assert stats["engine"] == "concepts" and stats["clap"]["enabled"] is True and stats["clap"]["songs"] == 0
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_a_wrong_clap_model_is_refused_at_start_up(make_config, services, tmp_path):
    models = write_clap_models(tmp_path / "clap")
    with pytest.raises(ClapModelError, match="CLAP_TEXT_MODEL_PATH .*audio.onnx is not a CLAP text encoder"):
        create_app(make_config(CLAP_ENABLED=True,
                               **{**models, "CLAP_TEXT_MODEL_PATH": models["CLAP_AUDIO_MODEL_PATH"]}))
    with pytest.raises(ClapModelError, match="CLAP_ENABLED is true but CLAP_TOKENIZER_PATH is not set"):
        create_app(make_config(CLAP_ENABLED=True, **{**models, "CLAP_TOKENIZER_PATH": ""}))

    wrong = write_text_model(tmp_path / "clap" / "also-text.onnx")
    env = dict(os.environ, DATABASE_URL=services["database_url"], REDIS_URL=services["redis_url"],
               PYTHONPATH=str(REPO_ROOT), CLAP_ENABLED="true", CLAP_AUDIO_MODEL_PATH=str(wrong))
    worker = subprocess.run([sys.executable, "-m", "tasks.worker", "--burst"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert worker.returncode == 2, worker.stderr
    assert f"CLAP_AUDIO_MODEL_PATH {wrong} is not a CLAP audio encoder" in worker.stderr
