"""Mixable tracks: the Camelot wheel, half/double time, and the three modes' filters, rankings and reasons."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from discovery.mixable import MixResult, camelot_compatible, mixable_tracks, tempo_match
from discovery.types import DiscoveryError, TrackInfo
from tests.brute_force import Library


def at(degrees: float) -> np.ndarray:
    theta = math.radians(degrees)
    return np.array([math.cos(theta), math.sin(theta)], dtype=np.float32)


def track(item_id: str, degrees: float, *, bpm: float | None = None, key: str | None = None,
          energy: float | None = None, title: str | None = None) -> TrackInfo:
    return TrackInfo(item_id=item_id, title=title or f"Title {item_id}", artist=f"Artist {item_id}",
                     vector=at(degrees), tempo_bpm=bpm, camelot=key, energy=energy)


SEED = TrackInfo(item_id="seed", title="Seed", artist="DJ", vector=at(0), tempo_bpm=120.0, camelot="8A", energy=0.5)


def run(tracks: Sequence[TrackInfo], *, seed: TrackInfo = SEED, n: int = 10, **options: object) -> list[MixResult]:
    library = Library([seed, *tracks])
    return mixable_tracks(seed, n=n, neighbours=library.neighbours, lookup=library.lookup,
                          **options)  # type: ignore[arg-type]


def ids(results: Sequence[MixResult]) -> list[str]:
    return [r.track.item_id for r in results]


# --- Camelot wheel and tempo ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b", "reason"), [
    ("8A", "8A", "same key"),
    ("8A", "7A", "±1"),
    ("8A", "9A", "±1"),
    ("8A", "8B", "relative"),
    ("8B", "8A", "relative"),
    ("8A", "3B", None),
    ("8A", "10A", None),
    ("8A", "9B", None),
    ("12A", "1A", "±1"),
    ("1B", "12B", "±1"),
    (" 8a", "8A ", "same key"),
])
def test_camelot_compatible(a: str, b: str, reason: str | None) -> None:
    assert camelot_compatible(a, b) == reason


@pytest.mark.parametrize(("a", "b", "parameter"), [("13A", "8A", "a"), ("8A", "C#m", "b"), ("", "8A", "a")])
def test_camelot_rejects_non_codes(a: str, b: str, parameter: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        camelot_compatible(a, b)
    assert info.value.parameter == parameter


@pytest.mark.parametrize(("seed_bpm", "bpm", "reason"), [
    (120.0, 120.0, "same tempo"),
    (120.0, 122.5, "same tempo"),
    (120.0, 123.0, "same tempo"),
    (120.0, 124.0, None),
    (120.0, 60.0, "half time"),
    (120.0, 61.4, "half time"),  # 2 × 61.4 = 122.8, within 3 of 120
    (120.0, 240.0, "double time"),
    (120.0, 245.0, "double time"),  # 245 / 2 = 122.5
    (120.0, 90.0, None),
    (120.0, 0.0, None),
])
def test_tempo_match(seed_bpm: float, bpm: float, reason: str | None) -> None:
    assert tempo_match(seed_bpm, bpm, 3.0) == reason


def test_tempo_match_needs_positive_tolerance() -> None:
    with pytest.raises(DiscoveryError, match="got 0") as info:
        tempo_match(120.0, 120.0, 0.0)
    assert info.value.parameter == "tolerance"


# --- modes ------------------------------------------------------------------------------------------------------

def test_harmonic_requires_a_compatible_key_and_ranks_exact_then_bpm_then_distance() -> None:
    tracks = [
        track("plus_one_near", 5, bpm=120.0, key="9A"),
        track("same_key_far_bpm", 10, bpm=140.0, key="8A"),
        track("incompatible", 2, bpm=120.0, key="3B"),
        track("same_key_close_bpm", 30, bpm=121.0, key="8A"),
        track("relative_far", 20, bpm=120.0, key="8B"),
        track("same_key_half_time", 40, bpm=60.0, key="8a"),
        track("no_key", 1, bpm=120.0),
    ]
    results = run(tracks, mode="harmonic")
    assert ids(results) == ["same_key_half_time", "same_key_close_bpm", "same_key_far_bpm", "plus_one_near",
                            "relative_far"]
    assert [r.score for r in results] == pytest.approx([0.0, 1 / 3, 1.0, 2.0, 2.0])
    assert results[0].reasons == ["semantic", "bpm", "key"]
    assert results[2].reasons == ["semantic", "key"]
    assert any("half time" in d for d in results[0].detail)
    assert any("8A → 9A (±1)" in d for d in results[3].detail)
    assert any("relative" in d for d in results[4].detail)


def test_energy_requires_a_bpm_match_and_ranks_by_bpm_and_energy() -> None:
    tracks = [
        track("exact", 30, bpm=120.0, energy=0.5),
        track("exact_wrong_energy", 5, bpm=120.0, energy=0.9),
        track("off_by_two", 10, bpm=122.0, energy=0.5, key="8A"),
        track("double", 20, bpm=241.0, energy=0.55),
        track("no_energy", 3, bpm=120.0),
        track("too_fast", 1, bpm=130.0, energy=0.5, key="8A"),
        track("no_bpm", 2, key="8A"),
    ]
    results = run(tracks, mode="energy", bpm_tolerance=3.0)
    assert ids(results) == ["exact", "double", "exact_wrong_energy", "off_by_two", "no_energy"]
    assert [r.score for r in results] == pytest.approx([0.0, 0.5 / 3 + 0.05, 0.4, 2 / 3, 1.0])
    assert results[1].reasons == ["semantic", "bpm"]
    assert results[3].reasons == ["semantic", "bpm", "key"]
    assert any("double time" in d for d in results[1].detail)


def test_vibe_needs_bpm_or_key_and_ranks_by_distance() -> None:
    tracks = [
        track("key_only", 10, bpm=90.0, key="7A"),
        track("bpm_only", 5, bpm=119.0, key="2B"),
        track("neither", 1, bpm=90.0, key="2B"),
        track("both", 20, bpm=120.0, key="8A"),
        track("unknown", 2),
    ]
    results = run(tracks, mode="vibe")
    assert ids(results) == ["bpm_only", "key_only", "both"]
    assert [r.reasons for r in results] == [["semantic", "bpm"], ["semantic", "key"], ["semantic", "bpm", "key"]]
    assert [r.score for r in results] == [r.distance for r in results]
    assert results[0].distance == pytest.approx(1 - math.cos(math.radians(5)), abs=1e-6)


def test_vibe_works_with_only_one_seed_feature() -> None:
    seed = TrackInfo(item_id="seed", title="Seed", artist="DJ", vector=at(0), camelot="8A")
    results = run([track("k", 5, key="9A"), track("b", 3, bpm=120.0)], seed=seed, mode="vibe")
    assert ids(results) == ["k"]


def test_seed_and_its_versions_are_excluded_and_n_and_pool_respected() -> None:
    tracks = [track(f"t{i}", i + 1, bpm=120.0, key="8A") for i in range(10)]
    tracks.append(TrackInfo(item_id="live", title="Seed (Live)", artist="DJ", vector=at(0.5), tempo_bpm=120.0,
                            camelot="8A"))
    library = Library([SEED, *tracks])
    results = mixable_tracks(SEED, n=3, neighbours=library.neighbours, lookup=library.lookup, mode="vibe", pool=5)
    assert ids(results) == ["t0", "t1", "t2"]
    assert library.queries == [6]
    assert len(run(tracks, mode="vibe", pool=4)) == 3  # the 5 queried: seed, live, t0, t1, t2


@pytest.mark.parametrize(("mode", "seed", "missing"), [
    ("harmonic", TrackInfo(item_id="s", title="S", artist="A", vector=at(0), tempo_bpm=120.0), "Camelot key"),
    ("harmonic", TrackInfo(item_id="s", title="S", artist="A", vector=at(0), camelot="H9"), "Camelot key"),
    ("energy", TrackInfo(item_id="s", title="S", artist="A", vector=at(0), camelot="8A"), "BPM"),
    ("vibe", TrackInfo(item_id="s", title="S", artist="A", vector=at(0)), "BPM or Camelot key"),
])
def test_seed_missing_what_the_mode_needs(mode: str, seed: TrackInfo, missing: str) -> None:
    with pytest.raises(DiscoveryError, match=missing) as info:
        run([], seed=seed, mode=mode)
    assert info.value.parameter == "seed"


@pytest.mark.parametrize(("options", "parameter", "shown"), [
    ({"n": 0}, "n", "got 0"),
    ({"pool": 0}, "pool", "got 0"),
    ({"bpm_tolerance": 0.0}, "bpm_tolerance", "got 0.0"),
    ({"bpm_tolerance": -2.0}, "bpm_tolerance", "got -2.0"),
    ({"mode": "tempo"}, "mode", "'tempo'"),
])
def test_invalid_parameters_name_the_value(options: dict[str, object], parameter: str, shown: str) -> None:
    with pytest.raises(DiscoveryError, match=shown) as info:
        run([], **({"n": 5} | options))  # type: ignore[arg-type]
    assert info.value.parameter == parameter


# --- one version per song, the artist cap, what the tolerance means ---------------------------------------------

def copies_and_one_artist() -> list[TrackInfo]:
    """Three copies of one recording (FLAC, MP3, a re-encode a hair away), a live version, and four songs by one
    artist; all in key 8A at 120 BPM, so every mode lists all of them unless versions or the cap are applied."""
    def song(item_id: str, degrees: float, title: str, artist: str) -> TrackInfo:
        return TrackInfo(item_id=item_id, title=title, artist=artist, vector=at(degrees), tempo_bpm=120.0,
                         camelot="8A", energy=0.5)
    # 0.01 of cosine distance is about 8.1°: distinct songs stand 10° apart, copies within half a degree
    return [song("flac", 10.0, "Night Drive", "Band"), song("mp3", 10.2, "Night Drive", "Band"),
            song("reencode", 10.4, "Night Drive (2019)", "Band"), song("live", 21.0, "Night Drive (Live)", "Band"),
            song("a1", 32.0, "One", "Solo"), song("a2", 43.0, "Two", "Solo"), song("a3", 54.0, "Three", "Solo"),
            song("a4", 65.0, "Four", "Solo")]


@pytest.mark.parametrize("mode", ["harmonic", "energy", "vibe"])
def test_every_mode_lists_one_version_of_a_song_and_caps_each_artist(mode: str) -> None:
    results = run(copies_and_one_artist(), mode=mode, max_per_artist=3, duplicate_distance=0.01)
    assert ids(results) == ["flac", "a1", "a2", "a3"]  # mp3, the re-encode and the live version are versions
    assert ids(run(copies_and_one_artist(), mode=mode, max_per_artist=2, duplicate_distance=0.01)) == \
        ["flac", "a1", "a2"]
    # without the near-duplicate distance the song key still folds the MP3 and the live version into the FLAC's
    # song; the re-encode whose title differs ("(2019)") is then told apart by sound only
    assert ids(run(copies_and_one_artist(), mode=mode, n=3)) == ["flac", "reencode", "a1"]


def test_the_tolerance_is_a_limit_in_energy_mode_and_a_preference_elsewhere() -> None:
    from discovery.mixable import TOLERANCE_MEANING

    far = [track("far_tempo_same_key", 2, bpm=135.0, key="8A", energy=0.5),
           track("near_tempo_same_key", 4, bpm=121.0, key="8A", energy=0.5)]
    assert ids(run(far, mode="energy", bpm_tolerance=3.0)) == ["near_tempo_same_key"]
    assert ids(run(far, mode="harmonic", bpm_tolerance=3.0)) == ["near_tempo_same_key", "far_tempo_same_key"]
    assert ids(run(far, mode="vibe", bpm_tolerance=3.0)) == ["far_tempo_same_key", "near_tempo_same_key"]
    assert {mode: kind for mode, (kind, _) in TOLERANCE_MEANING.items()} == {
        "harmonic": "preference", "energy": "limit", "vibe": "preference"}
    with pytest.raises(DiscoveryError) as caught:
        run(far, mode="vibe", max_per_artist=0)
    assert caught.value.parameter == "max_per_artist"
