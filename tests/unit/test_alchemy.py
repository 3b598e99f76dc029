"""Song Alchemy and the 2-D projection on hand-made vector sets."""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np
import pytest

from discovery.alchemy import project_alchemy, song_alchemy
from discovery.projection import project_2d
from discovery.types import DiscoveryError, TrackInfo, cosine_distance
from tests.brute_force import brute_force


def at_angle(item_id: str, degrees: float, *, artist: str | None = None) -> TrackInfo:
    rad = math.radians(degrees)
    vector = np.array([math.cos(rad), math.sin(rad), 0.0], dtype=np.float32)
    return TrackInfo(item_id=item_id, title=f"Song {item_id}", artist=artist or f"Artist {item_id}", vector=vector)




def fan(count: int = 37, step: float = 10.0) -> dict[str, TrackInfo]:
    """Songs every `step` degrees around the circle, from 0° up."""
    return {f"s{i}": at_angle(f"s{i}", step * i) for i in range(count)}


def kept_ids(result: object) -> list[str]:
    return [t.item_id for t, _ in result.kept]  # type: ignore[attr-defined]


def test_subtract_removes_exactly_what_lies_within_the_threshold() -> None:
    library = fan(36)
    neighbours, lookup = brute_force(library)
    add, sub = [library["s0"], library["s2"]], [library["s5"]]
    result = song_alchemy(add, sub, n=5, neighbours=neighbours, lookup=lookup, temperature=0.0,
                          subtract_distance=0.1, pool=100, max_per_artist=1)
    candidates = [t for t in library.values() if t.item_id not in {"s0", "s2", "s5"}]
    expected = {t.item_id for t in candidates if cosine_distance(t.vector, library["s5"].vector) < 0.1}
    assert {t.item_id for t in result.removed} == expected == {"s3", "s4", "s6", "s7"}
    assert not expected & set(kept_ids(result))
    np.testing.assert_allclose(result.add_centroid, (library["s0"].vector + library["s2"].vector) / 2, atol=1e-7)
    assert result.subtract_centroid is not None
    np.testing.assert_allclose(result.subtract_centroid, library["s5"].vector, atol=1e-7)


def test_no_subtract_songs_removes_nothing() -> None:
    library = fan(36)
    neighbours, lookup = brute_force(library)
    result = song_alchemy([library["s0"]], n=3, neighbours=neighbours, lookup=lookup, max_per_artist=1)
    assert result.removed == [] and result.subtract_centroid is None
    assert len(result.kept) == 3


def test_temperature_zero_gives_top_n_by_similarity() -> None:
    library = fan(36)
    neighbours, lookup = brute_force(library)
    result = song_alchemy([library["s10"]], n=4, neighbours=neighbours, lookup=lookup, temperature=0.0,
                          max_per_artist=1)
    assert set(kept_ids(result)[:2]) == {"s9", "s11"} and set(kept_ids(result)[2:]) == {"s8", "s12"}
    scores = [score for _, score in result.kept]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(math.cos(math.radians(10)), abs=1e-6)
    assert "s10" not in kept_ids(result)  # inputs are never results


def test_tiny_temperature_does_not_overflow_and_matches_temperature_zero() -> None:
    library = fan(36)
    neighbours, lookup = brute_force(library)
    top = song_alchemy([library["s10"]], n=6, neighbours=neighbours, lookup=lookup, temperature=0.0,
                       max_per_artist=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for temperature in (1e-3, 1e-300, 5e-324):
            cold = song_alchemy([library["s10"]], n=6, neighbours=neighbours, lookup=lookup,
                                temperature=temperature, seed=3, max_per_artist=1)
            assert set(kept_ids(cold)) == set(kept_ids(top))


def test_same_seed_same_result_different_seed_different_result() -> None:
    library = fan(72, step=5.0)
    neighbours, lookup = brute_force(library)

    def run(seed: int) -> list[str]:
        result = song_alchemy([library["s0"]], n=5, neighbours=neighbours, lookup=lookup, temperature=1.0,
                              seed=seed, max_per_artist=1)
        return kept_ids(result)

    assert run(7) == run(7)
    assert len({tuple(run(seed)) for seed in range(5)}) > 1


def test_high_temperature_spreads_low_temperature_concentrates() -> None:
    library = fan(72, step=5.0)
    neighbours, lookup = brute_force(library)
    near = {f"s{i}" for i in (1, 2, 3, 69, 70, 71)}  # the six closest songs to s0

    def hits(temperature: float) -> int:
        total = 0
        for seed in range(20):
            result = song_alchemy([library["s0"]], n=3, neighbours=neighbours, lookup=lookup,
                                  temperature=temperature, seed=seed, max_per_artist=1)
            total += len(near & set(kept_ids(result)))
        return total

    assert hits(0.001) == 60
    assert hits(10.0) < 30


def test_artist_cap_and_no_repeats() -> None:
    library = {f"s{i}": at_angle(f"s{i}", 9.0 * i + 10.0, artist=("A", "B", "C")[i % 3]) for i in range(20)}
    library["in"] = at_angle("in", 0.0, artist="Z")
    neighbours, lookup = brute_force(library)
    result = song_alchemy([library["in"]], n=10, neighbours=neighbours, lookup=lookup, temperature=0.5,
                          max_per_artist=2)
    counts = Counter(t.artist for t, _ in result.kept)
    assert len(result.kept) == 6 and max(counts.values()) == 2
    assert len(set(kept_ids(result))) == len(result.kept)


def test_versions_of_inputs_are_excluded() -> None:
    library = fan(36)
    library["live"] = TrackInfo(item_id="live", title="Song s0 (Live)", artist="Artist s0",
                                vector=np.array([1.0, 0.01, 0.0], dtype=np.float32))
    neighbours, lookup = brute_force(library)
    result = song_alchemy([library["s0"]], n=5, neighbours=neighbours, lookup=lookup, temperature=0.0,
                          max_per_artist=1)
    assert "live" not in kept_ids(result)


@pytest.mark.parametrize(
    ("add_count", "kwargs", "parameter"),
    [
        (0, {}, "add"),
        (1, {"n": 0}, "n"),
        (1, {"temperature": -0.1}, "temperature"),
        (1, {"temperature": float("nan")}, "temperature"),
        (1, {"subtract_distance": 0.0}, "subtract_distance"),
        (1, {"subtract_distance": 2.5}, "subtract_distance"),
        (1, {"max_per_artist": 0}, "max_per_artist"),
        (1, {"n": 10, "pool": 5}, "pool"),
    ],
)
def test_bad_parameters_raise_discovery_error(add_count: int, kwargs: dict[str, object], parameter: str) -> None:
    library = fan(10)
    neighbours, lookup = brute_force(library)
    options: dict[str, object] = {"n": 3, "max_per_artist": 1} | kwargs
    add = [library["s0"]][:add_count]
    with pytest.raises(DiscoveryError) as raised:
        song_alchemy(add, neighbours=neighbours, lookup=lookup, **options)  # type: ignore[arg-type]
    assert raised.value.parameter == parameter


def test_alchemy_projection_covers_every_group() -> None:
    library = fan(36)
    neighbours, lookup = brute_force(library)
    add, sub = [library["s0"], library["s2"]], [library["s5"]]
    result = song_alchemy(add, sub, n=4, neighbours=neighbours, lookup=lookup, temperature=0.0,
                          subtract_distance=0.1, max_per_artist=1)
    picture = project_alchemy(result, add, sub)
    assert picture.add_points.shape == (2, 2) and picture.subtract_points.shape == (1, 2)
    assert picture.kept_points.shape == (4, 2) and picture.removed_points.shape == (4, 2)
    assert picture.add_centroid.shape == (2,) and picture.subtract_centroid is not None
    # The add centroid is the mean of the add songs, and PCA is linear, so it projects to the mean of their points.
    np.testing.assert_allclose(picture.add_centroid, picture.add_points.mean(axis=0), atol=1e-9)


def test_projection_shape_and_determinism() -> None:
    vectors = np.random.default_rng(0).normal(size=(30, 8))
    first = project_2d(vectors)
    assert first.shape == (30, 2)
    np.testing.assert_array_equal(first, project_2d(vectors.copy()))
    # PCA keeps pairwise structure along the main axis: points on a line stay in order.
    line = np.outer(np.arange(6.0), np.ones(4))
    coords = project_2d(line)
    assert np.all(np.diff(coords[:, 0]) > 0) or np.all(np.diff(coords[:, 0]) < 0)
    np.testing.assert_allclose(coords[:, 1], 0.0, atol=1e-9)


@pytest.mark.parametrize("count", [0, 1, 2])
def test_projection_of_tiny_inputs(count: int) -> None:
    vectors = np.arange(count * 3, dtype=np.float64).reshape(count, 3) + 1.0
    for method in ("pca", "umap"):
        coords = project_2d(vectors, method=method)
        assert coords.shape == (count, 2)
        assert np.all(np.isfinite(coords))
    if count == 2:
        assert coords[0, 0] != coords[1, 0]


def test_projection_rejects_bad_input() -> None:
    with pytest.raises(DiscoveryError):
        project_2d(np.zeros(5))
    with pytest.raises(DiscoveryError):
        project_2d(np.full((3, 2), np.nan))
    with pytest.raises(DiscoveryError):
        project_2d(np.zeros((3, 2)), method="tsne")  # type: ignore[arg-type]


def test_umap_projection_is_reproducible_with_a_seed() -> None:  # ~10 s: UMAP compiles numba code on import
    rng = np.random.default_rng(1)
    vectors = np.vstack([rng.normal(loc=c, size=(12, 6)) for c in (-3.0, 3.0)])
    first = project_2d(vectors, method="umap", seed=4)
    assert first.shape == (24, 2) and np.all(np.isfinite(first))
    np.testing.assert_allclose(first, project_2d(vectors, method="umap", seed=4))


def test_cosine_distance_is_numpys_arithmetic() -> None:
    """cosine_distance skips np.linalg.norm's overhead but must round exactly as it does (float32 and float64)."""
    rng = np.random.default_rng(3)
    for a, b in [(rng.normal(size=50).astype(np.float32), rng.normal(size=50)) for _ in range(200)]:
        for x, y in ((a, b), (a, a), (a, b.astype(np.float32)), (np.arange(50), b)):
            reference = 1.0 - np.dot(x, y) / float(np.linalg.norm(x) * np.linalg.norm(y))
            assert cosine_distance(x, y) == float(reference)
    assert cosine_distance(np.zeros(3), np.ones(3)) == 1.0
