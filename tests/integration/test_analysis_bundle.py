"""Analysis that moves between installs (services/analysis_bundle.py): one install analyses a library and exports a
bundle (CLI); a second install with its own database imports it (API) and analyses the same files without the
model — its workers cannot even load it — getting the same results bit for bit; a file that changed is analysed
with the model; bundles of another model file or analysis version are refused with the reason."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import uuid
from typing import Any

import numpy as np
import psycopg2
import pytest

from app import serve
from audio.analyze import ANALYSIS_VERSION
from db.migrate import apply_migrations
from db.pool import Database
from tests.analysis_runs import run_analysis, start_analysis_workers
from tests.conftest import REPO_ROOT, _with_database
from tests.library import make_library, rhythmic_piece, write_track

COMPARED = ("item_id", "content_fingerprint", "duration_seconds", "tempo_bpm", "tempo_confidence", "musical_key",
            "scale", "camelot", "key_confidence", "energy", "loudness_lufs", "tags", "moods", "patches_analyzed",
            "analysis_model", "analysis_version")


@pytest.fixture
def second_database(services: dict[str, str]) -> Any:
    """The database of a second install on the same PostgreSQL server, migrated; dropped afterwards."""
    name = f"audiomuse_second_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(_with_database(services["database_url"], "postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(services["database_url"], name)
    apply_migrations(url)
    db = Database(url, max_connections=3)
    try:
        yield url, db
    finally:
        db.close()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _stop(*workers: Any) -> None:
    for proc in workers:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def _analyses(db: Any) -> dict[str, tuple[Any, ...]]:
    rows = db.fetch_all(f"""SELECT {", ".join(f"t.{c}" for c in COMPARED)}, e.vector FROM tracks t
                             JOIN embeddings e ON e.item_id = t.item_id ORDER BY t.item_id""")
    return {r["item_id"]: (*(r[c] for c in COMPARED), bytes(r["vector"])) for r in rows}


def test_a_bundle_gives_a_second_install_the_same_analysis_without_the_model(
        make_config, db, services, second_database, worker_processes, tmp_path):
    music = tmp_path / "music"
    paths = make_library(music, albums=3, tracks_per_album=3, seconds=10)
    env = {"MUSIC_DIR": str(music), "PLAYLIST_DIR": str(tmp_path / "playlists"), "AUDIO_LOAD_TIMEOUT": "30"}
    first = serve(make_config(**env))
    workers = start_analysis_workers(worker_processes, env)
    task = run_analysis(first.test_client(), db)
    assert task["status"] == "SUCCESS" and task["result"]["tracks_analyzed"] == 9
    _stop(*workers)
    first.extensions["audiomuse"].stop_background.set()

    bundle = tmp_path / "analysis.jsonl.gz"
    done = subprocess.run([sys.executable, "-m", "services.analysis_bundle", "export", str(bundle)], cwd=REPO_ROOT,
                          env=dict(os.environ, DATABASE_URL=services["database_url"],
                                   REDIS_URL=services["redis_url"], PYTHONPATH=str(REPO_ROOT)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"exported 9 analysed tracks to {bundle}"

    url, second_db = second_database
    second_env = dict(env, DATABASE_URL=url)
    second = serve(make_config(**second_env))
    client = second.test_client()
    try:
        answer = client.post("/api/analysis/import", data=bundle.read_bytes(),
                             content_type="application/gzip")
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == {"rows": 9, "imported": 9, "refused": []}
        again = client.post("/api/analysis/import", data={"bundle": (io.BytesIO(bundle.read_bytes()), "a.gz")},
                            content_type="multipart/form-data")  # the same again, as the Settings form sends it
        assert again.get_json() == {"rows": 9, "imported": 9, "refused": []}

        # the second install's album worker cannot load the model: every track must come from the bundle
        no_model = dict(second_env, MODEL_PATH=str(tmp_path / "no-such-model.onnx"))
        orchestrator = worker_processes("--queues", "high", env=second_env)
        albums = worker_processes("--queues", "default", env=no_model)
        task = run_analysis(client, second_db)
        assert task["status"] == "SUCCESS", task
        result = task["result"]
        assert (result["tracks_analyzed"], result["tracks_imported"], result["tracks_failed"]) == (9, 9, 0)
        assert result["index_size"] == 9
        assert _analyses(second_db) == _analyses(db)  # the same results, bit for bit

        # a file whose content changed is analysed, by a worker that has the model
        _stop(albums)
        changed = paths[4]
        write_track(changed, rhythmic_piece(bpm=97, seconds=10, root_hz=220.0, seed=99), title="Changed",
                    artist="Artist", album="Album", track_number=1)
        worker_processes("--queues", "default", env=second_env)
        task = run_analysis(client, second_db)
        result = task["result"]
        assert task["status"] == "SUCCESS", task
        assert (result["tracks_analyzed"], result["tracks_imported"], result["tracks_failed"]) == (1, 0, 0)
        before, after = _analyses(db), _analyses(second_db)
        differs = [i for i in after if after[i] != before[i]]
        assert len(differs) == 1 and after[differs[0]][COMPARED.index("content_fingerprint")] != \
            before[differs[0]][COMPARED.index("content_fingerprint")]
        _stop(orchestrator)
    finally:
        second.extensions["audiomuse"].stop_background.set()


def _bundle(header: dict[str, Any], rows: list[dict[str, Any]]) -> bytes:
    lines = [json.dumps(header)] + [json.dumps(r) for r in rows]
    return gzip.compress(("\n".join(lines) + "\n").encode())


def test_rows_of_another_model_file_or_version_are_refused_with_the_reason(config, client, db):
    from services.analysis_bundle import FORMAT, this_engine

    engine = this_engine(config.MODEL_PATH)
    header = {"format": FORMAT, "format_version": 1, "model": engine.model, "model_sha256": engine.model_sha256,
              "analysis_version": ANALYSIS_VERSION}
    row = {"content_fingerprint": "f" * 64, "analysis_model": engine.model, "analysis_version": ANALYSIS_VERSION,
           "duration_seconds": 10.0, "tempo_bpm": 120.0, "tempo_confidence": 0.5, "musical_key": "C",
           "scale": "major", "camelot": "8B", "key_confidence": 0.5, "energy": 0.5, "loudness_lufs": -14.0,
           "tags": {"rock": 0.5}, "moods": {"happy": 0.5}, "patches_analyzed": 3, "tempo_version": 1,
           "key_version": 1, "energy_version": 1,
           "vector": base64.b64encode(np.ones(engine.dimensions, "<f4").tobytes()).decode()}
    old = dict(row, content_fingerprint="e" * 64, analysis_version=ANALYSIS_VERSION - 1)
    other = dict(row, content_fingerprint="d" * 64, analysis_model="another-model")
    newer = dict(row, content_fingerprint="c" * 64, tempo_version=engine.part_versions["tempo"] + 1)
    body = client.post("/api/analysis/import", data=_bundle(header, [row, old, other, newer, {"vector": 1}]),
                       content_type="application/gzip").get_json()
    assert body["rows"] == 5 and body["imported"] == 1
    assert {r["reason"]: r["rows"] for r in body["refused"]} == {
        f"analysis version {ANALYSIS_VERSION - 1}; this install analyses with version {ANALYSIS_VERSION}": 1,
        f"model 'another-model'; this install analyses with '{engine.model}'": 1, "unreadable row": 1,
        f"tempo version {engine.part_versions['tempo'] + 1}; this install computes version "
        f"{engine.part_versions['tempo']}": 1}
    assert [r["content_fingerprint"] for r in db.fetch_all("SELECT * FROM imported_analyses")] == ["f" * 64]

    other_file = dict(header, model_sha256="0" * 64)
    body = client.post("/api/analysis/import", data=_bundle(other_file, [row]),
                       content_type="application/gzip").get_json()
    assert body["imported"] == 0 and body["refused"][0]["reason"].startswith(
        f"made with another {engine.model} model file (sha256 000000000000…")

    # one fingerprint twice: the last wins; values the analysis never writes are refused
    twice = [dict(row, content_fingerprint="b" * 64, tempo_bpm=90.0), dict(row, content_fingerprint="b" * 64)]
    nan = dict(row, content_fingerprint="a" * 64,
               vector=base64.b64encode(np.full(engine.dimensions, np.nan, "<f4").tobytes()).decode())
    zeros = dict(nan, vector=base64.b64encode(np.zeros(engine.dimensions, "<f4").tobytes()).decode())
    wrong = [dict(row, content_fingerprint="9" * 64, tags={"rock": "loud"}), dict(row, energy="high"),
             dict(row, moods={}), dict(row, camelot=8)]
    body = client.post("/api/analysis/import", data=_bundle(header, [*twice, nan, zeros, *wrong]),
                       content_type="application/gzip").get_json()
    assert body["imported"] == 1 and {r["reason"]: r["rows"] for r in body["refused"]} == {
        "an embedding that is not finite or all zeros": 2, "unreadable row": 4}
    stored = db.fetch_one("SELECT tempo_bpm FROM imported_analyses WHERE content_fingerprint = %s", ("b" * 64,))
    assert stored["tempo_bpm"] == 120.0

    # all or nothing: good rows before a line that is not one are not kept
    before = db.fetch_one("SELECT count(*) AS n FROM imported_analyses")["n"]
    long_line = b"x" * (2 << 20)
    broken = gzip.compress(gzip.decompress(_bundle(header, [dict(row, content_fingerprint="8" * 64)])) + long_line)
    for junk in (b"not gzip", gzip.compress(b'{"format": "something else"}\n'), broken):
        answer = client.post("/api/analysis/import", data=junk, content_type="application/gzip")
        assert answer.status_code == 400 and answer.get_json()["parameter"] == "bundle"
    assert db.fetch_one("SELECT count(*) AS n FROM imported_analyses")["n"] == before
