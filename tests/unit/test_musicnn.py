"""The musicnn front end and model: parity with librosa and with the TensorFlow graph the ONNX file came from."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from audio import melspec
from audio.musicnn import EMBEDDING_DIM, MSD_TAGS, MusicnnModel
from config import PROJECT_ROOT

MODEL = PROJECT_ROOT / "models" / "msd_musicnn.onnx"
REFERENCE = PROJECT_ROOT / "models" / "msd_musicnn_reference.npz"


@pytest.fixture(scope="module")
def model() -> MusicnnModel:
    return MusicnnModel(MODEL, intra_op_threads=1)


def test_onnx_reproduces_the_tensorflow_outputs(model: MusicnnModel) -> None:
    reference = np.load(REFERENCE)
    output = model.predict(reference["input"])
    assert output.embeddings.shape == (3, EMBEDDING_DIM) and output.tags.shape == (3, len(MSD_TAGS))
    np.testing.assert_allclose(output.embeddings, reference["embedding"], atol=1e-4)
    np.testing.assert_allclose(output.tags, reference["tags"], atol=1e-5)


def test_mel_front_end_matches_librosa() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(16000 * 7) / 16000
    y = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)
    ours = melspec.log_mel(y)
    power = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=256, n_mels=96).T
    theirs = np.log10(10000.0 * power.astype(np.float16).astype(np.float32) + 1.0)
    assert ours.shape == theirs.shape
    # Equal up to float16 rounding of values that sit on a rounding boundary.
    assert np.abs(ours - theirs).max() < 2e-3
    assert np.abs(ours - theirs).mean() < 1e-5


def test_float16_rounding_is_bit_exact() -> None:
    rng = np.random.default_rng(5)
    spread = rng.random(200_000, dtype=np.float32) * np.float32(10.0) ** rng.uniform(-12, 6, 200_000).astype(np.float32)
    odd = np.arange(1, 2048, 2, dtype=np.float32)
    # Exact ties: halfway between float16 neighbours (odd multiples of half a step), normal and subnormal.
    halfway = np.concatenate([1 + odd / 2**11, odd / 2**25, 2**-14 * (1 + odd / 2**11)]).astype(np.float32)
    edges = np.array([0, 2**-24, 2**-25, 2**-14, 65504, 65519.99, 65520, 1e30, np.inf], dtype=np.float32)
    x = np.concatenate([spread, halfway, edges])
    with np.errstate(over="ignore"):
        expected = x.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(melspec.round_to_float16(x), expected)


def test_no_nan_on_a_full_scale_square_wave(model: MusicnnModel) -> None:
    t = np.arange(16000 * 10) / 16000
    square = np.sign(np.sin(2 * np.pi * 41.0 * t)).astype(np.float32)  # loud bass: overflows in float16
    mel = melspec.log_mel(square)
    assert np.isfinite(mel).all()
    output = model.predict(melspec.patches(mel))
    assert np.isfinite(output.embeddings).all() and np.isfinite(output.tags).all()


def test_patches_cover_the_signal() -> None:
    frames = np.arange(187 * 5 + 40, dtype=np.float32)[:, None].repeat(96, axis=1)
    cut = melspec.patches(frames)
    assert cut.shape == (5, 187, 96) and cut[4, 0, 0] == 187 * 4  # trailing partial patch dropped
    short = melspec.patches(frames[:50])
    assert short.shape == (1, 187, 96) and short[0, 50, 0] == 0  # repeated to fill one patch
    spread = melspec.patches(np.zeros((187 * 100, 96), dtype=np.float32) + np.arange(187 * 100)[:, None],
                             max_patches=4)
    assert [int(p[0, 0]) for p in spread] == [0, 187 * 33, 187 * 66, 187 * 99]  # first to last, evenly
