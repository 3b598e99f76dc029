"""The shared STFT: centred and uncentred frames against a direct computation, several bases in one pass."""

from __future__ import annotations

import numpy as np
import pytest

from audio import stft


def direct_power(y: np.ndarray, *, n_fft: int, hop: int, centre: bool) -> np.ndarray:
    padded = np.pad(y.astype(np.float64), n_fft // 2) if centre else np.pad(y.astype(np.float64),
                                                                         (0, max(0, n_fft - len(y))))
    count = 1 + (len(padded) - n_fft) // hop  # every whole frame of the padded signal
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[t * hop: t * hop + n_fft] * window for t in range(count)])
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2


@pytest.mark.parametrize(("n", "centre"), [(16000, True), (16000, False), (300, False), (300, True), (1, True)])
def test_band_power_is_the_projected_power_spectrum(n: int, centre: bool) -> None:
    rng = np.random.default_rng(n)
    y = rng.uniform(-1, 1, n).astype(np.float32)
    first = np.zeros((257, 3), dtype=np.float32)
    first[10:20, 0], first[100, 1], first[0, 2] = 1.0, 2.0, 1.0  # a band, one bin, the DC bin
    second = rng.uniform(0, 1, (257, 5)).astype(np.float32)
    second[:40] = 0.0  # reads only the upper bins
    expected = direct_power(y, n_fft=512, hop=256, centre=centre)
    got = stft.band_power(y, n_fft=512, hop=256, bases=[first, second], centre=centre)
    assert [g.shape for g in got] == [(len(expected), 3), (len(expected), 5)]
    assert all(g.dtype == np.float32 for g in got)
    for basis, result in zip((first, second), got, strict=True):
        reference = expected @ basis.astype(np.float64)
        np.testing.assert_allclose(result, reference, rtol=2e-4, atol=1e-3 * reference.max())


def test_long_signals_are_done_in_chunks_with_the_same_result() -> None:
    y = np.random.default_rng(1).uniform(-1, 1, 16000 * 12).astype(np.float32)  # ~750 frames: 2 chunks of 512
    basis = np.eye(257, dtype=np.float32)
    got = stft.band_power(y, n_fft=512, hop=256, bases=[basis], centre=True)[0]
    np.testing.assert_allclose(got, direct_power(y, n_fft=512, hop=256, centre=True), rtol=2e-4, atol=1e-3)


@pytest.mark.parametrize(("n_fft", "hop", "centre"), [(512, 256, True), (511, 256, True), (300, 100, False)])
def test_bases_that_skip_the_low_bins_and_odd_frames(n_fft: int, hop: int, centre: bool) -> None:
    y = np.random.default_rng(n_fft).uniform(-1, 1, 4000).astype(np.float32)
    bins = n_fft // 2 + 1
    basis = np.zeros((bins, 2), dtype=np.float32)
    basis[31:60, 0], basis[bins - 20:, 1] = 1.0, 0.5  # as the chroma and the upper onset bands: no DC, no low bins
    got = stft.band_power(y, n_fft=n_fft, hop=hop, bases=[basis], centre=centre)[0]
    reference = direct_power(y, n_fft=n_fft, hop=hop, centre=centre) @ basis.astype(np.float64)
    assert got.shape == reference.shape
    np.testing.assert_allclose(got, reference, rtol=2e-4, atol=1e-3 * reference.max())
