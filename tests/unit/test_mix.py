"""The queue-aware mix on hand-made vectors: windows, the previous queue, tempo steps, durations, excluded artists,
versions, the seeded shuffle and the reasons, with exact expected ids."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from discovery.mix import MixPick, mix
from discovery.types import DiscoveryError, TrackInfo
from tests.brute_force import Library


def arc(degrees: float) -> np.ndarray:
    theta = math.radians(degrees)
    return np.array([math.cos(theta), math.sin(theta), 0.0], dtype=np.float32)


def track(item_id: str, degrees: float, **extra: object) -> TrackInfo:
    values: dict[str, object] = {"title": f"Title {item_id}", "artist": f"Artist {item_id}", "album": "",
                                 "duration_seconds": 200.0, "tempo_bpm": 120.0}
    values.update(extra)
    return TrackInfo(item_id=item_id, vector=arc(degrees), **values)  # type: ignore[arg-type]


SEED = track("s", 0, title="Seed Song", artist="Seed Artist")


def run(tracks: Sequence[TrackInfo], *, seeds: Sequence[TrackInfo] = (SEED,), count: int = 5,
        **options: object) -> list[MixPick]:
    library = Library([*seeds, *tracks])
    return mix(seeds, count=count, neighbours=library.neighbours, lookup=library.lookup, **options)  # type: ignore[arg-type]


def ids(picks: list[MixPick]) -> list[str]:
    return [p.track.item_id for p in picks]


def line(n: int = 8, **extra: object) -> list[TrackInfo]:
    """t1..tn at 1..n degrees from the seed: nearest first in that order."""
    return [track(f"t{i}", i, **extra) for i in range(1, n + 1)]


def test_nearest_first_with_reasons_and_the_nearest_seed() -> None:
    second = track("s2", 10.5, title="Other Seed")
    picks = run(line(8), seeds=(SEED, second), count=4)
    assert ids(picks) == ["t1", "t2", "t8", "t3"]  # t8 is 2.5° from the second seed, nearer than t3 to the first
    assert [p.seed_item_id for p in picks] == ["s", "s", "s2", "s"]
    assert picks[0].reason == f"near Seed Song (distance {picks[0].distance:.3f})"
    assert picks[2].reason.startswith("near Other Seed (distance ")
    assert picks[0].distance == pytest.approx(1 - math.cos(math.radians(1)), abs=1e-6)


def test_the_previous_queue_is_never_repeated_not_even_as_another_version() -> None:
    tracks = [*line(6), track("t1-live", 0.5, title="Title t1 (Live)", artist="Artist t1"),
              track("t3-remaster", 0.7, title="Title t3 - 2011 Remaster", artist="ARTIST T3")]
    assert ids(run(tracks, count=3, previous=["t1", "t3", "gone"])) == ["t2", "t4", "t5"]


def test_one_version_of_a_song_and_the_seed_versions_are_dropped() -> None:
    tracks = [track("a", 1, title="Song A"), track("a-live", 2, title="Song A (Live)", artist="Artist a"),
              track("seed-edit", 3, title="Seed Song (Radio Edit)", artist="Seed Artist"), track("b", 4)]
    assert ids(run(tracks, count=3)) == ["a", "b"]


def test_no_repeat_artist_window_counts_previous_and_picks() -> None:
    tracks = [track("x1", 1, artist="X"), track("x2", 2, artist="x"), track("y1", 3, artist="Y"),
              track("x3", 4, artist="X feat. Z"), track("z1", 5, artist="Z"), track("y2", 6, artist="Y")]
    # window 2: an artist waits two tracks
    assert ids(run(tracks, count=6, no_repeat_artist=2)) == ["x1", "y1", "z1", "x2", "y2"]  # x3 would follow x2
    # the previous queue counts: X played last
    assert ids(run(tracks, count=2, no_repeat_artist=1, previous=["p"])) == ["x1", "y1"]
    previous_x = track("px", 30, artist="X")
    library_tracks = [*tracks, previous_x]
    assert ids(run(library_tracks, count=2, no_repeat_artist=3, previous=["px"])) == ["y1", "z1"]
    # 0: off, nearest first
    assert ids(run(tracks, count=3, no_repeat_artist=0)) == ["x1", "x2", "y1"]


def test_no_repeat_album_window() -> None:
    tracks = [track("a1", 1, album="One", artist="A"), track("a2", 2, album="one", artist="A"),
              track("b1", 3, album="One", artist="B"), track("n1", 4, album="", artist="A"),
              track("n2", 5, album="", artist="A")]
    # "One" by A and "One" by B are two albums; tracks without an album never repeat one
    assert ids(run(tracks, count=5, no_repeat_album=1)) == ["a1", "b1", "a2", "n1", "n2"]


def test_max_bpm_diff_is_relative_to_the_last_track() -> None:
    seed = track("s", 0, title="Seed Song", tempo_bpm=118.0)
    tracks = [track("fast", 1, tempo_bpm=140.0), track("t121", 2, tempo_bpm=121.0),
              track("t128", 3, tempo_bpm=128.0), track("t135", 4, tempo_bpm=135.0),
              track("unknown", 1.5, tempo_bpm=None)]
    picks = run(tracks, seeds=(seed,), count=4, max_bpm_diff=8)
    assert ids(picks) == ["t121", "t128", "t135", "fast"]  # each step within 8 of the one before
    assert picks[0].reason == (f"near Seed Song (distance {picks[0].distance:.3f}), tempo 121 BPM within 8 of 118 "
                               "(Seed Song)")
    assert ids(run(tracks, seeds=(seed,), count=1, max_bpm_diff=2)) == []


def test_durations_are_inclusive_and_unknown_lengths_dropped_when_bounded() -> None:
    tracks = [track("short", 1, duration_seconds=90.0), track("edge", 2, duration_seconds=120.0),
              track("long", 3, duration_seconds=601.0), track("nolength", 4, duration_seconds=None),
              track("ok", 5, duration_seconds=600.0)]
    assert ids(run(tracks, count=5, min_duration=120, max_duration=600)) == ["edge", "ok"]
    assert ids(run(tracks, count=5)) == ["short", "edge", "long", "nolength", "ok"]


def test_excluded_artists_fold_case_and_accents() -> None:
    tracks = [track("m", 1, artist="Mötley Crüe"), track("b", 2, artist="BJÖRK feat. Someone"),
              track("c", 3, artist="Cher")]
    assert ids(run(tracks, count=3, exclude_artists=["motley crue", "Björk", " "])) == ["c"]


def test_shuffle_is_seeded_and_stays_within_equally_good_bands() -> None:
    near = [track(f"n{i}", 1 + i * 0.01) for i in range(8)]  # distances < 0.001: one band
    far = [track(f"f{i}", 90 + i) for i in range(3)]  # distances ≥ 1: farther bands
    tracks = [*near, *far]
    assert ids(run(tracks, count=11)) == [f"n{i}" for i in range(8)] + ["f0", "f1", "f2"]
    first = ids(run(tracks, count=11, shuffle=True, seed=3))
    assert first == ids(run(tracks, count=11, shuffle=True, seed=3))  # same seed, same order
    orders = {tuple(ids(run(tracks, count=11, shuffle=True, seed=s))) for s in range(6)}
    assert len(orders) > 1
    for order in orders:  # the near band always comes first
        assert sorted(order[:8]) == [f"n{i}" for i in range(8)] and sorted(order[8:]) == ["f0", "f1", "f2"]
    assert run(near, count=1, shuffle=True, seed=3)[0].reason.endswith("shuffled among songs equally near (band 0.05)")


def test_k_grows_when_the_constraints_drop_many() -> None:
    tracks = [track(f"x{i}", 1 + i * 0.1, artist="X") for i in range(60)] + [track("y", 40, artist="Y")]
    library = Library([SEED, *tracks])
    picks = mix([SEED], count=2, neighbours=library.neighbours, lookup=library.lookup, no_repeat_artist=1,
                query_factor=2)
    assert ids(picks) == ["x0", "y"] and library.queries[0] < library.queries[-1]


@pytest.mark.parametrize(("options", "parameter"), [
    ({"count": 0}, "count"), ({"no_repeat_artist": -1}, "no_repeat_artist"),
    ({"no_repeat_album": 1.5}, "no_repeat_album"),
    ({"max_bpm_diff": 0}, "max_bpm_diff"), ({"min_duration": -1}, "min_duration"),
    ({"min_duration": 300, "max_duration": 200}, "min_duration"), ({"max_duration": math.inf}, "max_duration"),
])
def test_bad_values_name_the_parameter(options: dict[str, object], parameter: str) -> None:
    with pytest.raises(DiscoveryError) as error:
        run(line(3), **{"count": 3, **options})
    assert error.value.parameter == parameter


def test_no_seed_is_an_error_naming_tracks() -> None:
    library = Library(line(3))
    with pytest.raises(DiscoveryError) as error:
        mix([], count=3, neighbours=library.neighbours, lookup=library.lookup)
    assert error.value.parameter == "tracks"
