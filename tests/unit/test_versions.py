"""The version rule (discovery/versions.py): recordings, songs, the kept copy, and collapsing a list."""

from __future__ import annotations

import numpy as np
import pytest

from discovery.versions import Copy, best_copy, collapse, file_format, group_versions, kept_because


def _direction(seed: int, dims: int = 16) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dims)
    return v / np.linalg.norm(v)


def _at_distance(base: np.ndarray, distance: float, seed: int) -> np.ndarray:
    """A unit vector whose cosine distance to the unit vector `base` is `distance`."""
    other = np.random.default_rng(seed).normal(size=base.size)
    other -= (other @ base) * base
    other /= np.linalg.norm(other)
    cos = 1.0 - distance
    return cos * base + np.sqrt(1.0 - cos * cos) * other


SHINE = _direction(1)
# The planted library: one recording as FLAC, MP3 and an excerpt; a live version; a different song by the same
# artist with the same title; an unrelated song.
PLANTED = [
    (Copy("shine-flac", "Shine", "Artist A", 200.0, "/m/a/shine.flac"), SHINE),
    (Copy("shine-mp3", "Shine", "Artist A", 200.6, "/m/b/shine.mp3"), _at_distance(SHINE, 0.003, 2)),
    (Copy("shine-excerpt", "Shine", "Artist A", 30.0, "/m/c/shine.ogg"), _at_distance(SHINE, 0.06, 3)),
    (Copy("shine-live", "Shine (Live)", "Artist A", 236.0, "/m/d/shine-live.mp3"), _at_distance(SHINE, 0.09, 4)),
    (Copy("other-shine", "Shine", "Artist A", 151.0, "/m/e/shine.flac"), _at_distance(SHINE, 0.35, 5)),
    (Copy("rain", "Rain", "Artist B", 180.0, "/m/f/rain.mp3"), _direction(6)),
]


def _group(rows=PLANTED):
    return group_versions([c for c, _ in rows], np.stack([v for _, v in rows]).astype(np.float32))


def test_the_planted_copies_are_one_recording_and_the_flac_is_kept() -> None:
    grouping = _group()
    assert grouping.recordings() == {"shine-flac": ["shine-flac", "shine-excerpt", "shine-mp3"]}


def test_a_live_version_joins_the_song_but_the_same_title_by_another_recording_is_another_song() -> None:
    grouping = _group()
    assert grouping.song_of == {"shine-flac": "shine-flac", "shine-mp3": "shine-flac",
                                "shine-excerpt": "shine-flac", "shine-live": "shine-flac",
                                "other-shine": "other-shine"}  # its own song, said so: the title would merge them
    assert "rain" not in grouping.song_of


def test_the_live_version_joins_the_nearest_song_of_its_title() -> None:
    near_other = [*PLANTED[:3], (PLANTED[3][0], _at_distance(PLANTED[4][1], 0.05, 9)), *PLANTED[4:]]
    grouping = _group(near_other)
    assert grouping.song_of["shine-live"] == "other-shine"
    assert grouping.song_of["other-shine"] == "other-shine"


def test_far_audio_with_the_same_title_and_length_is_not_a_copy() -> None:
    rows = [(Copy("a", "Intro", "X", 60.0, "a.flac"), SHINE), (Copy("b", "Intro", "X", 60.0, "b.mp3"),
                                                               _at_distance(SHINE, 0.2, 7))]
    assert _group(rows).recording_of == {}
    assert _group(rows).song_of == {"a": "a", "b": "b"}  # two songs, said so: their one title would merge them


def test_durations_that_disagree_are_not_one_recording_even_when_close_in_sound() -> None:
    rows = [(Copy("a", "Loop", "X", 120.0, "a.flac"), SHINE), (Copy("b", "Loop", "X", 110.0, "b.flac"),
                                                              _at_distance(SHINE, 0.001, 8))]
    assert _group(rows).recording_of == {}


def test_the_kept_copy_prefers_full_length_then_lossless_then_bit_rate() -> None:
    full_mp3 = Copy("mp3", "S", "A", 200.0, "s.mp3", size_bytes=8_000_000)
    excerpt_flac = Copy("ex", "S", "A", 30.0, "s.flac")
    assert best_copy([excerpt_flac, full_mp3]).item_id == "mp3"
    flac = Copy("flac", "S", "A", 199.0, "s.flac")
    assert best_copy([full_mp3, flac]).item_id == "flac"
    small = Copy("small", "S", "A", 200.0, "t.mp3", size_bytes=3_000_000)
    assert best_copy([small, full_mp3]).item_id == "mp3"
    assert kept_because(flac, [full_mp3, excerpt_flac]) == "full length over an excerpt; lossless FLAC over MP3"
    assert kept_because(full_mp3, [small]) == "higher bit rate MP3"


def test_collapse_keeps_order_shows_the_kept_copy_once_per_song() -> None:
    grouping = _group()
    ids = ["rain", "shine-mp3", "shine-live", "other-shine", "shine-excerpt", "shine-flac"]
    assert collapse(ids, grouping.recording_of, grouping.song_of) == ["rain", "shine-flac", "other-shine"]


@pytest.mark.parametrize(("path", "fmt"), [
    ("/a/b.flac", "FLAC"), ("x.Mp3", "MP3"), ("noext", None), (None, None), ("", None), ("/m/a.b.ogg", "OGG"),
    ("a/b.opus/", "OPUS"), ("/m/.flac", None), ("/m/a.", None), ("/m/a.f", "F"), ("x/y.verylongext", None),
    ("dir.d/file", None), ("C:\\m\\a.wav", "WAV"), ("/m/a .mp3 ", "MP3 ")])
def test_file_format(path: str | None, fmt: str | None) -> None:
    assert file_format(path) == fmt


def test_a_shorter_version_with_another_title_is_not_an_excerpt() -> None:
    rows = [(Copy("long", "Song (Live)", "X", 240.0, "a.flac"), SHINE),
            (Copy("edit", "Song - Radio Edit", "X", 150.0, "b.mp3"), _at_distance(SHINE, 0.03, 11)),
            (Copy("clip", "Song (Live) [Excerpt]", "X", 30.0, "c.mp3"), _at_distance(SHINE, 0.05, 12))]
    assert _group(rows).recordings() == {"long": ["long", "clip"]}
