"""Per-part analysis versions (audio/parts.py): a track whose tempo was computed by an older version of the tempo
code gets its tempo (and the moods that follow) computed again by the next run without the model — its album
worker cannot load it — and nothing else changes; the Analysis page's summary counts the older parts first. Fast
analysis: every n-th patch through the model, marked, kept by later runs, analysed again in full on request."""

from __future__ import annotations

import numpy as np

from app import serve
from audio.analyze import analyze_parts, analyze_samples
from audio.musicnn import MusicnnModel
from config import PROJECT_ROOT
from tests.analysis_runs import run_analysis
from tests.conftest import wait_for
from tests.library import make_library, rhythmic_piece

KEPT = ("item_id", "tags", "musical_key", "camelot", "energy", "loudness_lufs", "analysis_version", "analyzed_at",
        "key_version", "energy_version")


def test_parts_computed_alone_equal_those_of_a_whole_analysis():
    samples = rhythmic_piece(bpm=124, seconds=12, root_hz=196.0, seed=4)
    whole = analyze_samples(samples, model=MusicnnModel(PROJECT_ROOT / "models" / "msd_musicnn.onnx"))
    alone = analyze_parts(samples, {"tempo", "key", "energy"}, tags=whole.tags, energy=None, tempo_confidence=None)
    assert alone == {"tempo_bpm": whole.tempo_bpm, "tempo_confidence": whole.tempo_confidence,
                     "musical_key": whole.key, "scale": whole.scale, "camelot": whole.camelot,
                     "key_confidence": whole.key_confidence, "energy": whole.energy,
                     "loudness_lufs": whole.loudness_lufs, "moods": whole.moods}
    # a part alone: the moods from the stored energy and the new tempo confidence
    tempo = analyze_parts(samples, {"tempo"}, tags=whole.tags, energy=whole.energy, tempo_confidence=0.0)
    assert set(tempo) == {"tempo_bpm", "tempo_confidence", "moods"} and tempo["moods"] == whole.moods


def test_an_older_tempo_is_computed_again_without_the_model(make_config, db, worker_processes, tmp_path):
    music = tmp_path / "music"
    make_library(music, albums=2, tracks_per_album=2, seconds=8)
    env = {"MUSIC_DIR": str(music), "PLAYLIST_DIR": str(tmp_path / "playlists"), "AUDIO_LOAD_TIMEOUT": "30"}
    app = serve(make_config(**env))
    client = app.test_client()
    try:
        worker_processes("--queues", "high", env=env)
        albums = worker_processes("--queues", "default", env=env)
        assert run_analysis(client, db)["result"]["tracks_analyzed"] == 4
        analysed = {r["item_id"]: r for r in db.fetch_all("SELECT * FROM tracks ORDER BY item_id")}
        embeddings = db.fetch_all("SELECT item_id, vector, created_at FROM embeddings ORDER BY item_id")
        assert client.get("/api/analysis/summary").get_json()["outdated_parts"] == {"tempo": 0, "key": 0,
                                                                                     "energy": 0}

        # as if the tempo code had changed: the stored tempos are of the version before it
        db.execute("UPDATE tracks SET tempo_version = tempo_version - 1, tempo_bpm = 1, "
                   "moods = '{\"happy\": 0}' WHERE item_id IN (SELECT item_id FROM tracks ORDER BY item_id LIMIT 3)")
        assert client.get("/api/analysis/summary").get_json()["outdated_parts"] == {"tempo": 3, "key": 0,
                                                                                     "energy": 0}
        albums.terminate()
        albums.wait(30)
        worker_processes("--queues", "default", env=dict(env, MODEL_PATH=str(tmp_path / "no-model.onnx")))
        loads = client.get("/api/health").get_json()["index"]["loads"]
        task = run_analysis(client, db)
        result = task["result"]
        assert task["status"] == "SUCCESS", task
        assert (result["tracks_analyzed"], result["tracks_failed"], result["parts_updated"]) == (0, 0, {"tempo": 3})
        assert result["albums_unchanged"] == 0 and "tempo updated on 3" in task["message"]
        # the tempos are catalogue columns the web process holds: it is told to reload, and the follow-ups run
        wait_for(lambda: client.get("/api/health").get_json()["index"]["loads"] > loads, what="a reload")
        assert result["map_task_id"]
        after = {r["item_id"]: r for r in db.fetch_all("SELECT * FROM tracks ORDER BY item_id")}
        for item_id, row in after.items():  # the tempo and moods as the first run computed them; the rest untouched
            before = analysed[item_id]
            assert (row["tempo_bpm"], row["tempo_confidence"], row["moods"], row["tempo_version"]) == \
                (before["tempo_bpm"], before["tempo_confidence"], before["moods"], before["tempo_version"])
            assert all(row[c] == before[c] for c in KEPT), item_id
        assert db.fetch_all("SELECT item_id, vector, created_at FROM embeddings ORDER BY item_id") == embeddings
        assert client.get("/api/analysis/summary").get_json()["outdated_parts"] == {"tempo": 0, "key": 0,
                                                                                     "energy": 0}
        assert np.isfinite([r["tempo_bpm"] or 0 for r in after.values()]).all()
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_a_fast_analysis_sends_every_nth_patch_through_the_model():
    from audio import melspec, stft

    model = MusicnnModel(PROJECT_ROOT / "models" / "msd_musicnn.onnx")
    samples = rhythmic_piece(bpm=110, seconds=31, root_hz=220.0, seed=8, sr=16000)
    (mel_power,) = stft.band_power(samples, n_fft=melspec.N_FFT, hop=melspec.HOP, bases=[melspec.mel_bands()],
                                   centre=True)
    every = model.predict(melspec.patches(melspec.compress(mel_power)))
    assert len(every.embeddings) == 10
    fast = analyze_samples(samples, model=model, patch_stride=3)
    full = analyze_samples(samples, model=model)
    assert (fast.patch_stride, fast.patches_analyzed, full.patch_stride, full.patches_analyzed) == (3, 4, 1, 10)
    np.testing.assert_allclose(fast.embedding, every.embeddings[[0, 3, 6, 9]].mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(full.embedding, every.embeddings.mean(axis=0), rtol=1e-5, atol=1e-6)
    # the features do not depend on the model: the same either way
    assert (fast.tempo_bpm, fast.key, fast.energy) == (full.tempo_bpm, full.key, full.energy)


def test_a_fast_run_is_marked_kept_by_later_runs_and_upgraded_to_full_on_request(make_config, db, worker_processes,
                                                                                  tmp_path):
    music = tmp_path / "music"
    make_library(music, albums=2, tracks_per_album=2, seconds=12)
    env = {"MUSIC_DIR": str(music), "PLAYLIST_DIR": str(tmp_path / "playlists"), "AUDIO_LOAD_TIMEOUT": "30"}
    app = serve(make_config(**env))
    client = app.test_client()

    def run(**params: object) -> dict:
        answer = client.post("/api/analysis/start", json={"num_recent_albums": 0, **params})
        assert answer.status_code == 202, answer.get_json()
        task = wait_for(lambda: (row := db.fetch_one("SELECT * FROM task_status WHERE task_id = %s",
                                                     (answer.get_json()["task_id"],))) and row["finished_at"]
                        and row, timeout=240, what="the run")
        assert task["status"] == "SUCCESS", task
        return task["result"]

    def strides() -> list[tuple[int, int]]:
        return [(r["patch_stride"], r["patches_analyzed"])
                for r in db.fetch_all("SELECT patch_stride, patches_analyzed FROM tracks ORDER BY item_id")]

    try:
        worker_processes("--queues", "high", env=env)
        worker_processes("--queues", "default", env=env)
        result = run(fast=True)
        assert (result["tracks_analyzed"], result["tracks_fast"], result["patch_stride"]) == (4, 4, 3)
        assert strides() == [(3, 2)] * 4  # 4 patches of 3 s: the 1st and the 4th
        assert client.get("/api/analysis/summary").get_json()["fast_tracks"] == 4
        fast_vectors = db.fetch_all("SELECT item_id, vector FROM embeddings ORDER BY item_id")

        assert run()["tracks_analyzed"] == 0  # fast tracks are analysed tracks: a plain run keeps them
        result = run(upgrade_fast=True)
        assert (result["tracks_analyzed"], result["tracks_fast"], result["patch_stride"]) == (4, 0, 1)
        assert strides() == [(1, 4)] * 4
        assert client.get("/api/analysis/summary").get_json()["fast_tracks"] == 0
        full_vectors = db.fetch_all("SELECT item_id, vector FROM embeddings ORDER BY item_id")
        assert all(a["vector"] != b["vector"] for a, b in zip(fast_vectors, full_vectors, strict=True))
    finally:
        app.extensions["audiomuse"].stop_background.set()
