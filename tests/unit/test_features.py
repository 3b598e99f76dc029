"""Signal features on generated audio: tempo within 2 % and in the right octave, key and Camelot code, BS.1770
loudness, energy, onset rate, and finite answers on silence, tiny input and clipped input."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import cast

import numpy as np
import pytest

from audio.features import (
    PITCH_CLASSES,
    FeatureError,
    KeyEstimate,
    TempoEstimate,
    camelot_code,
    energy,
    estimate_key,
    estimate_tempo,
    k_weighting_sos,
    loudness_lufs,
    onset_rate,
)

SR = 16000


# --- generated signals -------------------------------------------------------------------------------------------


def _place(n: int, times: np.ndarray, sound: np.ndarray, *, sr: int, gain: float) -> np.ndarray:
    """`sound` added at each time (s) into n samples of silence."""
    out = np.zeros(n)
    for start in np.rint(np.asarray(times) * sr).astype(int):
        if start >= n:
            break
        length = min(len(sound), n - start)
        out[start:start + length] += gain * sound[:length]
    return out


def _click_track(bpm: float, *, seconds: float = 24.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """5 ms-decay noise bursts at `bpm` over a −50 dBFS noise floor."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(int(0.03 * sr)) / sr
    click = rng.standard_normal(len(t)) * np.exp(-t / 0.005)
    y = _place(n, np.arange(0.1, seconds, 60.0 / bpm), click, sr=sr, gain=0.5)
    return (y + 0.003 * rng.standard_normal(n)).astype(np.float32)


def _drum_pattern(bpm: float, *, seconds: float = 24.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Kick on beats 1 and 3, snare on 2 and 4, closed hi-hat on every eighth note; peak 0.8."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    beat = 60.0 / bpm
    t = np.arange(int(0.3 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 * t + 2.1 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.12)  # 120 → 50 Hz drop
    t = np.arange(int(0.2 * sr)) / sr
    snare = (0.6 * rng.standard_normal(len(t)) + 0.5 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t / 0.06)
    t = np.arange(int(0.05 * sr)) / sr
    hat = np.diff(rng.standard_normal(len(t) + 1)) * np.exp(-t / 0.012)  # differenced noise: mostly highs
    beats = np.arange(0.05, seconds, beat)
    y = _place(n, beats[0::2], kick, sr=sr, gain=0.9) + _place(n, beats[1::2], snare, sr=sr, gain=0.5)
    y += _place(n, np.arange(0.05, seconds, beat / 2), hat, sr=sr, gain=0.2)
    y += 0.002 * rng.standard_normal(n)
    return (0.8 * y / np.max(np.abs(y))).astype(np.float32)


def _tone(midi: float, seconds: float, *, sr: int, cents: float = 0.0) -> np.ndarray:
    """A triangle-like note (odd partials at 1/k²) with a 20 ms attack and a slow decay."""
    freq = 440.0 * 2.0 ** ((midi - 69) / 12 + cents / 1200)
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(np.sin(2 * np.pi * k * freq * t) / k**2 for k in (1, 3, 5))
    return wave * np.minimum(1.0, t / 0.02) * np.exp(-t / 1.5)


def _cadence(tonic: str, scale: str, *, sr: int = SR, cents: float = 0.0, seed: int = 0) -> np.ndarray:
    """I–IV–V–I (major) or i–iv–V–i (harmonic minor) three times, 1 s per chord: triad an octave above the bass
    note on the chord root; peak 0.3, with a little noise."""
    root = 48 + PITCH_CLASSES.index(tonic)
    third = 4 if scale == "major" else 3
    chords = [(0, third, 7), (5, 5 + third, 12), (7, 11, 14), (0, third, 7)]  # V is major in both
    chord_audio = [sum(_tone(root + 12 + step, 1.0, sr=sr, cents=cents) for step in chord)
                   + _tone(root + chord[0], 1.0, sr=sr, cents=cents) for chord in chords]
    y = np.tile(np.concatenate(chord_audio), 3)
    y += 0.01 * np.random.default_rng(seed).standard_normal(len(y))
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def _sine(freq: float, *, peak: float, seconds: float, sr: int) -> np.ndarray:
    return (peak * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


# --- tempo -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bpm", [60, 72, 90, 100, 120, 128, 140, 160, 174, 180])
def test_click_track_tempo_within_2_percent(bpm: int) -> None:
    estimate = estimate_tempo(_click_track(bpm, seed=bpm), SR)
    assert estimate.bpm is not None
    assert estimate.bpm == pytest.approx(bpm, rel=0.02)
    assert estimate.confidence > 0.8


@pytest.mark.parametrize("bpm", [90, 120, 150])
def test_drum_pattern_tempo_is_not_halved_or_doubled(bpm: int) -> None:
    # 90: the hi-hats' 180 is in range; 150: the kick-to-kick 75 is in range. Both must stay at the beat.
    estimate = estimate_tempo(_drum_pattern(bpm, seed=bpm), SR)
    assert estimate.bpm is not None
    assert estimate.bpm == pytest.approx(bpm, rel=0.02)
    assert estimate.confidence > 0.5


@pytest.mark.parametrize("sr", [8000, 22050, 44100])
def test_tempo_at_other_sample_rates(sr: int) -> None:
    assert estimate_tempo(_click_track(128, sr=sr), sr).bpm == pytest.approx(128, rel=0.02)
    assert estimate_tempo(_drum_pattern(100, sr=sr), sr).bpm == pytest.approx(100, rel=0.02)


def test_tempo_confidence_separates_a_beat_from_noise() -> None:
    noise = (0.3 * np.random.default_rng(7).standard_normal(20 * SR)).astype(np.float32)
    assert estimate_tempo(noise, SR).confidence < 0.2
    assert estimate_tempo(_click_track(110), SR).confidence > 0.8


@pytest.mark.parametrize("y", [
    np.zeros(10 * SR, dtype=np.float32),  # silence
    _click_track(120, seconds=1.5),  # too short to show a periodicity
    _sine(440, peak=0.5, seconds=10, sr=SR),  # a steady tone has no onsets
], ids=["silence", "1.5 s", "steady sine"])
def test_tempo_is_none_without_a_measurable_pulse(y: np.ndarray) -> None:
    assert estimate_tempo(y, SR) == TempoEstimate(None, 0.0)


# --- key ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["major", "minor"])
@pytest.mark.parametrize("tonic", PITCH_CLASSES)
def test_cadence_gives_its_key(tonic: str, scale: str) -> None:
    estimate = estimate_key(_cadence(tonic, scale), SR)
    assert (estimate.key, estimate.scale) == (tonic, scale)
    assert estimate.camelot == camelot_code(tonic, scale)
    assert 0.3 < estimate.confidence <= 1.0


@pytest.mark.parametrize("cents", [-40, 35])
def test_key_survives_detuning(cents: float) -> None:
    estimate = estimate_key(_cadence("D", "major", cents=cents), SR)
    assert (estimate.key, estimate.scale) == ("D", "major")


def test_key_with_drums_on_top() -> None:
    chords = _cadence("F#", "minor")
    y = chords + _drum_pattern(120, seconds=len(chords) / SR)[: len(chords)]
    estimate = estimate_key(y, SR)
    assert (estimate.key, estimate.scale) == ("F#", "minor")


@pytest.mark.parametrize("sr", [8000, 44100])
def test_key_at_other_sample_rates(sr: int) -> None:
    estimate = estimate_key(_cadence("A#", "minor", sr=sr), sr)
    assert (estimate.key, estimate.scale) == ("A#", "minor")


def test_key_is_none_for_silence() -> None:
    assert estimate_key(np.zeros(5 * SR, dtype=np.float32), SR) == KeyEstimate(None, None, None, 0.0)


@pytest.mark.parametrize(("key", "scale", "code"), [
    ("C", "major", "8B"), ("A", "minor", "8A"), ("G", "major", "9B"), ("E", "minor", "9A"),
    ("D", "major", "10B"), ("B", "minor", "10A"), ("A", "major", "11B"), ("F#", "minor", "11A"),
    ("E", "major", "12B"), ("C#", "minor", "12A"), ("B", "major", "1B"), ("G#", "minor", "1A"),
    ("F#", "major", "2B"), ("D#", "minor", "2A"), ("C#", "major", "3B"), ("A#", "minor", "3A"),
    ("G#", "major", "4B"), ("F", "minor", "4A"), ("D#", "major", "5B"), ("C", "minor", "5A"),
    ("A#", "major", "6B"), ("G", "minor", "6A"), ("F", "major", "7B"), ("D", "minor", "7A"),
    ("Bb", "major", "6B"), ("Eb", "minor", "2A"), ("Db", "major", "3B"), ("Gb", "major", "2B"),
])
def test_camelot_codes(key: str, scale: str, code: str) -> None:
    assert camelot_code(key, scale) == code


def test_camelot_wheel_steps_by_fifths_and_pairs_relative_keys() -> None:
    for tonic in range(12):
        fifth_up = PITCH_CLASSES[(tonic + 7) % 12]
        here = int(camelot_code(PITCH_CLASSES[tonic], "major")[:-1])
        assert int(camelot_code(fifth_up, "major")[:-1]) == here % 12 + 1
        relative_minor = PITCH_CLASSES[(tonic + 9) % 12]
        assert camelot_code(relative_minor, "minor") == f"{here}A"


@pytest.mark.parametrize(("key", "scale", "message"), [
    ("H", "major", "key='H'"),
    ("C", "dorian", "scale='dorian'"),
])
def test_camelot_rejects_unknown_names(key: str, scale: str, message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        camelot_code(key, scale)


# --- loudness ----------------------------------------------------------------------------------------------------


def test_k_weighting_reproduces_the_48k_coefficients_of_bs1770() -> None:
    shelf, highpass = k_weighting_sos(48000)
    np.testing.assert_allclose(shelf, [1.53512485958697, -2.69169618940638, 1.19839281085285,
                                       1.0, -1.69065929318241, 0.73248077421585], atol=1e-10)
    np.testing.assert_allclose(highpass, [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621], atol=1e-10)


@pytest.mark.parametrize("sr", [16000, 44100, 48000])
def test_full_scale_997_hz_sine_reads_minus_3_lufs(sr: int) -> None:
    full = loudness_lufs(_sine(997, peak=1.0, seconds=10, sr=sr), sr)
    half = loudness_lufs(_sine(997, peak=0.5, seconds=10, sr=sr), sr)
    assert full is not None and half is not None
    assert full == pytest.approx(-3.01, abs=0.3)
    assert full - half == pytest.approx(20 * math.log10(2), abs=0.1)


def test_minus_20_dbfs_rms_1_khz_sine_reads_about_minus_20_lufs() -> None:
    y = _sine(1000, peak=0.1 * math.sqrt(2), seconds=10, sr=SR)
    assert loudness_lufs(y, SR) == pytest.approx(-20.0, abs=0.3)


def test_loudness_gates_silence_and_quiet_passages() -> None:
    tone = _sine(997, peak=0.5, seconds=10, sr=SR)
    reference = loudness_lufs(tone, SR)
    assert reference is not None
    with_silence = np.concatenate([tone, np.zeros(10 * SR, dtype=np.float32)])  # absolute gate at −70 LUFS
    assert loudness_lufs(with_silence, SR) == pytest.approx(reference, abs=0.1)
    with_quiet_part = np.concatenate([tone, tone * 0.01])  # −40 dB: below the relative gate (−10 LU)
    assert loudness_lufs(with_quiet_part, SR) == pytest.approx(reference, abs=0.1)


@pytest.mark.parametrize("y", [
    np.zeros(10 * SR, dtype=np.float32),
    _sine(997, peak=1e-4, seconds=10, sr=SR),  # about −83 LUFS: below the absolute gate
    _sine(997, peak=1.0, seconds=0.3, sr=SR),  # shorter than one 400 ms block
], ids=["silence", "below -70 LUFS", "0.3 s"])
def test_loudness_is_none_when_nothing_passes_the_gates(y: np.ndarray) -> None:
    assert loudness_lufs(y, SR) is None


# --- energy and onset rate ---------------------------------------------------------------------------------------


def test_energy_maps_rms_dbfs_linearly_onto_0_to_1() -> None:
    square = np.sign(_sine(220, peak=1.0, seconds=2, sr=SR) + 1e-9).astype(np.float32)
    assert energy(square) == pytest.approx(1.0)
    assert energy(_sine(997, peak=1.0, seconds=2, sr=SR)) == pytest.approx(1 - 3.0103 / 60, abs=1e-3)
    minus_20 = _sine(997, peak=0.1 * math.sqrt(2), seconds=2, sr=SR)
    assert energy(minus_20) == pytest.approx(2 / 3, abs=1e-3)
    assert energy(minus_20, floor_db=-30.0) == pytest.approx(1 / 3, abs=1e-3)
    assert energy(_sine(997, peak=1e-4, seconds=2, sr=SR)) == 0.0
    assert energy(np.zeros(SR, dtype=np.float32)) == 0.0


def test_energy_rejects_a_floor_at_or_above_full_scale() -> None:
    with pytest.raises(FeatureError, match="floor_db=0.0"):
        energy(np.zeros(10, dtype=np.float32), floor_db=0.0)


def test_onset_rate_counts_clicks_and_drum_hits() -> None:
    assert onset_rate(_click_track(120, seconds=20), SR) == pytest.approx(2.0, abs=0.1)
    assert onset_rate(_drum_pattern(120, seconds=20), SR) == pytest.approx(4.0, abs=0.2)  # eighth notes
    assert onset_rate(_sine(440, peak=0.5, seconds=5, sr=SR), SR) == 0.0
    assert onset_rate(np.zeros(5 * SR, dtype=np.float32), SR) == 0.0


# --- robustness and input checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("y", [
    np.zeros(10 * SR, dtype=np.float32),
    np.zeros(0, dtype=np.float32),
    np.full(1, 0.5, dtype=np.float32),
    (0.3 * np.random.default_rng(3).standard_normal(SR // 2)).astype(np.float32),
    np.sign(_sine(220, peak=1.0, seconds=10, sr=SR) + 1e-9).astype(np.float32),
    np.clip(3 * np.random.default_rng(4).standard_normal(5 * SR), -1, 1),  # float64, clipped
], ids=["silence", "empty", "one sample", "0.5 s noise", "full-scale square", "clipped noise"])
def test_every_feature_is_finite_on_awkward_input(y: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (division by zero, log of zero) either
        tempo = estimate_tempo(y, SR)
        key = estimate_key(y, SR)
        lufs = loudness_lufs(y, SR)
        level = energy(y)
        rate = onset_rate(y, SR)
    assert tempo.bpm is None or 40 <= tempo.bpm <= 220
    assert 0.0 <= tempo.confidence <= 1.0 and 0.0 <= key.confidence <= 1.0
    assert key.key is None or key.key in PITCH_CLASSES
    assert lufs is None or math.isfinite(lufs)
    assert 0.0 <= level <= 1.0 and math.isfinite(rate) and rate >= 0.0


@pytest.mark.parametrize(("call", "message"), [
    (lambda: estimate_tempo(np.zeros((2, 100), dtype=np.float32), SR), r"shape \(2, 100\)"),
    (lambda: estimate_key(np.zeros(100, dtype=np.int16), SR), "dtype int16"),
    (lambda: loudness_lufs(np.array([0.0, np.nan, 0.0], dtype=np.float32), SR), r"y\[1\]=nan"),
    (lambda: onset_rate(np.zeros(100, dtype=np.float32), 4000), "sr=4000"),
    (lambda: estimate_tempo(np.zeros(100, dtype=np.float32), cast(int, 16000.5)), "sr=16000.5"),
    (lambda: energy(np.array([np.inf], dtype=np.float32)), "non-finite"),
])
def test_bad_input_raises_feature_error_naming_the_value(call: Callable[[], object], message: str) -> None:
    with pytest.raises(FeatureError, match=message) as err:
        call()
    assert isinstance(err.value, ValueError)


def test_tempo_refuses_band_power_of_another_signal() -> None:
    y = _click_track(120.0, seconds=10.0)
    with pytest.raises(FeatureError, match="shape"):
        estimate_tempo(y, SR, power=np.zeros((10, 40), dtype=np.float32))
