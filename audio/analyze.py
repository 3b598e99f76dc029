"""One track's full analysis: decoded 16 kHz samples → embedding, tags, tempo, key, energy, loudness, moods."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from audio import features, melspec, stft
from audio.decode import TARGET_SR, AudioError
from audio.moods import mood_scores
from audio.musicnn import MSD_TAGS, MusicnnModel
from audio.parts import FEATURE_PARTS
from audio.track_analysis import ANALYSIS_VERSION, TrackAnalysis

__all__ = ["ANALYSIS_VERSION", "TrackAnalysis", "analyze_parts", "analyze_samples"]

if features.onset_frames(TARGET_SR) != (melspec.N_FFT, melspec.HOP):
    raise ImportError("the onset STFT no longer matches musicnn's frames: analyze_samples cannot share them")
_ONSET_BANDS = features.onset_bands(TARGET_SR, melspec.N_FFT)


def analyze_samples(samples: np.ndarray, *, model: MusicnnModel, max_full_seconds: float = 1200.0,
                    long_track_patches: int = 200, patch_stride: int = 1) -> TrackAnalysis:
    """Analyze a mono float32 signal at 16 kHz (shape (n,)).

    Tracks up to `max_full_seconds` are analyzed whole; longer ones through `long_track_patches` 3-s patches spread
    evenly over the whole file. `patch_stride` n > 1 (fast mode) sends every n-th of those patches through the
    model, evenly over the track: the embedding and tags are means over fewer patches of the same network, so they
    stay in the same space. Raises AudioError for a signal too short or silent to analyze.
    """
    if samples.ndim != 1:
        raise AudioError(f"expected a mono signal of shape (n,), got shape {samples.shape}")
    duration = len(samples) / TARGET_SR
    if len(samples) < TARGET_SR // 10:
        raise AudioError(f"only {duration:.3f} s of audio: too short to analyze")
    timings: dict[str, float] = {}

    started = time.perf_counter()
    # One STFT for both: musicnn's mel bands and the tempo's onset bands use the same frames at 16 kHz.
    mel_power, onset_power = stft.band_power(
        samples, n_fft=melspec.N_FFT, hop=melspec.HOP, bases=[melspec.mel_bands(), _ONSET_BANDS], centre=True)
    mel = melspec.compress(mel_power)
    limit = long_track_patches if duration > max_full_seconds else None
    patches = melspec.patches(mel, max_patches=limit)
    if patch_stride > 1 and len(patches) > 1:
        patches = np.ascontiguousarray(patches[melspec.every_nth(len(patches), patch_stride)])
    timings["mel"] = time.perf_counter() - started

    started = time.perf_counter()
    output = model.predict(patches)
    timings["inference"] = time.perf_counter() - started

    started = time.perf_counter()
    tempo = features.estimate_tempo(samples, TARGET_SR, power=onset_power)
    key = features.estimate_key(samples, TARGET_SR)
    energy = features.energy(samples)
    loudness = features.loudness_lufs(samples, TARGET_SR)
    tag_means = output.tags.mean(axis=0)
    tags = {name: round(float(p), 5) for name, p in zip(MSD_TAGS, tag_means, strict=True)}
    moods = mood_scores(tags, energy=energy, tempo_confidence=tempo.confidence)
    timings["features"] = time.perf_counter() - started

    embedding = output.embeddings.mean(axis=0).astype(np.float32)
    if not np.all(np.isfinite(embedding)):
        raise AudioError("the model produced non-finite values for this audio")
    return TrackAnalysis(
        duration_seconds=duration, embedding=embedding, tags=tags,
        tempo_bpm=tempo.bpm, tempo_confidence=tempo.confidence,
        key=key.key, scale=key.scale, camelot=key.camelot, key_confidence=key.confidence,
        energy=energy, loudness_lufs=loudness, moods=moods, patches_analyzed=len(patches), timings=timings,
        patch_stride=max(int(patch_stride), 1),
    )


def analyze_parts(samples: np.ndarray, parts: set[str], *, tags: dict[str, float], energy: float | None,
                  tempo_confidence: float | None) -> dict[str, Any]:
    """The `parts` of FEATURE_PARTS computed again from a mono float32 signal at 16 kHz, without the model, with the
    moods that follow from them and the stored `tags` (and the stored `energy` and `tempo_confidence` for a part
    not computed): {column: value} for the tracks table, the same values `analyze_samples` gives. Raises AudioError
    for a signal too short to analyze."""
    unknown = parts - FEATURE_PARTS.keys()
    if unknown:
        raise ValueError(f"parts {sorted(unknown)} cannot be computed alone")
    if samples.ndim != 1 or len(samples) < TARGET_SR // 10:
        raise AudioError("too short or not a mono signal: cannot analyze")
    values: dict[str, Any] = {}
    if "tempo" in parts:
        (onset_power,) = stft.band_power(samples, n_fft=melspec.N_FFT, hop=melspec.HOP, bases=[_ONSET_BANDS],
                                         centre=True)
        tempo = features.estimate_tempo(samples, TARGET_SR, power=onset_power)
        values.update(tempo_bpm=tempo.bpm, tempo_confidence=tempo.confidence)
    if "key" in parts:
        key = features.estimate_key(samples, TARGET_SR)
        values.update(musical_key=key.key, scale=key.scale, camelot=key.camelot, key_confidence=key.confidence)
    if "energy" in parts:
        values.update(energy=features.energy(samples), loudness_lufs=features.loudness_lufs(samples, TARGET_SR))
    values["moods"] = mood_scores(tags, energy=float(values.get("energy", energy) or 0.0),
                                  tempo_confidence=float(values.get("tempo_confidence", tempo_confidence) or 0.0))
    return values
