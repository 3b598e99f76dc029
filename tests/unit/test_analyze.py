"""One track's analysis: long tracks are sampled over their whole length; too-short input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from audio import features
from audio.analyze import ANALYSIS_VERSION, analyze_samples
from audio.decode import AudioError
from audio.musicnn import MODEL_NAME, MusicnnModel
from config import PROJECT_ROOT
from tests.library import rhythmic_piece


@pytest.fixture(scope="module")
def model() -> MusicnnModel:
    return MusicnnModel(PROJECT_ROOT / "models" / "msd_musicnn.onnx")


def test_a_long_track_is_analyzed_through_patches_spread_over_the_whole_file(model: MusicnnModel) -> None:
    y = rhythmic_piece(bpm=128, seconds=95, root_hz=220, seed=3, sr=16000)
    whole = analyze_samples(y, model=model, max_full_seconds=120)
    sampled = analyze_samples(y, model=model, max_full_seconds=60, long_track_patches=6)
    assert whole.patches_analyzed == 31 and sampled.patches_analyzed == 6
    assert sampled.duration_seconds == pytest.approx(95, abs=0.01)
    # The piece is uniform, so six spread patches describe it almost exactly like all 31.
    cosine = float(whole.embedding @ sampled.embedding /
                   (np.linalg.norm(whole.embedding) * np.linalg.norm(sampled.embedding)))
    assert cosine > 0.99
    assert whole.tempo_bpm == pytest.approx(128, rel=0.02)
    # The tempo comes from the musicnn STFT's frames; standing alone, estimate_tempo computes its own: same answer.
    alone = features.estimate_tempo(y, 16000)
    assert (whole.tempo_bpm, whole.tempo_confidence) == (alone.bpm, alone.confidence)
    assert (whole.model, whole.version) == (MODEL_NAME, ANALYSIS_VERSION)
    assert set(whole.timings) == {"mel", "inference", "features"}


def test_too_short_or_not_mono_input_is_refused(model: MusicnnModel) -> None:
    with pytest.raises(AudioError, match="too short"):
        analyze_samples(np.zeros(100, dtype=np.float32), model=model)
    with pytest.raises(AudioError, match="mono"):
        analyze_samples(np.zeros((16000, 2), dtype=np.float32), model=model)


def test_the_tempo_reuses_the_musicnn_stft(model: MusicnnModel, monkeypatch: pytest.MonkeyPatch) -> None:
    def second_stft(*args: object, **kwargs: object) -> None:
        raise AssertionError("analyze_samples computed a second STFT for the tempo")

    monkeypatch.setattr(features, "onset_power", second_stft)
    result = analyze_samples(rhythmic_piece(bpm=100, seconds=12, root_hz=220, seed=1, sr=16000), model=model)
    assert result.tempo_bpm == pytest.approx(100, rel=0.02)


def test_silence_gives_finite_results(model: MusicnnModel) -> None:
    result = analyze_samples(np.zeros(16000 * 5, dtype=np.float32), model=model)
    assert np.isfinite(result.embedding).all() and result.tempo_bpm is None and result.loudness_lufs is None
