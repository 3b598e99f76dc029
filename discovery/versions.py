"""Which files are the same recording, which are versions of one song, and which copy a list shows.

Two levels, both decided once per index build (`group_versions`) and stored with the tracks:

* A **recording** is a set of files with the same audio: the same album ripped twice, an MP3 beside a FLAC, a 30-s
  excerpt. Files are one recording when they have the same song key (`dedup.song_key`: title and artist with version
  notes folded) and their audio agrees: the embeddings are closer than `copy_distance` (cosine) and the durations
  agree (within `DURATION_SLACK`), or one file is an excerpt of the other (at most `EXCERPT_SHARE` of its length,
  with the same full title or an excerpt note) and the embeddings are closer than `excerpt_distance` (a part of a
  song sounds less like the whole than a re-encode does).
  Every list shows one copy of a recording: the kept copy (`best_copy`): the full-length one over an excerpt, then
  lossless over lossy, then the larger file per second (a higher bit rate), then the item id, so the choice is
  stable. The versions view lists the recordings with more than one file: the duplicate finder of a curator.
* A **song** is a set of recordings: a live or remastered version ("Song (Live)", "Song - 2011 Remaster") is a
  version of "Song" by the same artist. Lists show one row per song. Two recordings with the *same* full title that
  do not sound alike are different songs (an artist may well have two songs called "Intro"): a recording whose
  title carries a version note joins the song of the nearest (by embedding) recording without one; recordings
  without a note that are not one recording stay separate songs.

A song's id is the kept copy of its first recording (the one without a note, nearest-first) and is the file lists
show for any version of the song; a recording's id is its kept copy. Tracks alone in their recording and song
have no ids stored (NULL): most of a library.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from discovery.dedup import has_version_note, song_key
from discovery.textfold import fold

__all__ = ["COPY_DISTANCE", "EXCERPT_DISTANCE", "SONG_ID_PREFIX", "Copy", "Grouping", "best_copy", "collapse",
           "file_format", "group_versions", "is_lossless", "kept_because", "song_identity"]

# Measured on real music (bench/RESULTS.md, "Versions"): an MP3 re-encode ≤ 0.0003 from its original, a 30-s excerpt
# ≤ 0.087 from its whole, the nearest *other* track ≥ 0.057 (hence the title must agree too).
COPY_DISTANCE = 0.02
EXCERPT_DISTANCE = 0.12
EXCERPT_SHARE = 0.8  # a file at most this share of the other's length is an excerpt of it
DURATION_SLACK = (2.0, 0.02)  # durations agree when they differ by at most max(2 s, 2 % of the longer)

SONG_ID_PREFIX = "\x1fsong:"  # a song key's title part that is a stored song id (no folded title starts so)

LOSSLESS = frozenset({"FLAC", "ALAC", "WAV", "AIFF", "AIF", "APE", "WV", "TTA", "DSF", "DFF"})


def file_format(path: str | None) -> str | None:
    """'FLAC' for '/music/a.flac': the file's format as its name says; None when the path has no usable suffix."""
    # PurePosixPath(path).suffix without building a path object (the catalogue asks once per track at every load)
    name = path.rstrip("/").rpartition("/")[2] if path else ""
    dot = name.rfind(".")
    suffix = name[dot:] if 0 < dot < len(name) - 1 else ""
    return suffix[1:].upper() if 1 < len(suffix) <= 6 else None


def is_lossless(fmt: str | None) -> bool:
    return fmt in LOSSLESS


@dataclass(frozen=True)
class Copy:
    """One file of the library as the version rule sees it."""

    item_id: str
    title: str
    artist: str
    duration_seconds: float | None = None
    file_path: str | None = None
    size_bytes: int | None = None

    @property
    def format(self) -> str | None:
        return file_format(self.file_path)

    @property
    def bytes_per_second(self) -> float:
        if self.size_bytes and self.duration_seconds:
            return self.size_bytes / self.duration_seconds
        return 0.0


def _durations_agree(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return True
    absolute, share = DURATION_SLACK
    return abs(a - b) <= max(absolute, share * max(a, b))


def _is_excerpt(short: float | None, long: float | None) -> bool:
    return short is not None and long is not None and short <= EXCERPT_SHARE * long


def best_copy(copies: Sequence[Copy]) -> Copy:
    """The copy a list shows: full length over an excerpt, lossless over lossy, higher bit rate, then the item id."""
    longest = max((c.duration_seconds or 0.0) for c in copies)

    def rank(copy: Copy) -> tuple[bool, bool, float, str]:
        full = copy.duration_seconds is None or not _is_excerpt(copy.duration_seconds, longest)
        return (not full, not is_lossless(copy.format), -copy.bytes_per_second, copy.item_id)

    return min(copies, key=rank)


def kept_because(kept: Copy, others: Sequence[Copy]) -> str:
    """Why `kept` was shown instead of `others`, in a few words for the row ("lossless FLAC over MP3")."""
    if not others:
        return ""
    fmt = kept.format or "this file"
    reasons = []
    excerpts = [o for o in others if _is_excerpt(o.duration_seconds, kept.duration_seconds)]
    if excerpts:
        reasons.append("full length over an excerpt")
    lossy = sorted({o.format or "?" for o in others if is_lossless(kept.format) and not is_lossless(o.format)})
    if lossy:
        reasons.append(f"lossless {fmt} over {', '.join(lossy)}")
    if not reasons:
        if any(o.bytes_per_second and o.bytes_per_second < kept.bytes_per_second for o in others):
            reasons.append(f"higher bit rate {fmt}")
        else:
            reasons.append(f"{fmt}, the first of {len(others) + 1} equal copies")
    return "; ".join(reasons)


@dataclass(frozen=True)
class Grouping:
    """Ids of the tracks that share a recording or a song with another track; the others are absent."""

    recording_of: dict[str, str]  # item id → the kept copy of its recording
    song_of: dict[str, str]  # item id → its song's id (the kept copy of the song's first recording)

    def recordings(self) -> dict[str, list[str]]:
        """Kept copy → every copy of that recording (the kept one first), for recordings of two or more files."""
        groups: dict[str, list[str]] = defaultdict(list)
        for item_id, kept in self.recording_of.items():
            groups[kept].append(item_id)
        return {kept: sorted(members, key=lambda i: (i != kept, i)) for kept, members in groups.items()
                if len(members) > 1}


class _Sets:
    """Union-find over 0..n-1."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    rows = np.asarray(vectors, dtype=np.float64)
    lengths = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, lengths, out=np.zeros_like(rows), where=lengths > 0)


def _same_recording(a: Copy, b: Copy, distance: float, *, copy_distance: float, excerpt_distance: float) -> bool:
    short, long = sorted((a.duration_seconds, b.duration_seconds), key=lambda d: (d is not None, d or 0.0))
    if _is_excerpt(short, long):
        # An excerpt has the title of its whole (or an excerpt note): a shorter *version* ("Song (Live)", "Song -
        # Radio Edit") is another recording, however alike it sounds.
        return distance < excerpt_distance and _same_full_title(a.title, b.title)
    return distance < copy_distance and _durations_agree(a.duration_seconds, b.duration_seconds)


_EXCERPT_NOTE = re.compile(r"[\(\[-]\s*(?:excerpt|preview|snippet)\b[^\)\]]*[\)\]]?\s*$")


def _same_full_title(a: str, b: str) -> bool:
    """Titles equal once folded and an excerpt note ("Song (Excerpt)", "Song - Preview") is dropped."""
    def bare(title: str) -> str:
        return " ".join(_EXCERPT_NOTE.sub("", fold(title)).split())

    return bare(a) == bare(b)


def group_versions(copies: Sequence[Copy], vectors: np.ndarray, *, copy_distance: float = COPY_DISTANCE,
                   excerpt_distance: float = EXCERPT_DISTANCE) -> Grouping:
    """Recordings and songs of `copies` (vectors: (n, d), row i is copies[i]'s embedding), per the module rules.

    Only tracks with the same song key are compared, so the cost is the sum of the squares of those groups' sizes
    (a few comparisons per song in a real library, not n²)."""
    if len(copies) != len(vectors):
        raise ValueError(f"{len(copies)} copies but {len(vectors)} vectors")
    buckets: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, copy in enumerate(copies):
        buckets[song_key(copy.title, copy.artist)].append(i)
    recording_of: dict[str, str] = {}
    song_of: dict[str, str] = {}
    for members in buckets.values():
        if len(members) < 2:
            continue
        units = _unit_rows(vectors[members])
        distances = 1.0 - units @ units.T
        sets = _Sets(len(members))
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                if _same_recording(copies[members[a]], copies[members[b]], float(distances[a, b]),
                                   copy_distance=copy_distance, excerpt_distance=excerpt_distance):
                    sets.join(a, b)
        recordings: dict[int, list[int]] = defaultdict(list)
        for local in range(len(members)):
            recordings[sets.find(local)].append(local)
        kept: dict[int, str] = {}
        for root, locals_ in recordings.items():
            chosen = best_copy([copies[members[i]] for i in locals_])
            kept[root] = chosen.item_id
            if len(locals_) > 1:
                for i in locals_:
                    recording_of[copies[members[i]].item_id] = chosen.item_id
        _assign_songs(copies, members, recordings, kept, distances, song_of)
    return Grouping(recording_of=recording_of, song_of=song_of)


def _assign_songs(copies: Sequence[Copy], members: list[int], recordings: dict[int, list[int]],
                  kept: dict[int, str], distances: np.ndarray, song_of: dict[str, str]) -> None:
    """Songs of one song-key bucket: a recording whose full title has a version note joins the nearest recording
    without one; two recordings without a note are two songs; noted recordings with no plain one form one song."""
    if len(recordings) < 2:
        root = next(iter(recordings))
        if len(recordings[root]) > 1:
            for i in recordings[root]:
                song_of[copies[members[i]].item_id] = kept[root]
        return

    def plain(root: int) -> bool:
        return not has_version_note(copies[members[root]].title)

    plains = [root for root in recordings if plain(root)]
    song_root: dict[int, int] = {}
    for root in recordings:
        if root in plains or not plains:
            song_root[root] = root if plains else min(recordings)
        else:
            song_root[root] = min(plains, key=lambda p: (float(distances[root, p]), p))
    # Every track of a bucket with several songs gets its song's id, singles too: the title alone would merge them.
    for root, song in song_root.items():
        for i in recordings[root]:
            song_of[copies[members[i]].item_id] = kept[song]


def song_identity(item_id: str, title: str, artist: str, song_of: Mapping[str, str]) -> tuple[str, str]:
    """Which song a track is, as every list compares them: its stored song id when its title is shared by several
    songs or versions (with the artist's key), else `dedup.song_key` of title and artist. The same pairs as
    TrackInfo.song from the web process's catalogue."""
    title_key, artist_key = song_key(title, artist)
    song = song_of.get(item_id)
    return (title_key, artist_key) if song is None else (SONG_ID_PREFIX + song, artist_key)


def collapse(item_ids: Iterable[str], recording_of: dict[str, str], song_of: dict[str, str]) -> list[str]:
    """`item_ids` in order, one row per song: each track shown by its song's id (the kept copy of the song's first
    recording), later rows of a song already listed dropped."""
    seen: set[str] = set()
    out: list[str] = []
    for item_id in item_ids:
        shown = song_of.get(item_id) or recording_of.get(item_id, item_id)
        if shown in seen:
            continue
        seen.add(shown)
        out.append(shown)
    return out
