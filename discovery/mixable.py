"""Mixable tracks for DJs: the seed's semantic neighbourhood, kept when tempo and/or key fit, ranked by mode.

Candidates are the `pool` nearest neighbours of the seed's embedding (minus the seed and its versions). Each result
says why it matched with reasons from {"semantic", "bpm", "key"} and human-readable details:

* "semantic" — always present: every candidate comes from the seed's embedding neighbourhood; the detail gives the
  distance and the neighbour rank.
* "bpm" — the tempo matches within ±bpm_tolerance BPM, directly or at half/double time (see `tempo_match`).
* "key" — the Camelot keys are compatible: same key, ±1 on the wheel (same letter), or relative major/minor (same
  number, other letter).

Modes (results are sorted by (score, distance); a lower score is better):

* harmonic — key compatibility required (seed needs a Camelot key). Ranked exact key first, then BPM closeness
  (a tempo match within tolerance beats no match), then embedding distance.
  score = 0 (same key) or 2 (other compatible key) + |Δbpm| / tolerance (1 when the tempo does not match).
* energy — BPM match required (seed needs a BPM). score = |Δbpm| / tolerance + |Δenergy| (energy in 0..1;
  an unknown energy on either side counts as the worst difference, 1).
* vibe — a BPM match or a key match required (seed needs at least one of the two). score = embedding distance.

The BPM tolerance is therefore a limit in energy mode only; in harmonic mode it is a preference (a compatible key
further away in tempo ranks lower) and in vibe mode one of two ways to qualify (a key match alone also does).
`TOLERANCE_MEANING` says so in words, for the API and the page.

Every mode lists one version of a song (the first by rank of those with the same song key, or strictly closer than
`duplicate_distance` to the seed or to a listed song) and at most `max_per_artist` songs per artist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from discovery.types import DiscoveryError, Lookup, Neighbours, TrackInfo
from discovery.vectors import NearDuplicates

__all__ = ["MODES", "TOLERANCE_MEANING", "MixResult", "camelot_compatible", "mixable_tracks", "tempo_match"]

Mode = Literal["harmonic", "energy", "vibe"]
MODES: tuple[str, ...] = ("harmonic", "energy", "vibe")
# What the BPM tolerance does in each mode: ("limit" | "preference", a sentence).
TOLERANCE_MEANING: dict[str, tuple[str, str]] = {
    "harmonic": ("preference", "a preference: songs in a compatible key are listed whatever their tempo, those "
                               "within the tolerance (or at half/double time) first"),
    "energy": ("limit", "a limit: only songs within the tolerance (or at half/double time) are listed"),
    "vibe": ("preference", "one way to qualify: a song within the tolerance qualifies, and so does one in a "
                           "compatible key whatever its tempo"),
}

_CAMELOT = re.compile(r"^\s*(1[0-2]|[1-9])\s*([AaBb])\s*$")


@dataclass(frozen=True)
class MixResult:
    """A mixable track: cosine distance to the seed, why it matched, and its rank score (lower is better)."""

    track: TrackInfo
    distance: float
    reasons: list[str] = field(default_factory=list)  # subset of ["semantic", "bpm", "key"], in that order
    detail: list[str] = field(default_factory=list)  # one human sentence per reason
    score: float = 0.0


def _parse_camelot(code: str) -> tuple[int, str] | None:
    match = _CAMELOT.match(code)
    if match is None:
        return None
    return int(match.group(1)), match.group(2).upper()


def _code(parsed: tuple[int, str] | None) -> str:
    return "" if parsed is None else f"{parsed[0]}{parsed[1]}"


def _camelot_reason(a: tuple[int, str], b: tuple[int, str]) -> str | None:
    (number_a, letter_a), (number_b, letter_b) = a, b
    if letter_a == letter_b:
        if number_a == number_b:
            return "same key"
        # The wheel wraps: 12 and 1 are neighbours.
        if (number_a - number_b) % 12 in (1, 11):
            return "±1"
        return None
    return "relative" if number_a == number_b else None


def camelot_compatible(a: str, b: str) -> str | None:
    """Why Camelot keys `a` and `b` mix ("same key", "±1", "relative"), or None when they do not.

    Keys are written "1A".."12A" (minor) / "1B".."12B" (major), case and surrounding spaces ignored. "±1" means one
    step on the wheel with the same letter (12 and 1 are adjacent); "relative" is the relative major/minor (same
    number, other letter).

    Raises:
        DiscoveryError: either key is not a Camelot code.
    """
    parsed_a, parsed_b = _parse_camelot(a), _parse_camelot(b)
    if parsed_a is None:
        raise DiscoveryError("a", f"not a Camelot key (1A..12B): {a!r}")
    if parsed_b is None:
        raise DiscoveryError("b", f"not a Camelot key (1A..12B): {b!r}")
    return _camelot_reason(parsed_a, parsed_b)


def _tempo_delta(seed_bpm: float, bpm: float, tolerance: float) -> tuple[str, float] | None:
    """(reason, |Δbpm| on the seed's scale) for the closest of same/half/double time within tolerance, else None."""
    if not (seed_bpm > 0.0 and bpm > 0.0):
        return None
    options = [
        ("same tempo", abs(bpm - seed_bpm)),
        ("half time", abs(2.0 * bpm - seed_bpm)),
        ("double time", abs(bpm / 2.0 - seed_bpm)),
    ]
    reason, delta = min(options, key=lambda option: option[1])
    return (reason, delta) if delta <= tolerance else None


def tempo_match(seed_bpm: float, bpm: float, tolerance: float) -> str | None:
    """How `bpm` fits `seed_bpm` within ±tolerance BPM: "same tempo", "half time", "double time", or None.

    Half time: the track runs at half the seed's tempo (2·bpm ≈ seed_bpm); double time: twice it (bpm/2 ≈ seed_bpm).
    The tolerance is measured on the seed's scale. When several fit, the closest wins (same tempo on a tie).

    Raises:
        DiscoveryError: tolerance is not > 0.
    """
    if not tolerance > 0.0:
        raise DiscoveryError("tolerance", f"tolerance must be > 0 BPM, got {tolerance!r}")
    match = _tempo_delta(float(seed_bpm), float(bpm), float(tolerance))
    return None if match is None else match[0]


def mixable_tracks(
    seed: TrackInfo,
    *,
    n: int,
    neighbours: Neighbours,
    lookup: Lookup,
    bpm_tolerance: float = 3.0,
    mode: Mode = "harmonic",
    pool: int = 500,
    max_per_artist: int | None = None,
    duplicate_distance: float = 0.0,
) -> list[MixResult]:
    """Up to `n` tracks that mix with `seed`, drawn from its `pool` nearest neighbours and ranked by `mode`.

    Args:
        seed: the track to mix from; its `vector` (d,) is the query, `tempo_bpm` / `camelot` / `energy` its features.
        n: how many results (≥ 1).
        neighbours: (vector, k) → [(item_id, cosine distance)], nearest first.
        lookup: item ids → {item_id: TrackInfo}.
        bpm_tolerance: ± BPM for a tempo match, including half/double time (> 0).
        mode: "harmonic", "energy" or "vibe" (see the module docstring).
        pool: size of the semantic neighbourhood searched (≥ 1).
        max_per_artist: at most this many songs per artist (None: no cap).
        duplicate_distance: a candidate strictly closer than this cosine distance to the seed or to a listed song is
            a version of it and left out (0: off); one song key is listed once whatever this is.

    Returns:
        At most `n` MixResult sorted by (score, distance).

    Raises:
        DiscoveryError: a parameter is out of range, or the seed lacks the BPM / key the mode needs.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DiscoveryError("n", f"n must be an integer ≥ 1, got {n!r}")
    if not isinstance(pool, int) or isinstance(pool, bool) or pool < 1:
        raise DiscoveryError("pool", f"pool must be an integer ≥ 1, got {pool!r}")
    if not bpm_tolerance > 0.0:
        raise DiscoveryError("bpm_tolerance", f"bpm_tolerance must be > 0 BPM, got {bpm_tolerance!r}")
    if mode not in MODES:
        raise DiscoveryError("mode", f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if max_per_artist is not None and (not isinstance(max_per_artist, int) or isinstance(max_per_artist, bool)
                                       or max_per_artist < 1):
        raise DiscoveryError("max_per_artist", f"max_per_artist must be an integer ≥ 1, got {max_per_artist!r}")
    if not duplicate_distance >= 0.0:
        raise DiscoveryError("duplicate_distance", f"duplicate_distance must be ≥ 0, got {duplicate_distance!r}")

    seed_key = _parse_camelot(seed.camelot) if seed.camelot else None
    seed_bpm = seed.tempo_bpm if seed.tempo_bpm is not None and seed.tempo_bpm > 0 else None
    if mode == "harmonic" and seed_key is None:
        raise DiscoveryError(
            "seed", f"mode 'harmonic' needs the seed's Camelot key; {seed.item_id!r} has {seed.camelot!r}"
        )
    if mode == "energy" and seed_bpm is None:
        raise DiscoveryError("seed", f"mode 'energy' needs the seed's BPM; {seed.item_id!r} has {seed.tempo_bpm!r}")
    if mode == "vibe" and seed_key is None and seed_bpm is None:
        raise DiscoveryError("seed", f"mode 'vibe' needs the seed's BPM or Camelot key; {seed.item_id!r} has neither")

    hits = neighbours(seed.vector, pool + 1)  # +1: the seed itself is usually its own nearest neighbour
    tracks = lookup([item_id for item_id, _ in hits])
    seed_song = seed.song
    results: list[MixResult] = []
    seen: set[str] = set()
    for rank, (item_id, raw_distance) in enumerate(hits, start=1):
        track = tracks.get(item_id)
        if track is None or item_id == seed.item_id or item_id in seen:
            continue
        seen.add(item_id)
        if track.song == seed_song:
            continue  # another version of the seed's song is not a mix, it is the same song
        distance = float(raw_distance)
        key_parsed = _parse_camelot(track.camelot) if track.camelot else None
        key_reason = _camelot_reason(seed_key, key_parsed) if seed_key and key_parsed else None
        tempo = _tempo_delta(seed_bpm, track.tempo_bpm, bpm_tolerance) if seed_bpm and track.tempo_bpm else None

        if mode == "harmonic":
            if key_reason is None:
                continue
            bpm_term = tempo[1] / bpm_tolerance if tempo else 1.0
            score = (0.0 if key_reason == "same key" else 2.0) + bpm_term
        elif mode == "energy":
            if tempo is None:
                continue
            if seed.energy is not None and track.energy is not None:
                energy_term = abs(float(track.energy) - float(seed.energy))
            else:
                energy_term = 1.0
            score = tempo[1] / bpm_tolerance + energy_term
        else:
            if tempo is None and key_reason is None:
                continue
            score = distance

        reasons = ["semantic"]
        detail = [f"embedding distance {distance:.3f} (neighbour #{rank})"]
        if tempo is not None:
            reasons.append("bpm")
            detail.append(f"{tempo[0]}: {track.tempo_bpm:g} BPM vs {seed_bpm:g} BPM (Δ {tempo[1]:.1f})")
        if key_reason is not None:
            reasons.append("key")
            detail.append(f"key {_code(seed_key)} → {_code(key_parsed)} ({key_reason})")
        results.append(MixResult(track=track, distance=distance, reasons=reasons, detail=detail, score=score))

    results.sort(key=lambda r: (r.score, r.distance))
    return _one_version_capped(seed, results, n=n, max_per_artist=max_per_artist,
                               duplicate_distance=duplicate_distance)


def _one_version_capped(seed: TrackInfo, ranked: list[MixResult], *, n: int, max_per_artist: int | None,
                        duplicate_distance: float) -> list[MixResult]:
    """The first `n` of `ranked` keeping one version per song and at most `max_per_artist` per artist."""
    near = NearDuplicates(duplicate_distance)
    if duplicate_distance > 0.0:
        near.add(seed.vector)
    kept: list[MixResult] = []
    songs: set[tuple[str, str]] = set()
    per_artist: dict[str, int] = {}
    for result in ranked:
        song = result.track.song
        if song in songs or (duplicate_distance > 0.0 and near.is_near(result.track.vector)):
            continue
        if max_per_artist is not None and per_artist.get(song[1], 0) >= max_per_artist:
            continue
        kept.append(result)
        if len(kept) >= n:
            break
        songs.add(song)
        per_artist[song[1]] = per_artist.get(song[1], 0) + 1
        if duplicate_distance > 0.0:
            near.add(result.track.vector)
    return kept
