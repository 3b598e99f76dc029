"""Short-time power spectra projected on band matrices: the one STFT routine of the audio package.

The analysis of a track computes one 512-sample STFT at 16 kHz and projects it on two band matrices at once: the
musicnn mel bands and the onset bands of the tempo estimate (`band_power` with two bases). The key estimate uses
its own, longer frames.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from scipy import fft

CHUNK_SAMPLES = 1 << 18  # frames are transformed 1 MB at a time: stays in cache and bounds memory on long tracks


@functools.cache
def hann(n: int) -> np.ndarray:
    """Periodic Hann window of `n` samples, float32, read-only (librosa's and scipy's default for spectra)."""
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
    window.setflags(write=False)
    return window


def frame_count(n_samples: int, *, n_fft: int, hop: int, centre: bool) -> int:
    """Frames `band_power` gives for a signal of `n_samples` (for an even n_fft and centre=True: 1 + n // hop)."""
    if centre:
        return 1 + (n_samples + 2 * (n_fft // 2) - n_fft) // hop
    return 1 + (max(n_samples, n_fft) - n_fft) // hop


def band_power(y: np.ndarray, *, n_fft: int, hop: int, bases: Sequence[np.ndarray],
               centre: bool) -> list[np.ndarray]:
    """Power spectra |X|² of Hann-windowed frames of `y` (n,), projected on each basis (n_fft // 2 + 1, k).

    Returns one float32 array (frames, k) per basis. `centre=True`: frame t is centred on sample t·hop, the signal
    zero-padded by n_fft // 2 on both sides (librosa's centred frames): 1 + n // hop frames. `centre=False`: frames
    start at 0, hop, 2·hop, ... and end inside the signal; a signal shorter than a frame is zero-padded to one.
    Only the bins a basis reads are squared and multiplied.
    """
    signal = np.asarray(y, dtype=np.float32)
    if centre:
        signal = np.pad(signal, n_fft // 2)
    elif len(signal) < n_fft:
        signal = np.pad(signal, (0, n_fft - len(signal)))
    n_frames = frame_count(len(y), n_fft=n_fft, hop=hop, centre=centre)
    return _frames_power(signal, n_frames, n_fft=n_fft, hop=hop, bases=bases)


class BandPowerStream:
    """`band_power` of a signal that arrives in chunks of any length, frame for frame the same: `feed` each chunk
    and keep what it returns (the frames it completed), then `finish` for the last frames. Only the samples of the
    frames not yet transformed are held (at most a batch of CHUNK_SAMPLES), so a long track needs no more memory
    than a short one."""

    def __init__(self, *, n_fft: int, hop: int, bases: Sequence[np.ndarray], centre: bool) -> None:
        self.n_fft, self.hop, self.bases, self.centre = n_fft, hop, list(bases), centre
        self.samples = 0  # fed so far
        self.frames = 0  # given out so far
        self._pending = np.zeros(n_fft // 2 if centre else 0, dtype=np.float32)  # starts at frame `frames`

    def feed(self, chunk: np.ndarray) -> list[np.ndarray]:
        self.samples += len(chunk)
        self._pending = np.concatenate([self._pending, np.asarray(chunk, dtype=np.float32)])
        complete = (len(self._pending) - self.n_fft) // self.hop + 1 if len(self._pending) >= self.n_fft else 0
        # whole batches only, as band_power transforms them: the same products, so the same values to the bit
        batch = max(1, CHUNK_SAMPLES // self.n_fft)
        return self._take(complete // batch * batch)

    def finish(self) -> list[np.ndarray]:
        total = frame_count(self.samples, n_fft=self.n_fft, hop=self.hop, centre=self.centre)
        room = (total - self.frames - 1) * self.hop + self.n_fft  # samples the remaining frames span
        if total > self.frames and len(self._pending) < room:
            self._pending = np.pad(self._pending, (0, room - len(self._pending)))
        return self._take(max(0, total - self.frames))

    def _take(self, n_frames: int) -> list[np.ndarray]:
        outs = _frames_power(self._pending, n_frames, n_fft=self.n_fft, hop=self.hop, bases=self.bases)
        self._pending = self._pending[n_frames * self.hop:].copy()
        self.frames += n_frames
        return outs


def _frames_power(signal: np.ndarray, n_frames: int, *, n_fft: int, hop: int,
                  bases: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The first `n_frames` frames of `signal` (starting at 0, hop, ...), projected on each basis."""
    frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::hop][:n_frames] if n_frames else \
        np.empty((0, n_fft), dtype=np.float32)
    window = hann(n_fft)
    spans = [_bins_read(basis) for basis in bases]
    first, stop = min(s[0] for s in spans), max(s[1] for s in spans)
    outs = [np.empty((n_frames, basis.shape[1]), dtype=np.float32) for basis in bases]
    per_chunk = max(1, CHUNK_SAMPLES // n_fft)
    for start in range(0, n_frames, per_chunk):
        # scipy's FFT stays in float32 (numpy's float32 path is several times slower); the product is a fresh copy.
        spectrum = fft.rfft(frames[start:start + per_chunk] * window, axis=1, overwrite_x=True)[:, first:stop]
        power = spectrum.real**2
        power += spectrum.imag**2
        for out, basis, (lo, hi) in zip(outs, bases, spans, strict=True):
            out[start:start + len(power)] = power[:, lo - first:hi - first] @ basis[lo:hi]
    return outs


def _bins_read(basis: np.ndarray) -> tuple[int, int]:
    used = np.flatnonzero(basis.any(axis=1))
    return (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
