"""Decode an audio file of any common format to a mono float32 signal at 16 kHz.

libsndfile (through soundfile) reads WAV, FLAC, Ogg Vorbis/Opus and MP3 directly and is tried first; anything it
cannot open (m4a/AAC, WMA, APE, ...) goes through ffmpeg, which decodes straight to mono 16 kHz and stops at the
length limit. Resampling is soxr's HQ mode (ffmpeg's soxr resampler where its build has one), the same as
librosa's default, because musicnn was trained on librosa-resampled audio.

`IsolatedDecoder` runs the decode in a separate process so that a hung or pathological decode can be killed
after `timeout` seconds without taking the worker with it.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import subprocess
import threading
import time
from collections.abc import Generator, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import soundfile as sf
import soxr

from audio.errors import SAMPLE_RATE, AudioError, DecodeError, DecodeTimeout, TrackTooLong

__all__ = ["TARGET_SR", "AudioError", "DecodeError", "DecodeTimeout", "IsolatedDecoder", "TrackTooLong",
           "decode_file", "decode_stream", "downmix"]

log = logging.getLogger(__name__)

TARGET_SR = SAMPLE_RATE
_BLOCK_FRAMES = 1 << 18
_PIPE_BYTES = 1 << 20  # ffmpeg output read at a time: 16 s at 16 kHz


def decode_file(path: str | Path, *, sr: int = TARGET_SR, ffmpeg: str = "ffmpeg",
                max_seconds: float | None = None) -> np.ndarray:
    """Mono float32 samples of `path` at `sr` Hz, shape (n,). Raises DecodeError with the cause.

    With `max_seconds`, a longer file is refused before it is decoded (it would not fit in memory sensibly).
    """
    blocks: list[np.ndarray] = []
    for block in decode_stream(path, sr=sr, ffmpeg=ffmpeg, max_seconds=max_seconds):
        if block is None:
            blocks.clear()
        else:
            blocks.append(block)
    return np.concatenate(blocks).astype(np.float32, copy=False)


def decode_stream(path: str | Path, *, sr: int = TARGET_SR, ffmpeg: str = "ffmpeg",
                  max_seconds: float | None = None) -> Iterator[np.ndarray | None]:
    """`decode_file`'s samples in consecutive blocks of a few seconds, never the whole file at once. A None means
    the blocks so far are void and the decode starts over: libsndfile failed midway and ffmpeg takes the file
    from its start. Raises DecodeError with the cause (TrackTooLong as soon as the limit is passed)."""
    path = Path(path)
    if not path.is_file():
        raise DecodeError(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise DecodeError(f"{path.name}: empty file")
    total = 0
    try:
        for block in _soundfile_blocks(path, sr, max_seconds):
            total += len(block)
            yield _finite(block)
    except TrackTooLong:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError) as first_error:
        if total:
            yield None
            total = 0
        try:
            for block in _ffmpeg_blocks(path, sr, ffmpeg, max_seconds):
                total += len(block)
                if max_seconds is not None and total > max_seconds * sr:
                    raise TrackTooLong(f"{path.name}: longer than {max_seconds / 3600:g} h; not analyzed")
                yield _finite(block)
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"{path.name}: not decodable (libsndfile: {_short(first_error)}; "
                              f"ffmpeg: {_short(exc)})") from exc
    if total == 0:
        raise DecodeError(f"{path.name}: the file holds no audio samples")


def _finite(block: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(block)):
        return np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
    return block


def downmix(frames: np.ndarray) -> np.ndarray:
    """Mono average of float32 frames shaped (n, channels), float32 (n,).

    A matrix-vector product rather than `mean(axis=1)`: numpy reduces a short trailing axis element by element,
    which made the downmix 25× slower than this and a third of the whole decode of a stereo Ogg file.
    """
    channels = frames.shape[1]
    if channels == 1:
        return frames[:, 0]
    return frames @ np.full(channels, 1.0 / channels, dtype=np.float32)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:200]


def _soundfile_blocks(path: Path, sr: int, max_seconds: float | None = None) -> Iterator[np.ndarray]:
    """Read in blocks, downmix and resample as a stream, so a long file never exists at full rate in memory."""
    with sf.SoundFile(path) as f:
        source_sr = f.samplerate
        if max_seconds is not None and f.frames > max_seconds * source_sr:
            raise TrackTooLong(f"{path.name}: longer than {max_seconds / 3600:g} h; not analyzed")
        resampler = soxr.ResampleStream(source_sr, sr, 1, dtype="float32", quality="HQ") if source_sr != sr else None
        while True:
            block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
            last = len(block) < _BLOCK_FRAMES
            mono = downmix(block)
            out = resampler.resample_chunk(mono, last=last) if resampler else mono
            if len(out):
                yield np.asarray(out, dtype=np.float32)
            if last:
                break


def _ffmpeg_blocks(path: Path, sr: int, ffmpeg: str, max_seconds: float | None = None) -> Iterator[np.ndarray]:
    """ffmpeg decodes the first audio stream straight to mono float32 at `sr`, read from its pipe a block at a time,
    and stops after `max_seconds` (plus one, to tell a file that is too long): a long or crafted file never exists
    at its source rate in memory, nor whole at `sr`."""
    command = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-i", str(path), "-map", "0:a:0", "-vn"]
    if max_seconds is not None:
        command += ["-t", f"{max_seconds + 1:g}"]
    # The mean of the channels, as downmix() takes it (ffmpeg's own stereo-to-mono mix is 3 dB louder); more
    # channels are first mixed to stereo by ffmpeg's standard matrix.
    mono = "aformat=channel_layouts=stereo,pan=mono|c0=0.5*c0+0.5*c1"
    output = ["-ac", "1", "-ar", str(sr), "-f", "f32le", "pipe:1"]
    produced = 0
    attempts = (f"{mono},aresample={sr}:resampler=soxr:precision=28", mono)
    try:
        _libc()  # loaded here, not between fork and exec
    except OSError:
        pass
    for attempt, filters in enumerate(attempts):
        try:
            # dies with the decoder helper, so a helper killed for time takes a hung ffmpeg with it
            process = subprocess.Popen([*command, "-af", filters, *output], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        except OSError as exc:
            raise DecodeError(f"{path.name}: ffmpeg could not be run ({exc.strerror or exc})") from exc
        errors = _Tail(cast(IO[bytes], process.stderr))
        try:
            stdout = cast(IO[bytes], process.stdout)
            rest = b""
            while data := stdout.read(_PIPE_BYTES):
                data = rest + data
                whole = len(data) // 4 * 4
                rest = data[whole:]
                if whole:
                    produced += whole
                    yield np.frombuffer(data[:whole], dtype="<f4").astype(np.float32)
            code = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            stderr = errors.text()
        if code == 0:
            return
        # a build without libsoxr: its own resampler, once, when the first try failed before any output
        if attempt == len(attempts) - 1 or produced or "soxr" not in stderr.replace(str(path), ""):
            message = stderr.strip().splitlines()
            raise DecodeError(f"{path.name}: ffmpeg could not decode it ({(message[-1] if message else '')[:200]})")


class _Tail:
    """The last few KB a pipe carries, read in a thread so the writer never blocks on a full pipe."""

    def __init__(self, pipe: IO[bytes], keep: int = 8192) -> None:
        self._data = b""
        self._keep = keep
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[bytes]) -> None:
        with pipe:
            while block := pipe.read(4096):
                self._data = (self._data + block)[-self._keep:]

    def text(self) -> str:
        self._thread.join(5)
        return self._data.decode("utf-8", "replace")


# --- isolation ------------------------------------------------------------------------------------------------

@functools.cache
def _libc() -> Any:
    import ctypes

    return ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent() -> None:
    """Linux: have the kernel kill this process when the one that started it dies (even by SIGKILL). Safe between
    fork and exec once `_libc()` has been loaded (the decoder helper loads it first)."""
    try:
        pr_set_pdeathsig = 1
        _libc().prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the helper still exits when its pipe closes


def _limit_memory(megabytes: int | None) -> None:
    """Cap this process's address space (and so an ffmpeg it starts): a file that would need more fails with
    MemoryError — recorded as that track's failure — instead of taking the machine's memory."""
    if not megabytes:
        return
    try:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError) as exc:  # not on this platform: the length limits still apply
        log.warning("decoder memory limit not applied: %s", exc)


def _serve(conn: Connection, sr: int, ffmpeg: str, max_seconds: float | None, memory_mb: int | None) -> None:
    """Decoder process main loop: receive (request id, path), answer with samples or an error message."""
    os.setsid()  # its own process group, so killing it also kills an ffmpeg it started
    _die_with_parent()
    _limit_memory(memory_mb)
    while True:
        try:
            request_id, path, *streamed = conn.recv()
        except EOFError:
            return
        try:
            if streamed:
                _send_stream(conn, request_id, path, sr, ffmpeg, max_seconds)
                continue
            samples = decode_file(path, sr=sr, ffmpeg=ffmpeg, max_seconds=max_seconds)
        except AudioError as exc:
            conn.send((request_id, "error", str(exc)))
        except MemoryError:
            conn.send((request_id, "error", f"{Path(path).name}: decoding needs more memory than the decoder may "
                                            "use (DECODER_MEMORY_LIMIT_MB)"))
        except Exception as exc:  # a decoder bug must come back as a failure, not kill the loop
            conn.send((request_id, "error", f"{Path(path).name}: {type(exc).__name__}: {exc}"))
        else:
            conn.send((request_id, "ok", len(samples)))
            conn.send_bytes(samples.tobytes())


def _send_stream(conn: Connection, request_id: int, path: str, sr: int, ffmpeg: str, max_seconds: float | None) -> None:
    """Answer a streamed request: ("chunk", n) and its bytes per block, ("restart", 0) where decode_stream starts
    over, then ("end", total); an error is sent by the caller."""
    total = 0
    for block in decode_stream(path, sr=sr, ffmpeg=ffmpeg, max_seconds=max_seconds):
        if block is None:
            conn.send((request_id, "restart", 0))
            total = 0
            continue
        conn.send((request_id, "chunk", len(block)))
        conn.send_bytes(block.tobytes())
        total += len(block)
    conn.send((request_id, "end", total))


class IsolatedDecoder:
    """Decodes in a long-lived helper process; one that exceeds `timeout` is killed and replaced."""

    def __init__(self, *, timeout: float, sr: int = TARGET_SR, ffmpeg: str = "ffmpeg",
                 max_seconds: float | None = None, memory_limit_mb: int | None = None) -> None:
        self.timeout = timeout
        self.sr = sr
        self.ffmpeg = ffmpeg
        self.max_seconds = max_seconds
        self.memory_limit_mb = memory_limit_mb
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._request = 0

    def _ensure_started(self) -> Connection:
        if self._process is None or not self._process.is_alive() or self._conn is None:
            self.close()
            ctx = multiprocessing.get_context("spawn")  # never fork a process that holds ONNX Runtime threads
            parent, child = ctx.Pipe()
            self._process = ctx.Process(target=_serve, daemon=True, name="audiomuse-decoder",
                                        args=(child, self.sr, self.ffmpeg, self.max_seconds, self.memory_limit_mb))
            self._process.start()
            child.close()
            self._conn = parent
        return self._conn

    def decode(self, path: str | Path) -> np.ndarray:
        """Like decode_file(), but raises DecodeTimeout after `timeout` seconds."""
        conn = self._ensure_started()
        self._request += 1
        try:
            conn.send((self._request, str(path)))
            if not conn.poll(self.timeout):
                self.close(kill=True)
                raise DecodeTimeout(f"{Path(path).name}: decoding took longer than {self.timeout:g} s and was stopped")
            request_id, status, payload = conn.recv()
            if request_id != self._request:
                raise DecodeError(f"{Path(path).name}: the decoder answered another request")
            if status == "error":
                raise DecodeError(payload)
            data = conn.recv_bytes()
        except (EOFError, OSError) as exc:
            self.close(kill=True)
            raise DecodeError(f"{Path(path).name}: the decoder process died ({exc or 'no answer'})") from exc
        except DecodeError as exc:
            if "answered another request" in str(exc):
                self.close(kill=True)
            raise
        except BaseException:
            # Interrupted mid-request (a job timeout, Ctrl-C): the answer may still come; never read it as the
            # answer to the next request.
            self.close(kill=True)
            raise
        return np.frombuffer(data, dtype=np.float32, count=payload)

    def stream(self, path: str | Path) -> Generator[np.ndarray | None, None, None]:
        """Like decode_stream(): the samples a block at a time as the helper decodes them, None where the decode
        starts over; DecodeTimeout once the waits for the helper add up to `timeout` seconds (the time the caller
        spends on each block does not count). A stream left unfinished stops the helper."""
        conn = self._ensure_started()
        self._request += 1
        request = self._request
        name = Path(path).name
        finished = False
        waited = 0.0
        try:
            conn.send((request, str(path), "stream"))
            while True:
                started = time.monotonic()
                if not conn.poll(max(0.0, self.timeout - waited)):
                    raise DecodeTimeout(f"{name}: decoding took longer than {self.timeout:g} s and was stopped")
                request_id, status, payload = conn.recv()
                if request_id != request:
                    raise DecodeError(f"{name}: the decoder answered another request")
                if status == "error":
                    finished = True
                    raise DecodeError(payload)
                if status == "end":
                    finished = True
                    return
                if status == "restart":
                    waited += time.monotonic() - started
                    yield None
                    continue
                data = conn.recv_bytes()
                waited += time.monotonic() - started
                yield np.frombuffer(data, dtype=np.float32, count=payload)
        except (EOFError, OSError) as exc:
            raise DecodeError(f"{name}: the decoder process died ({exc or 'no answer'})") from exc
        finally:
            if not finished:  # what is left of the answer must never be read as the next request's
                self.close(kill=True)

    def close(self, *, kill: bool = False) -> None:
        process, self._process = self._process, None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if process is None:
            return
        if process.is_alive() and process.pid:
            try:  # the whole group: an ffmpeg the helper started goes too
                os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            except ProcessLookupError:
                pass
        process.join(5)

    def __enter__(self) -> IsolatedDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
