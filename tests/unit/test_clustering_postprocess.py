"""Post-processing of playlists (ordering, de-duplication, caps, selection, shuffle) and feature-based names."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from clustering.data import ClusteringError
from clustering.naming import feature_name, unique_names
from clustering.postprocess import (
    cap_per_artist,
    fisher_yates,
    limit_size,
    order_by_centrality,
    remove_duplicates,
    select_most_different,
)


def test_order_by_centrality_with_ties_by_index() -> None:
    points = np.array([[3.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 2.0], [-1.0, 0.0]])
    order = order_by_centrality([0, 4, 3, 2, 1], points, np.zeros(2))
    assert order.tolist() == [1, 2, 4, 3, 0]


def dedup(indices: list[int], embeddings: np.ndarray, *, titles: list[str] | None = None,
          artists: list[str] | None = None, threshold: float = 0.01, lookback: int = 0) -> list[int]:
    n = len(embeddings)
    return remove_duplicates(indices, embeddings=embeddings, titles=titles or [f"t{i}" for i in range(n)],
                             artists=artists or [f"a{i}" for i in range(n)], cosine_threshold=threshold,
                             lookback=lookback)


def test_remove_duplicates_by_title_and_artist() -> None:
    vectors = np.eye(4)  # all orthogonal: no distance duplicates
    titles = ["The Song", "the  song ", "The Song", "Other"]
    artists = ["Band", "BAND", "Someone Else", "band"]
    assert dedup([0, 1, 2, 3], vectors, titles=titles, artists=artists) == [0, 2, 3]
    assert dedup([1, 0, 3], vectors, titles=titles, artists=artists) == [1, 3]


def test_remove_duplicates_by_cosine_distance() -> None:
    vectors = np.array([[1.0, 0.0], [10.0, 0.1], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    # 1 is 0.00005 from 0 (scale does not matter); zero vectors are never duplicates.
    assert dedup([0, 1, 2, 3, 4], vectors) == [0, 2, 3, 4]
    assert dedup([0, 1, 2], vectors, threshold=0.0) == [0, 1, 2]
    assert dedup([0, 1, 2], vectors, threshold=0.00001) == [0, 1, 2]


def test_remove_duplicates_lookback_counts_kept_songs_only() -> None:
    a, b, near_a, c, also_near_a = [1.0, 0, 0], [0, 1.0, 0], [1.0, 0.001, 0], [0, 0, 1.0], [1.0, 0, 0.001]
    vectors = np.array([a, b, near_a, c, also_near_a])
    assert dedup([0, 1, 2], vectors, lookback=1) == [0, 1, 2]  # only b is looked at
    assert dedup([0, 1, 2], vectors, lookback=2) == [0, 1]
    assert dedup([0, 1, 2], vectors, lookback=0) == [0, 1]
    # The dropped 2 takes no place in the window: at 4 the last two kept songs are b and c, the last three a, b, c.
    assert dedup([0, 2, 1, 3, 4], vectors, lookback=2) == [0, 1, 3, 4]
    assert dedup([0, 2, 1, 3, 4], vectors, lookback=3) == [0, 1, 3]
    assert dedup([0, 2, 1, 3, 4], vectors, lookback=0) == [0, 1, 3]
    with pytest.raises(ClusteringError, match="lookback"):
        dedup([0], vectors, lookback=-1)


def test_cap_per_artist_and_limit_size() -> None:
    artists = ["Abba", "ABBA ", "Queen", "abba", "Queen", "queen"]
    assert cap_per_artist([0, 1, 2, 3, 4, 5], artists, 2) == [0, 1, 2, 4]
    assert cap_per_artist([3, 0, 1], artists, 1) == [3]
    assert cap_per_artist([5, 4, 2], artists, 0) == [5, 4, 2]
    assert limit_size(np.array([4, 2, 9]), 2) == [4, 2]
    assert limit_size([4, 2, 9], 0) == [4, 2, 9]
    assert limit_size([4, 2, 9], 5) == [4, 2, 9]
    with pytest.raises(ClusteringError):
        limit_size([1], -1)


def test_select_most_different_picks_far_apart_playlists() -> None:
    profiles = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 0.1]])
    sizes = [10, 5, 3, 3, 8]
    # Start at the largest (0); 4 is a hair farther than 2 or 3; then 3 (2 is now 0.1 from 4); then 1 before 2
    # (both 0.1 from a chosen one, 1 is larger).
    assert select_most_different(profiles, sizes, 3) == [0, 4, 3]
    assert select_most_different(profiles, sizes, 0) == [0, 4, 3, 1, 2]
    assert select_most_different(profiles, sizes, 99) == [0, 4, 3, 1, 2]
    assert select_most_different(profiles, sizes, 1) == [0]


def test_select_most_different_ties() -> None:
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert select_most_different(square, [4, 4, 4, 4], 2) == [0, 3]  # largest tie → index 0, then farthest
    assert select_most_different(square, [4, 1, 2, 4], 3) == [0, 3, 2]  # 1 and 2 equally far: larger first
    assert select_most_different(square, [1, 1, 1, 1], 0) == [0, 3, 1, 2]
    assert select_most_different(np.zeros((0, 2)), [], 3) == []


def test_fisher_yates_is_a_seeded_permutation() -> None:
    items = list(range(20))
    shuffled = fisher_yates(items, np.random.default_rng(7))
    assert sorted(shuffled) == items and items == list(range(20))
    assert shuffled != items
    assert fisher_yates(items, np.random.default_rng(7)) == shuffled
    assert fisher_yates(items, np.random.default_rng(8)) != shuffled
    assert fisher_yates([], np.random.default_rng(1)) == []
    assert fisher_yates(("x",), np.random.default_rng(1)) == ["x"]


def test_fisher_yates_is_uniform_over_orders() -> None:
    rng = np.random.default_rng(12345)
    draws = 6000
    counts = Counter(tuple(fisher_yates("abc", rng)) for _ in range(draws))
    assert set(counts) == set(itertools.permutations("abc"))
    expected = draws / 6
    chi_square = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi_square < 20.5  # 5 degrees of freedom, p = 0.001


TAGS = ["rock", "pop", "classic rock", "Hip-Hop", "Mellow", "electronic"]
GENRES = {"rock", "pop", "classic rock", "hip-hop", "electronic"}
MOODS = ["danceable", "aggressive", "happy", "party", "relaxed", "sad"]


def name(tags: list[float], tempo: float, moods: list[float]) -> str:
    return feature_name(tag_profile=np.array(tags), tag_names=TAGS, tempo_bpm=tempo, mood_profile=np.array(moods),
                        mood_names=MOODS, genre_tags=GENRES)


def test_feature_name_examples() -> None:
    # Mellow is the top tag but not a genre.
    assert name([0.6, 0.2, 0.1, 0.0, 0.9, 0.0], 130.0, [0.1, 0.8, 0.2, 0.1, 0.0, 0.3]) == "Rock_Fast_Aggressive"
    assert name([0.1, 0.2, 0.5, 0.0, 0.0, 0.0], 89.9, [0.0, 0.0, 0.0, 0.0, 0.7, 0.3]) == "ClassicRock_Slow_Relaxed"
    assert name([0.1, 0.2, 0.0, 0.6, 0.0, 0.0], 90.0, [0.9, 0.0, 0.0, 0.9, 0.0, 0.0]) == "HipHop_Medium_Danceable"
    assert name([0.1, 0.2, 0.0, 0.0, 0.0, 0.3], 125.0, [0.0, 0.0, 0.0, 0.0, 0.0, 0.6]) == "Electronic_Fast_Sad"
    assert name([0.0, 0.5, 0.0, 0.0, 0.0, 0.0], math.nan, [0.0, 0.0, 0.4, 0.0, 0.0, 0.0]) == "Pop_Happy"
    assert name([0.0, 0.0, 0.0, 0.0, 0.9, 0.0], math.nan, [0.0] * 6) == "Mixed"


def test_feature_name_rejects_mismatched_profiles() -> None:
    with pytest.raises(ClusteringError):
        name([0.1, 0.2], 100.0, [0.0] * 6)


def test_unique_names() -> None:
    assert unique_names(["Rock", "rock", "Pop", "ROCK"]) == ["Rock", "rock_2", "Pop", "ROCK_3"]
    assert unique_names(["X", "X", "X_2"]) == ["X", "X_2", "X_2_2"]
    assert unique_names(["X_2", "X", "X"]) == ["X_2", "X", "X_3"]
    assert unique_names([]) == []


def test_names_clear_of_pinned_playlists() -> None:
    from clustering.naming import names_clear_of

    pinned = ["Rock_Fast_automatic", "jazz_automatic", "Pop_2_automatic"]
    assert names_clear_of(["Rock_Fast", "Ambient", "Jazz", "Pop", "Rock_Fast_2"], pinned, suffix="_automatic") == [
        "Rock_Fast_3_automatic", "Ambient_automatic", "Jazz_2_automatic", "Pop_automatic", "Rock_Fast_2_automatic"]
    assert names_clear_of(["Pop"], ["Pop_automatic", "Pop_2_automatic"], suffix="_automatic") == ["Pop_3_automatic"]
    assert names_clear_of(["A", "B"], []) == ["A", "B"]


def test_playlists_of_the_same_name_are_told_apart_by_what_differs() -> None:
    from clustering.naming import distinct_names, profile_words

    tags = ["electronic", "dance", "ambient", "House", "chillout"]
    moods = ["danceable", "relaxed"]
    dancefloor = profile_words(tag_profile=np.array([0.9, 0.6, 0.0, 0.5, 0.1]), tag_names=tags,
                               mood_profile=np.array([0.8, 0.1]), mood_names=moods)
    lounge = profile_words(tag_profile=np.array([0.9, 0.5, 0.4, 0.0, 0.3]), tag_names=tags,
                           mood_profile=np.array([0.7, 0.6]), mood_names=moods)
    assert dancefloor[:3] == ["Electronic", "Dance", "House"] and "Relaxed" in lounge
    names = distinct_names(["Electronic_Medium_Danceable", "Electronic_Medium_Danceable", "Rock_Fast"],
                           [dancefloor, lounge, ["Rock"]])
    # "Dance" is shared by both, so each gets the first word only it has
    assert names == ["Electronic_Medium_Danceable_House", "Electronic_Medium_Danceable_Ambient", "Rock_Fast"]
    assert not any(name[-1].isdigit() for name in names)
    # nothing tells them apart: numbers, as a last resort
    assert distinct_names(["Mixed", "Mixed"], [[], []]) == ["Mixed", "Mixed_2"]
