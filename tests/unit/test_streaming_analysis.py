"""A track analysed as it is decoded, a block at a time (issue 31's long-track memory bound): the same values to
the bit as the analysis of the whole signal, whatever the blocks."""

from __future__ import annotations

import numpy as np
import pytest

from audio import analyze, features, melspec, stft
from audio.analyze import analyze_chunks, analyze_parts, analyze_parts_of_chunks, analyze_samples
from audio.musicnn import MusicnnModel
from config import PROJECT_ROOT
from tests.library import rhythmic_piece


@pytest.fixture(scope="module")
def model() -> MusicnnModel:
    return MusicnnModel(PROJECT_ROOT / "models" / "msd_musicnn.onnx")


def _cut(y: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    pieces, start, turn = [], 0, 0
    while start < len(y):
        pieces.append(y[start:start + sizes[turn % len(sizes)]])
        start += sizes[turn % len(sizes)]
        turn += 1
    return pieces


@pytest.mark.parametrize("n_samples", [100, 511, 513, 5_000, 112_123, 480_000])
@pytest.mark.parametrize(("n_fft", "hop", "centre"), [(512, 256, True), (8192, 4096, False)])
def test_the_band_power_of_a_signal_in_chunks_is_that_of_the_whole(n_samples, n_fft, hop, centre):
    y = (np.random.default_rng(n_samples).standard_normal(n_samples) * 0.2).astype(np.float32)
    bases = [melspec.mel_bands(), features.onset_bands(16000, 512)] if n_fft == 512 else \
        [features._fine_pitch_fold(16000, n_fft)]
    whole = stft.band_power(y, n_fft=n_fft, hop=hop, bases=bases, centre=centre)
    for sizes in ([1], [97, 4096], [100_000]):
        if sizes == [1] and n_samples > 6000:
            continue
        stream = stft.BandPowerStream(n_fft=n_fft, hop=hop, bases=bases, centre=centre)
        pieces = [stream.feed(chunk) for chunk in _cut(y, sizes)] + [stream.finish()]
        for k, expected in enumerate(whole):
            np.testing.assert_array_equal(np.concatenate([p[k] for p in pieces]), expected)


def test_the_analysis_of_a_signal_in_chunks_is_that_of_the_whole(model: MusicnnModel, monkeypatch):
    # a feed is measured in pieces of FEED_SAMPLES: made shorter than this signal (and than one of its cuts), so that
    # the whole signal and the cut [len(y) - 1, 1] cross a piece boundary inside the measures, as a long track does
    monkeypatch.setattr(analyze, "FEED_SAMPLES", 1 << 19)
    y = rhythmic_piece(bpm=124, seconds=50, root_hz=196, seed=4, sr=16000)
    assert len(y) > analyze.FEED_SAMPLES > 16000 * 20
    whole = analyze_samples(y, model=model)
    # the same network on the whole signal's log-mel patches, and the features of the whole signal, measured apart
    direct = model.predict(melspec.patches(melspec.log_mel(y)))
    np.testing.assert_array_equal(whole.embedding, direct.embeddings.mean(axis=0).astype(np.float32))
    tempo, key = features.estimate_tempo(y, 16000), features.estimate_key(y, 16000)
    assert (whole.tempo_bpm, whole.tempo_confidence) == (tempo.bpm, tempo.confidence) and whole.tempo_bpm
    assert (whole.key, whole.scale, whole.key_confidence) == (key.key, key.scale, key.confidence)
    assert (whole.energy, whole.loudness_lufs) == (features.energy(y), features.loudness_lufs(y, 16000))
    variants: list[dict] = [{}, {"patch_stride": 3}, {"max_full_seconds": 30, "long_track_patches": 9}]
    references = [whole, *(analyze_samples(y, model=model, **kwargs) for kwargs in variants[1:])]
    assert references[2].patches_analyzed == 9 < whole.patches_analyzed  # the long-track path is taken
    for turn, sizes in enumerate(([7, 4099, 31_337], [16000 * 20], [len(y) - 1, 1])):
        for kwargs, reference in list(zip(variants, references, strict=True))[turn:] + [(variants[0], whole)]:
            chunked = analyze_chunks(_cut(y, sizes), model=model, **kwargs)
            np.testing.assert_array_equal(chunked.embedding, reference.embedding)
            assert (chunked.tags, chunked.moods, chunked.tempo_bpm, chunked.key, chunked.key_confidence,
                    chunked.energy, chunked.loudness_lufs, chunked.patches_analyzed) == \
                (reference.tags, reference.moods, reference.tempo_bpm, reference.key, reference.key_confidence,
                 reference.energy, reference.loudness_lufs, reference.patches_analyzed)


def test_the_spread_patches_of_a_long_track_in_chunks_are_those_of_the_whole():
    y = rhythmic_piece(bpm=90, seconds=100, root_hz=220, seed=9, sr=16000)
    from audio.analyze import SignalMeasures

    measures = SignalMeasures(tempo=False, key=False, energy=False)
    for chunk in _cut(y, [12_345]):
        measures.feed(chunk)
    measures.finish()
    expected = melspec.patches(melspec.log_mel(y), max_patches=7)
    np.testing.assert_array_equal(measures.model_patches(max_patches=7), expected)
    np.testing.assert_array_equal(measures.model_patches(max_patches=None), melspec.patches(melspec.log_mel(y)))


def test_the_parts_of_a_signal_in_chunks_are_those_of_the_whole():
    y = rhythmic_piece(bpm=140, seconds=40, root_hz=262, seed=2, sr=16000)
    stored = {"tags": {"rock": 0.4, "pop": 0.2}, "energy": 0.6, "tempo_confidence": 0.3}
    for parts in ({"tempo"}, {"key"}, {"energy"}, {"tempo", "key", "energy"}):
        whole = analyze_parts(y, parts, **stored)
        assert analyze_parts_of_chunks(_cut(y, [3_000, 70_001]), parts, **stored) == whole


def test_silence_and_a_too_short_signal_in_chunks(model: MusicnnModel):
    silent = analyze_chunks(_cut(np.zeros(16000 * 6, np.float32), [5_000]), model=model)
    assert silent.tempo_bpm is None and silent.loudness_lufs is None and silent.key is None
    from audio.decode import AudioError

    with pytest.raises(AudioError, match="too short"):
        analyze_chunks([np.zeros(700, np.float32), np.zeros(700, np.float32)], model=model)
    with pytest.raises(AudioError, match="non-finite"):
        analyze_chunks([np.zeros(16000, np.float32), np.array([np.nan] * 10, np.float32)], model=model)
