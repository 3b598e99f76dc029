"""Similar songs: version de-duplication, filters, artist cap, k growth and the radius walk on hand-made vectors."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest

from discovery.catalog import Catalog
from discovery.dedup import song_key
from discovery.similar import SimilarResult, similar_songs
from discovery.types import DiscoveryError, TrackInfo, cosine_distance
from tests.brute_force import Library


def arc(degrees: float, plane: str = "y") -> np.ndarray:
    """A unit vector `degrees` away from (1, 0, 0), turning towards the y or z axis."""
    theta = math.radians(degrees)
    axis = {"y": 1, "z": 2}[plane]
    v = np.zeros(3, dtype=np.float32)
    v[0], v[axis] = math.cos(theta), math.sin(theta)
    return v


def track(item_id: str, vector: np.ndarray, *, title: str | None = None, artist: str | None = None,
          **extra: object) -> TrackInfo:
    return TrackInfo(item_id=item_id, title=title or f"Title {item_id}", artist=artist or f"Artist {item_id}",
                     vector=np.asarray(vector, dtype=np.float32), **extra)  # type: ignore[arg-type]


SEED = track("seed", arc(0), title="Seed Song", artist="Seed Artist")


def run(tracks: Sequence[TrackInfo], *, seed: TrackInfo = SEED, n: int = 10, max_per_artist: int = 5,
        **options: object) -> list[SimilarResult]:
    library = Library([seed, *tracks])
    options.setdefault("duplicate_distance", 1e-4)  # ≈ 0.8°: the hand-made points are a few degrees apart
    return similar_songs(seed, n=n, neighbours=library.neighbours, lookup=library.lookup,
                         max_per_artist=max_per_artist, **options)  # type: ignore[arg-type]


def ids(results: Sequence[SimilarResult]) -> list[str]:
    return [r.track.item_id for r in results]


# --- song_key ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("title", [
    "Song", "song", "Sóng", "Song (Live)", "Song - Live at Wembley 1986", "Song (Live at the BBC)",
    "Song - 2011 Remaster", "Song (Remastered)", "Song Remastered 2011", "Song [2011 Remaster]", "Song - Radio Edit",
    "Song (Single Version)", "Song - Album Version", "Song (Mono)", "Song - Stereo", "Song [Explicit]", "Song (Clean)",
    "Song (feat. Someone)", "Song ft. Someone", "Song featuring Someone Else", "Song (Album Version) [Explicit]",
])
def test_song_key_folds_versions(title: str) -> None:
    assert song_key(title, "Artist") == ("song", "artist")


@pytest.mark.parametrize("artist", ["Artist", "ARTIST", "Ártist", "Artist feat. Guest", "Artist ft. Guest",
                                    "Artist featuring Guest", "Artist (feat. Guest)"])
def test_song_key_folds_artist(artist: str) -> None:
    assert song_key("Song", artist)[1] == "artist"


@pytest.mark.parametrize(("a", "b"), [
    ("Song", "Song 2"), ("Song", "Song (Remix)"), ("(I Can't Get No) Satisfaction", "Satisfaction"),
    ("Part 1", "Part 2"),
])
def test_song_key_keeps_core_words(a: str, b: str) -> None:
    assert song_key(a, "X") != song_key(b, "X")


def test_song_key_never_empty() -> None:
    assert song_key("(Live)", "feat. X") == ("live", "feat x")


# --- standard mode ----------------------------------------------------------------------------------------------

def test_standard_mode_is_by_distance_and_excludes_the_seed() -> None:
    tracks = [track(f"t{d}", arc(d)) for d in (30, 10, 20, 40)]
    results = run(tracks, n=3)
    assert ids(results) == ["t10", "t20", "t30"]
    assert [r.distance for r in results] == sorted(r.distance for r in results)
    assert results[0].distance == pytest.approx(1 - math.cos(math.radians(10)), abs=1e-6)


def test_version_dedup_keeps_one_of_the_versions() -> None:
    tracks = [
        track("studio", arc(10), title="Song", artist="Band"),
        track("live", arc(14), title="Song (Live)", artist="Band"),
        track("remaster", arc(18), title="Song - 2011 Remaster", artist="band"),
        track("feat", arc(22), title="Song (feat. Someone)", artist="Band"),
        track("other", arc(26), title="Another Song", artist="Band"),
    ]
    assert ids(run(tracks)) == ["studio", "other"]


def test_versions_of_the_seed_are_dropped() -> None:
    tracks = [track("live", arc(5), title="Seed Song (Live)", artist="Seed Artist feat. X"), track("x", arc(9))]
    assert ids(run(tracks)) == ["x"]


def test_near_duplicates_by_distance_are_removed() -> None:
    tracks = [
        track("a", arc(10)), track("a_copy", arc(10.5)),  # 1 − cos(0.5°) ≈ 4e-5 from a
        track("b", arc(20)), track("seed_copy", arc(0.3, "z")),  # a differently tagged copy of the seed
    ]
    assert ids(run(tracks, duplicate_distance=0.001)) == ["a", "b"]
    assert ids(run(tracks, duplicate_distance=0.0)) == ["seed_copy", "a", "a_copy", "b"]


def _random_library(seed: int, *, size: int = 150, artists: int = 8) -> tuple[TrackInfo, list[TrackInfo]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(size + 1, 8)).astype(np.float32)
    tracks = [track(f"r{i}", vectors[i + 1], title=f"Tune {i}", artist=f"Artist {rng.integers(artists)}")
              for i in range(size)]
    return track("s", vectors[0], title="Seed", artist="Artist 0"), tracks


@pytest.mark.parametrize("rng_seed", [0, 1, 2, 3])
@pytest.mark.parametrize("radius_walk", [False, True])
@pytest.mark.parametrize("cap", [1, 2, 3])
def test_artist_cap_is_never_exceeded(rng_seed: int, radius_walk: bool, cap: int) -> None:
    seed, tracks = _random_library(rng_seed)
    results = run(tracks, seed=seed, n=20, max_per_artist=cap, radius_walk=radius_walk, query_factor=1)
    counts = Counter(r.track.artist for r in results)
    assert max(counts.values()) <= cap
    artists_available = len({t.artist for t in tracks})
    assert len(results) == min(20, cap * artists_available)
    assert len(set(ids(results))) == len(results)


def test_artist_cap_off_when_not_eliminating_duplicates() -> None:
    tracks = [track(f"t{d}", arc(d), artist="Same") for d in (10, 20, 30, 40)]
    assert len(run(tracks, max_per_artist=1, eliminate_duplicates=False)) == 4
    assert ids(run(tracks, max_per_artist=1)) == ["t10"]


def test_seed_artist_does_not_use_up_a_place() -> None:
    tracks = [track("mine", arc(10), artist="Seed Artist"), track("mine2", arc(20), artist="SEED ARTIST")]
    assert ids(run(tracks, max_per_artist=1)) == ["mine"]


def test_k_grows_until_n_survive() -> None:
    blocked = [track(f"b{i}", arc(1 + i * 0.5), artist="Noisy") for i in range(40)]
    good = [track(f"g{i}", arc(40 + i)) for i in range(10)]
    library = Library([SEED, *blocked, *good])
    results = similar_songs(SEED, n=5, neighbours=library.neighbours, lookup=library.lookup, max_per_artist=2,
                            duplicate_distance=1e-5,
                            exclude_artists=["noisy"], query_factor=2)
    assert ids(results) == ["g0", "g1", "g2", "g3", "g4"]
    assert library.queries[:4] == [10, 20, 40, 80]


def test_index_exhausted_returns_what_there_is() -> None:
    library = Library([SEED, track("a", arc(10)), track("b", arc(20))])
    results = similar_songs(SEED, n=10, neighbours=library.neighbours, lookup=library.lookup, max_per_artist=1)
    assert ids(results) == ["a", "b"]
    assert library.queries == [40]


def test_max_query_caps_growth() -> None:
    blocked = [track(f"b{i}", arc(1 + i * 0.5), artist="Noisy") for i in range(40)]
    library = Library([SEED, *blocked, track("g", arc(60))])
    results = similar_songs(SEED, n=1, neighbours=library.neighbours, lookup=library.lookup, max_per_artist=1,
                            exclude_artists=["Noisy"], query_factor=2, max_query=12)
    assert results == []
    assert library.queries == [2, 4, 8, 12]


def test_mood_filter_keeps_tracks_within_tolerance() -> None:
    seed = track("seed", arc(0), moods={"happy": 0.5, "sad": 0.2})
    tracks = [
        track("close", arc(10), moods={"happy": 0.6, "sad": 0.25}),
        track("too_happy", arc(12), moods={"happy": 0.75, "sad": 0.2}),
        track("too_sad", arc(14), moods={"happy": 0.5, "sad": 0.5}),
        track("no_moods", arc(16)),
        track("edge", arc(18), moods={"happy": 0.4, "sad": 0.0}),
    ]
    assert ids(run(tracks, seed=seed, mood_filter={"happy": 0.15, "sad": 0.2})) == ["close", "edge"]
    assert ids(run(tracks, seed=seed, mood_filter={"happy": 0.15})) == ["close", "too_sad", "edge"]
    with pytest.raises(DiscoveryError, match="party") as info:
        run(tracks, seed=seed, mood_filter={"party": 0.1})
    assert info.value.parameter == "mood_filter"


def test_duration_and_bpm_ranges() -> None:
    tracks = [
        track("short", arc(10), duration_seconds=100.0, tempo_bpm=120.0),
        track("ok", arc(12), duration_seconds=200.0, tempo_bpm=124.0),
        track("long", arc(14), duration_seconds=400.0, tempo_bpm=126.0),
        track("no_bpm", arc(16), duration_seconds=210.0),
        track("slow", arc(18), duration_seconds=220.0, tempo_bpm=90.0),
        track("edge", arc(20), duration_seconds=300.0, tempo_bpm=130.0),
    ]
    assert ids(run(tracks, duration_range=(150.0, 300.0))) == ["ok", "no_bpm", "slow", "edge"]
    assert ids(run(tracks, bpm_range=(120.0, 130.0))) == ["short", "ok", "long", "edge"]
    assert ids(run(tracks, bpm_range=(None, 100.0))) == ["slow"]
    assert ids(run(tracks, duration_range=(150.0, None), bpm_range=(120.0, 130.0))) == ["ok", "long", "edge"]


def test_exclude_artists_ignores_case_and_accents() -> None:
    tracks = [track("a", arc(10), artist="Beyoncé"), track("b", arc(20), artist="Other"),
              track("c", arc(30), artist="BEYONCE feat. Jay")]
    assert ids(run(tracks, exclude_artists={"beyonce"})) == ["b"]


@pytest.mark.parametrize(("options", "parameter", "shown"), [
    ({"n": 0}, "n", "got 0"),
    ({"max_per_artist": 0}, "max_per_artist", "got 0"),
    ({"duration_range": (300.0, 100.0)}, "duration_range", "(300.0, 100.0)"),
    ({"bpm_range": (130.0, 120.0)}, "bpm_range", "(130.0, 120.0)"),
    ({"mood_filter": {"happy": 0.0}}, "mood_filter", "got 0.0"),
    ({"duplicate_distance": -0.1}, "duplicate_distance", "got -0.1"),
    ({"query_factor": 0}, "query_factor", "got 0"),
])
def test_invalid_parameters_name_the_value(options: dict[str, object], parameter: str, shown: str) -> None:
    seed = track("seed", arc(0), moods={"happy": 0.5})
    library = Library([seed])
    kwargs: dict[str, object] = {"n": 5, "max_per_artist": 2} | options
    with pytest.raises(DiscoveryError, match=re.escape(shown)) as info:
        similar_songs(seed, neighbours=library.neighbours, lookup=library.lookup, **kwargs)  # type: ignore[arg-type]
    assert info.value.parameter == parameter
    assert library.queries == []


# --- radius walk ------------------------------------------------------------------------------------------------

def _two_branches() -> list[TrackInfo]:
    """Branch A turns towards y (10°, 20°, 30°), branch B towards z (12°, 22°, 32°): interleaved by distance."""
    return [track(f"A{d}", arc(d, "y")) for d in (10, 20, 30)] + [track(f"B{d}", arc(d, "z")) for d in (12, 22, 32)]


def test_radius_walk_follows_the_previous_song() -> None:
    tracks = _two_branches()
    standard = run(tracks, n=6)
    assert ids(standard) == ["A10", "B12", "A20", "B22", "A30", "B32"]
    walk = run(tracks, n=6, radius_walk=True, walk_bucket_size=2, walk_buckets_to_scan=2)
    # A10 → A20 (stays on branch A), B12 must be taken before leaving bucket 0, then B walks outward, A30 last.
    assert ids(walk) == ["A10", "A20", "B12", "B22", "B32", "A30"]
    assert sorted(r.distance for r in walk) == [r.distance for r in standard]  # distances stay to the seed

    def path_length(results: Sequence[SimilarResult]) -> float:
        return sum(cosine_distance(a.track.vector, b.track.vector) for a, b in zip(results, results[1:], strict=False))

    assert path_length(walk) < path_length(standard)


def test_radius_walk_with_one_bucket_is_a_pure_nearest_neighbour_chain_outward() -> None:
    tracks = [track(f"t{d}", arc(d)) for d in (5, 10, 15, 20, 25)]
    walk = run(tracks, n=5, radius_walk=True, walk_bucket_size=1, walk_buckets_to_scan=1)
    assert ids(walk) == ["t5", "t10", "t15", "t20", "t25"]


def test_radius_walk_applies_the_cap_during_the_walk() -> None:
    tracks = [track(f"x{d}", arc(d, "y"), artist="X") for d in (10, 14, 18, 22)]
    tracks += [track(f"o{d}", arc(d, "z")) for d in (12, 16, 20, 24)]
    walk = run(tracks, n=6, max_per_artist=2, radius_walk=True, walk_bucket_size=4, walk_buckets_to_scan=2)
    assert Counter(r.track.artist for r in walk)["X"] == 2
    assert ids(walk)[:2] == ["x10", "x14"]  # the walk stays on X's branch until the cap stops it
    assert len(walk) == 6


def test_radius_walk_keeps_an_artist_to_two_bucket_subpaths_while_others_remain() -> None:
    # One song per bucket; artist X's songs form a branch towards y, the others a branch towards z, interleaved by
    # distance to the seed. Left alone, the walk would follow X's branch (x10 → x12 → x14 …).
    tracks = [track(f"x{d}", arc(d, "y"), artist="X") for d in (10, 12, 14, 16)]
    tracks += [track(f"o{d}", arc(d, "z")) for d in (11, 13, 15)]
    walk = ids(run(tracks, n=7, max_per_artist=9, radius_walk=True, walk_bucket_size=1, walk_buckets_to_scan=4))
    assert walk[:2] == ["x10", "x12"]  # X now has songs from two buckets
    assert walk[2:5] == ["o11", "o13", "o15"]  # X's third bucket waits while other songs remain
    assert walk[5:] == ["x14", "x16"]  # then the rule is dropped and the cap alone applies


def test_radius_walk_deduplicates_before_walking() -> None:
    tracks = [track("a", arc(10), title="Song"), track("a_live", arc(11), title="Song (Live)", artist="Artist a"),
              track("b", arc(20)), track("b_copy", arc(20.2))]
    assert ids(run(tracks, radius_walk=True, duplicate_distance=0.001)) == ["a", "b"]


# --- the catalogue the web process looks tracks up in ----------------------------------------------------------------
def catalog_row(item_id: str, title: str = "", artist: str = "", **values: object) -> tuple[object, ...]:
    """A db.tracks.catalog_rows tuple; `found=False` stands for an indexed item without a tracks row."""
    found = values.pop("found", True)
    columns = ("album", "duration_seconds", "tempo_bpm", "camelot", "energy", "moods")
    if not found:
        return (item_id, False, None, None, *(None for _ in columns))
    return (item_id, True, title, artist, *(values.get(c) for c in columns))


def test_catalog_gives_back_exactly_what_was_stored() -> None:
    rows = [
        catalog_row("b", "Song (Live)", "Beyoncé feat. X", album="A", duration_seconds=201.5, tempo_bpm=123.4,
                    camelot="8A", energy=0.72, moods={"happy": 0.25, "sad": None, "party": 1}),
        catalog_row("a", "Other", "Band", album="A", camelot=None, moods=None),
        catalog_row("ghost", found=False),
        catalog_row("é/ü.flac", "Ünïcode", "Band", album="B", moods={"happy": 0.5}),
        catalog_row("odd", "Odd", "Band", moods=[0.5]),  # damaged moods must not stop the index from loading
    ]
    catalog = Catalog.build([str(r[0]) for r in rows], iter(rows))
    vector = np.ones(3, dtype=np.float32)
    first = catalog.track(0, vector)
    assert first is not None and first.vector is vector
    assert (first.item_id, first.title, first.artist, first.album) == ("b", "Song (Live)", "Beyoncé feat. X", "A")
    # The numbers come back as the very floats PostgreSQL returned (JSON output must not change).
    assert (first.duration_seconds, first.tempo_bpm, first.energy, first.camelot) == (201.5, 123.4, 0.72, "8A")
    assert dict(first.moods) == {"happy": 0.25, "party": 1.0}  # a score that is not a number counts as missing
    assert first.song_key == song_key("Song (Live)", "Beyoncé feat. X") == first.song
    second = catalog.track(1, vector)
    assert second is not None
    assert (second.duration_seconds, second.tempo_bpm, second.camelot, dict(second.moods)) == (None, None, None, {})
    assert catalog.track(2, vector) is None  # indexed, but no metadata: left out like a missing row
    assert [catalog.position(i) for i in ("a", "b", "ghost", "é/ü.flac", "nope", "")] == [1, 0, 2, 3, None, None]
    assert [catalog.item_id(p) for p in range(len(catalog))] == ["b", "a", "ghost", "é/ü.flac", "odd"]
    odd = catalog.track(4, vector)
    assert odd is not None and dict(odd.moods) == {}


def test_catalog_refuses_rows_that_do_not_match_the_index() -> None:
    with pytest.raises(ValueError, match="'b'"):
        Catalog.build(["a", "c"], iter([catalog_row("a", "A", "X"), catalog_row("b", "B", "X")]))
    with pytest.raises(ValueError, match="1 rows for 2"):
        Catalog.build(["a", "b"], iter([catalog_row("a", "A", "X")]))


def test_similar_songs_agree_with_and_without_precomputed_song_keys() -> None:
    rng = np.random.default_rng(5)
    titles = ["Song", "Song (Live)", "Song - 2011 Remaster", "Other", "Other (feat. Y)", "Third"]
    plain = [track(f"t{i}", rng.normal(size=3), title=titles[i % len(titles)], artist=f"Band {i % 4}")
             for i in range(60)]
    rows = [catalog_row(t.item_id, t.title, t.artist) for t in [SEED, *plain]]
    catalog = Catalog.build([str(r[0]) for r in rows], iter(rows))
    keyed = [catalog.track(i + 1, t.vector) for i, t in enumerate(plain)]
    assert all(t is not None and t.song_key is not None for t in keyed)
    for options in ({}, {"radius_walk": True}, {"max_per_artist": 1}):
        expected = [(r.track.item_id, r.distance) for r in run(plain, n=12, **options)]
        got = [(r.track.item_id, r.distance) for r in run(keyed, n=12, **options)]
        assert got == expected


# --- mood weight and the farthest track ------------------------------------------------------------------------

def test_mood_weight_moves_a_song_of_the_seeds_mood_ahead_of_a_closer_one() -> None:
    seed = track("seed", arc(0), moods={"happy": 0.9, "sad": 0.1})
    near_sad = track("sad", arc(5), moods={"happy": 0.1, "sad": 0.9})
    farther_happy = track("happy", arc(12), moods={"happy": 0.9, "sad": 0.1})
    assert ids(run([near_sad, farther_happy], seed=seed, n=2)) == ["sad", "happy"]
    mixed = run([near_sad, farther_happy], seed=seed, n=2, mood_weight=0.3)
    assert ids(mixed) == ["happy", "sad"]
    assert mixed[0].audio_distance == pytest.approx(cosine_distance(seed.vector, farther_happy.vector), abs=1e-5)
    assert mixed[0].distance == pytest.approx(0.7 * mixed[0].audio_distance, abs=1e-5)
    # a seed without moods is ranked by sound alone
    assert ids(run([near_sad, farther_happy], n=2, mood_weight=0.3)) == ["sad", "happy"]
    with pytest.raises(DiscoveryError, match="mood_weight"):
        run([near_sad], seed=seed, mood_weight=1.5)


def test_farthest_is_the_opposite_end_of_the_library() -> None:
    from discovery.similar import farthest

    tracks = [track(str(d), arc(d)) for d in (10, 60, 120, 170)]
    library = Library([SEED, *tracks])
    far_id, distance = farthest(SEED, neighbours=library.neighbours)
    assert far_id == "170" and distance == pytest.approx(1 - math.cos(math.radians(170)), abs=1e-5)
    assert farthest(SEED, neighbours=Library([SEED]).neighbours) == (None, 0.0)
