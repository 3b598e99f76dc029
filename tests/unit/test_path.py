"""Song Path on hand-made vector sets where the right path is known."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from discovery.path import TrackFilter, interpolate, song_path
from discovery.types import DiscoveryError, TrackInfo, cosine_distance
from tests.brute_force import brute_force


def at_angle(item_id: str, degrees: float, *, artist: str | None = None, title: str | None = None) -> TrackInfo:
    """A track on the unit circle in the first quadrant; angles are cosine distances in disguise."""
    rad = math.radians(degrees)
    vector = np.array([math.cos(rad), math.sin(rad), 0.0], dtype=np.float32)
    return TrackInfo(item_id=item_id, title=title or f"Song {item_id}", artist=artist or f"Artist {item_id}",
                     vector=vector)




def make_library(tracks: list[TrackInfo]) -> dict[str, TrackInfo]:
    return {t.item_id: t for t in tracks}


def arc(count: int = 10) -> dict[str, TrackInfo]:
    """Songs at 0°, 10°, …, 90° — a line of songs in angle."""
    return make_library([at_angle(f"s{i}", 10.0 * i) for i in range(count)])


def ids(tracks: list[TrackInfo]) -> list[str]:
    return [t.item_id for t in tracks]


def test_path_along_a_line_visits_songs_in_order_and_hits_endpoints() -> None:
    library = arc()
    neighbours, lookup = brute_force(library)
    result = song_path(library["s0"], library["s9"], steps=10, neighbours=neighbours, lookup=lookup, max_per_artist=1)
    assert ids(result.tracks) == [f"s{i}" for i in range(10)]
    assert result.targets_missed == 0
    assert len(result.step_distances) == 10 and max(result.step_distances) < 1e-6
    assert len(result.hop_distances) == 9
    assert result.hop_distances == pytest.approx([1 - math.cos(math.radians(10))] * 9, abs=1e-6)
    assert result.total_distance == pytest.approx(sum(result.hop_distances))


def test_path_subsamples_the_line_in_order() -> None:
    library = arc()
    neighbours, lookup = brute_force(library)
    result = song_path(library["s0"], library["s9"], steps=4, neighbours=neighbours, lookup=lookup, max_per_artist=1)
    assert ids(result.tracks) == ["s0", "s3", "s6", "s9"]


def test_two_steps_is_just_the_endpoints() -> None:
    library = arc()
    neighbours, lookup = brute_force(library)
    result = song_path(library["s2"], library["s5"], steps=2, neighbours=neighbours, lookup=lookup, max_per_artist=1)
    assert ids(result.tracks) == ["s2", "s5"]
    assert result.targets_missed == 0


def test_artist_cap_is_never_exceeded() -> None:
    # Every song is by one of two artists; a cap of 2 allows at most 4 songs in total, endpoints included.
    library = make_library([at_angle(f"s{i}", 5.0 * i, artist=("Alpha", "Beta")[i % 2]) for i in range(19)])
    neighbours, lookup = brute_force(library)
    for exact in (False, True):
        result = song_path(library["s0"], library["s17"], steps=10, neighbours=neighbours, lookup=lookup,
                           max_per_artist=2, exact_length=exact, k_base=3, k_max=50)
        counts = Counter(t.artist for t in result.tracks)
        assert max(counts.values()) <= 2
        assert len(result.tracks) + result.targets_missed == 10
        assert len(result.tracks) == 4


def test_versions_and_near_duplicates_of_used_songs_are_skipped() -> None:
    base = [at_angle(f"s{i}", 10.0 * i) for i in range(10) if i not in (3, 5)]
    # On the 30° target sits only a live version of the start song; nearest to the 50° target is a near-copy of s4.
    version = at_angle("v0", 30.0, title="Song s0 (Live)", artist="Artist s0")
    near_copy = at_angle("n4", 41.0, title="Totally different", artist="Someone")
    library = make_library([*base, version, near_copy])
    neighbours, lookup = brute_force(library)
    result = song_path(library["s0"], library["s9"], steps=10, neighbours=neighbours, lookup=lookup,
                       max_per_artist=1, duplicate_distance=0.01)
    chosen = ids(result.tracks)
    assert "v0" not in chosen and "n4" not in chosen
    assert len(set(chosen)) == len(chosen)
    # Control: with no near-duplicate threshold the near-copy is taken.
    loose = song_path(library["s0"], library["s9"], steps=10, neighbours=neighbours, lookup=lookup,
                      max_per_artist=1, duplicate_distance=0.0)
    assert "n4" in ids(loose.tracks) and "v0" not in ids(loose.tracks)


def clustered() -> dict[str, TrackInfo]:
    """Start at 0°, end at 170°, and only three songs, at 10°, 20° and 30°, to fill the gap.

    Songs are 10° apart (cosine distance 0.015), so the default near-duplicate threshold (0.01) keeps them all.
    With steps=5 the targets are at 42.5°, 85° and 127.5°.
    """
    return make_library([at_angle("start", 0.0), at_angle("end", 170.0),
                         *(at_angle(f"c{i}", 10.0 * i) for i in range(1, 4))])


def test_without_exact_length_failed_steps_are_skipped() -> None:
    library = clustered()
    neighbours, lookup = brute_force(library)
    result = song_path(library["start"], library["end"], steps=5, neighbours=neighbours, lookup=lookup,
                       max_per_artist=1, k_base=1)
    # 42.5° takes c3; with k = 1, 85° sees only c3 (used) and 127.5° only the end song (used).
    assert ids(result.tracks) == ["start", "c3", "end"]
    assert result.targets_missed == 2
    assert len(result.step_distances) == 3 and len(result.hop_distances) == 2


def test_exact_length_merges_failed_steps_and_widens_k_up_to_k_max() -> None:
    library = clustered()
    calls: list[int] = []
    neighbours, lookup = brute_force(library, calls)
    result = song_path(library["start"], library["end"], steps=5, neighbours=neighbours, lookup=lookup,
                       max_per_artist=1, k_base=1, k_max=200, exact_length=True)
    assert len(result.tracks) == 5 and result.targets_missed == 0
    # 42.5° succeeds with k=1; 85° fails with k=1; merged with 127.5° it tries k=1+1, then (last job) k_max.
    assert calls == [1, 1, 2, 200]
    # The merged span fills its targets in order: nearest remaining to 85° (c2), then to 127.5° (c1).
    assert ids(result.tracks) == ["start", "c3", "c2", "c1", "end"]


def test_exact_length_merge_succeeds_with_summed_k() -> None:
    # Targets at 30° and 60°. With k=1 the 30° target only sees the start song; merged (centre 45°, k=2) it sees
    # a and b and gives them to the two targets in order.
    library = make_library([at_angle("start", 0.0), at_angle("end", 90.0), at_angle("a", 62.0), at_angle("b", 75.0)])
    calls: list[int] = []
    neighbours, lookup = brute_force(library, calls)
    result = song_path(library["start"], library["end"], steps=4, neighbours=neighbours, lookup=lookup,
                       max_per_artist=1, k_base=1, k_max=100, exact_length=True)
    assert calls == [1, 2]
    assert ids(result.tracks) == ["start", "a", "b", "end"]
    assert result.targets_missed == 0
    # Without exact length the first target is lost.
    short = song_path(library["start"], library["end"], steps=4, neighbours=neighbours, lookup=lookup,
                      max_per_artist=1, k_base=1)
    assert short.targets_missed == 1


def test_exact_length_reports_missed_targets_when_library_is_too_small() -> None:
    library = clustered()
    neighbours, lookup = brute_force(library)
    result = song_path(library["start"], library["end"], steps=10, neighbours=neighbours, lookup=lookup,
                       max_per_artist=1, k_base=2, exact_length=True)
    assert len(result.tracks) == 5  # start, the three songs, end
    assert result.targets_missed == 5
    assert len(set(ids(result.tracks))) == 5


def test_spherical_and_linear_interpolation_share_endpoints() -> None:
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([0.0, 2.0, 0.0])
    for method in ("linear", "spherical"):
        points = interpolate(a, b, num=5, method=method)
        assert points.shape == (5, 3)
        np.testing.assert_allclose(points[0], a, atol=1e-12)
        np.testing.assert_allclose(points[-1], b, atol=1e-12)


def test_spherical_interpolation_moves_at_constant_angle_linear_does_not() -> None:
    a = np.array([1.0, 0.0])
    b = np.array([0.0, 1.0])
    sph = interpolate(a, b, num=4, method="spherical")
    lin = interpolate(a, b, num=4, method="linear")
    angles = [math.degrees(math.atan2(p[1], p[0])) for p in sph]
    assert angles == pytest.approx([0.0, 30.0, 60.0, 90.0])
    np.testing.assert_allclose(np.linalg.norm(sph, axis=1), 1.0)
    np.testing.assert_allclose(lin[1], [2 / 3, 1 / 3])
    assert np.linalg.norm(lin[1]) < 1.0


def test_linear_interpolation_path_on_the_line() -> None:
    library = arc()
    neighbours, lookup = brute_force(library)
    result = song_path(library["s0"], library["s9"], steps=10, neighbours=neighbours, lookup=lookup,
                       max_per_artist=1, interpolation="linear")
    # Straight-chord targets are not evenly spaced in angle, but order and endpoints hold.
    assert ids(result.tracks)[0] == "s0" and ids(result.tracks)[-1] == "s9"
    angles = [math.atan2(float(t.vector[1]), float(t.vector[0])) for t in result.tracks]
    assert angles == sorted(angles)


def test_track_filter_copy_is_independent() -> None:
    rules = TrackFilter(max_per_artist=1)
    rules.add(at_angle("a", 0.0))
    trial = rules.copy()
    trial.add(at_angle("b", 45.0))
    assert not trial.admits(at_angle("b", 45.0))
    assert rules.admits(at_angle("b", 45.0))


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"steps": 1}, "steps"),
        ({"max_per_artist": 0}, "max_per_artist"),
        ({"k_base": 0}, "k_base"),
        ({"k_base": 10, "k_max": 5}, "k_max"),
        ({"interpolation": "cubic"}, "interpolation"),
        ({"duplicate_distance": -0.1}, "duplicate_distance"),
    ],
)
def test_bad_parameters_raise_discovery_error(kwargs: dict[str, object], parameter: str) -> None:
    library = arc()
    neighbours, lookup = brute_force(library)
    options: dict[str, object] = {"steps": 5, "max_per_artist": 1} | kwargs
    with pytest.raises(DiscoveryError) as raised:
        song_path(library["s0"], library["s9"], neighbours=neighbours, lookup=lookup, **options)  # type: ignore[arg-type]
    assert raised.value.parameter == parameter


def test_same_start_and_end_is_refused() -> None:
    library = arc()
    neighbours, lookup = brute_force(library)
    with pytest.raises(DiscoveryError):
        song_path(library["s0"], library["s0"], steps=5, neighbours=neighbours, lookup=lookup, max_per_artist=1)


def test_track_filter_near_duplicate_check_matches_cosine_distance() -> None:
    """The matrix form of the near-duplicate rule decides exactly as cosine_distance song by song, including zero
    vectors, exact copies and distances on the threshold."""
    rng = np.random.default_rng(11)
    base = rng.normal(size=(40, 8)).astype(np.float32)
    used = [*base[:20], np.zeros(8, dtype=np.float32), base[3] * 2.0]
    candidates = [*base[15:], np.zeros(8, dtype=np.float32), base[3], base[5] + 1e-4, -base[7]]
    candidates += [(base[i % 20] + eps * rng.normal(size=8)).astype(np.float32)
                   for i, eps in enumerate([1e-5, 1e-4, 1e-3, 1e-2, 1e-1] * 4)]
    # Thresholds on the exact distance of a candidate to a used song: decided by rounding alone.
    on_the_line = [cosine_distance(candidates[j], used[j % 20]) for j in range(len(candidates) - 20, len(candidates))]
    for threshold in (0.0, 1e-6, 0.01, 0.3, 1.0, float(cosine_distance(base[0], base[25])), *on_the_line):
        rules = TrackFilter(max_per_artist=100, duplicate_distance=threshold)
        for i, vector in enumerate(used):
            rules.add(TrackInfo(item_id=f"u{i}", title=f"U{i}", artist=f"A{i}", vector=vector))
        for j, vector in enumerate(candidates):
            expected = not any(cosine_distance(vector, u) < threshold for u in used)
            candidate = TrackInfo(item_id=f"c{j}", title=f"C{j}", artist=f"B{j}", vector=vector)
            assert rules.admits(candidate) is expected, (threshold, j)


def test_a_short_path_says_why_in_words() -> None:
    library = clustered()
    neighbours, lookup = brute_force(library)
    result = song_path(library["start"], library["end"], steps=5, neighbours=neighbours, lookup=lookup,
                       max_per_artist=1, k_base=1)
    assert result.targets_missed == 2
    # both missed targets only saw songs already on the path (c3, then the end song)
    assert result.missed_reasons == {"used": 2}
    assert result.shortfall == ("2 of the 3 steps between the two ends found no song that was not already in the "
                                "path; try fewer steps or a larger library.")
    full = song_path(library["start"], library["end"], steps=3, neighbours=neighbours, lookup=lookup,
                     max_per_artist=1)
    assert full.targets_missed == 0 and full.shortfall is None and full.missed_reasons == {}


def test_a_path_short_for_the_artist_cap_names_it() -> None:
    library = make_library([at_angle(f"s{i}", 5.0 * i, artist=("Alpha", "Beta")[i % 2]) for i in range(19)])
    neighbours, lookup = brute_force(library)
    result = song_path(library["s0"], library["s17"], steps=10, neighbours=neighbours, lookup=lookup,
                       max_per_artist=2, k_base=3)
    assert result.targets_missed == 6 and set(result.missed_reasons) >= {"artist"}
    assert result.shortfall is not None
    assert result.shortfall.startswith("6 of the 8 steps between the two ends found no song that was not ")
    assert "by an artist who already has 2 songs in it" in result.shortfall
    assert result.shortfall.endswith("try fewer steps, a higher limit of songs per artist or a larger library.")
