"""CLAP audio embeddings (LAION-CLAP-style split ONNX audio encoder), computed in the workers during analysis.

The track (48 kHz mono) is cut into 10-s windows with 50 % overlap (a shorter track is one window, repeated to
fill it); each window goes to the model as a log-mel spectrogram (1024-point FFT, hop 480, 64 mel bands from
50 Hz to 14 kHz, 1001 frames — HTSAT's front end) or, for a model that takes the waveform, as samples; the window
embeddings are averaged and L2-normalised. No CLAP weights ship with AudioMuse: the user points
CLAP_AUDIO_MODEL_PATH at them, and a model whose inputs or outputs are not of this shape is refused with a
message saying what it has.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.errors import AudioError
from audio.providers import GuardedSession, ProviderChoice, available_providers

__all__ = ["CLAP_SR", "ClapAudioModel", "ClapModelError", "clap_mel", "model_identity", "output_problem",
           "open_session", "require_file", "window_starts"]

CLAP_SR = 48_000
WINDOW_SECONDS = 10.0
HOP_SECONDS = 5.0
N_FFT, HOP, N_MELS, FMIN, FMAX = 1024, 480, 64, 50.0, 14_000.0
WINDOW = int(CLAP_SR * WINDOW_SECONDS)
FRAMES = WINDOW // HOP + 1


class ClapModelError(AudioError):
    """A CLAP model file that is missing or not of the expected shape; the message says which and why."""


def require_file(setting: str, path: str | Path) -> None:
    """Raise ClapModelError unless the setting names an existing file."""
    if not str(path):
        raise ClapModelError(f"CLAP_ENABLED is true but {setting} is not set")
    if not Path(path).is_file():
        raise ClapModelError(f"{setting} {path} is not a file")


def open_session(setting: str, path: str | Path, *, intra_op_threads: int = 0, providers: str = "cpu",
                 available: Sequence[str] | None = None, label: str = "") -> GuardedSession:
    """An onnxruntime session of the file `setting` names (checked to exist) on the provider `providers` (the
    ONNX_PROVIDERS setting; audio.providers) chooses; ClapModelError saying why when it is no model onnxruntime can
    load."""
    import onnxruntime as ort

    require_file(setting, path)
    options = ort.SessionOptions()
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    try:
        return GuardedSession(
            label or Path(path).name, lambda chosen: ort.InferenceSession(os.fspath(path), sess_options=options,
                                                                 providers=chosen),
            setting=providers, available=available_providers() if available is None else available)
    except Exception as exc:  # onnxruntime raises its own types for a file that is not a model
        raise ClapModelError(f"{setting} {path} cannot be loaded: {str(exc).splitlines()[0][:300]}") from None


def model_identity(path: str | Path) -> str:
    """The name recorded with every embedding: file name and the start of its sha256, so a changed model (even
    under the same name) makes the tracks be embedded again."""
    path = Path(path)
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return f"{path.name}:{digest[:12]}"


def window_starts(n_samples: int, *, max_windows: int) -> list[int]:
    """Start sample of each 10-s window (hop 5 s), the last one ending at the track's end; at most `max_windows`,
    evenly spread over the track."""
    if n_samples <= WINDOW:
        return [0]
    hop = int(CLAP_SR * HOP_SECONDS)
    starts = list(range(0, n_samples - WINDOW + 1, hop))
    if starts[-1] + WINDOW < n_samples:
        starts.append(n_samples - WINDOW)
    if len(starts) > max_windows:
        picks = np.linspace(0, len(starts) - 1, max_windows).round().astype(int)
        starts = [starts[i] for i in picks]
    return starts


def _window(samples: np.ndarray, start: int) -> np.ndarray:
    piece = samples[start:start + WINDOW]
    if len(piece) == 0:
        return np.zeros(WINDOW, dtype=np.float32)
    if len(piece) < WINDOW:  # a short track is repeated to fill the window, as CLAP was trained
        piece = np.tile(piece, WINDOW // len(piece) + 1)[:WINDOW]
    return np.asarray(piece, dtype=np.float32)


def clap_mel(window: np.ndarray) -> np.ndarray:
    """(FRAMES, 64) log-mel power spectrogram in dB of one 10-s window at 48 kHz."""
    import librosa  # here, not at the top: the web process imports this module (for the text side) without it
    power = librosa.feature.melspectrogram(y=window, sr=CLAP_SR, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT,
                                           window="hann", center=True, pad_mode="reflect", power=2.0,
                                           n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
    return (10.0 * np.log10(np.maximum(power, 1e-10))).T.astype(np.float32)


@dataclass(frozen=True)
class _Signature:
    input_name: str
    kind: str  # "mel4" (batch, 1, frames, 64), "mel3" (batch, frames, 64) or "wave" (batch, samples)
    output_name: str


def _describe(args: list[object]) -> str:
    return ", ".join(f"{a.name} {a.type} {list(a.shape)}" for a in args)  # type: ignore[attr-defined]


def output_problem(outputs: list[object], dimension: int) -> str | None:
    """Why the first output is not (batch, dimension) embeddings, or None when it may be (a symbolic width is
    checked on the first answer)."""
    shape = list(outputs[0].shape) if outputs else []  # type: ignore[attr-defined]
    width = shape[-1] if shape else None
    if len(shape) != 2 or (isinstance(width, int) and width != dimension):
        return f"its first output should be (batch, {dimension}) embeddings (CLAP_EMBEDDING_DIMENSION)"
    return None


def _audio_signature(session: object, dimension: int, path: Path, setting: str) -> _Signature:
    inputs, outputs = session.get_inputs(), session.get_outputs()  # type: ignore[attr-defined]
    problem = None
    kind = ""
    if len(inputs) != 1 or inputs[0].type != "tensor(float)":
        problem = "it should take one float input"
    else:
        shape = list(inputs[0].shape)
        if len(shape) == 4 and shape[1] in (1, None, "") and shape[3] == N_MELS:
            kind = "mel4"
        elif len(shape) == 3 and shape[2] == N_MELS:
            kind = "mel3"
        elif len(shape) == 2:
            kind = "wave"
        else:
            problem = f"its input should be a {N_MELS}-band mel spectrogram (batch, 1, frames, {N_MELS}) or a waveform"
    if problem is None:
        problem = output_problem(outputs, dimension)
    if problem:
        raise ClapModelError(f"{setting} {path} is not a CLAP audio encoder: {problem}; it has inputs "
                             f"[{_describe(inputs)}] and outputs [{_describe(outputs)}]")
    return _Signature(inputs[0].name, kind, outputs[0].name)


class ClapAudioModel:
    """The audio half of CLAP in an onnxruntime session: `embed(samples_48k)` → L2-normalised (dimension,)."""

    def __init__(self, path: str | Path, *, setting: str = "CLAP_AUDIO_MODEL_PATH", dimension: int = 512,
                 max_windows: int = 60, batch: int = 4, intra_op_threads: int = 0, providers: str = "auto") -> None:
        self._session = open_session(setting, path, intra_op_threads=intra_op_threads, providers=providers,
                                     label="CLAP audio")
        self.path = Path(path)
        self.dimension = dimension
        self.max_windows = max_windows
        self.batch = batch
        self._signature = _audio_signature(self._session, dimension, self.path, setting)
        self.name = model_identity(self.path)

    @property
    def provider(self) -> ProviderChoice:
        """What the session runs on, and what was passed over."""
        return self._session.choice

    def _inputs(self, windows: list[np.ndarray]) -> np.ndarray:
        if self._signature.kind == "wave":
            return np.stack(windows)
        mels = np.stack([clap_mel(w) for w in windows])
        return mels[:, None] if self._signature.kind == "mel4" else mels

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """The track's embedding from its 48 kHz mono samples (float32, unit length)."""
        return self.embed_blocks(len(samples), [samples])

    def embed_blocks(self, n_samples: int, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """`embed` of a track of `n_samples` samples that arrive in consecutive blocks: each window goes through
        the model once its samples are in (in the same batches, so the same embedding to the bit), and only the
        samples from the next window's start on are kept — never the whole track."""
        starts = window_starts(n_samples, max_windows=self.max_windows)
        total = np.zeros(self.dimension, dtype=np.float64)
        kept = np.zeros(0, dtype=np.float32)
        kept_from = 0  # the track's sample at kept[0]
        ready: list[np.ndarray] = []
        taken = 0

        def take(until: int) -> None:
            nonlocal taken, ready, total
            while taken < len(starts) and starts[taken] + WINDOW <= until:
                ready.append(_window(kept, starts[taken] - kept_from))
                taken += 1
                if len(ready) == self.batch:
                    total += self._batch_sum(ready)
                    ready = []

        for block in blocks:
            kept = np.concatenate([kept, np.asarray(block, dtype=np.float32)])
            take(kept_from + len(kept))
            drop = min((starts[taken] if taken < len(starts) else kept_from + len(kept)) - kept_from, len(kept))
            if drop > 0:
                kept, kept_from = kept[drop:], kept_from + drop
        take(kept_from + len(kept) + WINDOW * len(starts))  # the rest: a short track's one window, repeated
        if ready:
            total += self._batch_sum(ready)
        norm = float(np.linalg.norm(total))
        if not np.isfinite(norm) or norm == 0.0:
            raise ClapModelError("the CLAP audio model gave an empty or non-finite embedding")
        return (total / norm).astype(np.float32)

    def _batch_sum(self, windows: list[np.ndarray]) -> np.ndarray:
        out = self._session.run([self._signature.output_name], {self._signature.input_name: self._inputs(windows)})
        vectors = np.asarray(out[0], dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ClapModelError(f"the CLAP audio model gave embeddings of shape {vectors.shape}, not "
                                 f"(n, {self.dimension}) (CLAP_EMBEDDING_DIMENSION)")
        return vectors.sum(axis=0)
