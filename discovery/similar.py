"""Playlist from a similar song: the seed's nearest neighbours, filtered, capped per artist, optionally radius-walked.

Standard mode returns the survivors of the filters by distance to the seed. Radius mode orders them by a bucketed
greedy walk (each step prefers songs near the previous pick, 70/30 against the distance to the seed) so that
consecutive songs flow into each other while the playlist drifts outward from the seed.

Choices (documented here, tested in tests/unit/test_similar.py):

* The seed and its versions (same `song_key`) are never returned. The seed also counts as the first *kept* song for
  the near-duplicate distance check, so a differently-tagged copy of the seed recording is dropped too.
* `duplicate_distance` is checked against every kept song (not only the last few): results are small, and checking
  all of them is the stricter reading of "recently kept". The rule is the one of `discovery.vectors.NearDuplicates`
  (strictly closer than the threshold), shared with song path and alchemy. Set it to 0 to switch the check off.
* `eliminate_duplicates` turns the artist cap on (it is the "Limit songs per artist" switch of the spec); version
  and near-duplicate de-duplication always apply. The cap counts the *returned* songs only: the seed's own song does
  not use up one of its artist's places. Artists are compared after folding case and accents and dropping "feat. X".
* `mood_filter` maps a mood name to a tolerance: a candidate is kept when, for every listed mood,
  |candidate mood − seed mood| ≤ tolerance. Candidates without a score for a listed mood are dropped; a seed without
  one is a DiscoveryError (there is nothing to compare with).
* Range filters are inclusive; either end may be None (open). A track whose duration or BPM is unknown is dropped
  when that range is set.
* `exclude_artists` compares like the artist cap (case, accents, "feat. X" ignored).
* `mood_weight` (0..1, 0 = off) ranks by (1 − w) × audio distance + w × mood distance instead of the audio distance
  alone, where the mood distance is the mean |candidate − seed| over the seed's mood scores (a mood the candidate
  has no score for counts as 0). The returned `distance` is that blend, so the order and the distances agree;
  `audio_distance` keeps the cosine distance. A seed without mood scores is ranked by audio alone. The neighbour
  pool is twice as deep then, so songs a little farther in sound but closer in mood can move up.
* The neighbour query starts at n × query_factor and doubles (up to `max_query`) until n songs survive or the index
  has no more neighbours, so heavy filtering still yields n results when the library has them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from discovery.dedup import normalise_artist
from discovery.types import DiscoveryError, Lookup, Neighbours, TrackInfo
from discovery.vectors import NearDuplicates, cosine_distance

__all__ = ["DEFAULT_MOOD_WEIGHT", "SimilarResult", "farthest", "mood_distance", "similar_songs"]

# Radius walk: weight of the distance to the previous pick; the rest goes to the distance to the seed (anchor).
PREVIOUS_WEIGHT = 0.7
MAX_ARTIST_SUBPATHS = 2  # buckets one artist's songs may come from while other songs remain
ANCHOR_WEIGHT = 1.0 - PREVIOUS_WEIGHT
# The mood share of the ranking when a caller asks for mood similarity without a weight: enough to reorder songs a
# few hundredths apart in sound by their moods, not enough to bring a far-off sound in for its moods alone.
DEFAULT_MOOD_WEIGHT = 0.3

Range = tuple[float | None, float | None]


@dataclass(frozen=True)
class SimilarResult:
    """One similar song and its cosine distance to the seed (the index's metric, 0 = identical direction); with a
    mood weight, `distance` is the blend of the module docstring and `audio_distance` the cosine distance."""

    track: TrackInfo
    distance: float
    audio_distance: float | None = None


def similar_songs(
    seed: TrackInfo,
    *,
    n: int,
    neighbours: Neighbours,
    lookup: Lookup,
    max_per_artist: int,
    duplicate_distance: float = 0.01,
    eliminate_duplicates: bool = True,
    radius_walk: bool = False,
    mood_filter: Mapping[str, float] | None = None,
    duration_range: Range | None = None,
    bpm_range: Range | None = None,
    exclude_artists: Collection[str] = (),
    mood_weight: float = 0.0,
    query_factor: int = 4,
    max_query: int = 10_000,
    walk_bucket_size: int = 8,
    walk_buckets_to_scan: int = 2,
) -> list[SimilarResult]:
    """Up to `n` songs similar to `seed`, filtered and ordered as described in the module docstring.

    Args:
        seed: the song to start from; its `vector` (d,) is the query.
        n: how many songs to return (≥ 1). Fewer come back only when the index runs out of eligible songs.
        neighbours: (vector, k) → [(item_id, cosine distance)], nearest first.
        lookup: item ids → {item_id: TrackInfo}.
        max_per_artist: cap on returned songs per artist (≥ 1), applied when `eliminate_duplicates` is true.
        duplicate_distance: candidates strictly closer than this cosine distance to a kept song (or the seed) are
            dropped as near-duplicates (≥ 0; 0 disables).
        eliminate_duplicates: apply the artist cap.
        radius_walk: order by the bucketed greedy walk instead of by distance to the seed.
        mood_filter: {mood: tolerance > 0}; keep candidates within ±tolerance of the seed on every listed mood.
        duration_range: (min, max) seconds, inclusive, None = open end.
        bpm_range: (min, max) BPM, inclusive, None = open end.
        exclude_artists: artists never returned (case/accent-insensitive).
        mood_weight: 0..1, the share of the mood distance in the ranking (0: audio only).
        query_factor: first neighbour query asks for n × query_factor songs (≥ 1).
        max_query: never ask the index for more than this many neighbours (≥ 1).
        walk_bucket_size: songs per distance bucket in the radius walk (≥ 1).
        walk_buckets_to_scan: buckets considered at each walk step, from the nearest unexhausted one (≥ 1).

    Returns:
        At most `n` SimilarResult; by distance to the seed, or in walk order when `radius_walk` is true.

    Raises:
        DiscoveryError: a parameter is out of range; the message names it and its value.
    """
    _check_int("n", n, 1)
    _check_int("max_per_artist", max_per_artist, 1)
    _check_int("query_factor", query_factor, 1)
    _check_int("max_query", max_query, 1)
    _check_int("walk_bucket_size", walk_bucket_size, 1)
    _check_int("walk_buckets_to_scan", walk_buckets_to_scan, 1)
    if not duplicate_distance >= 0.0:
        raise DiscoveryError("duplicate_distance", f"duplicate_distance must be ≥ 0, got {duplicate_distance!r}")
    _check_range("duration_range", duration_range)
    _check_range("bpm_range", bpm_range)
    seed_moods = _check_moods(seed, mood_filter)
    if not 0.0 <= mood_weight <= 1.0:
        raise DiscoveryError("mood_weight", f"mood_weight must be between 0 and 1, got {mood_weight!r}")
    blend = mood_weight if seed.moods and mood_weight > 0 else 0.0
    if blend:
        query_factor *= 2

    accept = _static_filter(
        seed,
        mood_filter=seed_moods,
        duration_range=duration_range,
        bpm_range=bpm_range,
        excluded={normalise_artist(a) for a in exclude_artists},
    )
    cap = max_per_artist if eliminate_duplicates else None

    tracks: dict[str, TrackInfo] = {}
    unknown: set[str] = set()
    k = min(max_query, max(n * query_factor, n + 1))
    while True:
        hits = neighbours(seed.vector, k)
        # Stable sort: the index already returns nearest first; this only guards against a sloppy provider.
        ranked = sorted(_unique(hits), key=lambda pair: float(pair[1]))
        accepted = _accepted(ranked, tracks, unknown, lookup, accept, batch=n + n // 2 + 8)
        candidates: Iterable[tuple[TrackInfo, float, float | None]] = (
            _mood_ranked(seed, list(accepted), blend) if blend else ((t, d, None) for t, d in accepted))
        if radius_walk:
            pool = _deduplicate(seed, candidates, duplicate_distance=duplicate_distance, cap=None, limit=None)
            results = _radius_walk(
                pool, n=n, cap=cap, bucket_size=walk_bucket_size, buckets_to_scan=walk_buckets_to_scan
            )
        else:
            # Stops pulling candidates once n are kept: the rest are never looked up or checked.
            results = _deduplicate(seed, candidates, duplicate_distance=duplicate_distance, cap=cap, limit=n)
        exhausted = len(hits) < k or k >= max_query
        if len(results) >= n or exhausted:
            return results[:n]
        k = min(max_query, k * 2)


def _accepted(
    ranked: Sequence[tuple[str, float]],
    tracks: dict[str, TrackInfo],
    unknown: set[str],
    lookup: Lookup,
    accept: Callable[[TrackInfo], bool],
    *,
    batch: int,
) -> Iterator[tuple[TrackInfo, float]]:
    """The hits that exist and pass `accept`, nearest first, looked up `batch` ids at a time as they are needed
    (`tracks` / `unknown` remember lookups across the rounds of a growing k)."""
    for start in range(0, len(ranked), batch):
        chunk = ranked[start : start + batch]
        new_ids = [item_id for item_id, _ in chunk if item_id not in tracks and item_id not in unknown]
        if new_ids:
            found = lookup(new_ids)
            tracks.update(found)
            unknown.update(i for i in new_ids if i not in found)
        for item_id, distance in chunk:
            track = tracks.get(item_id)
            if track is not None and accept(track):
                yield track, float(distance)


def farthest(seed: TrackInfo, *, neighbours: Neighbours) -> tuple[str | None, float]:
    """The library's track farthest from `seed` and its cosine distance to it (0..2): in cosine space that is the
    nearest neighbour of −vector, whose distance d to −vector makes 2 − d to the seed. (None, 0.0) for a library
    holding only the seed."""
    hits = [(item_id, d) for item_id, d in neighbours(-np.asarray(seed.vector, dtype=np.float32), 2)
            if item_id != seed.item_id]
    if not hits:
        return None, 0.0
    item_id, distance = hits[0]
    return item_id, min(2.0, max(0.0, 2.0 - float(distance)))


def mood_distance(seed: TrackInfo, track: TrackInfo) -> float:
    """Mean |track − seed| over the seed's mood scores (0..1); a mood the track has no score for counts as 0."""
    if not seed.moods:
        return 0.0
    return sum(abs(float(track.moods.get(m, 0.0)) - float(v)) for m, v in seed.moods.items()) / len(seed.moods)


def _mood_ranked(seed: TrackInfo, candidates: list[tuple[TrackInfo, float]], weight: float
                 ) -> list[tuple[TrackInfo, float, float | None]]:
    """The candidates with their blended distance (and their audio one), by the blend; stable for ties."""
    blended = [(t, (1.0 - weight) * d + weight * mood_distance(seed, t), d) for t, d in candidates]
    return sorted(blended, key=lambda c: c[1])


def _check_int(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise DiscoveryError(name, f"{name} must be an integer ≥ {minimum}, got {value!r}")


def _check_range(name: str, bounds: Range | None) -> None:
    if bounds is None:
        return
    low, high = bounds
    for value in (low, high):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise DiscoveryError(name, f"{name} bounds must be finite and ≥ 0, got {bounds!r}")
    if low is not None and high is not None and low > high:
        raise DiscoveryError(name, f"{name} minimum must be ≤ maximum, got {bounds!r}")


def _check_moods(seed: TrackInfo, mood_filter: Mapping[str, float] | None) -> dict[str, tuple[float, float]]:
    """{mood: (seed score, tolerance)} after validating tolerances and that the seed has each mood."""
    if not mood_filter:
        return {}
    checked: dict[str, tuple[float, float]] = {}
    for mood, tolerance in mood_filter.items():
        if not tolerance > 0.0:
            raise DiscoveryError("mood_filter", f"mood_filter tolerance for {mood!r} must be > 0, got {tolerance!r}")
        if mood not in seed.moods:
            raise DiscoveryError(
                "mood_filter", f"mood_filter names {mood!r} but the seed {seed.item_id!r} has no {mood!r} score"
            )
        checked[mood] = (float(seed.moods[mood]), float(tolerance))
    return checked


def _in_range(value: float | None, bounds: Range | None) -> bool:
    if bounds is None:
        return True
    if value is None:
        return False
    low, high = bounds
    return (low is None or value >= low) and (high is None or value <= high)


def _static_filter(
    seed: TrackInfo,
    *,
    mood_filter: Mapping[str, tuple[float, float]],
    duration_range: Range | None,
    bpm_range: Range | None,
    excluded: set[str],
) -> Callable[[TrackInfo], bool]:
    """A predicate for the filters that look at one candidate alone (not at what has been kept so far)."""
    seed_song = seed.song

    def accept(track: TrackInfo) -> bool:
        song = track.song
        if track.item_id == seed.item_id or song == seed_song:
            return False
        if excluded and song[1] in excluded:  # song[1] is normalise_artist(track.artist)
            return False
        if not _in_range(track.duration_seconds, duration_range) or not _in_range(track.tempo_bpm, bpm_range):
            return False
        for mood, (seed_score, tolerance) in mood_filter.items():
            score = track.moods.get(mood)
            if score is None or abs(float(score) - seed_score) > tolerance:
                return False
        return True

    return accept


def _unique(hits: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    seen: set[str] = set()
    out = []
    for item_id, distance in hits:
        if item_id not in seen:
            seen.add(item_id)
            out.append((item_id, distance))
    return out


def _deduplicate(
    seed: TrackInfo,
    candidates: Iterable[tuple[TrackInfo, float, float | None]],
    *,
    duplicate_distance: float,
    cap: int | None,
    limit: int | None,
) -> list[SimilarResult]:
    """Walk candidates nearest first; drop near-duplicates of kept songs, repeated song keys and over-cap artists."""
    kept: list[SimilarResult] = []
    near = NearDuplicates(duplicate_distance)
    near.add(seed.vector)
    kept_keys: set[tuple[str, str]] = set()
    per_artist: dict[str, int] = {}
    if limit is not None and limit <= 0:
        return kept
    for track, distance, audio_distance in candidates:
        if near.is_near(track.vector):
            continue
        key = track.song
        if key in kept_keys:
            continue
        if cap is not None:
            artist = key[1]
            if per_artist.get(artist, 0) >= cap:
                continue
            per_artist[artist] = per_artist.get(artist, 0) + 1
        kept.append(SimilarResult(track=track, distance=distance, audio_distance=audio_distance))
        if limit is not None and len(kept) >= limit:
            break  # before pulling another candidate: `candidates` may be a lazy lookup
        near.add(track.vector)
        kept_keys.add(key)
    return kept


def _radius_walk(
    pool: Sequence[SimilarResult],
    *,
    n: int,
    cap: int | None,
    bucket_size: int,
    buckets_to_scan: int,
) -> list[SimilarResult]:
    """Bucketed greedy walk over `pool` (sorted by distance to the seed), returning at most n songs in walk order.

    Buckets are consecutive runs of `bucket_size` songs by distance to the seed. The walk starts at the nearest song;
    each next pick is, among the remaining songs in the nearest `buckets_to_scan` buckets that still hold a pickable
    song, the one minimising 0.7·distance(previous pick) + 0.3·distance(seed). Because the window starts at the
    nearest unexhausted bucket, the walk cannot run away from the seed, but inside the window it follows the previous
    song's neighbourhood. The artist cap is enforced at every step, so an artist's songs cannot all be taken early,
    and an artist's songs come from at most two buckets (two "sub-paths" of the walk) for as long as other songs
    are left to pick; only then is that rule dropped and the cap alone applies.
    """
    ordered = sorted(pool, key=lambda r: r.distance)
    remaining = list(range(len(ordered)))
    per_artist: dict[str, int] = {}
    artists = [r.track.song[1] for r in ordered]
    walk: list[SimilarResult] = []
    previous = None

    artist_buckets: dict[str, set[int]] = {}

    def pickable(i: int) -> bool:
        return cap is None or per_artist.get(artists[i], 0) < cap

    def in_two_subpaths(i: int) -> bool:
        buckets = artist_buckets.get(artists[i], set())
        return len(buckets) < MAX_ARTIST_SUBPATHS or i // bucket_size in buckets

    while len(walk) < n:
        capped = [i for i in remaining if pickable(i)]
        eligible = [i for i in capped if in_two_subpaths(i)] or capped
        if not eligible:
            break
        first_bucket = eligible[0] // bucket_size
        window = [i for i in eligible if i // bucket_size < first_bucket + buckets_to_scan]
        if previous is None:
            choice = window[0]
        else:
            prev_vector = previous.track.vector
            choice = min(
                window,
                key=lambda i: (
                    PREVIOUS_WEIGHT * cosine_distance(prev_vector, ordered[i].track.vector)
                    + ANCHOR_WEIGHT * ordered[i].distance,
                    i,
                ),
            )
        previous = ordered[choice]
        walk.append(previous)
        remaining.remove(choice)
        per_artist[artists[choice]] = per_artist.get(artists[choice], 0) + 1
        artist_buckets.setdefault(artists[choice], set()).add(choice // bucket_size)
    return walk
