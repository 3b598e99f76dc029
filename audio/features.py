"""Signal features for music analysis: tempo, key, integrated loudness, energy and onset rate.

Input everywhere is a mono float signal `y` of shape (n,), samples in [-1, 1], at sample rate `sr` Hz (the pipeline
passes the 16 kHz signal it feeds to musicnn; any sr ≥ 8000 works). Only numpy and scipy are used: no
librosa.beat/onset/feature/stft, whose numba JIT would cost every fresh worker seconds of compilation. Tempo, key,
loudness and energy together take about 0.07 s for a 3-minute track at 16 kHz on one core; in the analysis pipeline
the tempo reuses musicnn's STFT (`estimate_tempo(..., power=...)`) and the four take about 0.05 s (bench/RESULTS.md's
"features" stage, 0.07 s, also counts the tag and mood summaries).

The functions are independent of each other and return finite values on silence, very short input and full-scale
clipped input: "no answer" is None (tempo, key, loudness), never NaN. Bad input (wrong shape or dtype, NaN/inf
samples, sr below 8000) raises `FeatureError`, whose message names the bad value.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import fft, ndimage, signal

from audio import stft
from audio.errors import AudioError

MIN_SR = 8000
TEMPO_MIN_BPM = 40.0
TEMPO_MAX_BPM = 220.0
MIN_TEMPO_SECONDS = 2.0  # shorter input holds too few beats to show a periodicity
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

_SILENCE_PEAK = 1e-5  # −100 dBFS; a signal whose peak stays below this is treated as silence

# Onset envelope: 40 mel bands at 62.5 frames/s (the musicnn STFT's hop at 16 kHz), levels log1p(1000·E / max E).
_ONSET_FPS = 62.5
_ONSET_WINDOW_SECONDS = 0.032
_ONSET_BANDS = 40
_ONSET_KNEE = 1e3
_ONSET_SMOOTH_SECONDS = 0.01
_ONSET_MIN_GAP_S = 0.05
_ONSET_MIN_RISE = 0.05
_ONSET_DEVIATIONS = 6.0
_ONSET_ACTIVITY = 0.03  # 99th percentile of the mean band rise below this: no onsets at all
# Tempo: comb over 4 beat periods on a 0.14 % grid; octave choice with a log-normal prior.
_COMB_MULTIPLES = 4
_GRID_SIZE = 1200
_PRIOR_CENTRE_BPM = 120.0
_PRIOR_OCTAVES = 1.0
_MIDPOINT_PENALTY = 0.4

# Key: Krumhansl–Kessler probe-tone ratings, index 0 = tonic.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_CHROMA_FMIN = 60.0
_CHROMA_FMAX = 5000.0
_CELLS_PER_SEMITONE = 10
_FINE_CELLS = 12 * _CELLS_PER_SEMITONE
_ENHARMONIC = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E", "E#": "F", "B#": "C"}

# BS.1770-4 K-weighting as analog prototypes: the parameters behind the standard's 48 kHz coefficients.
_SHELF_F0 = 1681.974450955533
_SHELF_GAIN_DB = 3.999843853973347
_SHELF_Q = 0.7071752369554196
_SHELF_MID_EXPONENT = 0.4996667741545416
_HIGHPASS_F0 = 38.13547087602444
_HIGHPASS_Q = 0.5003270373238773
_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = 10.0
_ENERGY_BLOCK = 1 << 16  # samples a partial sum of squares covers (energy)


class FeatureError(AudioError):
    """The input cannot be analysed by a feature function; the message names the bad value."""


@dataclass(frozen=True)
class TempoEstimate:
    """`bpm`: beats per minute in 40..220, None when no periodicity can be measured (silence, < 2 s of audio).

    `confidence`: 0..1, how far the chosen periodicity stands out (see `estimate_tempo`); 0 when bpm is None.
    """

    bpm: float | None
    confidence: float


@dataclass(frozen=True)
class KeyEstimate:
    """`key`: tonic spelled with sharps (C, C#, D, D#, E, F, F#, G, G#, A, A#, B); `scale`: "major" or "minor";
    `camelot`: Camelot wheel code ("8B" = C major); `confidence`: 0..1, see `estimate_key`.

    key, scale and camelot are all None (confidence 0) when the signal holds no pitched energy (silence).
    """

    key: str | None
    scale: Literal["major", "minor"] | None
    camelot: str | None
    confidence: float


# --- tempo -------------------------------------------------------------------------------------------------------


def estimate_tempo(y: np.ndarray, sr: int, *, power: np.ndarray | None = None) -> TempoEstimate:
    """Tempo of a mono signal `y` (n,) at `sr` Hz, in BPM within 40..220, with a 0..1 confidence.

    Method: an onset envelope (spectral flux of 40 log-compressed mel bands at 62.5 frames/s, pooled so that low,
    mid and high registers get one vote each) is autocorrelated; each candidate tempo on a 0.14 % grid is scored by
    its comb support, the mean normalised autocorrelation at 1, 2, 3 and 4 beat periods. The best candidate after
    a prior (below) goes through the octave rule, and its period is refined to sub-frame precision by a
    least-squares fit through the parabolic-interpolated autocorrelation peaks at those 4 multiples (typically
    within 0.1 % on steady material).

    Octave rule: the best candidate T, its double 2T and its half T/2 (those inside 40..220) each get
        score = prior · support · (1 − 0.4 · midpoints)
    where prior = exp(−½·log2(bpm / 120)²) (log-normal, centred on 120 BPM, one octave wide), support is the comb
    value at the candidate's own period and midpoints (clipped to 0..1) is the comb value halfway between its beats
    divided by its support. A faster candidate loses support where every other "beat" is missing; a slower one
    loses up to 40 % when the pulses between its beats are as strong as its beats, which means it is a grouping of
    the faster pulse. The highest score wins.

    Confidence: (S − M) / (1 − M) clipped to 0..1, where S is the comb support at the final period and M the median
    support over all candidate tempi: 1 for a metronome, near 0 when no periodicity stands out (noise, rubato).
    Silence, signals shorter than 2 s and steady sounds without onsets (a held tone, a constant square wave) give
    TempoEstimate(None, 0.0).

    `power`: the onset band energies of `y` when the caller has them already (`stft.band_power` with `onset_bands`
    on the frames of `onset_frames`); the result is the same.
    """
    sr = _check_sr(sr)
    y = _check_signal(y)
    if _is_silent(y) or len(y) < MIN_TEMPO_SECONDS * sr:
        return TempoEstimate(None, 0.0)
    n_fft, hop = onset_frames(sr)
    if power is None:
        power = onset_power(y, sr)
    elif power.shape != (expected := (stft.frame_count(len(y), n_fft=n_fft, hop=hop, centre=True), _ONSET_BANDS)):
        raise FeatureError(f"power has shape {power.shape}; the onset bands of this signal have shape {expected}")
    return tempo_from_onset_power(power, sr, n_samples=len(y), peak=peak_of(y))


def tempo_from_onset_power(power: np.ndarray | Sequence[np.ndarray], sr: int, *, n_samples: int,
                           peak: float) -> TempoEstimate:
    """`estimate_tempo` of a signal of `n_samples` samples whose largest magnitude is `peak`, from the energies of
    its onset bands (frames, 40) alone, whole or in consecutive pieces: what a signal read in chunks keeps of it
    (audio.analyze). The pieces are worked through one at a time, so no copy of them all is made."""
    sr = _check_sr(sr)
    if peak < _SILENCE_PEAK or n_samples < MIN_TEMPO_SECONDS * sr:
        return TempoEstimate(None, 0.0)
    fps = sr / onset_frames(sr)[1]
    activity, registers = _rise_summaries([power] if isinstance(power, np.ndarray) else list(power), sr)
    if activity.size == 0 or np.percentile(activity, 99) < _ONSET_ACTIVITY:
        return TempoEstimate(None, 0.0)  # a steady sound: nothing rises, so there is no pulse to measure
    flux = _register_flux(registers)
    # Removing the 1 s running mean keeps crescendos and section changes out of the periodicity.
    env = ndimage.gaussian_filter1d(flux - ndimage.uniform_filter1d(flux, size=int(fps), mode="nearest"),
                                    _ONSET_SMOOTH_SECONDS * fps)
    # Room for the comb's longest lag (4 periods at 40 BPM = 6 s) plus the refinement's search window.
    max_lag = min(len(env) // 2, math.ceil(1.1 * _COMB_MULTIPLES * 60.0 * fps / TEMPO_MIN_BPM))
    acf = _autocorrelation(env, max_lag)
    bpms = np.geomspace(TEMPO_MIN_BPM, TEMPO_MAX_BPM, _GRID_SIZE)
    bpms = bpms[60.0 * fps / bpms <= max_lag]
    if acf is None or bpms.size == 0:
        return TempoEstimate(None, 0.0)
    comb = _comb(acf, 60.0 * fps / bpms)
    best = float(bpms[np.argmax(comb * _prior(bpms))])
    period = _refine_period(acf, 60.0 * fps / _choose_octave(acf, fps, best, bpms))
    support = float(_comb(acf, np.array([period]))[0])
    baseline = float(np.median(comb))
    confidence = float(np.clip((support - baseline) / max(1.0 - baseline, 1e-9), 0.0, 1.0))
    return TempoEstimate(round(float(60.0 * fps / period), 2), round(confidence, 3))


def onset_frames(sr: int) -> tuple[int, int]:
    """(n_fft, hop) of the onset STFT at `sr`: a Hann window of ~32 ms, 62.5 frames per second, centred frames.
    At 16 kHz (512, 256): musicnn's own frames, so analysis computes both from one STFT."""
    return _next_pow2(_ONSET_WINDOW_SECONDS * sr), round(sr / _ONSET_FPS)


def onset_power(y: np.ndarray, sr: int) -> np.ndarray:
    """Energy of the 40 onset bands per frame (see `onset_frames`), shape (frames, 40), float32."""
    sr = _check_sr(sr)
    y = _check_signal(y)
    n_fft, hop = onset_frames(sr)
    return stft.band_power(y, n_fft=n_fft, hop=hop, bases=[onset_bands(sr, n_fft)], centre=True)[0]


def _band_rise(power: np.ndarray) -> np.ndarray:
    """Frame-to-frame rise of the 40 onset-band levels, shape (frames − 1, 40), ≥ 0; all zeros for silence.

    A band's level is log1p(1000·E / max E) of its energy E: logarithmic over the top 30 dB of the track and nearly
    linear, so close to zero, below that, which keeps quiet noise from looking like onsets.
    """
    peak = float(power.max()) if power.size else 0.0
    if peak <= 0.0 or len(power) < 2:
        return np.zeros((max(0, len(power) - 1), _ONSET_BANDS), dtype=np.float32)
    level = np.log1p(power * (_ONSET_KNEE / peak))
    return np.maximum(0.0, np.diff(level, axis=0))


def _rise_summaries(parts: list[np.ndarray], sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Of the onset band energies in consecutive pieces: each frame's mean band rise (`_band_rise`), shape
    (frames − 1,), and its mean rise per register (frames − 1, registers), computed a piece at a time. Registers:
    band centres below 250 Hz, 250 Hz–2.5 kHz, above."""
    top = max((float(p.max()) for p in parts if p.size), default=0.0)
    selections = [sel for sel in _onset_registers(sr) if sel.any()]
    activity: list[np.ndarray] = []
    registers: list[np.ndarray] = []
    previous: np.ndarray | None = None
    for part in parts if top > 0.0 else []:
        if not len(part):
            continue
        block = part if previous is None else np.concatenate([previous, part])
        previous = part[-1:]
        if len(block) < 2:
            continue
        rise = np.maximum(0.0, np.diff(np.log1p(block * (_ONSET_KNEE / top)), axis=0))  # as `_band_rise`
        activity.append(rise.mean(axis=1))
        registers.append(np.stack([rise[:, sel].mean(axis=1) for sel in selections], axis=1))
    if not activity:
        return np.zeros(0, dtype=np.float32), np.zeros((0, len(selections)), dtype=np.float32)
    return np.concatenate(activity), np.concatenate(registers)


def _register_flux(registers: np.ndarray) -> np.ndarray:
    """Onset envelope for tempo, shape (frames,), from the registers' mean band rises with one vote each.

    Each register's mean rise is scaled to unit standard deviation and the registers are averaged. Without this a
    narrowband kick drum counts for far less than a broadband snare or hi-hat, and the backbeat alone looks like
    the beat.
    """
    spread = registers.std(axis=0)
    # A register with almost no activity keeps its own small scale instead of having its noise blown up.
    return (registers / np.maximum(spread, 0.1 * spread.max() + 1e-12)).mean(axis=1, dtype=np.float64)


def _autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray | None:
    """Unbiased autocorrelation of x at lags 0..max_lag, divided by lag 0, shape (max_lag + 1,); None if x ≡ 0."""
    n = len(x)
    size = 1 << (n + max_lag).bit_length()
    spectrum = fft.rfft(x, size)
    acf = fft.irfft(spectrum.real**2 + spectrum.imag**2, size)[: max_lag + 1]
    acf /= n - np.arange(max_lag + 1)  # each lag's overlap, so long lags are not biased down
    if acf[0] <= 1e-12:
        return None
    return acf / acf[0]


def _comb(acf: np.ndarray, periods: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """Mean of acf at lags (k − offset)·period, k = 1..4, for each period in frames; shape (len(periods),).

    Fractional lags are interpolated linearly; lags beyond the autocorrelation are left out of the mean.
    """
    lags = np.asarray(periods, dtype=np.float64)[:, None] * (np.arange(1, _COMB_MULTIPLES + 1) - offset)
    inside = lags <= len(acf) - 1
    values = np.where(inside, np.interp(lags, np.arange(len(acf)), acf), 0.0)
    return values.sum(axis=1) / np.maximum(inside.sum(axis=1), 1)


def _prior(bpm: np.ndarray | float) -> np.ndarray:
    return np.exp(-0.5 * (np.log2(np.asarray(bpm) / _PRIOR_CENTRE_BPM) / _PRIOR_OCTAVES) ** 2)


def _choose_octave(acf: np.ndarray, fps: float, best: float, bpms: np.ndarray) -> float:
    """`best`, its double or its half, whichever scores highest under the octave rule of `estimate_tempo`."""
    scores: dict[float, float] = {}
    for factor in (0.5, 1.0, 2.0):
        target = best * factor
        if not bpms[0] <= target <= bpms[-1]:
            continue
        bpm = _local_best(acf, fps, target, bpms)
        period = np.array([60.0 * fps / bpm])
        support = float(_comb(acf, period)[0])
        midpoints = float(_comb(acf, period, 0.5)[0]) / support if support > 0 else 0.0
        scores[bpm] = float(_prior(bpm)) * support * (1.0 - _MIDPOINT_PENALTY * min(max(midpoints, 0.0), 1.0))
    return max(scores, key=scores.__getitem__)


def _local_best(acf: np.ndarray, fps: float, bpm: float, bpms: np.ndarray) -> float:
    """The grid tempo within ±2 % of `bpm` with the highest comb support (half and double land between grid steps)."""
    near = bpms[np.abs(np.log2(bpms / bpm)) <= 0.03]
    if near.size == 0:
        return bpm
    return float(near[np.argmax(_comb(acf, 60.0 * fps / near))])


def _refine_period(acf: np.ndarray, period: float) -> float:
    """Period in frames fitted through the autocorrelation peaks near k·period, k = 1..4.

    Each peak is located to a fraction of a frame by a parabola through its three highest samples; the period is
    the least-squares slope through the origin, Σ k·peak_k / Σ k². Multiples without a clear peak are skipped;
    without any, `period` is returned unchanged.
    """
    weighted_sum = squares = 0.0
    for k in range(1, _COMB_MULTIPLES + 1):
        centre = k * period
        reach = max(2.0, 0.02 * centre)
        lo, hi = math.floor(centre - reach), math.ceil(centre + reach)
        if lo < 1 or hi >= len(acf) - 1:
            break
        i = lo + int(np.argmax(acf[lo : hi + 1]))
        left, top, right = acf[i - 1], acf[i], acf[i + 1]
        if i in (lo, hi) or top < left or top < right:
            continue  # the maximum is on the window's edge: no peak here
        curvature = left - 2.0 * top + right
        peak = i + (0.5 * float(left - right) / float(curvature) if curvature < 0 else 0.0)
        weighted_sum += k * peak
        squares += k * k
    return weighted_sum / squares if squares else period


def onset_rate(y: np.ndarray, sr: int) -> float:
    """Note or drum onsets per second of signal (≥ 0; 0.0 for silence) for a mono signal `y` (n,) at `sr` Hz.

    An onset is a peak of the mean band-level rise (the flux behind `estimate_tempo`, without register pooling,
    smoothed over ~10 ms) that is the largest within ±50 ms and stands above the running median over 0.5 s by at
    least max(0.05, 6 × the running median absolute deviation). The floor of 0.05 is roughly a 5 % jump in energy
    across all bands, or a larger one in some; the deviation term keeps the random flicker of noise-like sounds
    from counting. Stationary noise, steady tones and slow swells give ~0.
    """
    sr = _check_sr(sr)
    y = _check_signal(y)
    if _is_silent(y):
        return 0.0
    rise = _band_rise(onset_power(y, sr))
    fps = sr / onset_frames(sr)[1]
    if len(rise) == 0:
        return 0.0
    flux = ndimage.gaussian_filter1d(rise.mean(axis=1), _ONSET_SMOOTH_SECONDS * fps)
    reach = max(1, round(_ONSET_MIN_GAP_S * fps))
    is_peak = flux == ndimage.maximum_filter1d(flux, size=2 * reach + 1, mode="nearest")
    window = round(0.5 * fps) | 1
    background = ndimage.median_filter(flux, size=window, mode="nearest")
    deviation = ndimage.median_filter(np.abs(flux - background), size=window, mode="nearest")
    margin = np.maximum(_ONSET_MIN_RISE, _ONSET_DEVIATIONS * deviation)
    count = int(np.count_nonzero(is_peak & (flux >= background + margin)))
    return round(count * sr / len(y), 3)


# --- key ---------------------------------------------------------------------------------------------------------


def estimate_key(y: np.ndarray, sr: int) -> KeyEstimate:
    """Musical key of a mono signal `y` (n,) at `sr` Hz: tonic (sharps), major/minor, Camelot code, confidence.

    Method: a 12-bin pitch-class profile of the whole signal (see `_chroma`: ~0.5 s STFT frames, 60 Hz–5 kHz,
    tuning-compensated, log-compressed per frame) is correlated (Pearson) with the Krumhansl–Kessler major and
    minor profiles rotated to all 24 tonics; the best correlation wins.

    Confidence: (r1 − r2) / (1 − r2) clipped to 0..1, where r1 and r2 are the best and second-best of the 24
    correlations: the winner's lead as a share of the headroom above the runner-up. Clean diatonic material gives
    about 0.6–0.9; a value under ~0.1 means another key (often the relative, parallel or a fifth away) fits
    almost as well. Silence gives KeyEstimate(None, None, None, 0.0).
    """
    sr = _check_sr(sr)
    y = _check_signal(y)
    spectra = KeySpectra(sr)
    return key_from_spectra([*spectra.feed(y), *spectra.finish()], sr, peak=peak_of(y))


class KeySpectra(stft.BandPowerStream):
    """The key estimate's spectra of a signal fed in chunks: 120 pitch-class cells per ~0.5 s frame."""

    def __init__(self, sr: int) -> None:
        n_fft = _next_pow2(0.5 * sr)
        super().__init__(n_fft=n_fft, hop=n_fft // 2, bases=[_fine_pitch_fold(sr, n_fft)], centre=False)


def key_from_spectra(fine: list[np.ndarray], sr: int, *, peak: float) -> KeyEstimate:
    """`estimate_key` of a signal whose largest magnitude is `peak`, from its KeySpectra output (in pieces)."""
    chroma = None if peak < _SILENCE_PEAK or not fine else _chroma(np.concatenate(fine), _next_pow2(0.5 * sr))
    if chroma is None:
        return KeyEstimate(None, None, None, 0.0)
    z = (chroma - chroma.mean()) / chroma.std()
    correlations = _key_profiles() @ z / 12.0
    runner_up, winner = np.argsort(correlations)[-2:]
    best, second = float(correlations[winner]), float(correlations[runner_up])
    key = PITCH_CLASSES[int(winner) % 12]
    scale: Literal["major", "minor"] = "minor" if winner >= 12 else "major"
    confidence = float(np.clip((best - second) / max(1.0 - second, 1e-9), 0.0, 1.0))
    return KeyEstimate(key, scale, camelot_code(key, scale), round(confidence, 3))


def camelot_code(key: str, scale: str) -> str:
    """Camelot wheel code of a key: "8B" for C major, "8A" for A minor, "9B" for G major, "9A" for E minor, ...

    `key` is a tonic name with sharps or flats ("F#" or "Gb"); `scale` is "major" (B) or "minor" (A). Keys a fifth
    apart are neighbours (number ± 1, 12 wraps to 1); relative major and minor share a number.
    """
    name = _ENHARMONIC.get(key, key)
    if name not in PITCH_CLASSES:
        raise FeatureError(f"key={key!r} is not a pitch class name (C, C# or Db, ..., B)")
    if scale not in ("major", "minor"):
        raise FeatureError(f"scale={scale!r} is not 'major' or 'minor'")
    tonic = PITCH_CLASSES.index(name)
    relative_major = tonic if scale == "major" else (tonic + 3) % 12
    number = (7 * relative_major + 7) % 12 + 1  # C major is 8; each fifth up is one step round the wheel
    return f"{number}{'B' if scale == 'major' else 'A'}"


def _chroma(fine: np.ndarray, n_fft: int) -> np.ndarray | None:
    """Pitch-class profile of the whole signal from its KeySpectra `fine` (frames, 120), shape (12,), index 0 = C;
    None when no pitch class stands out.

    STFT with ~0.5 s frames (8192 samples at 16 kHz: 1.95 Hz bins) and 50 % overlap. The energy of each bin from
    60 Hz to 5 kHz is folded onto a 10-cent pitch-class grid; the grid's circular mean gives the track's tuning
    offset, and each grid cell then goes to its nearest equal-tempered pitch class, weighted by cos² of its distance
    from that semitone (cells between two semitones count for little). Each frame's 12 energies are compressed,
    log1p(100·E / loudest frame's energy), and the frames summed, so the profile reflects how long a pitch class
    sounds more than how loud it is.
    """
    loudest = float(fine.sum(axis=1).max())
    if loudest <= (_SILENCE_PEAK * n_fft / 4.0) ** 2:
        return None  # less than a −100 dBFS sine in range: DC, infrasound or ultrasound only
    cells = np.arange(_FINE_CELLS) / _CELLS_PER_SEMITONE
    tuning = float(np.angle(fine.sum(axis=0) @ np.exp(2j * np.pi * cells)) / (2.0 * np.pi))  # semitones, ±0.5
    semitones = cells - tuning
    nearest = np.rint(semitones)
    to_classes = np.zeros((_FINE_CELLS, 12), dtype=np.float32)
    to_classes[np.arange(_FINE_CELLS), nearest.astype(int) % 12] = np.cos(np.pi * (semitones - nearest)) ** 2
    chroma = np.log1p((100.0 / loudest) * (fine @ to_classes)).sum(axis=0, dtype=np.float64)
    if chroma.max() - chroma.min() <= 1e-9 * chroma.max():
        return None
    return chroma


@functools.cache
def _fine_pitch_fold(sr: int, n_fft: int) -> np.ndarray:
    """STFT bin → 10-cent pitch-class cell matrix (cell 0 = C at A440), shape (bins, 120), float32.

    Each bin is split linearly between its two nearest cells; bins outside 60 Hz..min(5 kHz, 0.45·sr) get none.
    """
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    rows = np.flatnonzero((freqs >= _CHROMA_FMIN) & (freqs <= min(_CHROMA_FMAX, 0.45 * sr)))
    position = (12.0 * np.log2(freqs[rows] / 440.0) + 69.0) * _CELLS_PER_SEMITONE
    lower = np.floor(position).astype(int)
    upper_share = position - lower
    fold = np.zeros((len(freqs), _FINE_CELLS), dtype=np.float32)
    fold[rows, lower % _FINE_CELLS] = 1.0 - upper_share
    fold[rows, (lower + 1) % _FINE_CELLS] += upper_share
    fold.setflags(write=False)
    return fold


@functools.cache
def _key_profiles() -> np.ndarray:
    """Z-scored KK profiles of the 24 keys, shape (24, 12): rows 0–11 C..B major, rows 12–23 C..B minor."""
    profiles = np.array([np.roll(profile, tonic) for profile in (_KK_MAJOR, _KK_MINOR) for tonic in range(12)])
    return (profiles - profiles.mean(axis=1, keepdims=True)) / profiles.std(axis=1, keepdims=True)


# --- loudness and energy -----------------------------------------------------------------------------------------


def loudness_lufs(y: np.ndarray, sr: int) -> float | None:
    """Integrated loudness of a mono signal `y` (n,) at `sr` Hz per ITU-R BS.1770-4, in LUFS (rounded to 0.01).

    K-weighting (`k_weighting_sos`), mean square over 400 ms blocks every 100 ms (75 % overlap), block loudness
    −0.691 + 10·log10(mean square). Blocks at or below −70 LUFS are dropped (absolute gate), then blocks at or below
    the relative gate: 10 LU under the loudness of the mean of the remaining blocks' mean squares. The result is the
    loudness of the mean of the mean squares that pass both gates.
    A full-scale 997 Hz sine reads −3.01 LUFS at 48 kHz (−2.97 at 16 kHz, where the bilinear shelf is slightly
    warped); typical music reads −30..−5. None when no block passes the absolute gate (silence, or anything
    quieter than −70 LUFS) or the signal is shorter than one 400 ms block.
    """
    sr = _check_sr(sr)
    meter = LoudnessMeter(sr)
    meter.feed(_check_signal(y))
    return meter.lufs()


class LoudnessMeter:
    """`loudness_lufs` of a signal fed in chunks of any length, the same to the bit: the K-weighting filter carries
    its state from chunk to chunk and only the 100 ms steps' energies are kept (10 numbers a second)."""

    def __init__(self, sr: int) -> None:
        self.sr = _check_sr(sr)
        self.step = round(0.1 * self.sr)
        # float32 filtering differs from float64 by < 0.001 LU on music and is faster; the sums are float64.
        self._sos = k_weighting_sos(self.sr).astype(np.float32)
        self._state = np.zeros((len(self._sos), 2), dtype=np.float32)
        self._carry = np.zeros(0, dtype=np.float32)  # weighted samples of the step not yet complete
        self._step_energy: list[np.ndarray] = []
        self.samples = 0
        self.peak = 0.0

    def feed(self, chunk: np.ndarray) -> None:
        if not len(chunk):
            return
        self.samples += len(chunk)
        self.peak = max(self.peak, peak_of(chunk))
        weighted, self._state = signal.sosfilt(self._sos, chunk, zi=self._state)
        weighted = np.concatenate([self._carry, weighted.astype(np.float32, copy=False)])
        steps = len(weighted) // self.step
        self._step_energy.append(
            np.square(weighted[: steps * self.step].reshape(steps, self.step), dtype=np.float64).sum(axis=1))
        self._carry = weighted[steps * self.step:].copy()

    def lufs(self) -> float | None:
        if self.samples < 4 * self.step or self.peak < _SILENCE_PEAK:
            return None
        step_energy = np.concatenate(self._step_energy)
        block_mean_square = np.convolve(step_energy, np.ones(4), mode="valid") / (4 * self.step)  # 4 steps = a block
        gated = block_mean_square[block_mean_square > _mean_square_at(_ABSOLUTE_GATE_LUFS)]
        if gated.size == 0:
            return None
        gated = gated[gated > gated.mean() * 10.0 ** (-_RELATIVE_GATE_LU / 10.0)]
        return round(float(-0.691 + 10.0 * np.log10(gated.mean())), 2)


def _mean_square_at(lufs: float) -> float:
    return float(10.0 ** ((lufs + 0.691) / 10.0))


@functools.cache
def k_weighting_sos(sr: int) -> np.ndarray:
    """BS.1770-4 K-weighting at `sr` Hz as second-order sections, shape (2, 6): high shelf, then RLB high-pass.

    Both stages are the bilinear transform of their analog prototypes (shelf: 1681.97 Hz, +4.0 dB, Q 0.7072;
    high-pass: 38.135 Hz, Q 0.5003), so any sample rate works; at 48 kHz this reproduces the coefficients tabled in
    the standard. The array is cached and read-only.
    """
    sr = _check_sr(sr)
    k = math.tan(math.pi * _SHELF_F0 / sr)
    high_gain = 10.0 ** (_SHELF_GAIN_DB / 20.0)
    mid_gain = high_gain**_SHELF_MID_EXPONENT
    a0 = 1.0 + k / _SHELF_Q + k * k
    shelf = [
        (high_gain + mid_gain * k / _SHELF_Q + k * k) / a0,
        2.0 * (k * k - high_gain) / a0,
        (high_gain - mid_gain * k / _SHELF_Q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / _SHELF_Q + k * k) / a0,
    ]
    k = math.tan(math.pi * _HIGHPASS_F0 / sr)
    a0 = 1.0 + k / _HIGHPASS_Q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _HIGHPASS_Q + k * k) / a0]
    sos = np.array([shelf, highpass])
    sos.setflags(write=False)
    return sos


def energy(y: np.ndarray, *, floor_db: float = -60.0) -> float:
    """Overall level of a signal `y` (n,) as a 0..1 score: RMS in dBFS mapped linearly from `floor_db` → 0 to 0 → 1.

    dBFS here is 20·log10(RMS) with full scale = 1.0, so a full-scale square wave is 0 dBFS (energy 1.0) and a
    full-scale sine −3 dBFS (0.95). With the default floor of −60 dBFS: typical mastered music (RMS −20..−8 dBFS)
    lands at 0.67–0.87, quiet classical or ambient (−35..−25) at 0.42–0.58, silence and empty input at 0.0.
    Independent of the sample rate, so it takes none.
    """
    meter = EnergyMeter(floor_db=floor_db)
    meter.feed(_check_signal(y))
    return meter.energy()


class EnergyMeter:
    """`energy` of a signal fed in chunks of any length, the same to the bit: squares are summed in blocks of
    _ENERGY_BLOCK samples counted from the signal's start, whatever the chunks, and the blocks' sums added exactly
    (880 numbers an hour)."""

    def __init__(self, *, floor_db: float = -60.0) -> None:
        if not floor_db < 0.0:
            raise FeatureError(f"floor_db={floor_db!r} is not below 0 dBFS")
        self.floor_db = floor_db
        self.samples = 0
        self._block_sums: list[float] = []
        self._carry = np.zeros(0, dtype=np.float32)

    def feed(self, chunk: np.ndarray) -> None:
        self.samples += len(chunk)
        data = np.concatenate([self._carry, chunk]) if len(self._carry) else chunk
        whole = len(data) // _ENERGY_BLOCK * _ENERGY_BLOCK
        if whole:
            self._block_sums.extend(
                np.square(data[:whole].reshape(-1, _ENERGY_BLOCK), dtype=np.float64).sum(axis=1).tolist())
        self._carry = np.array(data[whole:], dtype=np.float32)

    def energy(self) -> float:
        # fsum: exact, so the blocks' order and grouping (how the chunks fell) cannot change the last bit
        total = math.fsum([*self._block_sums, float(np.square(self._carry, dtype=np.float64).sum())])
        mean_square = total / self.samples if self.samples else 0.0
        if mean_square <= 0.0:
            return 0.0
        rms_dbfs = 10.0 * math.log10(mean_square)
        return round(min(1.0, max(0.0, 1.0 - rms_dbfs / self.floor_db)), 4)


# --- shared helpers ----------------------------------------------------------------------------------------------


def _check_sr(sr: int) -> int:
    if isinstance(sr, bool) or not isinstance(sr, int | float | np.integer | np.floating):
        raise FeatureError(f"sr={sr!r} is not a number of Hz")
    if not float(sr).is_integer() or sr < MIN_SR:
        raise FeatureError(f"sr={sr!r} is not a whole number of Hz ≥ {MIN_SR}")
    return int(sr)


def _check_signal(y: np.ndarray) -> np.ndarray:
    """`y` as a contiguous float32 array (n,); FeatureError on a wrong shape or dtype or non-finite samples."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise FeatureError(f"y has shape {arr.shape}; expected a mono signal of shape (n,)")
    if not np.issubdtype(arr.dtype, np.floating):
        raise FeatureError(f"y has dtype {arr.dtype}; expected float samples in [-1, 1]")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise FeatureError(f"y has {bad.size} non-finite samples; the first is y[{bad[0]}]={arr[bad[0]]}")
    return arr


def _is_silent(y: np.ndarray) -> bool:
    return peak_of(y) < _SILENCE_PEAK


def peak_of(y: np.ndarray) -> float:
    """The largest magnitude of the samples (0 for none): what tempo, key and loudness need of a chunk."""
    return max(float(y.max()), -float(y.min())) if y.size else 0.0


def _next_pow2(x: float) -> int:
    return 1 << max(0, round(math.log2(x)))


def _mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def _onset_band_edges(sr: int) -> np.ndarray:
    """42 edges (Hz) of 40 triangular bands evenly spaced in mel from 30 Hz to min(8 kHz, 0.45·sr)."""
    mel_edges = np.linspace(_mel(30.0), _mel(min(8000.0, 0.45 * sr)), _ONSET_BANDS + 2)
    return 700.0 * (10.0 ** (mel_edges / 2595.0) - 1.0)


@functools.cache
def onset_bands(sr: int, n_fft: int) -> np.ndarray:
    """The 40 onset bands as a band matrix: triangular, evenly spaced in mel from 30 Hz to min(8 kHz, 0.45·sr),
    each band summing to 1, shape (n_fft // 2 + 1, 40), float32, read-only."""
    edges = _onset_band_edges(sr)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    freqs = np.arange(n_fft // 2 + 1)[:, None] * sr / n_fft
    weights = np.maximum(0.0, np.minimum((freqs - lower) / (centre - lower), (upper - freqs) / (upper - centre)))
    empty = np.flatnonzero(weights.sum(axis=0) == 0)
    # A band narrower than the bin spacing falls between bins; it takes its nearest bin instead of nothing.
    weights[np.rint(centre[empty] * n_fft / sr).astype(int), empty] = 1.0
    bands = (weights / weights.sum(axis=0)).astype(np.float32)
    bands.setflags(write=False)
    return bands


@functools.cache
def _onset_registers(sr: int) -> tuple[np.ndarray, ...]:
    """Boolean band masks (40,) of the low (< 250 Hz), mid (250 Hz–2.5 kHz) and high registers."""
    centres = _onset_band_edges(sr)[1:-1]
    return centres < 250.0, (centres >= 250.0) & (centres < 2500.0), centres >= 2500.0
