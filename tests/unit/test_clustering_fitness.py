"""Fitness of hand-made clusterings: purity/diversity worked by hand, normalisation, geometric terms, invalid runs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

import clustering.fitness as fitness_module
from clustering.data import ClusteringError
from clustering.fitness import (
    FitnessWeights,
    NormalisationStats,
    calibration_stats,
    diversity_raw,
    evaluate,
    normalise,
    purity_raw,
)

# Columns: pop, indie, vocal, rock. Spec 2.3 example: the playlist's top 3 are pop .6, indie .4, vocal .35; songs
# C..F are there only to give the playlist that profile (rock's mean is 1.15 / 6 ≈ .19, outside the top 3).
SPEC_PLAYLIST = np.array([
    [0.0, 0.3, 0.6, 0.7],      # A → max(indie .3, vocal .6) = .6 (rock .7 is not a top mood)
    [0.0, 0.4, 0.3, 0.45],     # B → .4
    [0.9, 0.425, 0.3, 0.0],    # C..F → pop .9 each
    [0.9, 0.425, 0.3, 0.0],
    [0.9, 0.425, 0.3, 0.0],
    [0.9, 0.425, 0.3, 0.0],
])
NEUTRAL = NormalisationStats(mood_diversity=(0.0, 1.0), mood_purity=(0.0, 1.0), other_diversity=(0.0, 1.0),
                             other_purity=(0.0, 1.0))
ALL_ONE = FitnessWeights(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)


def test_spec_profile_is_as_stated() -> None:
    np.testing.assert_allclose(SPEC_PLAYLIST.mean(axis=0)[:3], [0.6, 0.4, 0.35])


def test_purity_spec_example() -> None:
    labels = np.zeros(6, dtype=int)
    # Playlist sum 0.6 + 0.4 + 4 × 0.9 = 4.6, divided by the 6 clustered songs.
    assert purity_raw(labels, SPEC_PLAYLIST, top_k=3) == pytest.approx(4.6 / 6)
    # Only pop in the top 1: A and B are skipped.
    assert purity_raw(labels, SPEC_PLAYLIST, top_k=1) == pytest.approx(3.6 / 6)
    # Threshold 0.5: A keeps vocal .6, B has nothing ≥ .5, C..F keep pop .9.
    assert purity_raw(labels, SPEC_PLAYLIST, top_k=3, threshold=0.5) == pytest.approx(4.2 / 6)


def test_purity_over_two_playlists_and_noise_adds_nothing() -> None:
    second = np.array([[0.0, 0.0, 0.0, 0.8], [0.0, 0.2, 0.0, 0.6]])  # top 1 rock: .8 + .6
    values = np.vstack([SPEC_PLAYLIST, second, [[5.0, 5.0, 5.0, 5.0]]])
    labels = np.array([3] * 6 + [7, 7, -1])
    # the noise song counts in the number of songs but adds no purity: leaving songs out does not pay
    assert purity_raw(labels, values, top_k=1) == pytest.approx((3.6 + 1.4) / 9)
    assert purity_raw(labels[:-1], values[:-1], top_k=1) == pytest.approx((3.6 + 1.4) / 8)


def test_purity_without_clusters_is_zero() -> None:
    assert purity_raw(np.full(3, -1), np.ones((3, 4)), top_k=2) == 0.0


def test_diversity_spec_example_and_shared_dominant_counted_once() -> None:
    songs = np.array([
        [0.1, 0.6, 0.2, 0.0],   # P1 indie .6
        [0.5, 0.1, 0.2, 0.0],   # P2 pop .5
        [0.1, 0.2, 0.55, 0.0],  # P3 vocal .55
        [0.0, 0.3, 0.1, 0.0],   # P4 indie .3: indie already counted, with its best score .6
        [0.0, 0.7, 0.1, 0.0],   # P5 indie .7 replaces .6
        [9.0, 9.0, 9.0, 9.0],   # noise
    ])
    labels = np.array([0, 1, 2, 3, 4, -1])
    assert diversity_raw(labels[:3], songs[:3]) == pytest.approx(1.65)
    assert diversity_raw(labels[:4], songs[:4]) == pytest.approx(1.65)
    assert diversity_raw(labels, songs) == pytest.approx(0.7 + 0.5 + 0.55)


def test_diversity_uses_profile_mean() -> None:
    songs = np.array([[1.0, 0.0], [0.0, 0.8], [0.0, 0.5]])
    # One playlist, profile (1/3, 0.4333): dominant column 1.
    assert diversity_raw(np.zeros(3, dtype=int), songs) == pytest.approx(1.3 / 3)


def test_normalise_and_calibration_arithmetic() -> None:
    assert normalise(math.e - 1, 1.0, 2.0) == pytest.approx(0.0)
    assert normalise(math.e**3 - 1, 1.0, 2.0) == pytest.approx(1.0)
    mean, std = calibration_stats([0.0, math.e - 1])  # log1p: 0 and 1
    assert (mean, std) == (pytest.approx(0.5), pytest.approx(0.5))
    assert calibration_stats(iter([2.0, 2.0])) == (pytest.approx(math.log(3)), 1e-6)
    with pytest.raises(ClusteringError):
        calibration_stats([])


def test_bad_values_are_rejected() -> None:
    with pytest.raises(ClusteringError, match="top_k"):
        purity_raw(np.zeros(2, dtype=int), np.ones((2, 3)), top_k=0)
    with pytest.raises(ClusteringError):
        diversity_raw(np.zeros(3, dtype=int), np.ones((2, 3)))
    with pytest.raises(ClusteringError, match="mood_purity"):
        NormalisationStats(mood_diversity=(0.0, 1.0), mood_purity=(0.0, 0.0), other_diversity=(0.0, 1.0),
                           other_purity=(0.0, 1.0))


def blobs(seed: int = 1, per: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three far-apart 2-D blobs; blob b's songs have tag b and mood b strong. Returns labels, points, tags, moods."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), per)
    points = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])[labels] + rng.normal(size=(3 * per, 2))
    tags = rng.uniform(0.0, 0.2, size=(3 * per, 50))
    tags[np.arange(3 * per), labels] = rng.uniform(0.7, 1.0, size=3 * per)
    moods = rng.uniform(0.0, 0.2, size=(3 * per, 6))
    moods[np.arange(3 * per), labels + 3] = rng.uniform(0.6, 1.0, size=3 * per)
    return labels, points, tags, moods


def run(labels: np.ndarray, points: np.ndarray, tags: np.ndarray, moods: np.ndarray, *,
        weights: FitnessWeights = ALL_ONE, stats: NormalisationStats = NEUTRAL, seed: int = 0,
        silhouette_sample: int = 1000, top_k: int = 3) -> fitness_module.Fitness:
    return evaluate(labels=labels, points=points, tags=tags, moods=moods, weights=weights, stats=stats, top_k=top_k,
                    other_threshold=0.5, rng=np.random.default_rng(seed), silhouette_sample=silhouette_sample)


def test_separated_clustering_beats_random_labelling() -> None:
    labels, points, tags, moods = blobs()
    # top_k = 1: with 3 blobs, a random playlist's top 3 would hold all three strong columns and tie on purity.
    good = run(labels, points, tags, moods, top_k=1)
    bad = run(np.random.default_rng(5).permutation(labels), points, tags, moods, top_k=1)
    assert good.silhouette > 0.8 > 0.1 > bad.silhouette
    assert good.davies_bouldin_term > bad.davies_bouldin_term
    assert good.calinski_harabasz_term > bad.calinski_harabasz_term
    assert good.mood_purity_raw > bad.mood_purity_raw
    assert good.other_purity_raw > bad.other_purity_raw
    assert good.mood_diversity_raw > bad.mood_diversity_raw  # random playlists have flat profiles
    assert good.score > bad.score
    assert 0 < good.davies_bouldin_term <= 1 and 0 <= good.calinski_harabasz_term < 1


def test_score_is_the_weighted_sum_of_terms() -> None:
    labels, points, tags, moods = blobs(seed=2)
    stats = NormalisationStats(mood_diversity=(0.5, 0.25), mood_purity=(0.3, 0.1), other_diversity=(0.2, 0.5),
                               other_purity=(0.4, 2.0))
    weights = FitnessWeights(diversity=2.0, purity=1.5, other_feature_diversity=0.5, other_feature_purity=-1.0,
                             silhouette=3.0, davies_bouldin=0.25, calinski_harabasz=4.0)
    got = run(labels, points, tags, moods, weights=weights, stats=stats)
    db = davies_bouldin_score(points, labels)
    ch = calinski_harabasz_score(points, labels)
    expected = (
        2.0 * (math.log1p(diversity_raw(labels, tags)) - 0.5) / 0.25
        + 1.5 * (math.log1p(purity_raw(labels, tags, top_k=3)) - 0.3) / 0.1
        + 0.5 * (math.log1p(diversity_raw(labels, moods)) - 0.2) / 0.5
        - 1.0 * (math.log1p(purity_raw(labels, moods, top_k=3, threshold=0.5)) - 0.4) / 2.0
        + 3.0 * silhouette_score(points, labels)  # 180 points < sample of 1000: exact
        + 0.25 / (1 + db)
        + 4.0 * ch / (ch + 180)
    )
    assert got.score == pytest.approx(expected)
    assert got.mood_purity == pytest.approx((math.log1p(got.mood_purity_raw) - 0.3) / 0.1)


def test_zero_weights_skip_geometric_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def recorder(name: str) -> Callable[[np.ndarray, np.ndarray], float]:
        def metric(x: np.ndarray, y: np.ndarray) -> float:
            calls.append(name)
            return 0.5
        return metric

    for name in ("silhouette_score", "davies_bouldin_score", "calinski_harabasz_score"):
        monkeypatch.setattr(fitness_module, name, recorder(name))
    labels, points, tags, moods = blobs()
    skipped = run(labels, points, tags, moods, weights=FitnessWeights(diversity=1.0, purity=1.0))
    assert calls == []
    assert (skipped.silhouette, skipped.davies_bouldin_term, skipped.calinski_harabasz_term) == (0.0, 0.0, 0.0)
    only_db = run(labels, points, tags, moods, weights=FitnessWeights(davies_bouldin=1.0))
    assert calls == ["davies_bouldin_score"]
    assert only_db.score == pytest.approx(1 / 1.5)
    run(labels, points, tags, moods)
    assert sorted(calls[1:]) == ["calinski_harabasz_score", "davies_bouldin_score", "silhouette_score"]


def test_fewer_than_two_clusters_is_invalid_but_reported() -> None:
    labels, points, tags, moods = blobs()
    one = np.where(labels == 0, 0, -1)
    got = run(one, points, tags, moods)
    assert got.score == -math.inf
    assert (got.n_clusters, got.n_noise) == (1, 120)
    assert got.mood_purity_raw > 0
    assert got.as_dict()["score"] is None
    json.dumps(got.as_dict(), allow_nan=False)
    assert run(np.full(180, -1), points, tags, moods).score == -math.inf
    assert run(np.arange(180), points, tags, moods).score == -math.inf  # every song alone


def test_noise_is_left_out_of_every_metric_but_purity() -> None:
    labels, points, tags, moods = blobs()
    noisy_points = np.vstack([points, [[100.0, -100.0], [7.0, 7.0]]])
    noisy_tags = np.vstack([tags, np.ones((2, 50))])
    noisy_moods = np.vstack([moods, np.ones((2, 6))])
    with_noise = run(np.append(labels, [-1, -1]), noisy_points, noisy_tags, noisy_moods).as_dict()
    without = run(labels, points, tags, moods).as_dict()
    assert with_noise.pop("n_noise") == 2 and without.pop("n_noise") == 0
    for key in ("mood_purity_raw", "other_purity_raw"):  # two more songs in the denominator, none in the sum
        assert with_noise.pop(key) == pytest.approx(without.pop(key) * 180 / 182)
    for key in ("mood_purity", "other_purity", "score"):
        assert with_noise.pop(key) < without.pop(key)
    assert with_noise == without


def test_silhouette_sample_is_seeded() -> None:
    labels, points, tags, moods = blobs()
    weights = FitnessWeights(silhouette=1.0)
    a = run(labels, points, tags, moods, weights=weights, seed=3, silhouette_sample=40)
    b = run(labels, points, tags, moods, weights=weights, seed=3, silhouette_sample=40)
    c = run(labels, points, tags, moods, weights=weights, seed=4, silhouette_sample=40)
    assert a == b
    assert a.silhouette != c.silhouette
    assert a.silhouette == pytest.approx(silhouette_score(points, labels), abs=0.05)


def test_as_dict_rounds_and_is_json_safe() -> None:
    labels, points, tags, moods = blobs()
    out = run(labels, points, tags, moods).as_dict()
    assert out["n_clusters"] == 3 and isinstance(out["n_clusters"], int)
    assert all(v == round(v, 6) for v in out.values())
    json.dumps(out, allow_nan=False)


def test_quality_reads_as_a_share_of_random_groupings_beaten() -> None:
    from clustering.fitness import quality

    weights = FitnessWeights(diversity=2.0, purity=1.0, silhouette=0.5, davies_bouldin=-1.0)
    chance = {"mood_diversity": 0.0, "mood_purity": 0.0, "silhouette": 0.0, "davies_bouldin_term": 0.5}
    assert quality(chance, weights)["quality"] == 50.0
    strong = {"mood_diversity": 3.0, "mood_purity": 3.0, "silhouette": 0.9, "davies_bouldin_term": 0.05}
    rated = quality(strong, weights)
    assert 95 < rated["quality"] <= 100 and rated["parts"]["davies_bouldin_term"]["share"] == 0.95
    weak = quality({"mood_diversity": -2.0, "mood_purity": -2.0, "silhouette": -0.8, "davies_bouldin_term": 0.9},
                   weights)
    assert weak["quality"] < 10
    assert quality(chance, FitnessWeights())["quality"] is None  # nothing weighted, nothing to say
