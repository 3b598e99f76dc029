"""The analysis process: the models, the decoders and the signal code of one worker, in a child process that ends
when it has been idle for a while, so an idle worker holds none of their memory (issue 31's flat memory).

A worker's parent takes jobs with little more than RQ, psycopg2 and numpy imported (about 80 MB resident). The
musicnn and CLAP sessions, the decoder helpers and the libraries of the signal code (scipy, soundfile, soxr,
onnxruntime) live in the analysis process, which `EngineProcess` starts on the first request, keeps while requests
come and lets go after `idle_seconds` without one: the child exits, and the kernel has all its memory back (a
process that frees its heap keeps most of it resident; measured in bench/worker_memory.py). The child is spawned,
never forked, so no ONNX Runtime thread is ever copied.

`AnalysisEngine` is the same work in-process: what the child runs, and what a benchmark or a test may call directly.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import pickle
import signal
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from audio.errors import AudioError

if TYPE_CHECKING:
    import numpy as np

    from audio.clap import ClapAudioModel
    from audio.decode import IsolatedDecoder
    from audio.musicnn import MusicnnModel
    from audio.track_analysis import TrackAnalysis

log = logging.getLogger(__name__)


class AnalysisProcessDied(AudioError):
    """The analysis process ended in the middle of a request (killed, most often by the kernel for memory)."""


@dataclass(frozen=True)
class EngineSettings:
    """What the analysis process needs to know, from the configuration (tasks/analysis.py builds it)."""

    model_path: str
    intra_op_threads: int = 1
    providers: str = "auto"
    decode_timeout: float = 180.0
    ffmpeg: str = "ffmpeg"
    max_track_seconds: float | None = None
    decoder_memory_limit_mb: int | None = None
    max_full_seconds: float = 1200.0
    long_track_patches: int = 200
    clap_enabled: bool = False
    clap_model_path: str = ""
    clap_dimension: int = 512
    clap_max_windows: int = 0
    log_level: str = "INFO"


class AnalysisEngine:
    """The models and decoders of one process, each loaded on first use and kept."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._model: MusicnnModel | None = None
        self._decoder: IsolatedDecoder | None = None
        self._clap: ClapAudioModel | None = None
        self._clap_decoder: IsolatedDecoder | None = None

    def analyze(self, path: str, *, patch_stride: int = 1) -> tuple[TrackAnalysis, float]:
        """The track's full analysis and the seconds spent waiting for its decode. The file is analysed as it is
        decoded, a block at a time (audio.analyze.analyze_chunks), so a long track needs little more memory than a
        short one."""
        from audio.analyze import analyze_chunks

        model = self._musicnn()
        s = self.settings
        return self._from_stream(path, lambda chunks: analyze_chunks(
            chunks, model=model, max_full_seconds=s.max_full_seconds, long_track_patches=s.long_track_patches,
            patch_stride=patch_stride))

    def update_parts(self, path: str, parts: set[str], *, tags: dict[str, float], energy: float | None,
                     tempo_confidence: float | None) -> dict[str, Any]:
        """`audio.analyze.analyze_parts_of_chunks` of the file as it is decoded: no model is loaded or run."""
        from audio.analyze import analyze_parts_of_chunks

        values, _ = self._from_stream(path, lambda chunks: analyze_parts_of_chunks(
            chunks, parts, tags=tags, energy=energy, tempo_confidence=tempo_confidence))
        return values

    def _from_stream(self, path: str, measure: Callable[[Iterator[np.ndarray]], _T], *,
                     sr: int = 16_000) -> tuple[_T, float]:
        """`measure` of the decoded blocks of `path` at `sr`, measured again from the start where the decode starts
        over; with the seconds spent waiting for the decoder."""
        stream = self._decoder_of(sr).stream(path)
        waited = 0.0

        def blocks() -> Iterator[np.ndarray]:
            nonlocal waited
            while True:
                started = time.perf_counter()
                block = next(stream, _END)
                waited += time.perf_counter() - started
                if block is _END:
                    return
                if block is None:
                    raise _StartOver
                yield cast("np.ndarray", block)

        try:
            while True:
                try:
                    return measure(blocks()), waited
                except _StartOver:
                    continue
        finally:
            stream.close()  # a measure that failed midway: the decoder must not keep the rest of its answer

    def clap_name(self) -> str | None:
        """The CLAP audio model's recorded name when CLAP is enabled (loading it: ClapModelError when it is missing
        or not a CLAP audio encoder), else None."""
        clap = self._clap_model()
        return clap.name if clap is not None else None

    def embed_clap(self, path: str) -> np.ndarray:
        """The track's CLAP embedding. The file is decoded twice, once to count its samples (where the windows go)
        and once to embed each window as its samples arrive: at 48 kHz a whole track would be 11 MB a minute."""
        from audio.clap import CLAP_SR

        clap = self._clap_model()
        if clap is None:
            raise AudioError("CLAP is not enabled")
        length, _ = self._from_stream(path, lambda blocks: sum(len(b) for b in blocks), sr=CLAP_SR)
        vector, _ = self._from_stream(path, lambda blocks: clap.embed_blocks(length, blocks), sr=CLAP_SR)
        return vector

    def providers(self) -> list[dict[str, Any]]:
        """What the loaded models run on (audio.providers.ProviderChoice.as_dict)."""
        return [m.provider.as_dict() for m in (self._model, self._clap) if m is not None]

    def close(self) -> None:
        for decoder in (self._decoder, self._clap_decoder):
            if decoder is not None:
                decoder.close()
        self._decoder = self._clap_decoder = None

    def _musicnn(self) -> MusicnnModel:
        if self._model is None:
            from audio.musicnn import MusicnnModel

            self._model = MusicnnModel(self.settings.model_path, intra_op_threads=self.settings.intra_op_threads,
                                       providers=self.settings.providers)
        return self._model

    def _clap_model(self) -> ClapAudioModel | None:
        if not self.settings.clap_enabled:
            return None
        if self._clap is None:
            from audio.clap import ClapAudioModel

            s = self.settings
            self._clap = ClapAudioModel(s.clap_model_path, setting="CLAP_AUDIO_MODEL_PATH", dimension=s.clap_dimension,
                                        max_windows=s.clap_max_windows, intra_op_threads=s.intra_op_threads,
                                        providers=s.providers)
        return self._clap

    def _decoder_of(self, sr: int) -> IsolatedDecoder:
        from audio.decode import IsolatedDecoder

        if sr == 16_000:
            if self._decoder is None:
                self._decoder = self._new_decoder(IsolatedDecoder, sr)
            return self._decoder
        if self._clap_decoder is None:
            self._clap_decoder = self._new_decoder(IsolatedDecoder, sr)
        return self._clap_decoder

    def _new_decoder(self, kind: type[IsolatedDecoder], sr: int) -> IsolatedDecoder:
        s = self.settings
        return kind(timeout=s.decode_timeout, sr=sr, ffmpeg=s.ffmpeg, max_seconds=s.max_track_seconds,
                    memory_limit_mb=s.decoder_memory_limit_mb)


class _StartOver(Exception):
    """The decode starts again from the file's beginning (libsndfile failed midway, ffmpeg takes over)."""


_END = object()
_T = TypeVar("_T")

_OPERATIONS = ("analyze", "update_parts", "clap_name", "embed_clap")  # every answer also carries the providers


def _serve(conn: Connection, settings: EngineSettings, idle_seconds: float,
           setup: Callable[[str], object] | None) -> None:
    """The analysis process: answer requests until the worker closes the pipe or none came for `idle_seconds`."""
    from audio.decode import _die_with_parent

    _die_with_parent()
    # A worker told to stop (SIGTERM to its process group from supervisord, Ctrl-C) finishes its track first: this
    # process ends when the worker closes the pipe, or dies with it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if setup is not None:
        setup(settings.log_level)
    engine = AnalysisEngine(settings)
    try:
        while conn.poll(idle_seconds):
            try:
                operation, args, kwargs = conn.recv()
            except EOFError:
                return
            try:
                if operation not in _OPERATIONS:
                    raise AudioError(f"the analysis process has no operation {operation!r}")
                answer: tuple[str, Any, list[dict[str, Any]]] = (
                    "ok", getattr(engine, operation)(*args, **kwargs), engine.providers())
            except Exception as exc:  # the request's failure goes back to the worker; this process serves on
                answer = ("error", portable_error(exc), engine.providers())
            try:
                conn.send(answer)
            except Exception as exc:  # an answer that does not pickle: say so instead
                conn.send(("error", AudioError(f"{type(answer[1]).__name__} that cannot be sent back: {exc}"), []))
    finally:
        engine.close()


# Exceptions of these modules reach the worker as they are: unpickling them imports nothing the worker lacks.
_LIGHT_MODULES = frozenset({"builtins", "audio.errors", "audio.engine", "audio.clap"})


def portable_error(exc: Exception) -> Exception:
    """`exc` in a form the worker can receive without importing the signal libraries (an onnxruntime or scipy
    exception would import them into the worker for good), classified as the worker's analysis classifies it: an
    AudioError keeps its message, OSError and MemoryError stay what they are (transient), anything else becomes an
    AudioError naming its type."""
    if type(exc).__module__ in _LIGHT_MODULES:
        try:
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception:
            pass
    if isinstance(exc, AudioError):
        return AudioError(str(exc))
    if isinstance(exc, MemoryError):
        return MemoryError(str(exc))
    if isinstance(exc, OSError):
        return OSError(exc.errno, exc.strerror or str(exc))
    return AudioError(f"{type(exc).__name__}: {exc}")


class EngineProcess:
    """`AnalysisEngine`'s operations, run in an analysis process that ends after `idle_seconds` without a request
    (started again by the next one). One request at a time, as a worker runs one job at a time."""

    def __init__(self, settings: EngineSettings, *, idle_seconds: float = 60.0,
                 setup: Callable[[str], object] | None = None) -> None:
        """`setup`: called in the new process with the log level first (a module-level function: it is pickled)."""
        self.settings = settings
        self.idle_seconds = idle_seconds
        self.setup = setup
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._providers: list[dict[str, Any]] = []
        self._clap_name: str | None = None

    @property
    def pid(self) -> int | None:
        """The analysis process's pid while it runs."""
        return self._process.pid if self._process is not None and self._process.is_alive() else None

    def analyze(self, path: str | Path, *, patch_stride: int = 1) -> tuple[TrackAnalysis, float]:
        return self._call("analyze", os.fspath(path), patch_stride=patch_stride)

    def update_parts(self, path: str | Path, parts: set[str], *, tags: dict[str, float], energy: float | None,
                     tempo_confidence: float | None) -> dict[str, Any]:
        return self._call("update_parts", os.fspath(path), parts, tags=tags,
                          energy=energy, tempo_confidence=tempo_confidence)

    def clap_name(self) -> str | None:
        if self._clap_name is None:  # the settings are fixed for this object, and so is the model file's name
            self._clap_name = self._call("clap_name")
        return self._clap_name

    def embed_clap(self, path: str | Path) -> np.ndarray:
        return self._call("embed_clap", os.fspath(path))

    def providers(self) -> list[dict[str, Any]]:
        """What the models ran on, as the last answer said (no request: an idle process is not woken for it)."""
        return list(self._providers)

    def _call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        for attempt in (1, 2):
            conn = self._ensure_started()
            try:
                conn.send((operation, args, kwargs))
                while not conn.poll(1.0):
                    if self._process is None or not self._process.is_alive():
                        raise EOFError
                status, payload, providers = conn.recv()
            except (EOFError, OSError) as exc:
                code = None
                if self._process is not None:
                    self._process.join(5)  # the pipe closes a moment before the process is gone
                    code = self._process.exitcode
                self.close(kill=True)
                if code == 0 and attempt == 1:
                    continue  # it ended for idleness just as the request was sent: start another
                raise AnalysisProcessDied(f"the analysis process died ({_exit_reason(code) or exc or 'no answer'})") \
                    from exc
            except BaseException:
                # Interrupted mid-request (the job's timeout, Ctrl-C): the answer may still come; never read it as
                # the answer to the next request.
                self.close(kill=True)
                raise
            self._providers = providers or self._providers
            if status == "error":
                raise payload
            return payload
        raise AssertionError("unreachable")

    def _ensure_started(self) -> Connection:
        if self._process is None or not self._process.is_alive() or self._conn is None:
            self.close()
            context = multiprocessing.get_context("spawn")
            parent, child = context.Pipe()
            # Not a daemon: it starts the decoder helpers. It dies with the worker (PR_SET_PDEATHSIG) and is closed
            # before multiprocessing's exit handler would wait for it.
            self._process = context.Process(target=_serve, args=(child, self.settings, self.idle_seconds, self.setup),
                                            name="audiomuse-analysis")
            self._process.start()
            _running.add(self)
            child.close()
            self._conn = parent
        return self._conn

    def close(self, *, kill: bool = False) -> None:
        _running.discard(self)
        process, self._process = self._process, None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # the process sees the pipe closed and ends on its own
        if process is None:
            return
        if kill and process.is_alive() and process.pid:
            try:
                os.kill(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.join(10)
        if process.is_alive() and process.pid:
            try:
                os.kill(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            process.join(5)


_running: weakref.WeakSet[EngineProcess] = weakref.WeakSet()


@atexit.register
def _close_running() -> None:
    for engine in list(_running):
        engine.close()


def _exit_reason(code: int | None) -> str:
    if code is None:
        return ""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        killed = ", most likely by the kernel for memory" if -code == signal.SIGKILL else ""
        return f"ended by {name}{killed}"
    return f"exit status {code}"
