"""Queue-aware mix: the next songs after a queue, in the bliss-mixer's vocabulary (seeds, the previous queue, no
artist/album repeat windows, a tempo step limit, durations, excluded artists, shuffle), each with why it was chosen.

Choices (tested in tests/unit/test_mix.py):

* Candidates are the union of every seed's nearest neighbours; a candidate near several seeds counts with its
  nearest seed (its `seed_item_id` and `distance`). They are considered nearest first.
* The history is the previous queue, in order, then the seeds that are not in it (the seeds are what the mix
  continues from). A song of the history is never returned: not by id, not as another version of it
  (`TrackInfo.song`, the rule of discovery/dedup.py), and not as a near-duplicate (`discovery.vectors`, closer than
  `duplicate_distance`). Nor is one song picked twice.
* `no_repeat_artist=N`: a pick's artist is none of the last N tracks of history + picks (artists compared as the
  artist cap of similar songs compares them: case, accents and "feat. X" ignored); 0 switches it off.
  `no_repeat_album` likewise, an album being (folded album name, artist), so two artists' "Greatest Hits" differ;
  a track without an album name never repeats one. Previous ids that are not in the library still take their place
  in the windows.
* `max_bpm_diff`: a pick's tempo is within that many BPM of the last track with a known tempo (history + picks);
  a candidate without a tempo is dropped when it is set; without any tempo to compare with, it does not apply.
* Durations are inclusive seconds; a track of unknown length is dropped when either bound is set.
* `exclude_artists` compares like `no_repeat_artist`.
* `shuffle`: candidates whose distances fall in the same band of `shuffle_band` are equally good, and their order is
  shuffled with `random.Random(seed)`; bands keep their order, so shuffling never prefers a farther song.
* When the constraints leave fewer than `count` songs in the candidates, the neighbour query doubles (up to
  `max_query`); fewer come back only when the library has no more songs that fit.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from discovery.dedup import normalise_artist
from discovery.textfold import fold
from discovery.types import DiscoveryError, Lookup, Neighbours, TrackInfo
from discovery.vectors import NearDuplicates

__all__ = ["MixPick", "mix"]


@dataclass(frozen=True)
class MixPick:
    """One song of the mix: the seed it is nearest to, its cosine distance to that seed, and why it was chosen."""

    track: TrackInfo
    seed_item_id: str
    distance: float
    reason: str


@dataclass(frozen=True)
class _Candidate:
    track: TrackInfo
    seed: TrackInfo
    distance: float


def _album(track: TrackInfo) -> tuple[str, str] | None:
    name = fold(track.album or "").strip()
    return (name, track.song[1]) if name else None


def mix(
    seeds: Sequence[TrackInfo],
    *,
    count: int,
    neighbours: Neighbours,
    lookup: Lookup,
    previous: Sequence[str] = (),
    no_repeat_artist: int = 0,
    no_repeat_album: int = 0,
    max_bpm_diff: float | None = None,
    min_duration: float | None = None,
    max_duration: float | None = None,
    exclude_artists: Collection[str] = (),
    shuffle: bool = False,
    seed: int = 0,
    shuffle_band: float = 0.05,
    duplicate_distance: float = 0.0,
    query_factor: int = 8,
    max_query: int = 10_000,
) -> list[MixPick]:
    """Up to `count` songs to play after `previous` and `seeds`, chosen as the module docstring says.

    Args:
        seeds: the songs to continue from (≥ 1); their `vector` (d,) are the queries.
        count: how many songs to return (≥ 1).
        neighbours: (vector, k) → [(item_id, cosine distance)], nearest first.
        lookup: item ids → {item_id: TrackInfo}.
        previous: item ids of the queue already played or queued, oldest first; never returned.
        no_repeat_artist / no_repeat_album: window sizes in tracks (≥ 0; 0: off).
        max_bpm_diff: largest tempo step in BPM (> 0), or None.
        min_duration / max_duration: inclusive bounds in seconds (≥ 0), or None.
        exclude_artists: artist names never returned.
        shuffle: shuffle equally good candidates with `random.Random(seed)`.
        shuffle_band: distance band (> 0) within which candidates are equally good.
        duplicate_distance: near-duplicate threshold (≥ 0; 0: off).
        query_factor: the first query asks each seed for count × query_factor + len(previous) songs (≥ 1).
        max_query: never ask the index for more than this many neighbours (≥ 1).

    Returns:
        At most `count` MixPick in play order.

    Raises:
        DiscoveryError: a parameter out of range, named as the API names it.
    """
    if not seeds:
        raise DiscoveryError("tracks", "tracks must name at least one seed song")
    for name, value, minimum in (("count", count, 1), ("no_repeat_artist", no_repeat_artist, 0),
                                 ("no_repeat_album", no_repeat_album, 0), ("query_factor", query_factor, 1),
                                 ("max_query", max_query, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise DiscoveryError(name, f"{name} must be an integer ≥ {minimum}, got {value!r}")
    if max_bpm_diff is not None and not (math.isfinite(max_bpm_diff) and max_bpm_diff > 0):
        raise DiscoveryError("max_bpm_diff", f"max_bpm_diff must be a number > 0, got {max_bpm_diff!r}")
    for name, bound in (("min_duration", min_duration), ("max_duration", max_duration)):
        if bound is not None and not (math.isfinite(bound) and bound >= 0):
            raise DiscoveryError(name, f"{name} must be a number ≥ 0, got {bound!r}")
    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        raise DiscoveryError("min_duration", f"min_duration ({min_duration:g}) must be ≤ max_duration "
                                             f"({max_duration:g})")
    if not (math.isfinite(shuffle_band) and shuffle_band > 0):
        raise DiscoveryError("shuffle_band", f"shuffle_band must be a number > 0, got {shuffle_band!r}")
    if not duplicate_distance >= 0:
        raise DiscoveryError("duplicate_distance", f"duplicate_distance must be ≥ 0, got {duplicate_distance!r}")

    known = lookup(list(dict.fromkeys(previous)))
    history: list[TrackInfo | None] = [known.get(item_id) for item_id in previous]
    in_previous = set(previous)
    history += [s for s in seeds if s.item_id not in in_previous]
    excluded_ids = in_previous | {s.item_id for s in seeds}
    history_songs = {t.song for t in history if t is not None}
    excluded_artists = {normalise_artist(a) for a in exclude_artists if a.strip()}

    def fits(track: TrackInfo) -> bool:
        """The rules that look at the candidate alone."""
        if track.item_id in excluded_ids or track.song in history_songs or track.song[1] in excluded_artists:
            return False
        if min_duration is not None or max_duration is not None:
            length = track.duration_seconds
            if length is None or (min_duration is not None and length < min_duration) or (
                    max_duration is not None and length > max_duration):
                return False
        return max_bpm_diff is None or track.tempo_bpm is not None

    tracks: dict[str, TrackInfo] = {}
    k = min(max_query, count * query_factor + len(excluded_ids))
    while True:
        best: dict[str, tuple[float, str]] = {}  # item id → (distance, seed id): its nearest seed
        exhausted = True
        for s in seeds:
            hits = neighbours(s.vector, k)
            exhausted = exhausted and len(hits) < k
            for item_id, distance in hits:
                if item_id not in best or float(distance) < best[item_id][0]:
                    best[item_id] = (float(distance), s.item_id)
        missing = [i for i in best if i not in tracks]
        if missing:
            tracks.update(lookup(missing))
        by_id = {s.item_id: s for s in seeds}
        candidates = [_Candidate(tracks[i], by_id[seed_id], d) for i, (d, seed_id) in best.items()
                      if i in tracks and fits(tracks[i])]
        candidates.sort(key=lambda c: (c.distance, c.track.item_id))
        if shuffle:
            candidates = _shuffled(candidates, band=shuffle_band, seed=seed)
        picks = _pick(candidates, history, count=count, no_repeat_artist=no_repeat_artist,
                      no_repeat_album=no_repeat_album, max_bpm_diff=max_bpm_diff,
                      duplicate_distance=duplicate_distance, shuffled=shuffle, band=shuffle_band)
        if len(picks) >= count or exhausted or k >= max_query:
            return picks
        k = min(max_query, k * 2)


def _shuffled(candidates: list[_Candidate], *, band: float, seed: int) -> list[_Candidate]:
    """`candidates` (nearest first) with each band of equally good ones in a seeded random order."""
    rng = random.Random(seed)
    out: list[_Candidate] = []
    group: list[_Candidate] = []
    current = None
    for candidate in candidates:
        number = math.floor(candidate.distance / band)
        if number != current and group:
            rng.shuffle(group)
            out += group
            group = []
        current = number
        group.append(candidate)
    rng.shuffle(group)
    return out + group


def _pick(candidates: list[_Candidate], history: list[TrackInfo | None], *, count: int, no_repeat_artist: int,
          no_repeat_album: int, max_bpm_diff: float | None, duplicate_distance: float, shuffled: bool,
          band: float) -> list[MixPick]:
    """The greedy choice: at each step the first candidate (in order) that the window and tempo rules allow."""
    played = list(history)
    near = NearDuplicates(duplicate_distance)
    if duplicate_distance > 0:
        for track in history:
            if track is not None:
                near.add(track.vector)
    picked_songs: set[tuple[str, str]] = set()
    used = [False] * len(candidates)
    picks: list[MixPick] = []
    while len(picks) < count:
        recent_artists = {t.song[1] for t in played[-no_repeat_artist:] if t is not None} if no_repeat_artist else set()
        recent_albums = {_album(t) for t in played[-no_repeat_album:] if t is not None} if no_repeat_album else set()
        last_tempo = next((t for t in reversed(played) if t is not None and t.tempo_bpm is not None), None)
        chosen = None
        for number, candidate in enumerate(candidates):
            track = candidate.track
            if used[number] or track.song in picked_songs:
                continue
            if track.song[1] in recent_artists:
                continue
            album = _album(track)
            if album is not None and album in recent_albums:
                continue
            if max_bpm_diff is not None and last_tempo is not None and track.tempo_bpm is not None and abs(
                    track.tempo_bpm - float(last_tempo.tempo_bpm or 0)) > max_bpm_diff:
                continue
            if duplicate_distance > 0 and near.is_near(track.vector):
                continue
            chosen = number
            break
        if chosen is None:
            break
        used[chosen] = True
        candidate = candidates[chosen]
        track = candidate.track
        reason = f"near {candidate.seed.title} (distance {candidate.distance:.3f})"
        if max_bpm_diff is not None and last_tempo is not None and track.tempo_bpm is not None:
            reason += (f", tempo {track.tempo_bpm:.0f} BPM within {max_bpm_diff:g} of {last_tempo.tempo_bpm:.0f}"
                       f" ({last_tempo.title})")
        if shuffled:
            reason += f", shuffled among songs equally near (band {band:g})"
        picks.append(MixPick(track=track, seed_item_id=candidate.seed.item_id, distance=candidate.distance,
                             reason=reason))
        played.append(track)
        picked_songs.add(track.song)
        if duplicate_distance > 0:
            near.add(track.vector)
    return picks
