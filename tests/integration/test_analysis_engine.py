"""The analysis process (audio/engine.py, issue 31's flat memory): the same analysis as in-process, failures that
come back as what they are, an end after the idle period, and a real worker that gives its memory back."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile as sf

from app import serve
from audio.analyze import analyze_samples
from audio.decode import DecodeError, decode_file
from audio.engine import AnalysisProcessDied, EngineProcess, EngineSettings
from audio.errors import AudioError
from audio.musicnn import MusicnnModel
from config import PROJECT_ROOT
from tests.analysis_runs import run_analysis, start_analysis_workers
from tests.conftest import wait_for
from tests.library import make_library

MODEL = str(PROJECT_ROOT / "models" / "msd_musicnn.onnx")


def _tone(path: Path, seconds: float, *, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    beat = (np.sin(2 * np.pi * 2 * t) > 0.95).astype(np.float32)
    signal_ = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * beat * rng.standard_normal(len(t))
    sf.write(path, signal_.astype(np.float32), 16000)
    return path


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    process = EngineProcess(EngineSettings(model_path=MODEL, decode_timeout=30), idle_seconds=30)
    yield process
    process.close()


def test_the_analysis_process_gives_what_the_worker_would_compute_itself(engine: EngineProcess, tmp_path: Path):
    path = _tone(tmp_path / "tone.wav", 12)
    analysis, decode_seconds = engine.analyze(path)
    here = analyze_samples(decode_file(path), model=MusicnnModel(MODEL))
    assert engine.pid is not None and engine.pid != os.getpid()
    assert decode_seconds > 0
    assert np.array_equal(analysis.embedding, here.embedding)
    assert (analysis.tags, analysis.tempo_bpm, analysis.key, analysis.loudness_lufs) == \
        (here.tags, here.tempo_bpm, here.key, here.loudness_lufs)
    assert [p["model"] for p in engine.providers()] == ["musicnn"]


def test_a_file_that_fails_comes_back_as_its_error_and_the_process_serves_on(engine: EngineProcess, tmp_path: Path):
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"fLaC" + os.urandom(4000))
    engine.analyze(_tone(tmp_path / "first.wav", 5))
    pid = engine.pid
    with pytest.raises(DecodeError, match="broken.flac"):
        engine.analyze(broken)
    parts = engine.update_parts(_tone(tmp_path / "tone.wav", 8), {"tempo"}, tags={}, energy=0.5,
                                tempo_confidence=0.1)
    assert set(parts) == {"tempo_bpm", "tempo_confidence", "moods"}
    assert engine.pid == pid


def test_a_killed_analysis_process_is_a_retryable_failure_and_the_next_track_gets_a_new_one(tmp_path: Path):
    long_track = _tone(tmp_path / "long.wav", 240)
    process = EngineProcess(EngineSettings(model_path=MODEL, decode_timeout=60), idle_seconds=30)
    try:
        process.analyze(_tone(tmp_path / "warm.wav", 3))
        victim = process.pid
        assert victim is not None
        killer = threading.Timer(0.5, os.kill, args=(victim, signal.SIGKILL))
        killer.start()
        with pytest.raises(AnalysisProcessDied, match="SIGKILL"):
            process.analyze(long_track)
        killer.join()
        analysis, _ = process.analyze(_tone(tmp_path / "next.wav", 5))
        assert analysis.embedding.shape == (200,) and process.pid not in (None, victim)
    finally:
        process.close()


def test_the_analysis_process_ends_after_the_idle_period_and_the_next_request_starts_another(tmp_path: Path):
    process = EngineProcess(EngineSettings(model_path=MODEL), idle_seconds=1)
    try:
        process.analyze(_tone(tmp_path / "a.wav", 4))
        first = process.pid
        assert first is not None
        wait_for(lambda: process.pid is None, timeout=20, what="the idle analysis process to end on its own")
        analysis, _ = process.analyze(_tone(tmp_path / "b.wav", 4))
        assert analysis.embedding.shape == (200,) and process.pid not in (None, first)
    finally:
        process.close()


def _tree_mb(root: psutil.Process) -> float:
    """Resident MB of a process and all its descendants (multiprocessing's resource tracker included)."""
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 1e6


def _analysis_processes(worker: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in worker.children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def test_a_real_worker_gives_its_memory_back_after_the_idle_period(make_config, db, worker_processes, tmp_path):
    library = tmp_path / "music"
    make_library(library, albums=2, tracks_per_album=3, seconds=20)
    env = {"MUSIC_DIR": str(library), "PLAYLIST_DIR": str(tmp_path / "playlists"), "AUDIO_LOAD_TIMEOUT": "30",
           "ANALYSIS_IDLE_RELEASE_SECONDS": "4"}
    app = serve(make_config(**env))
    try:
        _, album_worker = start_analysis_workers(worker_processes, env)
        worker = psutil.Process(album_worker.pid)
        working: list[float] = []  # the worker's memory while its analysis process runs
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                if _analysis_processes(worker):
                    working.append(_tree_mb(worker))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            task = run_analysis(app.test_client(), db)
        finally:
            done.set()
            sampler.join()
        assert task["status"] == "SUCCESS" and task["result"]["tracks_analyzed"] == 6, task
        working_mb = max(working)
        wait_for(lambda: not _analysis_processes(worker), timeout=30,
                 what="the analysis process to end after the idle period")
        idle_mb = _tree_mb(worker)
        print(f"worker memory: {working_mb:.0f} MB with its analysis process, {idle_mb:.0f} MB idle")
        assert idle_mb <= 150, f"idle worker {idle_mb:.0f} MB (working {working_mb:.0f} MB)"
        assert working_mb - idle_mb >= 150, f"working {working_mb:.0f} MB, idle {idle_mb:.0f} MB"
    finally:
        app.extensions["audiomuse"].stop_background.set()


def _peak_mb(pid: int) -> float:
    """The most resident memory the process has had (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def _long_wav(path: Path, minutes: int) -> Path:
    rng = np.random.default_rng(minutes)
    t = np.arange(16000 * 60) / 16000
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:
        for _ in range(minutes):
            f.write(0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0.9)
                    + 0.05 * rng.standard_normal(len(t)))
    return path


def test_a_twenty_minute_track_needs_little_more_memory_than_a_three_minute_one(tmp_path: Path):
    """Analysed as it is decoded: what a 20-minute track adds is what the analysis keeps of each frame (~1.5 MB a
    minute), not the signal and its copies (a whole 20-minute signal alone is 77 MB; with its decoder it peaked
    470 MB higher)."""
    peaks = {}
    for minutes in (3, 20):
        process = EngineProcess(EngineSettings(model_path=MODEL, decode_timeout=120), idle_seconds=60)
        try:
            analysis, _ = process.analyze(_long_wav(tmp_path / f"{minutes}.wav", minutes))
            assert analysis.duration_seconds == pytest.approx(60 * minutes)
            engine = psutil.Process(process.pid or 0)
            peaks[minutes] = _peak_mb(engine.pid) + sum(_peak_mb(c.pid) for c in engine.children(recursive=True))
        finally:
            process.close()
    print(f"analysis process and decoder, peak: 3 min {peaks[3]:.0f} MB, 20 min {peaks[20]:.0f} MB")
    assert peaks[20] <= peaks[3] + 100, peaks


def test_a_worker_told_to_stop_lets_its_analysis_process_finish_the_track(engine: EngineProcess, tmp_path: Path):
    """supervisord stops a worker with SIGTERM to its whole process group: the analysis process must not die with
    the track half done (it ends when the worker closes the pipe)."""
    engine.analyze(_tone(tmp_path / "a.wav", 4))
    pid = engine.pid
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    analysis, _ = engine.analyze(_tone(tmp_path / "b.wav", 4))
    assert analysis.embedding.shape == (200,) and engine.pid == pid


def test_what_the_models_ran_on_is_known_without_waking_an_idle_process(tmp_path: Path):
    process = EngineProcess(EngineSettings(model_path=MODEL), idle_seconds=1)
    try:
        process.analyze(_tone(tmp_path / "a.wav", 4))
        wait_for(lambda: process.pid is None, timeout=20, what="the idle analysis process to end")
        assert [p["model"] for p in process.providers()] == ["musicnn"]
        assert process.pid is None
    finally:
        process.close()


def test_an_error_from_a_library_reaches_the_worker_without_its_module():
    from scipy.linalg import LinAlgError

    from audio.decode import DecodeTimeout
    from audio.engine import portable_error
    from audio.features import FeatureError

    converted = portable_error(LinAlgError("singular matrix"))
    assert type(converted) is AudioError and str(converted) == "LinAlgError: singular matrix"
    feature = portable_error(FeatureError("y has 3 non-finite samples"))
    assert type(feature) is AudioError and str(feature) == "y has 3 non-finite samples"
    assert type(portable_error(DecodeTimeout("x.m4a: too slow"))) is DecodeTimeout  # transient, kept as it is
    memory, disk = portable_error(MemoryError("no room")), portable_error(FileNotFoundError(2, "gone"))
    assert type(memory) is MemoryError and isinstance(disk, OSError)


def test_a_decode_that_starts_over_is_measured_again_from_its_start():
    """libsndfile failing midway: the decoder's stream says so (None) and ffmpeg's blocks follow; the engine
    measures those alone (the stream here stands in for the decoder helper, whose restart test_decode covers)."""
    from audio.engine import AnalysisEngine

    whole = np.arange(10, dtype=np.float32)

    class Restarting:
        def stream(self, path: str):
            yield whole[:3]
            yield None
            yield whole[:6]
            yield whole[6:]

    engine = AnalysisEngine(EngineSettings(model_path=MODEL))
    engine._decoder = Restarting()  # type: ignore[assignment]
    seen, _ = engine._from_stream("x.flac", lambda blocks: np.concatenate(list(blocks)))
    np.testing.assert_array_equal(seen, whole)
