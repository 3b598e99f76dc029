"""CLAP's audio front end and both encoders, on tiny models of CLAP's signature (tests/clap_models.py)."""

from __future__ import annotations

import numpy as np
import pytest

from audio.clap import CLAP_SR, FRAMES, WINDOW, ClapAudioModel, ClapModelError, clap_mel, model_identity, window_starts
from discovery.clap_text import ClapTextEncoder
from tests.clap_models import tone, write_audio_model, write_clap_models, write_text_model, write_tokenizer


def test_windows_are_ten_seconds_with_half_overlap_the_last_ending_at_the_end_and_capped():
    assert window_starts(3 * CLAP_SR, max_windows=60) == [0]
    assert window_starts(WINDOW, max_windows=60) == [0]
    assert window_starts(25 * CLAP_SR, max_windows=60) == [0, 5 * CLAP_SR, 10 * CLAP_SR, 15 * CLAP_SR]
    assert window_starts(27 * CLAP_SR, max_windows=60)[-1] == 17 * CLAP_SR
    capped = window_starts(600 * CLAP_SR, max_windows=5)
    assert len(capped) == 5 and capped[0] == 0 and capped[-1] == 590 * CLAP_SR


def test_the_mel_front_end_has_htsat_s_shape_and_sees_where_the_energy_is():
    high = clap_mel(tone((9000.0,), seconds=10, sr=CLAP_SR, seed=1))
    low = clap_mel(tone((100.0,), seconds=10, sr=CLAP_SR, seed=1))
    assert high.shape == low.shape == (FRAMES, 64) and FRAMES == 1001
    assert high.mean(axis=0).argmax() > 48 and low.mean(axis=0).argmax() < 8


def test_audio_embeddings_are_unit_length_and_follow_the_sound(tmp_path):
    model = ClapAudioModel(write_audio_model(tmp_path / "a.onnx"), max_windows=3)
    high = model.embed(tone((7000.0, 9000.0), seconds=23, sr=CLAP_SR, seed=2))
    short = model.embed(tone((7000.0, 9000.0), seconds=2, sr=CLAP_SR, seed=3))  # one window, repeated
    low = model.embed(tone((90.0, 140.0), seconds=23, sr=CLAP_SR, seed=2))
    for vector in (high, short, low):
        assert vector.shape == (512,) and vector.dtype == np.float32
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    assert float(high @ short) > 0.9 and float(high @ low) < 0
    assert model.name == model_identity(tmp_path / "a.onnx") and model.name.startswith("a.onnx:")


def test_text_embeddings_point_where_their_words_do(tmp_path):
    files = write_clap_models(tmp_path)
    audio = ClapAudioModel(files["CLAP_AUDIO_MODEL_PATH"])
    text = ClapTextEncoder(files["CLAP_TEXT_MODEL_PATH"], files["CLAP_TOKENIZER_PATH"])
    bright, dark, other = text.encode(["Bright", "dark music", "nothing known"])
    assert abs(float(np.linalg.norm(bright)) - 1) < 1e-5 and not other.any()  # unknown words: no direction
    high = audio.embed(tone((8000.0,), seconds=10, sr=CLAP_SR, seed=4))
    low = audio.embed(tone((110.0,), seconds=10, sr=CLAP_SR, seed=4))
    assert float(bright @ high) > float(bright @ low) and float(dark @ low) > float(dark @ high)


def test_models_of_another_shape_are_refused_with_what_they_have(tmp_path):
    tokenizer = write_tokenizer(tmp_path / "tokenizer.json")
    with pytest.raises(ClapModelError, match=r"\(batch, 512\) embeddings.*outputs \[embedding tensor\(float\) "
                                             r"\['batch', 256\]\]"):
        ClapAudioModel(write_audio_model(tmp_path / "narrow.onnx", dimension=256))
    with pytest.raises(ClapModelError, match="64-band mel spectrogram"):
        ClapAudioModel(write_audio_model(tmp_path / "bands.onnx", bands=128))
    with pytest.raises(ClapModelError, match="CLAP_AUDIO_MODEL_PATH .* is not a CLAP audio encoder"):
        ClapAudioModel(write_text_model(tmp_path / "text.onnx"))
    with pytest.raises(ClapModelError, match="CLAP_TEXT_MODEL_PATH .* not a CLAP text encoder: it should take "
                                             "integer input_ids"):
        ClapTextEncoder(write_audio_model(tmp_path / "audio.onnx"), tokenizer)
    with pytest.raises(ClapModelError, match="CLAP_TOKENIZER_PATH .* is not a tokenizer.json"):
        ClapTextEncoder(write_text_model(tmp_path / "text.onnx"), tmp_path / "text.onnx")
    with pytest.raises(ClapModelError, match="CLAP_ENABLED is true but CLAP_TEXT_MODEL_PATH is not set"):
        ClapTextEncoder("", tokenizer)
    with pytest.raises(ClapModelError, match="is not a file"):
        ClapAudioModel(tmp_path / "missing.onnx")


def test_a_track_embedded_as_its_blocks_arrive_is_embedded_as_the_whole(tmp_path):
    """The analysis process embeds a track as it is decoded (never holding it whole at 48 kHz): the same windows
    in the same batches, so the same vector to the bit, however the blocks fall."""
    path = write_audio_model(tmp_path / "a.onnx")
    for max_windows, seconds in ((3, 47), (60, 23), (60, 4)):
        model = ClapAudioModel(path, max_windows=max_windows)
        samples = tone((300.0, 5000.0), seconds=seconds, sr=CLAP_SR, seed=seconds)
        whole = model.embed(samples)
        for size in (CLAP_SR // 3, 7 * CLAP_SR + 11, len(samples)):
            blocks = [samples[i:i + size] for i in range(0, len(samples), size)]
            np.testing.assert_array_equal(model.embed_blocks(len(samples), iter(blocks)), whole)
