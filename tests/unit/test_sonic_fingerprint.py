"""Sonic Fingerprint: recency weights, the weighted mean, and the seed/discovery mix."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from discovery.sonic_fingerprint import fingerprint_weights, sonic_fingerprint
from discovery.types import DiscoveryError, TrackInfo, cosine_distance
from tests.brute_force import brute_force

DAY = 86_400.0
NOW = 1_700_000_000.0


def at_angle(item_id: str, degrees: float, *, artist: str | None = None, title: str | None = None) -> TrackInfo:
    rad = math.radians(degrees)
    vector = np.array([math.cos(rad), math.sin(rad), 0.0], dtype=np.float32)
    return TrackInfo(item_id=item_id, title=title or f"Song {item_id}", artist=artist or f"Artist {item_id}",
                     vector=vector)




def fan(count: int = 36) -> dict[str, TrackInfo]:
    return {f"s{i}": at_angle(f"s{i}", 10.0 * i) for i in range(count)}


def test_weights_halve_every_half_life() -> None:
    weights = fingerprint_weights([NOW, NOW - 30 * DAY, NOW - 60 * DAY, None], now=NOW)
    np.testing.assert_allclose(weights, [1.0, 0.5, 0.25, 0.2])


def test_weights_options_and_future_plays() -> None:
    weights = fingerprint_weights([NOW - 7 * DAY, None, NOW + DAY], now=NOW, half_life_days=7.0, unknown_weight=0.05)
    np.testing.assert_allclose(weights, [0.5, 0.05, 1.0])
    assert fingerprint_weights([], now=NOW).shape == (0,)


@pytest.mark.parametrize(("kwargs", "parameter"), [({"half_life_days": 0.0}, "half_life_days"),
                                                    ({"unknown_weight": -0.1}, "unknown_weight"),
                                                    ({"unknown_weight": 1.5}, "unknown_weight")])
def test_weights_reject_bad_options(kwargs: dict[str, float], parameter: str) -> None:
    with pytest.raises(DiscoveryError) as raised:
        fingerprint_weights([NOW], now=NOW, **kwargs)
    assert raised.value.parameter == parameter


def test_fingerprint_vector_is_the_weighted_mean() -> None:
    library = fan()
    neighbours, lookup = brute_force(library)
    played = [(library["s0"], NOW), (library["s9"], NOW - 30 * DAY), (library["s3"], None)]
    result = sonic_fingerprint(played, n=5, neighbours=neighbours, lookup=lookup, now=NOW, max_per_artist=1)
    w = np.array([1.0, 0.5, 0.2])
    vectors = np.stack([t.vector for t, _ in played]).astype(np.float64)
    np.testing.assert_allclose(result.vector, (w[:, None] * vectors).sum(axis=0) / w.sum(), atol=1e-7)


def test_mix_has_seeds_first_then_discoveries_and_never_repeats() -> None:
    library = fan()
    neighbours, lookup = brute_force(library)
    played = [(library["s1"], NOW - 60 * DAY), (library["s2"], NOW), (library["s3"], NOW - 30 * DAY),
              (library["s4"], None)]
    result = sonic_fingerprint(played, n=10, neighbours=neighbours, lookup=lookup, now=NOW, max_per_artist=1,
                               seeds_share=0.3)
    roles = [role for _, role in result.tracks]
    chosen = [t.item_id for t, _ in result.tracks]
    assert len(chosen) == 10 and len(set(chosen)) == 10
    # round(0.3 × 10) = 3 seeds, heaviest first: s2 (today), s3 (30 days), s1 (60 days; 0.25 > unknown 0.2).
    assert roles == ["seed"] * 3 + ["discovery"] * 7
    assert chosen[:3] == ["s2", "s3", "s1"]
    played_ids = {t.item_id for t, _ in played}
    assert not played_ids & set(chosen[3:])
    # Discoveries are the nearest unplayed songs to the fingerprint, nearest first.
    distances = [cosine_distance(t.vector, result.vector) for t, role in result.tracks if role == "discovery"]
    assert distances == sorted(distances)
    unplayed = [t for t in library.values() if t.item_id not in played_ids]
    nearest = sorted(unplayed, key=lambda t: cosine_distance(t.vector, result.vector))[:7]
    assert set(chosen[3:]) == {t.item_id for t in nearest}


def test_versions_of_played_songs_are_not_discoveries() -> None:
    library = fan()
    library["s2live"] = at_angle("s2live", 22.0, title="Song s2 (Live)", artist="Artist s2")
    neighbours, lookup = brute_force(library)
    played = [(library["s2"], NOW)]
    result = sonic_fingerprint(played, n=5, neighbours=neighbours, lookup=lookup, now=NOW, max_per_artist=3,
                               seeds_share=0.0)
    chosen = [t.item_id for t, _ in result.tracks]
    assert "s2live" not in chosen and "s2" not in chosen
    assert all(role == "discovery" for _, role in result.tracks)


def test_artist_cap_holds_across_seeds_and_discoveries() -> None:
    library = {f"s{i}": at_angle(f"s{i}", 10.0 * i, artist=("A", "B")[i % 2]) for i in range(30)}
    neighbours, lookup = brute_force(library)
    played = [(library["s0"], NOW), (library["s2"], NOW), (library["s1"], NOW)]
    result = sonic_fingerprint(played, n=10, neighbours=neighbours, lookup=lookup, now=NOW, max_per_artist=2,
                               seeds_share=0.5)
    counts = Counter(t.artist for t, _ in result.tracks)
    assert max(counts.values()) <= 2
    assert len(result.tracks) == 4  # two artists × cap 2


def test_small_library_tops_up_with_more_seeds() -> None:
    library = {f"s{i}": at_angle(f"s{i}", 10.0 * i) for i in range(5)}
    neighbours, lookup = brute_force(library)
    played = [(library[f"s{i}"], NOW - i * DAY) for i in range(4)]
    result = sonic_fingerprint(played, n=10, neighbours=neighbours, lookup=lookup, now=NOW, max_per_artist=1,
                               seeds_share=0.2)
    roles = Counter(role for _, role in result.tracks)
    assert roles == {"seed": 4, "discovery": 1}
    assert [role for _, role in result.tracks][-1] == "discovery"


def test_seeds_share_one_gives_only_seeds_when_enough_played() -> None:
    library = fan()
    neighbours, lookup = brute_force(library)
    played = [(library[f"s{i}"], NOW) for i in range(6)]
    result = sonic_fingerprint(played, n=4, neighbours=neighbours, lookup=lookup, now=NOW, max_per_artist=1,
                               seeds_share=1.0)
    assert [role for _, role in result.tracks] == ["seed"] * 4


@pytest.mark.parametrize(
    ("played_count", "kwargs", "parameter"),
    [
        (0, {}, "played"),
        (2, {"n": 0}, "n"),
        (2, {"seeds_share": 1.5}, "seeds_share"),
        (2, {"max_per_artist": 0}, "max_per_artist"),
    ],
)
def test_bad_parameters_raise_discovery_error(played_count: int, kwargs: dict[str, object], parameter: str) -> None:
    library = fan()
    neighbours, lookup = brute_force(library)
    played = [(library[f"s{i}"], NOW) for i in range(played_count)]
    options: dict[str, object] = {"n": 5, "max_per_artist": 1} | kwargs
    with pytest.raises(DiscoveryError) as raised:
        sonic_fingerprint(played, neighbours=neighbours, lookup=lookup, now=NOW, **options)  # type: ignore[arg-type]
    assert raised.value.parameter == parameter


def test_all_weights_zero_is_an_error() -> None:
    library = fan()
    neighbours, lookup = brute_force(library)
    with pytest.raises(DiscoveryError):
        sonic_fingerprint([(library["s0"], None)], n=3, neighbours=neighbours, lookup=lookup, now=NOW,
                          max_per_artist=1, unknown_weight=0.0)
