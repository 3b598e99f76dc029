"""The fitness of one clustering run: label-aware purity/diversity plus geometric separation, weighted into one score.

Label-aware metrics (spec 2.3) work on a *profile* per cluster, the mean of its members' rows of a value matrix:
the 50 tag probabilities ("mood" purity/diversity) or the six other features danceable … sad ("other feature"
purity/diversity, where a feature only counts for a song when its score reaches `other_threshold`).

* Purity: for each member song, the playlist's top-k profile columns that are active for the song (> 0 and
  ≥ threshold); the song adds the largest of those values, or nothing. The spec sums per playlist; we then divide
  the total over all playlists by the number of songs in the run's sample, noise included. Why: the raw sum grows
  with the sample size, so normalisation stats calibrated on one library size would misjudge another; the per-song
  mean does not. Noise songs (DBSCAN) add nothing, as in the spec's sum, so a run that leaves most songs out
  cannot win on a small pure core.
* Diversity: each playlist's dominant column (profile argmax) and its value; each distinct dominant column counts
  once, with its best value; the sum. It rewards many different themes, not many copies of one.

Both are mapped with `normalise(raw, mean, std) = (log1p(raw) − mean) / std`. The (mean, std) pairs — the LN_*_STATS
settings — come from a calibration run: score many *random* clusterings of a real library and pass each metric's
raw values to `calibration_stats`, which returns mean and std of their log1p. A normalised 0 is then "as good as
chance", 1 is one standard deviation better.

Geometric metrics are computed on `points` (the scaled/PCA data actually clustered), noise excluded, and only when
their weight is not 0 (silhouette is O(n²), so it is computed on a seeded sample). Each is mapped to a bounded
"higher is better" term so the weights are comparable:

* silhouette: as is, in [−1, 1].
* Davies–Bouldin (≥ 0, lower is better): 1 / (1 + DB), in (0, 1].
* Calinski–Harabasz (≥ 0, unbounded): CH / (CH + n). CH ≈ (B/W)·(n − k)/(k − 1) grows linearly with the number of
  points n for the same separation, so CH/n is size-independent and x/(1 + x) bounds it to [0, 1) monotonically.

A run with fewer than two clusters, or with every song alone in its cluster, is invalid: score −inf.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from clustering.errors import ClusteringError

__all__ = ["Fitness", "FitnessWeights", "NormalisationStats", "calibration_stats", "diversity_raw", "evaluate",
           "normalise", "purity_raw", "quality"]

_MIN_STD = 1e-6


def _profiles(labels: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-noise rows of `values` (m, f) float64, their cluster position (m,) 0..k−1, and profiles (k, f)."""
    labels = np.asarray(labels)
    values = np.asarray(values, dtype=np.float64)
    if labels.ndim != 1 or values.ndim != 2 or values.shape[0] != labels.shape[0]:
        raise ClusteringError(f"labels {labels.shape} and values {values.shape} must be (n,) and (n, f)")
    member = labels >= 0
    _, position = np.unique(labels[member], return_inverse=True)
    rows = values[member]
    k = int(position.max()) + 1 if position.size else 0
    sums = np.zeros((k, values.shape[1]))
    np.add.at(sums, position, rows)
    return rows, position, sums / np.bincount(position, minlength=k)[:, None]


def purity_raw(labels: np.ndarray, values: np.ndarray, *, top_k: int, threshold: float = 0.0) -> float:
    """Per-song mean of the best active top-k profile value (see module docstring); noise songs count as 0;
    0.0 without clusters.

    labels: (n,) int, −1 = noise; values: (n, f) scores ≥ 0. Profile ties keep the lower column.
    """
    if top_k < 1:
        raise ClusteringError(f"top_k must be at least 1, got {top_k}")
    rows, position, profiles = _profiles(labels, values)
    if rows.shape[0] == 0:
        return 0.0
    top = np.argsort(-profiles, axis=1, kind="stable")[:, :top_k]  # (k, top_k) columns
    picked = np.take_along_axis(rows, top[position], axis=1)  # (m, top_k) each song's values there
    active = (picked >= threshold) & (picked > 0)
    # A song with no active top-k column adds 0, the same as skipping it in the sum.
    return float(np.where(active, picked, 0.0).max(axis=1).sum() / len(labels))


def diversity_raw(labels: np.ndarray, values: np.ndarray) -> float:
    """Sum over distinct dominant profile columns of their best dominant value; 0.0 without clusters."""
    _, _, profiles = _profiles(labels, values)
    if profiles.shape[0] == 0:
        return 0.0
    best = np.full(profiles.shape[1], -np.inf)
    np.maximum.at(best, profiles.argmax(axis=1), profiles.max(axis=1))
    return float(best[np.isfinite(best)].sum())


def normalise(raw: float, mean: float, std: float) -> float:
    """(log1p(raw) − mean) / std: a raw metric in units of the calibration spread."""
    return (math.log1p(raw) - mean) / std


def calibration_stats(samples: Iterable[float]) -> tuple[float, float]:
    """(mean, std) of log1p of raw metric values from random clusterings; std is floored at 1e-6."""
    logs = np.log1p(np.asarray(list(samples), dtype=np.float64))
    if logs.size == 0:
        raise ClusteringError("calibration needs at least one sample, got none")
    return float(logs.mean()), max(float(logs.std()), _MIN_STD)


@dataclass(frozen=True)
class NormalisationStats:
    """(mean, std) of log1p(raw) for each label-aware metric, as returned by `calibration_stats`."""

    mood_diversity: tuple[float, float]
    mood_purity: tuple[float, float]
    other_diversity: tuple[float, float]
    other_purity: tuple[float, float]

    def __post_init__(self) -> None:
        for f in fields(self):
            mean, std = getattr(self, f.name)
            if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
                raise ClusteringError(f"{f.name} stats need a finite mean and std > 0, got ({mean}, {std})")


@dataclass(frozen=True)
class FitnessWeights:
    diversity: float = 0.0
    purity: float = 0.0
    other_feature_diversity: float = 0.0
    other_feature_purity: float = 0.0
    silhouette: float = 0.0
    davies_bouldin: float = 0.0
    calinski_harabasz: float = 0.0


@dataclass(frozen=True)
class Fitness:
    """One run's score and its parts: raw metrics, normalised label metrics and geometric terms (0.0 if skipped)."""

    score: float
    n_clusters: int
    n_noise: int
    mood_purity_raw: float
    mood_purity: float
    mood_diversity_raw: float
    mood_diversity: float
    other_purity_raw: float
    other_purity: float
    other_diversity_raw: float
    other_diversity: float
    silhouette: float
    davies_bouldin: float
    davies_bouldin_term: float
    calinski_harabasz: float
    calinski_harabasz_term: float

    def as_dict(self) -> dict[str, Any]:
        """Fields as JSON-safe values: floats rounded to 6 digits, ±inf/NaN (an invalid run's score) as None."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float):
                value = round(value, 6) if math.isfinite(value) else None
            out[f.name] = value
        return out


def evaluate(
    *,
    labels: np.ndarray,
    points: np.ndarray,
    tags: np.ndarray,
    moods: np.ndarray,
    weights: FitnessWeights,
    stats: NormalisationStats,
    top_k: int,
    other_threshold: float,
    rng: np.random.Generator,
    silhouette_sample: int = 1000,
) -> Fitness:
    """Score one clustering.

    labels: (n,) int, −1 = noise; points: (n, d) the data that was clustered; tags: (n, 50) tag probabilities;
    moods: (n, 6) other-feature scores 0..1; top_k: profile columns used by both purities; other_threshold: the
    score an other feature needs to count for a song; rng: draws the silhouette sample (at most `silhouette_sample`
    songs). Returns a Fitness whose score is −inf for an invalid run (module docstring).
    """
    labels = np.asarray(labels)
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] != labels.shape[0]:
        raise ClusteringError(f"points {points.shape} must be (n, d) with n = {labels.shape[0]} labels")
    member = labels >= 0
    n_clustered = int(member.sum())
    n_clusters = int(np.unique(labels[member]).size)

    raw = {
        "mood_purity": purity_raw(labels, tags, top_k=top_k),
        "mood_diversity": diversity_raw(labels, tags),
        "other_purity": purity_raw(labels, moods, top_k=top_k, threshold=other_threshold),
        "other_diversity": diversity_raw(labels, moods),
    }
    norm = {name: normalise(value, *getattr(stats, name)) for name, value in raw.items()}

    valid = 2 <= n_clusters < n_clustered  # sklearn's metrics need this too
    x, y = points[member], labels[member]
    silhouette = davies_bouldin = calinski_harabasz = 0.0
    db_term = ch_term = 0.0
    if valid and weights.silhouette != 0:
        size = min(silhouette_sample, n_clustered)
        sample = np.sort(rng.choice(n_clustered, size=size, replace=False))
        # A tiny sample can miss clusters or hold only singletons; silhouette is then undefined: neutral 0.
        if 2 <= np.unique(y[sample]).size < size:
            silhouette = float(silhouette_score(x[sample], y[sample]))
    if valid and weights.davies_bouldin != 0:
        davies_bouldin = float(davies_bouldin_score(x, y))
        db_term = 1.0 / (1.0 + davies_bouldin)
    if valid and weights.calinski_harabasz != 0:
        calinski_harabasz = float(calinski_harabasz_score(x, y))
        ch_term = calinski_harabasz / (calinski_harabasz + n_clustered)

    score = -math.inf
    if valid:
        score = (weights.purity * norm["mood_purity"] + weights.diversity * norm["mood_diversity"]
                 + weights.other_feature_purity * norm["other_purity"]
                 + weights.other_feature_diversity * norm["other_diversity"]
                 + weights.silhouette * silhouette + weights.davies_bouldin * db_term
                 + weights.calinski_harabasz * ch_term)
    return Fitness(
        score=score, n_clusters=n_clusters, n_noise=int(labels.size - n_clustered),
        mood_purity_raw=raw["mood_purity"], mood_purity=norm["mood_purity"],
        mood_diversity_raw=raw["mood_diversity"], mood_diversity=norm["mood_diversity"],
        other_purity_raw=raw["other_purity"], other_purity=norm["other_purity"],
        other_diversity_raw=raw["other_diversity"], other_diversity=norm["other_diversity"],
        silhouette=silhouette, davies_bouldin=davies_bouldin, davies_bouldin_term=db_term,
        calinski_harabasz=calinski_harabasz, calinski_harabasz_term=ch_term,
    )


# Fitness field → weight field, and how the field maps onto a 0..1 "share of random real-music clusterings beaten".
_QUALITY_PARTS = (("mood_purity", "purity", "z"), ("mood_diversity", "diversity", "z"),
                  ("other_purity", "other_feature_purity", "z"), ("other_diversity", "other_feature_diversity", "z"),
                  ("silhouette", "silhouette", "silhouette"), ("davies_bouldin_term", "davies_bouldin", "unit"),
                  ("calinski_harabasz_term", "calinski_harabasz", "unit"))


def quality(metrics: dict[str, Any], weights: FitnessWeights) -> dict[str, Any]:
    """A clustering's fitness on a scale a person can read: 0-100.

    Each weighted part becomes a share in 0..1: a normalised label metric z (units of the calibration spread of
    random clusterings of real music) becomes Φ(z), the share of such random clusterings it beats; silhouette
    (−1..1) becomes (s + 1) / 2; the bounded Davies-Bouldin and Calinski-Harabasz terms are shares already. A part
    with a negative weight counts as 1 − share. The quality is the weighted mean share × 100, so 50 is "like a random
    grouping", 100 "better than every random grouping". Returns {"quality", "parts": {field: {value, weight,
    share}}}; `metrics` is Fitness.as_dict()."""
    parts: dict[str, dict[str, float]] = {}
    total = weighted = 0.0
    for metric, weight_name, kind in _QUALITY_PARTS:
        weight = float(getattr(weights, weight_name))
        value = metrics.get(metric)
        if weight == 0 or value is None:
            continue
        if kind == "z":
            share = 0.5 * (1.0 + math.erf(float(value) / math.sqrt(2.0)))
        elif kind == "silhouette":
            share = (float(value) + 1.0) / 2.0
        else:
            share = float(value)
        share = min(max(share, 0.0), 1.0)
        if weight < 0:
            share = 1.0 - share
        parts[metric] = {"value": round(float(value), 4), "weight": weight, "share": round(share, 4)}
        weighted += abs(weight) * share
        total += abs(weight)
    return {"quality": round(100.0 * weighted / total, 1) if total else None, "parts": parts}
