"""discovery/ranking.py on hand-computed arrays: z-scores, ranks, the fusion core and both fusions, top k, unit
means, each playlist ranker, and that a ranker added to the registry is picked up by name."""

from __future__ import annotations

import math

import numpy as np

from discovery import ranking
from discovery.playlist_matching import build_profile
from discovery.ranking import (
    RANKERS,
    RRF_K,
    Library,
    PlaylistProfile,
    fuse,
    fuse_rrf,
    fuse_weighted,
    ordered,
    rank_all,
    ranks,
    reciprocal_ranks,
    top_cosine,
    top_k,
    unit_mean,
    unit_rows,
    zscores,
)


def test_zscores_over_themselves_and_over_a_mask():
    # mean 2, standard deviation √(2/3): ∓√1.5 either side
    np.testing.assert_allclose(zscores(np.array([1.0, 2.0, 3.0])), [-math.sqrt(1.5), 0.0, math.sqrt(1.5)], rtol=1e-15)
    # the 10 is left out of the mean and spread but scored against them: 8 / √(2/3)
    over = zscores(np.array([1.0, 2.0, 3.0, 10.0]), over=np.array([True, True, True, False]))
    np.testing.assert_allclose(over, [-math.sqrt(1.5), 0.0, math.sqrt(1.5), 8 / math.sqrt(2 / 3)], rtol=1e-15)
    assert zscores(np.array([4.0, 4.0])).tolist() == [0.0, 0.0]  # no spread: all 0
    assert zscores(np.array([1.0, 3.0], dtype=np.float32)).dtype == np.float32


def test_ranks_break_ties_by_row_and_leave_non_candidates_out():
    values = np.array([0.5, 0.9, 0.5, 2.0])
    candidates = np.array([True, True, True, False])
    assert ranks(values, candidates).tolist() == [2.0, 1.0, 3.0, math.inf]
    assert reciprocal_ranks(values, candidates).tolist() == [1 / 62, 1 / 61, 1 / 63, 0.0]
    assert RRF_K == 60


def test_the_fusion_core_weighs_parts_in_the_order_of_the_weights():
    parts = {"a": np.array([1.0, 2.0]), "b": np.array([10.0, 20.0])}
    # a zero weight and a weight without a part are skipped
    assert fuse(parts, {"b": 0.5, "a": 0.0, "c": 1.0}, 2).tolist() == [5.0, 10.0]
    assert fuse(parts, {"a": 0.25, "b": 0.5}, 2).tolist() == [5.25, 10.5]
    assert fuse({}, {"a": 1.0}, 3).tolist() == [0.0, 0.0, 0.0]


def test_weighted_and_rrf_fusion_exact():
    scores = {"a": np.array([3.0, 2.0, 1.0, 0.0]), "b": np.array([0.0, 1.0, 3.0, 2.0])}
    candidates = np.array([True, True, True, False])
    weighted = fuse_weighted(scores, {"a": 1.0, "b": 0.5}, candidates)
    # over the candidates: z(a) = [√1.5, 0, -√1.5]; b = [0, 1, 3] has mean 4/3 and spread √(14/9)
    spread_b = math.sqrt(14 / 9)
    assert weighted[3] == -np.inf
    np.testing.assert_allclose(weighted[:3], [math.sqrt(1.5) + 0.5 * (-4 / 3) / spread_b,
                                              0.5 * (-1 / 3) / spread_b,
                                              -math.sqrt(1.5) + 0.5 * (5 / 3) / spread_b], rtol=1e-14)
    rrf = fuse_rrf(scores, {"a": 1.0, "b": 0.5}, candidates)
    # a ranks 1, 2, 3; b ranks 3, 2, 1
    assert rrf.tolist() == [1 / 61 + 0.5 * (1 / 63), 1 / 62 + 0.5 * (1 / 62), 1 / 63 + 0.5 * (1 / 61), -np.inf]


def test_top_k_and_the_full_order_best_first_with_ties_by_key():
    scores = np.array([0.2, 0.9, 0.9, 0.5])
    assert top_k(scores, 3).tolist() == [1, 2, 3]  # the tie by row
    assert top_k(scores, 3, tie_key=np.array([0, 7, 3, 0])).tolist() == [2, 1, 3]  # by the key
    assert top_k(scores, 10).tolist() == [1, 2, 3, 0]
    assert top_k(scores, 0).tolist() == [] and top_k(np.zeros(0), 5).tolist() == []
    assert ordered(scores).tolist() == [1, 2, 3, 0] and ordered(np.array([1, 1, 1])).tolist() == [0, 1, 2]


def test_top_cosine_ranks_the_rows_of_a_matrix():
    matrix = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    rows, similarities = top_cosine(matrix, np.array([0.8, 0.6]), k=2)
    assert rows.tolist() == [2, 0] and similarities.dtype == np.float32
    np.testing.assert_allclose(similarities, [0.8, 0.6, 0.96], rtol=1e-6)


def test_unit_rows_and_unit_mean():
    np.testing.assert_allclose(unit_rows([np.array([3.0, 4.0]), np.array([0.0, 0.0])]), [[0.6, 0.8], [0.0, 0.0]],
                               rtol=1e-7)
    np.testing.assert_allclose(unit_mean(np.array([[3.0, 0.0], [0.0, 4.0]])), [0.6, 0.8], rtol=1e-15)
    assert unit_mean(np.array([[1.0, 0.0], [-1.0, 0.0]])).tolist() == [0.0, 0.0]


def small_library() -> Library:
    return Library.build(np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]), np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
                         np.zeros((3, 1)), bpm=[100, 112, None], energy=[0.5, 0.5, 0.54])


def test_each_playlist_ranker_exact():
    lib = small_library()
    profile = build_profile(lib, [0, 1])
    half = math.sqrt(0.5)
    np.testing.assert_allclose(ranking.centroid(lib, profile), [half, half, 1.4 * half], rtol=1e-6)
    np.testing.assert_allclose(ranking.nearest_member(lib, profile), [1.0, 1.0, 0.8], rtol=1e-6)
    np.testing.assert_allclose(ranking.tags(lib, profile), [half, half, 1.0], rtol=1e-6)
    # tempo: centre 106, spread 1.4826 × 6; energy: centre 0.5, spread at its floor 0.04; song 2 has no tempo (0.5)
    tempo = math.exp(-0.5 * (6 / (1.4826 * 6)) ** 2)
    np.testing.assert_allclose(ranking.tempo_energy(lib, profile), [tempo, tempo, 0.5 * math.exp(-0.5)], rtol=1e-6)


def test_a_new_ranker_is_one_function_in_the_registry(monkeypatch):
    lib = small_library()
    profile = build_profile(lib, [0, 1])
    assert list(rank_all(lib, profile)) == ["centroid", "nearest_member", "tags", "tempo_energy"] == list(RANKERS)

    def loudest_last(library: Library, profile: PlaylistProfile) -> np.ndarray:
        return np.arange(len(library), dtype=np.float32)

    monkeypatch.setitem(RANKERS, "loudest_last", loudest_last)
    scores = rank_all(lib, profile)
    assert scores["loudest_last"].tolist() == [0.0, 1.0, 2.0] and scores["loudest_last"].dtype == np.float32
    candidates = np.array([True, True, True])
    assert fuse_rrf(scores, {"loudest_last": 1.0}, candidates).tolist() == [1 / 63, 1 / 62, 1 / 61]
