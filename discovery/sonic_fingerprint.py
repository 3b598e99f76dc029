"""Sonic Fingerprint: a mix built from what a user has been playing, weighted toward recent plays.

Each played song weighs exp(−ln 2 · days_since_played / half_life) (1 today, ½ after one half-life, ¼ after two);
a song with no known last-played time gets a fixed lower weight. The fingerprint is the weighted mean of the played
vectors; the mix starts with the heaviest played songs ("seed") and fills up with the nearest unplayed songs to the
fingerprint ("discovery"), under the same artist-cap, version and near-duplicate rules as the other features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from discovery.path import TrackFilter
from discovery.types import DiscoveryError, Lookup, Neighbours, TrackInfo

__all__ = ["FingerprintResult", "fingerprint_weights", "sonic_fingerprint"]

Role = Literal["seed", "discovery"]

_SECONDS_PER_DAY = 86_400.0


@dataclass
class FingerprintResult:
    """`vector` (d,) float64 is the weighted mean of the played vectors; `tracks` is the mix, seeds first, each
    paired with its role ("seed": a played song, "discovery": a song not in the played list)."""

    vector: np.ndarray
    tracks: list[tuple[TrackInfo, Role]]


def fingerprint_weights(
    last_played: Sequence[float | None], *, now: float, half_life_days: float = 30.0, unknown_weight: float = 0.2
) -> np.ndarray:
    """Recency weights (m,) float64 for last-played times given as epoch seconds.

    weight = exp(−ln 2 · days_since_played / half_life_days); a play in the future (clock skew) counts as today, so
    weights lie in (0, 1]; None (time unknown) gets `unknown_weight`.

    Raises DiscoveryError when half_life_days ≤ 0 or unknown_weight is outside [0, 1].
    """
    if not (math.isfinite(half_life_days) and half_life_days > 0.0):
        raise DiscoveryError("half_life_days", f"half_life_days must be > 0, got {half_life_days}")
    if not 0.0 <= unknown_weight <= 1.0:
        raise DiscoveryError("unknown_weight", f"unknown_weight must be in [0, 1], got {unknown_weight}")
    weights = np.empty(len(last_played), dtype=np.float64)
    for i, played_at in enumerate(last_played):
        if played_at is None:
            weights[i] = unknown_weight
            continue
        days = max(0.0, (now - played_at) / _SECONDS_PER_DAY)
        weights[i] = math.exp(-math.log(2.0) * days / half_life_days)
    return weights


def sonic_fingerprint(
    played: Sequence[tuple[TrackInfo, float | None]],
    *,
    n: int,
    neighbours: Neighbours,
    lookup: Lookup,
    now: float,
    max_per_artist: int,
    seeds_share: float = 0.3,
    half_life_days: float = 30.0,
    unknown_weight: float = 0.2,
    duplicate_distance: float = 0.01,
) -> FingerprintResult:
    """A mix of up to `n` songs around the weighted mean of `played` ((track, last played epoch seconds or None)).

    Seeds: the played songs by descending weight (input order breaks ties, so pass them most-played first), taking
    round(seeds_share · n) that pass the rules. Discoveries: the nearest songs to the fingerprint that are neither
    played nor versions of played songs, until the mix has `n` songs; if the library runs out of discoveries the
    remaining played songs fill in as seeds. No song (or version of one) appears twice; no artist more than
    `max_per_artist` times; no two songs closer than `duplicate_distance` (cosine).

    Raises DiscoveryError for no played songs, n < 1, seeds_share outside [0, 1], all weights zero, and for the
    parameters checked by `fingerprint_weights`.
    """
    if not played:
        raise DiscoveryError("played", "at least one played song is required")
    if n < 1:
        raise DiscoveryError("n", f"n must be at least 1, got {n}")
    if not 0.0 <= seeds_share <= 1.0:
        raise DiscoveryError("seeds_share", f"seeds_share must be in [0, 1], got {seeds_share}")
    if max_per_artist < 1:
        raise DiscoveryError("max_per_artist", f"max_per_artist must be at least 1, got {max_per_artist}")

    tracks = [track for track, _ in played]
    weights = fingerprint_weights(
        [when for _, when in played], now=now, half_life_days=half_life_days, unknown_weight=unknown_weight
    )
    total = float(weights.sum())
    if total <= 0.0:
        raise DiscoveryError("unknown_weight", "every played song has weight 0 (unknown times with unknown_weight 0)")
    matrix = np.stack([np.asarray(t.vector, dtype=np.float64) for t in tracks])
    vector = weights @ matrix / total

    rules = TrackFilter(max_per_artist=max_per_artist, duplicate_distance=duplicate_distance)
    mix: list[tuple[TrackInfo, Role]] = []
    by_weight = [tracks[i] for i in np.argsort(-weights, kind="stable")]
    seed_target = min(n, round(seeds_share * n))
    spare_seeds: list[TrackInfo] = []
    for track in by_weight:
        if len(mix) < seed_target and rules.admits(track):
            rules.add(track)
            mix.append((track, "seed"))
        else:
            spare_seeds.append(track)

    played_ids = {t.item_id for t in tracks}
    played_keys = {t.song for t in tracks}
    # Ask for extra: played songs, versions, near-duplicates and capped artists all fall out of the list.
    found = neighbours(vector, 3 * n + len(tracks))
    details = lookup([item_id for item_id, _ in found])
    for item_id, _ in found:
        if len(mix) >= n:
            break
        track = details.get(item_id)
        if track is None or item_id in played_ids or track.song in played_keys:
            continue
        if rules.admits(track):
            rules.add(track)
            mix.append((track, "discovery"))

    for track in spare_seeds:
        if len(mix) >= n:
            break
        if rules.admits(track):
            rules.add(track)
            mix.append((track, "seed"))

    # Seeds first, then discoveries, whatever order the top-up added them in.
    mix.sort(key=lambda pair: pair[1] != "seed")
    return FingerprintResult(vector=vector, tracks=mix)
