"""Song Path: a playlist that walks from one song to another through the songs in between.

The start and end vectors are interpolated into `steps` evenly spaced target points (spherically for the cosine
index, linearly for a Euclidean one); each intermediate target gets the nearest song that is not already on the path,
not a version of a song on the path, not a near-duplicate of one, and whose artist is still under the cap.

In exact-length mode a target that finds nothing is merged with the next one: the merged job searches around the
middle of the merged span with a wider k (the two k's summed, capped at `k_max`) and must find one song per target.

`TrackFilter` holds the "already used" state shared by path, alchemy and fingerprint selection.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from discovery.types import BatchNeighbours, DiscoveryError, Lookup, Neighbours, TrackInfo
from discovery.vectors import NearDuplicates, cosine_distance, norm

__all__ = ["PathResult", "TrackFilter", "interpolate", "song_path"]

Interpolation = Literal["linear", "spherical"]

# Below this sin(angle) two directions count as parallel (or opposite) and slerp degenerates to a straight line.
_PARALLEL_SIN = 1e-6


@dataclass
class TrackFilter:
    """What has been used so far, and whether a candidate may still be added.

    A candidate is refused when its id is used, its `song_key` (a version of a used song) is used, it is a
    near-duplicate of a used song (`discovery.vectors.NearDuplicates`: strictly closer than `duplicate_distance`), or
    its artist already has `max_per_artist` songs. Artists are compared through `dedup.normalise_artist`, so
    "Artist feat. X" counts as "Artist".
    """

    max_per_artist: int
    duplicate_distance: float = 0.01
    ids: set[str] = field(default_factory=set)
    keys: set[tuple[str, str]] = field(default_factory=set)
    artist_counts: Counter[str] = field(default_factory=Counter)
    near: NearDuplicates | None = None

    def __post_init__(self) -> None:
        if self.near is None:
            self.near = NearDuplicates(self.duplicate_distance)

    def admits(self, track: TrackInfo) -> bool:
        """True when `track` may be added without breaking any of the rules above."""
        return self.refusal(track) is None

    def refusal(self, track: TrackInfo) -> str | None:
        """Why `track` may not be added ("used", "version", "artist", "duplicate"), None when it may."""
        song = track.song
        if track.item_id in self.ids:
            return "used"
        if song in self.keys:
            return "version"
        if self.artist_counts[song[1]] >= self.max_per_artist:
            return "artist"
        assert self.near is not None
        return "duplicate" if self.near.is_near(track.vector) else None

    def add(self, track: TrackInfo) -> None:
        """Mark `track` as used (whether or not it was admitted: endpoints and seeds are added unconditionally)."""
        self.ids.add(track.item_id)
        song = track.song
        self.keys.add(song)
        self.artist_counts[song[1]] += 1  # song_key's artist part is dedup.normalise_artist(artist)
        assert self.near is not None
        self.near.add(track.vector)

    def copy(self) -> TrackFilter:
        """An independent copy, for tentative selections that may be rolled back."""
        assert self.near is not None
        return TrackFilter(max_per_artist=self.max_per_artist, duplicate_distance=self.duplicate_distance,
                           ids=set(self.ids), keys=set(self.keys), artist_counts=Counter(self.artist_counts),
                           near=self.near.copy())


@dataclass
class PathResult:
    """A song path.

    `tracks` starts with the start song and ends with the end song. `step_distances[i]` is the cosine distance of
    `tracks[i]` to the target point it was chosen for (≈0 for the endpoints); `hop_distances[i]` is the cosine
    distance between `tracks[i]` and `tracks[i + 1]`. `targets_missed` counts target points left without a song, so
    `len(tracks) + targets_missed == steps`.
    """

    tracks: list[TrackInfo]
    step_distances: list[float]
    hop_distances: list[float]
    targets_missed: int
    # why the missed targets found nothing: refused candidates by `TrackFilter.refusal` reason ("none": no candidate)
    missed_reasons: dict[str, int] = field(default_factory=dict)
    max_per_artist: int = 0

    @property
    def shortfall(self) -> str | None:
        """Why the path is shorter than asked, in a listener's words; None when it is not."""
        if not self.targets_missed:
            return None
        between = len(self.tracks) - 2 + self.targets_missed
        reasons = sorted(self.missed_reasons, key=lambda r: (-self.missed_reasons[r], r))
        words = [_REASON_WORDS[r].format(cap=self.max_per_artist, s="" if self.max_per_artist == 1 else "s")
                 for r in reasons if r != "none"]
        said = (f"found no song that was not {_either(words)}" if words else "found no song near enough")
        if "none" in reasons and words:
            said += " (or no song near enough)"
        hint = "try fewer steps, a higher limit of songs per artist or a larger library" if "artist" in reasons \
            else "try fewer steps or a larger library"
        return f"{self.targets_missed} of the {between} steps between the two ends {said}; {hint}."

    @property
    def total_distance(self) -> float:
        """Sum of the hop distances: the length of the walk."""
        return float(sum(self.hop_distances))


_REASON_WORDS = {
    "used": "already in the path",
    "version": "a version of a song in it",
    "duplicate": "a near-copy of a song in it",
    "artist": "by an artist who already has {cap} song{s} in it",
}


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _point(a: np.ndarray, b: np.ndarray, t: float, method: Interpolation) -> np.ndarray:
    """The point a fraction `t` of the way from `a` to `b` (float64, shape of `a`)."""
    if method == "linear":
        return (1.0 - t) * a + t * b
    norm_a, norm_b = float(norm(a)), float(norm(b))
    if norm_a == 0.0 or norm_b == 0.0:
        return (1.0 - t) * a + t * b
    unit_a, unit_b = a / norm_a, b / norm_b
    omega = math.acos(float(np.clip(np.dot(unit_a, unit_b), -1.0, 1.0)))
    sin_omega = math.sin(omega)
    if sin_omega < _PARALLEL_SIN:
        # Parallel: any blend is the same direction. Opposite: no unique great circle, fall back to a straight line.
        direction = (1.0 - t) * unit_a + t * unit_b
    else:
        direction = (math.sin((1.0 - t) * omega) * unit_a + math.sin(t * omega) * unit_b) / sin_omega
    # Direction on the great circle, length blended linearly, so the endpoints come back exactly.
    return direction * ((1.0 - t) * norm_a + t * norm_b)


def interpolate(a: np.ndarray, b: np.ndarray, *, num: int, method: Interpolation = "spherical") -> np.ndarray:
    """`num` evenly spaced points from `a` to `b` inclusive, shape (num, d), float64.

    "spherical" moves along the great circle between the two directions at a constant angle per step (the natural
    choice for a cosine index) with the vector length blended linearly; "linear" is the straight segment (for a
    Euclidean index). Row 0 is `a` and row num − 1 is `b`.
    """
    if num < 2:
        raise DiscoveryError("num", f"num must be at least 2, got {num}")
    if method not in ("linear", "spherical"):
        raise DiscoveryError("interpolation", f"interpolation must be 'linear' or 'spherical', got {method!r}")
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape or a64.ndim != 1:
        raise DiscoveryError("vector", f"vectors must be 1-D and of one shape, got {a64.shape} and {b64.shape}")
    return _points(a64, b64, np.linspace(0.0, 1.0, num), method)


def _points(a: np.ndarray, b: np.ndarray, t: np.ndarray, method: Interpolation) -> np.ndarray:
    """`_point` at each fraction of `t` (n,), shape (n, d), in whole-array arithmetic (a path's 25 targets)."""
    after, before = t[:, None], (1.0 - t)[:, None]
    if method == "linear":
        return before * a + after * b
    norm_a, norm_b = float(norm(a)), float(norm(b))
    if norm_a == 0.0 or norm_b == 0.0:
        return before * a + after * b
    unit_a, unit_b = a / norm_a, b / norm_b
    omega = math.acos(float(np.clip(np.dot(unit_a, unit_b), -1.0, 1.0)))
    sin_omega = math.sin(omega)
    if sin_omega < _PARALLEL_SIN:
        direction = before * unit_a + after * unit_b
    else:
        direction = (np.sin(before * omega) * unit_a + np.sin(after * omega) * unit_b) / sin_omega
    return direction * (before * norm_a + after * norm_b)


def _validate(
    start: TrackInfo, end: TrackInfo, *, steps: int, max_per_artist: int, duplicate_distance: float,
    interpolation: str, k_base: int, k_max: int,
) -> None:
    if start.item_id == end.item_id:
        raise DiscoveryError("end", f"start and end must be different songs, both are {start.item_id!r}")
    if steps < 2:
        raise DiscoveryError("steps", f"steps counts the start and end songs and must be at least 2, got {steps}")
    if max_per_artist < 1:
        raise DiscoveryError("max_per_artist", f"max_per_artist must be at least 1, got {max_per_artist}")
    if not 0.0 <= duplicate_distance <= 2.0:
        raise DiscoveryError("duplicate_distance", f"duplicate_distance must be in [0, 2], got {duplicate_distance}")
    if interpolation not in ("linear", "spherical"):
        raise DiscoveryError("interpolation", f"interpolation must be 'linear' or 'spherical', got {interpolation!r}")
    if k_base < 1:
        raise DiscoveryError("k_base", f"k_base must be at least 1, got {k_base}")
    if k_max < k_base:
        raise DiscoveryError("k_max", f"k_max must be at least k_base ({k_base}), got {k_max}")


def song_path(
    start: TrackInfo,
    end: TrackInfo,
    *,
    steps: int,
    neighbours: Neighbours,
    lookup: Lookup,
    max_per_artist: int,
    duplicate_distance: float = 0.01,
    exact_length: bool = False,
    interpolation: Interpolation = "spherical",
    k_base: int = 10,
    k_max: int = 200,
    neighbours_batch: BatchNeighbours | None = None,
) -> PathResult:
    """A path of `steps` songs (start and end included) from `start` to `end`.

    `steps − 2` target points are interpolated between the two vectors; for each, the `k_base` nearest songs are
    asked of `neighbours` and the one nearest to the target that passes the `TrackFilter` rules (not used, not a
    version of a used song, not within `duplicate_distance` of one, artist under `max_per_artist`) is taken. The
    endpoints count as used and toward their artists' caps, but are always on the path.

    Without `exact_length`, a target with no acceptable song is skipped (`targets_missed` counts it). With it, a
    failed target is merged with the next one and retried around the middle of the merged span with k summed (capped
    at `k_max`); the last job, if it still fails, is retried once with `k_max` and then keeps whatever it found. The
    path has exactly `steps` songs whenever the library allows it.

    With `neighbours_batch` (`neighbours` of several vectors in one call, the same lists) the first `k_base` query
    of every target is asked at once, before any is used: the same path, one index query instead of one per step.

    Raises DiscoveryError for unusable parameters (the message names the parameter and value).
    """
    _validate(
        start, end, steps=steps, max_per_artist=max_per_artist, duplicate_distance=duplicate_distance,
        interpolation=interpolation, k_base=k_base, k_max=k_max,
    )
    a = np.asarray(start.vector, dtype=np.float64)
    b = np.asarray(end.vector, dtype=np.float64)
    targets = interpolate(a, b, num=steps, method=interpolation)

    used = TrackFilter(max_per_artist=max_per_artist, duplicate_distance=duplicate_distance)
    used.add(start)
    used.add(end)

    def fill(first: int, last: int, k: int, state: TrackFilter) -> dict[int, TrackInfo]:
        """Songs for targets first..last from the k neighbours of the span's middle; adds them to `state`."""
        middle = (first + last) / 2.0 / (steps - 1)
        centroid = targets[first] if first == last else _point(a, b, middle, interpolation)
        found = asked[first] if first == last and k == k_base and first in asked else neighbours(centroid, k)
        details = lookup([item_id for item_id, _ in found])
        candidates = [details[item_id] for item_id, _ in found if item_id in details]
        picks: dict[int, TrackInfo] = {}
        for slot in range(first, last + 1):
            refusals = [state.refusal(track) for track in candidates]
            allowed = [track for track, why in zip(candidates, refusals, strict=True) if why is None]
            if not allowed:
                missed[slot] = Counter(why or "none" for why in refusals) if refusals else Counter({"none": 1})
                continue
            missed.pop(slot, None)
            best = min(allowed, key=lambda track: cosine_distance(track.vector, targets[slot]))
            state.add(best)
            picks[slot] = best
        return picks

    # Every target's first query is the same whatever the others found: ask them all at once when that is possible.
    asked: dict[int, list[tuple[str, float]]] = {}
    if neighbours_batch is not None and steps > 2:
        asked = dict(zip(range(1, steps - 1), neighbours_batch(targets[1:steps - 1], k_base), strict=True))
    chosen: dict[int, TrackInfo] = {}
    missed: dict[int, Counter[str]] = {}  # the last failed try of each target: its candidates' refusals
    if not exact_length:
        for slot in range(1, steps - 1):
            chosen.update(fill(slot, slot, k_base, used))
    else:
        jobs = [(slot, slot, k_base) for slot in range(1, steps - 1)]
        index = 0
        while index < len(jobs):
            first, last, k = jobs[index]
            trial = used.copy()
            picks = fill(first, last, k, trial)
            if len(picks) == last - first + 1:
                used = trial
                chosen.update(picks)
                index += 1
            elif index + 1 < len(jobs):
                _, next_last, next_k = jobs[index + 1]
                jobs[index : index + 2] = [(first, next_last, min(k + next_k, k_max))]
            elif k < k_max:
                jobs[index] = (first, last, k_max)
            else:
                # Nothing left to merge with: keep the partial result rather than drop the whole span.
                used = trial
                chosen.update(picks)
                index += 1

    slots = [0, *sorted(chosen), steps - 1]
    tracks = [start, *(chosen[slot] for slot in sorted(chosen)), end]
    step_distances = [cosine_distance(track.vector, targets[slot]) for track, slot in zip(tracks, slots, strict=True)]
    hop_distances = [cosine_distance(x.vector, y.vector) for x, y in zip(tracks, tracks[1:], strict=False)]
    return PathResult(
        tracks=tracks,
        step_distances=step_distances,
        hop_distances=hop_distances,
        targets_missed=steps - len(tracks),
        missed_reasons=dict(sum((missed[slot] for slot in missed if slot not in chosen), Counter())),
        max_per_artist=max_per_artist,
    )
