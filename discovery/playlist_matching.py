"""Which of a user's playlists a song fits, and which songs fit a playlist: playlist profiles built from their
songs' analysis, scored by the rankers of discovery/ranking.py, and the two use cases built on them — the matching
job's suggestions for new songs and *continue a playlist*. Co-occurrence (PPMI over the user's playlists) is one
more ranker, used only when there are enough playlists for it to mean something.

Suggestion score (the default chosen by bench/quality.py's figures: weighted fusion of the embedding rankers): for
each playlist, the song's cosine to the profile's centroid and to its nearest member, each as a z-score over the
whole library, averaged. A playlist is suggested when that is at least SUGGEST_Z (the song is closer than ~84 % of
the library) — at most MAX_SUGGESTIONS per song, best first.

Pure: arrays and records in, scores out. Rows of `Library` are the candidate songs; a playlist is a set of rows.
The matching job holds a MatchingLibrary instead: every song's vector, records of only the rows it names.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from discovery.ranking import Library, PlaylistProfile, embedding_fit, unit_mean, unit_rows, zscores
from discovery.types import Lookup, Neighbours, TrackInfo

__all__ = ["COOCCURRENCE_MIN_PLAYLISTS", "MAX_SUGGESTIONS", "PROFILE_CODE_VERSION", "SUGGEST_Z", "Continued",
           "MatchingLibrary", "SongCooccurrence", "Suggestions", "build_profile", "continue_playlist", "cooccurrence",
           "cooccurrence_scores", "library_of", "membership_hash", "percentile", "profile_of", "song_cooccurrence",
           "suggest"]

PROFILE_CODE_VERSION = 1  # bump when a profile's definition changes: stored profiles are recomputed
# Co-occurrence is used from this many playlists (bench/quality.py --cooccurrence: with fewer it added nothing to the
# fused ranking of playlists that follow the sound, and it needs pairs seen together in two playlists at least).
COOCCURRENCE_MIN_PLAYLISTS = 16
COOCCURRENCE_MAX_SONGS = 4000  # the PPMI matrix is dense over the songs the playlists hold
MIN_BPM_SPREAD = 6.0  # BPM: a playlist of one tempo still accepts a few BPM either side
MIN_ENERGY_SPREAD = 0.04
SUGGEST_Z = 1.0
MAX_SUGGESTIONS = 3


def _analysis(records: Sequence[Mapping[str, Any]], *, tag_names: Sequence[str],
              mood_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tags (n, T), moods (n, M), bpm (n,) and energy (n,) float32 of `records` (`tags`, `moods`: name → probability
    or None; `tempo_bpm`, `energy`: a number or None, NaN in the arrays)."""
    def number(value: Any) -> float:
        return np.nan if value is None else float(value)

    return (np.array([[float((r["tags"] or {}).get(t, 0.0)) for t in tag_names] for r in records], dtype=np.float32),
            np.array([[float((r["moods"] or {}).get(m, 0.0)) for m in mood_names] for r in records], dtype=np.float32),
            np.array([number(r["tempo_bpm"]) for r in records], dtype=np.float32),
            np.array([number(r["energy"]) for r in records], dtype=np.float32))


def library_of(records: Sequence[Mapping[str, Any]], *, tag_names: Sequence[str],
               mood_names: Sequence[str]) -> Library:
    """The Library of analysed songs as the database gives them (`vector`: little-endian float32 bytes; `tags`,
    `moods`: name → probability or None; `tempo_bpm`, `energy`: a number or None), in their order."""
    tags, moods, bpm, energy = _analysis(records, tag_names=tag_names, mood_names=mood_names)
    return Library(unit_rows(np.stack([np.frombuffer(bytes(r["vector"]), dtype="<f4") for r in records])), tags,
                   moods, bpm, energy)


def membership_hash(item_ids: Sequence[str]) -> str:
    """A playlist's content hash: its members, order ignored (a profile depends on the set)."""
    return hashlib.sha256("\n".join(sorted(set(item_ids))).encode()).hexdigest()[:16]


def _robust(values: np.ndarray, floor: float) -> tuple[float, float]:
    known = values[np.isfinite(values)]
    if not len(known):
        return float("nan"), float("nan")
    centre = float(np.median(known))
    return centre, max(1.4826 * float(np.median(np.abs(known - centre))), floor)


def build_profile(library: Library, members: Sequence[int]) -> PlaylistProfile:
    """The profile of the playlist whose songs are `members` (rows; at least one)."""
    rows = np.asarray(sorted(set(int(m) for m in members)), dtype=np.int64)
    if not len(rows):
        raise ValueError("a playlist profile needs at least one song")
    vectors = library.vectors[rows]
    centroid = unit_mean(vectors)
    spread = float(np.mean(1.0 - vectors @ centroid))
    tag_profile = np.concatenate([library.tags[rows].mean(axis=0), library.moods[rows].mean(axis=0)])
    tag_profile = tag_profile / max(float(np.linalg.norm(tag_profile)), 1e-12)
    bpm_centre, bpm_spread = _robust(library.bpm[rows], MIN_BPM_SPREAD)
    energy_centre, energy_spread = _robust(library.energy[rows], MIN_ENERGY_SPREAD)
    return PlaylistProfile(rows, centroid.astype(np.float32), spread, tag_profile.astype(np.float32), bpm_centre,
                           bpm_spread, energy_centre, energy_spread)


@dataclass(frozen=True)
class MatchingLibrary:
    """What the matching job holds of the library: every analysed song's unit embedding (a suggestion's z-scores are
    over all of them) and, of the rows it names — the playlists' members and the candidate songs — their ids; of
    the members also what a profile and a suggestion's reasons are made of. No row of the whole library is a
    record: at a million songs that is gigabytes."""

    vectors: np.ndarray  # (n, d) float32 unit rows
    rows: np.ndarray  # (k,) int64: the library rows named, ascending
    item_ids: Sequence[str]  # of each named row
    songs: Sequence[str]  # its song (discovery/versions.py): a playlist holding any version of it holds it
    shown: Sequence[str]  # the copy lists show of its recording: the only copy suggested
    candidate: np.ndarray  # (k,) bool: analysed since the cutoff, so scored
    member_rows: Mapping[str, int]  # item id → row of each playlist member
    members: Mapping[str, Mapping[str, Any]]  # item id → title, artist, tags, moods, tempo_bpm, energy of each member

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """The positions in `self.rows` (and its aligned lists) of named library `rows`."""
        return np.searchsorted(self.rows, rows)


def profile_of(library: MatchingLibrary, members: Sequence[int], *, tag_names: Sequence[str],
               mood_names: Sequence[str]) -> PlaylistProfile:
    """build_profile's profile of the playlist whose songs are the library rows `members` (at least one), from the
    members' vectors and records alone."""
    rows = sorted(set(int(m) for m in members))
    if not rows:
        raise ValueError("a playlist profile needs at least one song")
    records = [library.members[library.item_ids[at]] for at in library.positions(np.asarray(rows)).tolist()]
    own = Library(library.vectors[rows], *_analysis(records, tag_names=tag_names, mood_names=mood_names))
    return replace(build_profile(own, range(len(rows))), members=np.asarray(rows, dtype=np.int64))


def cooccurrence(playlists: Sequence[Sequence[int]], n: int, *, min_support: int = 2) -> np.ndarray:
    """The PPMI matrix (n, n) of songs over playlists: log(P(a,b) / (P(a)·P(b))) clipped at 0, counting a pair only
    when it shares at least `min_support` playlists (PMI overrates rare pairs). Dense: for the library sizes
    AudioMuse profiles in memory this is what a user's playlists touch."""
    counts = np.zeros((n, n), dtype=np.float64)
    singles = np.zeros(n, dtype=np.float64)
    for playlist in playlists:
        rows = np.asarray(sorted(set(playlist)), dtype=np.int64)
        singles[rows] += 1
        counts[np.ix_(rows, rows)] += 1
    np.fill_diagonal(counts, 0)
    total = max(len(playlists), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log((counts / total) / np.outer(singles / total, singles / total))
    pmi[~np.isfinite(pmi)] = 0.0
    pmi[counts < min_support] = 0.0
    return np.maximum(pmi, 0.0).astype(np.float32)


@dataclass(frozen=True)
class SongCooccurrence:
    """PPMI over the songs a user's playlists hold (by item id)."""

    index: dict[str, int]
    ppmi: np.ndarray

    def scores(self, item_ids: Sequence[str], members: Sequence[str]) -> np.ndarray:
        """Each song's mean PPMI with `members` (0 for a song no playlist holds)."""
        rows = [self.index[m] for m in members if m in self.index]
        if not rows:
            return np.zeros(len(item_ids), dtype=np.float32)
        mean = self.ppmi[:, rows].mean(axis=1)
        return np.array([mean[self.index[i]] if i in self.index else 0.0 for i in item_ids], dtype=np.float32)


def song_cooccurrence(playlists: Sequence[Sequence[str]], *, min_support: int = 2) -> SongCooccurrence | None:
    """The co-occurrence ranker's data, or None when there are fewer than COOCCURRENCE_MIN_PLAYLISTS playlists (it
    must be off then) or they hold more than COOCCURRENCE_MAX_SONGS songs."""
    if len(playlists) < COOCCURRENCE_MIN_PLAYLISTS:
        return None
    index = {song: i for i, song in enumerate(dict.fromkeys(s for p in playlists for s in p))}
    if len(index) > COOCCURRENCE_MAX_SONGS:
        return None
    rows = [[index[s] for s in p] for p in playlists]
    return SongCooccurrence(index, cooccurrence(rows, len(index), min_support=min_support))


def cooccurrence_scores(ppmi: np.ndarray, members: Sequence[int]) -> np.ndarray:
    """A song's mean PPMI with the playlist's members."""
    rows = np.asarray(list(members), dtype=np.int64)
    return ppmi[:, rows].mean(axis=1) if len(rows) else np.zeros(len(ppmi), dtype=np.float32)


def percentile(z: float) -> float:
    """The share of a normal distribution below z (how a z-score reads to a person)."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


@dataclass(frozen=True)
class Suggestions:
    """The matching job's suggestions: (item id, playlist id, score, reasons), the best MAX_SUGGESTIONS playlists of
    each song, and how many songs were scored."""

    suggestions: list[tuple[str, str, float, list[str]]]
    songs_scored: int

    @property
    def songs_suggested(self) -> int:
        return len({item_id for item_id, _, _, _ in self.suggestions})


def suggest(library: MatchingLibrary, playlists: Sequence[tuple[Mapping[str, Any], PlaylistProfile]], *,
            decided: Collection[tuple[str, str]],
            progress: Callable[[int, int], None] | None = None) -> Suggestions:
    """The playlists each candidate song of `library` fits. `playlists` are (playlist_id and item_ids, its profile,
    whose members are rows of `library`); `decided` are the (item, playlist) pairs the user accepted or rejected,
    never suggested again. `progress(done, total)` is called after each playlist (the job reports and checks for
    cancellation there)."""
    song_rows = library.rows[library.candidate]
    candidates: dict[int, list[tuple[float, str, list[str]]]] = {}  # by position in library.rows
    for number, (playlist, profile) in enumerate(playlists if len(song_rows) else (), start=1):
        fit = embedding_fit(library.vectors, library.vectors[profile.members])  # z-scores over the whole library
        z = fit.score
        member_set = set(playlist["item_ids"])
        member_at = library.positions(profile.members).tolist()
        # A song is suggested once, by the copy lists show, and not when a version of it is in the playlist.
        songs_in = {library.songs[at] for at in member_at}
        by_fit = song_rows[np.argsort(-z[song_rows], kind="stable")]  # a song's best-fitting version first
        by_fit = by_fit[~(z[by_fit] < SUGGEST_Z)]  # in numpy: in a full run every song is a candidate
        for row, at, near in zip(by_fit.tolist(), library.positions(by_fit).tolist(), fit.nearest[by_fit].tolist(),
                                 strict=True):
            item_id = library.item_ids[at]
            if item_id in member_set or (item_id, playlist["playlist_id"]) in decided:
                continue
            if library.shown[at] != item_id or library.songs[at] in songs_in:
                continue
            songs_in.add(library.songs[at])
            twin = library.members[library.item_ids[member_at[near]]]
            reasons = [f"sounds like the playlist (closer than {percentile(z[row]):.0%} of your library)",
                       f"close to {twin['title']} — {twin['artist']}"]
            candidates.setdefault(at, []).append((float(z[row]), playlist["playlist_id"], reasons))
        if progress is not None:
            progress(number, len(playlists))
    return Suggestions([(library.item_ids[at], playlist_id, round(score, 4), reasons)
                        for at, found in candidates.items()
                        for score, playlist_id, reasons in sorted(found, reverse=True)[:MAX_SUGGESTIONS]],
                       len(song_rows))


@dataclass(frozen=True)
class Continued:
    """A song that would continue a playlist: its fused score (z-score units) and why."""

    track: TrackInfo
    score: float
    reasons: list[str]


def continue_playlist(item_ids: Sequence[str], *, n: int, lookup: Lookup, neighbours: Neighbours,
                      other_playlists: Sequence[Sequence[str]]) -> tuple[list[Continued], bool] | None:
    """`n` songs that fit the playlist of `item_ids` and are not in it, best first, and whether co-occurrence over
    `other_playlists` (the user's playlists, by item ids) was on; None when none of its songs is analysed.

    The candidates are the index's neighbours of the playlist's centroid; they are ranked by the mean z-score of the
    centroid and nearest-member rankers as the matching job ranks (plus PPMI with the members when co-occurrence is
    on and some candidate has any)."""
    members = lookup(item_ids)
    if not members:
        return None
    vectors = unit_rows([m.vector for m in members.values()])
    pool = neighbours(unit_mean(vectors), min(len(members) + 10 * n, 2000))
    member_songs = {m.song for m in members.values()}
    found = {item_id: track for item_id, track in lookup([item for item, _ in pool if item not in members]).items()
             if track.song not in member_songs}  # a version of a song the playlist has is not a new song for it
    titles = list(members.values())
    ids = list(found)
    if not ids:
        return [], False
    fit = embedding_fit(unit_rows([found[i].vector for i in ids]), vectors)
    parts = fit.parts
    together = song_cooccurrence(other_playlists)  # None below COOCCURRENCE_MIN_PLAYLISTS: the ranker is off
    ppmi = together.scores(ids, item_ids) if together is not None else None
    if ppmi is not None and ppmi.any():
        parts.append(zscores(ppmi))
    score = np.mean(parts, axis=0)
    order = sorted(range(len(ids)), key=lambda i: (-score[i], ids[i]))[:n]
    results = []
    for i in order:
        twin = titles[int(fit.nearest[i])]
        reasons = [f"close to the playlist's sound (cosine {fit.to_centroid[i]:.2f})",
                   f"close to {twin.title} — {twin.artist}"]
        if ppmi is not None and ppmi[i] > 0:
            reasons.append("often in your playlists together with its songs")
        results.append(Continued(found[ids[i]], float(score[i]), reasons))
    return results, together is not None

