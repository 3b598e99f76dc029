"""Song Alchemy: songs near the mean of some songs ("add") and away from the mean of others ("subtract").

Candidates are the `pool` nearest neighbours of the add centroid, minus the input songs and their versions. Those
closer than `subtract_distance` (cosine) to the subtract centroid are removed. From the rest, `n` songs are drawn
without replacement with probabilities softmax(similarity / temperature), where similarity is the cosine
similarity to the add centroid, subject to the artist cap and the version / near-duplicate rules.

Sampling uses the Gumbel-top-k trick: adding independent Gumbel noise to the logits and taking the largest in order
is the same as drawing one by one with renormalised softmax probabilities, and works on logits, so a temperature
near 0 never overflows. Temperature 0 means no noise: the top n by similarity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from discovery.path import TrackFilter
from discovery.projection import project_2d
from discovery.types import DiscoveryError, Lookup, Neighbours, TrackInfo, cosine_distance

__all__ = ["AlchemyProjection", "AlchemyResult", "artist_centroid", "project_alchemy", "song_alchemy"]


@dataclass
class AlchemyResult:
    """What alchemy found.

    `kept`: (track, cosine similarity to the add centroid), most similar first. `removed`: candidates strictly
    closer than `subtract_distance` to the subtract centroid, in neighbour order. `add_centroid` (d,) is the mean of
    the add vectors; `subtract_centroid` (d,) the mean of the subtract vectors, or None when nothing is subtracted.
    """

    kept: list[tuple[TrackInfo, float]]
    removed: list[TrackInfo]
    add_centroid: np.ndarray
    subtract_centroid: np.ndarray | None


@dataclass
class AlchemyProjection:
    """2-D coordinates for the alchemy plot, each an (m, 2) array in the order of its source list.

    `add_centroid` and `subtract_centroid` are (2,) points (the latter None without subtract songs).
    """

    method: str
    add_points: np.ndarray
    subtract_points: np.ndarray
    kept_points: np.ndarray
    removed_points: np.ndarray
    add_centroid: np.ndarray
    subtract_centroid: np.ndarray | None


def _validate(
    add: Sequence[TrackInfo], *, n: int, temperature: float, subtract_distance: float, pool: int, max_per_artist: int
) -> None:
    if not add:
        raise DiscoveryError("add", "at least one song to add is required")
    if n < 1:
        raise DiscoveryError("n", f"n must be at least 1, got {n}")
    if not (math.isfinite(temperature) and temperature >= 0.0):
        raise DiscoveryError("temperature", f"temperature must be a finite number ≥ 0, got {temperature}")
    if not 0.0 < subtract_distance <= 2.0:
        raise DiscoveryError("subtract_distance", f"subtract_distance must be in (0, 2], got {subtract_distance}")
    if pool < n:
        raise DiscoveryError("pool", f"pool must be at least n ({n}), got {pool}")
    if max_per_artist < 1:
        raise DiscoveryError("max_per_artist", f"max_per_artist must be at least 1, got {max_per_artist}")


def artist_centroid(name: str, tracks: Sequence[TrackInfo]) -> TrackInfo:
    """One alchemy input standing for the artist `name`: the mean direction of `tracks` (the artist's analyzed
    tracks; each unit-normalised first, so every track weighs the same) as a track with item id 'artist:<name>'.
    Raises DiscoveryError when `tracks` is empty."""
    if not tracks:
        raise DiscoveryError("items", f"no analyzed tracks by the artist {name!r}")
    vectors = np.stack([np.asarray(t.vector, dtype=np.float64) for t in tracks])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    mean = np.mean(vectors / np.where(norms > 0, norms, 1.0), axis=0)
    return TrackInfo(item_id=f"artist:{name}", title=name, artist=name, vector=mean.astype(np.float32))


def _centroid(tracks: Sequence[TrackInfo]) -> np.ndarray:
    return np.mean(np.stack([np.asarray(t.vector, dtype=np.float64) for t in tracks]), axis=0)


def _sampling_order(similarity: np.ndarray, *, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Candidate indices in the order a softmax(similarity / temperature) draw without replacement takes them."""
    # Stable sort on −similarity keeps neighbour order for ties, so temperature 0 is fully deterministic.
    if temperature == 0.0:
        return np.argsort(-similarity, kind="stable")
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        logits = similarity / temperature
    if not np.all(np.isfinite(logits)):
        # A temperature so small that the logits overflow is, for every practical purpose, temperature 0.
        return np.argsort(-similarity, kind="stable")
    keys = logits + rng.gumbel(size=similarity.shape[0])
    return np.argsort(-keys, kind="stable")


def song_alchemy(
    add: Sequence[TrackInfo],
    subtract: Sequence[TrackInfo] = (),
    *,
    n: int,
    neighbours: Neighbours,
    lookup: Lookup,
    temperature: float = 1.0,
    subtract_distance: float = 0.2,
    pool: int = 300,
    seed: int = 0,
    max_per_artist: int,
    duplicate_distance: float = 0.01,
) -> AlchemyResult:
    """Up to `n` songs like the `add` songs and unlike the `subtract` songs.

    Asks `neighbours` for the `pool` (plus the number of inputs) nearest songs to the add centroid, drops the inputs
    and versions of them, moves those closer than `subtract_distance` to the subtract centroid into `removed`, then
    samples up to `n` of the rest with probabilities softmax(cos_similarity / temperature), without replacement,
    from `numpy.random.default_rng(seed)`: one seed, one result. Temperature is in units of cosine similarity
    (0.05 already strongly favours the closest songs; 1 is close to uniform over the pool); 0 gives the top n.
    The artist cap (`max_per_artist`) and the version / `duplicate_distance` rules apply among the kept songs.

    Fewer than `n` songs are kept only when the pool runs out. Raises DiscoveryError for unusable parameters.
    """
    _validate(
        add, n=n, temperature=temperature, subtract_distance=subtract_distance, pool=pool,
        max_per_artist=max_per_artist,
    )
    add_centroid = _centroid(add)
    subtract_centroid = _centroid(subtract) if subtract else None

    inputs = [*add, *subtract]
    input_ids = {t.item_id for t in inputs}
    input_keys = {t.song for t in inputs}
    found = neighbours(add_centroid, pool + len(inputs))
    details = lookup([item_id for item_id, _ in found])
    candidates = [
        details[item_id]
        for item_id, _ in found
        if item_id in details
        and item_id not in input_ids
        and details[item_id].song not in input_keys
    ][:pool]

    removed: list[TrackInfo] = []
    remaining: list[TrackInfo] = []
    for track in candidates:
        if subtract_centroid is not None and cosine_distance(track.vector, subtract_centroid) < subtract_distance:
            removed.append(track)
        else:
            remaining.append(track)

    similarity = np.array([1.0 - cosine_distance(t.vector, add_centroid) for t in remaining], dtype=np.float64)
    order = _sampling_order(similarity, temperature=temperature, rng=np.random.default_rng(seed))
    rules = TrackFilter(max_per_artist=max_per_artist, duplicate_distance=duplicate_distance)
    picked: list[int] = []
    for index in order:
        if len(picked) == n:
            break
        track = remaining[int(index)]
        if rules.admits(track):
            rules.add(track)
            picked.append(int(index))

    picked.sort(key=lambda i: -similarity[i])
    return AlchemyResult(
        kept=[(remaining[i], float(similarity[i])) for i in picked],
        removed=removed,
        add_centroid=add_centroid,
        subtract_centroid=subtract_centroid,
    )


def project_alchemy(
    result: AlchemyResult,
    add: Sequence[TrackInfo],
    subtract: Sequence[TrackInfo] = (),
    *,
    method: Literal["pca", "umap"] = "pca",
    seed: int = 0,
) -> AlchemyProjection:
    """Project inputs, centroids, kept and removed songs together into one 2-D picture (see `project_2d`)."""
    if method not in ("pca", "umap"):
        raise DiscoveryError("method", f"method must be 'pca' or 'umap', got {method!r}")
    groups = [
        [t.vector for t in add],
        [t.vector for t in subtract],
        [t.vector for t, _ in result.kept],
        [t.vector for t in result.removed],
        [result.add_centroid] + ([result.subtract_centroid] if result.subtract_centroid is not None else []),
    ]
    rows = [np.asarray(v, dtype=np.float64) for group in groups for v in group]
    coords = project_2d(np.stack(rows), method=method, seed=seed)
    parts: list[np.ndarray] = []
    offset = 0
    for group in groups:
        parts.append(coords[offset : offset + len(group)].reshape(len(group), 2))
        offset += len(group)
    centroids = parts[4]
    return AlchemyProjection(
        method=method,
        add_points=parts[0],
        subtract_points=parts[1],
        kept_points=parts[2],
        removed_points=parts[3],
        add_centroid=centroids[0],
        subtract_centroid=centroids[1] if result.subtract_centroid is not None else None,
    )
