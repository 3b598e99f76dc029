"""The musicnn front end: 16 kHz mono → log-compressed mel patches of 187 frames × 96 bands.

This is the preprocessing musicnn was trained with (librosa's melspectrogram with n_fft 512, hop 256, 96 Slaney mel
bands, periodic Hann window, centred frames with zero padding, power 2, then log10(10000·S + 1)), written with
numpy alone so that a worker pays no numba compile and no second pass over the audio.
"""

from __future__ import annotations

import functools

import numpy as np

from audio import stft
from audio.errors import SAMPLE_RATE, AudioError

N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # ~3 s


@functools.cache
def mel_basis() -> np.ndarray:
    """Slaney-style mel filterbank, shape (96, 257), float32 (the matrix librosa.filters.mel builds)."""
    import librosa.filters  # pure numpy; no numba involved

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


@functools.cache
def mel_bands() -> np.ndarray:
    """The mel filterbank as a band matrix for `stft.band_power`: shape (257, 96), float32, read-only."""
    bands = np.ascontiguousarray(mel_basis().T)
    bands.setflags(write=False)
    return bands


def log_mel(y: np.ndarray) -> np.ndarray:
    """Log-mel spectrogram of a 16 kHz mono signal `y` (n,), shape (frames, 96), float32; frames = 1 + n // 256."""
    if y.ndim != 1:
        raise AudioError(f"expected a mono signal of shape (n,), got shape {y.shape}")
    return compress(stft.band_power(y, n_fft=N_FFT, hop=HOP, bases=[mel_bands()], centre=True)[0])


def compress(mel_power: np.ndarray) -> np.ndarray:
    """log10(10000·S + 1) of the mel power S (frames, 96) after rounding S to float16 as musicnn's training code
    did; the product is taken in float32 because in float16 it overflows on loud low-frequency bins (numpy 2 keeps
    float16 × int in float16)."""
    rounded = round_to_float16(mel_power)
    rounded *= np.float32(10000.0)
    rounded += np.float32(1.0)
    return np.log10(rounded, out=rounded)


def round_to_float16(x: np.ndarray) -> np.ndarray:
    """`x.astype(np.float16).astype(np.float32)` for float32 `x` ≥ 0 (not NaN), bit for bit, in a third of the time.

    Normal float16 values keep 10 of float32's 23 mantissa bits: round half to even at bit 13 of the float32 pattern.
    Below float16's smallest normal (2**-14) the step is a fixed 2**-24, and from 65520 up the result is inf.
    """
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + ((bits >> 13) & 1) + 0xFFF) & np.uint32(0xFFFFE000)).view(np.float32)
    small = x < _F16_SMALLEST_NORMAL
    if small.any():
        rounded[small] = np.rint(x[small] * _F16_SUBNORMAL_SCALE) / _F16_SUBNORMAL_SCALE
    rounded[x >= _F16_OVERFLOW] = np.inf
    return rounded


_F16_SMALLEST_NORMAL = np.float32(2.0**-14)
_F16_SUBNORMAL_SCALE = np.float32(2.0**24)
_F16_OVERFLOW = np.float32(65520.0)  # rounds up past float16's largest value, 65504


def patches(log_mel_frames: np.ndarray, *, max_patches: int | None = None) -> np.ndarray:
    """Cut (frames, 96) into non-overlapping (n, 187, 96) patches.

    The trailing partial patch is dropped; a signal shorter than one patch is repeated to fill it. With
    `max_patches`, that many patches are taken evenly spaced over the whole signal (for very long tracks).
    """
    frames = log_mel_frames
    if len(frames) == 0:
        raise AudioError("no frames: the signal is empty")
    if len(frames) < PATCH_FRAMES:
        reps = -(-PATCH_FRAMES // len(frames))
        frames = np.tile(frames, (reps, 1))[:PATCH_FRAMES]
    n = len(frames) // PATCH_FRAMES
    cut = frames[: n * PATCH_FRAMES].reshape(n, PATCH_FRAMES, N_MELS)
    if max_patches is not None and n > max_patches:
        cut = cut[spread(n, max_patches)]
    return np.ascontiguousarray(cut)


def spread(count: int, wanted: int) -> np.ndarray:
    """The indices of `wanted` of `count` patches, evenly spaced over all of them (first and last included)."""
    return np.unique(np.linspace(0, count - 1, wanted).round().astype(int))


def every_nth(count: int, stride: int) -> list[int]:
    """The patches fast analysis sends through the model: every `stride`-th of `count`, centred (as much of the
    track left out at each end); all of them for a stride of 1 or a single patch."""
    if stride <= 1 or count <= 1:
        return list(range(count))
    return list(range((count - 1) % stride // 2, count, stride))
