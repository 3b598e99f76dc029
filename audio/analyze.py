"""One track's full analysis: decoded 16 kHz samples → embedding, tags, tempo, key, energy, loudness, moods."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, cast

import numpy as np

from audio import features, melspec, stft
from audio.decode import TARGET_SR, AudioError
from audio.moods import mood_scores
from audio.musicnn import MSD_TAGS, MusicnnModel
from audio.parts import FEATURE_PARTS
from audio.track_analysis import ANALYSIS_VERSION, TrackAnalysis

__all__ = ["ANALYSIS_VERSION", "SignalMeasures", "TrackAnalysis", "analyze_chunks", "analyze_parts",
           "analyze_parts_of_chunks", "analyze_samples"]

if features.onset_frames(TARGET_SR) != (melspec.N_FFT, melspec.HOP):
    raise ImportError("the onset STFT no longer matches musicnn's frames: analyze_samples cannot share them")
_ONSET_BANDS = features.onset_bands(TARGET_SR, melspec.N_FFT)


# A chunk handed to the analysis is measured a piece of at most this many samples at a time (~65 s), so a whole
# signal given at once needs no more working memory than one read in chunks.
FEED_SAMPLES = 1 << 20


class SignalMeasures:
    """What the analysis keeps of a 16 kHz mono signal fed in chunks of any length, the same values as if it were
    measured whole: the mel bands' power (float16, as musicnn rounds it: ~12 KB a second), the onset bands' energy
    (tempo, ~10 KB a second), the key's spectra (~2 KB a second), the loudness meter's 100 ms steps and the energy's
    sums. The signal itself is never held, so a long track costs these few KB a second more than a short one."""

    def __init__(self, *, mel: bool = True, tempo: bool = True, key: bool = True, energy: bool = True) -> None:
        self.samples = 0
        self.peak = 0.0
        self.timings = {"mel": 0.0, "features": 0.0}
        self._mel, self._tempo = mel, tempo
        bases = ([melspec.mel_bands()] if mel else []) + ([_ONSET_BANDS] if tempo else [])
        self._spectra = stft.BandPowerStream(n_fft=melspec.N_FFT, hop=melspec.HOP, bases=bases, centre=True) \
            if bases else None
        self._mel_power: list[np.ndarray] = []
        self._onset_power: list[np.ndarray] = []
        self._key = features.KeySpectra(TARGET_SR) if key else None
        self._key_spectra: list[np.ndarray] = []
        self._loudness = features.LoudnessMeter(TARGET_SR) if energy else None
        self._energy = features.EnergyMeter() if energy else None

    def feed(self, chunk: np.ndarray) -> None:
        chunk = np.asarray(chunk)
        if chunk.ndim != 1:
            raise AudioError(f"expected a mono signal of shape (n,), got shape {chunk.shape}")
        for start in range(0, len(chunk), FEED_SAMPLES):
            piece = np.ascontiguousarray(chunk[start:start + FEED_SAMPLES], dtype=np.float32)
            if not np.all(np.isfinite(piece)):
                raise AudioError(f"the signal holds non-finite samples after {self.samples / TARGET_SR:.1f} s")
            self.samples += len(piece)
            self.peak = max(self.peak, features.peak_of(piece))
            self._measure(piece, last=False)

    def finish(self) -> None:
        self._measure(None, last=True)

    @property
    def duration_seconds(self) -> float:
        return self.samples / TARGET_SR

    def _measure(self, piece: np.ndarray | None, *, last: bool) -> None:
        started = time.perf_counter()
        if self._spectra is not None:
            self._keep_spectra(self._spectra.finish() if last else self._spectra.feed(cast(np.ndarray, piece)))
        self.timings["mel"] += time.perf_counter() - started
        started = time.perf_counter()
        if self._key is not None:
            self._key_spectra.extend(self._key.finish() if last else self._key.feed(cast(np.ndarray, piece)))
        if piece is not None:
            if self._loudness is not None:
                self._loudness.feed(piece)
            if self._energy is not None:
                self._energy.feed(piece)
        self.timings["features"] += time.perf_counter() - started

    def _keep_spectra(self, powers: list[np.ndarray]) -> None:
        if self._mel:
            mel_power = powers.pop(0)
            self._mel_power.append(melspec.round_to_float16(mel_power).astype(np.float16))
        if self._tempo:
            self._onset_power.append(powers.pop(0))

    def model_patches(self, *, max_patches: int | None, patch_stride: int = 1) -> np.ndarray:
        """`melspec.patches` of the log-mel frames (then every `patch_stride`-th, as fast analysis takes them),
        made from the stored pieces a patch at a time: only the patches taken exist in float32."""
        frames = sum(len(p) for p in self._mel_power)
        if frames < melspec.PATCH_FRAMES:  # shorter than a patch: repeated to fill one
            stored = np.concatenate(self._mel_power) if frames else np.zeros((0, melspec.N_MELS), np.float16)
            return melspec.patches(melspec.compress(stored.astype(np.float32)))
        count = frames // melspec.PATCH_FRAMES
        keep = np.arange(count) if max_patches is None or count <= max_patches else melspec.spread(count, max_patches)
        if patch_stride > 1 and len(keep) > 1:
            keep = keep[melspec.every_nth(len(keep), patch_stride)]
        patches = np.empty((len(keep), melspec.PATCH_FRAMES, melspec.N_MELS), dtype=np.float32)
        starts = np.cumsum([0] + [len(p) for p in self._mel_power])
        for row, index in enumerate(keep):
            first = int(index) * melspec.PATCH_FRAMES
            piece = int(np.searchsorted(starts, first, side="right")) - 1
            filled = 0
            while filled < melspec.PATCH_FRAMES:
                part = self._mel_power[piece]
                offset = first + filled - int(starts[piece])
                take = min(melspec.PATCH_FRAMES - filled, len(part) - offset)
                patches[row, filled:filled + take] = part[offset:offset + take]
                filled += take
                piece += 1
            patches[row] = melspec.compress(patches[row])  # the stored power is rounded already: the same values
        return patches

    def tempo(self) -> features.TempoEstimate:
        return features.tempo_from_onset_power(self._onset_power, TARGET_SR, n_samples=self.samples, peak=self.peak)

    def key(self) -> features.KeyEstimate:
        return features.key_from_spectra(self._key_spectra, TARGET_SR, peak=self.peak)

    def energy(self) -> float:
        return cast(features.EnergyMeter, self._energy).energy()

    def loudness_lufs(self) -> float | None:
        return cast(features.LoudnessMeter, self._loudness).lufs()


def analyze_samples(samples: np.ndarray, *, model: MusicnnModel, max_full_seconds: float = 1200.0,
                    long_track_patches: int = 200, patch_stride: int = 1) -> TrackAnalysis:
    """Analyze a mono float32 signal at 16 kHz (shape (n,)): `analyze_chunks` of it whole."""
    if samples.ndim != 1:
        raise AudioError(f"expected a mono signal of shape (n,), got shape {samples.shape}")
    return analyze_chunks([samples], model=model, max_full_seconds=max_full_seconds,
                          long_track_patches=long_track_patches, patch_stride=patch_stride)


def analyze_chunks(chunks: Iterable[np.ndarray], *, model: MusicnnModel, max_full_seconds: float = 1200.0,
                   long_track_patches: int = 200, patch_stride: int = 1) -> TrackAnalysis:
    """Analyze a mono float32 signal at 16 kHz that arrives in consecutive chunks (shape (n,) each, any lengths):
    the same analysis however it is cut, holding only what `SignalMeasures` keeps of it.

    Tracks up to `max_full_seconds` are analyzed whole; longer ones through `long_track_patches` 3-s patches spread
    evenly over the whole file. `patch_stride` n > 1 (fast mode) sends every n-th of those patches through the
    model, evenly over the track: the embedding and tags are means over fewer patches of the same network, so they
    stay in the same space. Raises AudioError for a signal too short or silent to analyze.
    """
    measures = SignalMeasures()
    for chunk in chunks:
        measures.feed(chunk)
    measures.finish()
    duration = measures.duration_seconds
    if measures.samples < TARGET_SR // 10:
        raise AudioError(f"only {duration:.3f} s of audio: too short to analyze")
    timings = dict(measures.timings)

    started = time.perf_counter()
    patches = measures.model_patches(max_patches=long_track_patches if duration > max_full_seconds else None,
                                     patch_stride=patch_stride)
    timings["mel"] += time.perf_counter() - started

    started = time.perf_counter()
    output = model.predict(patches)
    timings["inference"] = time.perf_counter() - started

    started = time.perf_counter()
    tempo = measures.tempo()
    key = measures.key()
    energy = measures.energy()
    loudness = measures.loudness_lufs()
    tag_means = output.tags.mean(axis=0)
    tags = {name: round(float(p), 5) for name, p in zip(MSD_TAGS, tag_means, strict=True)}
    moods = mood_scores(tags, energy=energy, tempo_confidence=tempo.confidence)
    timings["features"] += time.perf_counter() - started

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
    """`analyze_parts_of_chunks` of a whole signal."""
    if samples.ndim != 1:
        raise AudioError("too short or not a mono signal: cannot analyze")
    return analyze_parts_of_chunks([samples], parts, tags=tags, energy=energy, tempo_confidence=tempo_confidence)


def analyze_parts_of_chunks(chunks: Iterable[np.ndarray], parts: set[str], *, tags: dict[str, float],
                            energy: float | None, tempo_confidence: float | None) -> dict[str, Any]:
    """The `parts` of FEATURE_PARTS computed again from a mono float32 signal at 16 kHz (in chunks), without the
    model, with the moods that follow from them and the stored `tags` (and the stored `energy` and
    `tempo_confidence` for a part not computed): {column: value} for the tracks table, the same values
    `analyze_chunks` gives. Raises AudioError for a signal too short to analyze."""
    unknown = parts - FEATURE_PARTS.keys()
    if unknown:
        raise ValueError(f"parts {sorted(unknown)} cannot be computed alone")
    measures = SignalMeasures(mel=False, tempo="tempo" in parts, key="key" in parts, energy="energy" in parts)
    for chunk in chunks:
        measures.feed(chunk)
    measures.finish()
    if measures.samples < TARGET_SR // 10:
        raise AudioError("too short or not a mono signal: cannot analyze")
    values: dict[str, Any] = {}
    if "tempo" in parts:
        tempo = measures.tempo()
        values.update(tempo_bpm=tempo.bpm, tempo_confidence=tempo.confidence)
    if "key" in parts:
        key = measures.key()
        values.update(musical_key=key.key, scale=key.scale, camelot=key.camelot, key_confidence=key.confidence)
    if "energy" in parts:
        values.update(energy=measures.energy(), loudness_lufs=measures.loudness_lufs())
    values["moods"] = mood_scores(tags, energy=float(values.get("energy", energy) or 0.0),
                                  tempo_confidence=float(values.get("tempo_confidence", tempo_confidence) or 0.0))
    return values
