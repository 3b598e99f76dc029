"""Clean-up of the best clustering into playlists: order, de-duplicate, cap, select, shuffle.

Songs are row indices into the library arrays (embeddings, titles, artists), so every step takes and returns plain
index lists. Every function is deterministic given its inputs; the only randomness, the final shuffle, comes from
the Generator passed in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from clustering.errors import ClusteringError

__all__ = ["cap_per_artist", "fisher_yates", "limit_size", "order_by_centrality", "remove_duplicates",
           "select_most_different"]

T = TypeVar("T")


def _fold(text: str) -> str:
    """Case-folded with whitespace runs collapsed, so "The  Song " and "the song" compare equal."""
    return " ".join(text.split()).casefold()


def order_by_centrality(indices: Sequence[int] | np.ndarray, points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """`indices` (m,) sorted by Euclidean distance of `points[i]` (rows of (n, d)) to `centre` (d,); ties by index."""
    idx = np.asarray(indices, dtype=np.int64)
    distance = np.linalg.norm(np.asarray(points, dtype=np.float64)[idx] - np.asarray(centre, dtype=np.float64), axis=1)
    return idx[np.lexsort((idx, distance))]


def remove_duplicates(
    indices: Sequence[int] | np.ndarray,
    *,
    embeddings: np.ndarray,
    titles: Sequence[str],
    artists: Sequence[str],
    cosine_threshold: float,
    lookback: int,
) -> list[int]:
    """Walk `indices` in order and keep a song unless it repeats a kept song.

    A repeat has the same title and artist (case and whitespace ignored) as any kept song, or a cosine distance
    below `cosine_threshold` (≤ 0 switches this off) to one of the last `lookback` kept songs (0 = all of them).
    embeddings: (n, d); titles, artists: (n,) by the same row index.
    """
    if lookback < 0:
        raise ClusteringError(f"lookback must be ≥ 0, got {lookback}")
    idx = [int(i) for i in indices]
    vectors = np.asarray(embeddings, dtype=np.float64)[idx]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # Zero vectors stay zero: their similarity to anything is 0, i.e. cosine distance 1, never a duplicate.
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    kept: list[int] = []
    kept_unit = np.empty_like(unit)  # rows 0..len(kept)-1 are the kept songs' unit vectors
    seen: set[tuple[str, str]] = set()
    for position, row in enumerate(idx):
        key = (_fold(titles[row]), _fold(artists[row]))
        if key in seen:
            continue
        if cosine_threshold > 0 and kept:
            recent = kept_unit[max(0, len(kept) - lookback) if lookback else 0:len(kept)]
            if np.any(1.0 - recent @ unit[position] < cosine_threshold):
                continue
        kept_unit[len(kept)] = unit[position]
        kept.append(row)
        seen.add(key)
    return kept


def cap_per_artist(indices: Sequence[int] | np.ndarray, artists: Sequence[str], max_per_artist: int) -> list[int]:
    """The first `max_per_artist` songs of each artist (case-folded) in order; 0 = no cap."""
    if max_per_artist < 0:
        raise ClusteringError(f"max_per_artist must be ≥ 0, got {max_per_artist}")
    counts: Counter[str] = Counter()
    kept = []
    for i in indices:
        artist = _fold(artists[int(i)])
        if max_per_artist == 0 or counts[artist] < max_per_artist:
            counts[artist] += 1
            kept.append(int(i))
    return kept


def limit_size(indices: Sequence[int] | np.ndarray, max_songs: int) -> list[int]:
    """The first `max_songs` songs; 0 = unlimited."""
    if max_songs < 0:
        raise ClusteringError(f"max_songs must be ≥ 0, got {max_songs}")
    kept = [int(i) for i in indices]
    return kept[:max_songs] if max_songs else kept


def select_most_different(profiles: np.ndarray, sizes: Sequence[int] | np.ndarray, n: int) -> list[int]:
    """Indices of the `n` most mutually different playlists, in the order they were chosen.

    profiles: (m, f) one feature profile per playlist; sizes: (m,) song counts. Greedy farthest-point: start with
    the largest playlist, then repeatedly add the one whose smallest Euclidean distance to the chosen ones is
    largest (ties: larger playlist, then lower index). n ≤ 0 or n ≥ m selects all m.
    """
    profiles = np.asarray(profiles, dtype=np.float64)
    size = np.asarray(sizes, dtype=np.int64)
    m = profiles.shape[0]
    if profiles.ndim != 2 or size.shape != (m,):
        raise ClusteringError(f"profiles {profiles.shape} and sizes {size.shape} must be (m, f) and (m,)")
    if m == 0:
        return []
    count = m if n <= 0 or n >= m else n
    order = np.arange(m)
    nearest = np.full(m, np.inf)  # distance of each playlist to its nearest chosen one
    chosen: list[int] = []
    available = np.ones(m, dtype=bool)
    for _ in range(count):
        # lexsort's last key is primary: farthest first (inf before any choice), then larger, then lower index.
        candidates = order[available]
        pick = int(candidates[np.lexsort((candidates, -size[candidates], -nearest[candidates]))[0]])
        chosen.append(pick)
        available[pick] = False
        nearest = np.minimum(nearest, np.linalg.norm(profiles - profiles[pick], axis=1))
    return chosen


def fisher_yates(items: Sequence[T], rng: np.random.Generator) -> list[T]:
    """A new list with `items` in uniformly random order (Fisher–Yates, swaps drawn from `rng`)."""
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = int(rng.integers(0, i + 1))
        out[i], out[j] = out[j], out[i]
    return out
