"""The music map's 2-D coordinates: UMAP of the musicnn embeddings (cosine, seeded), PCA when UMAP cannot run, and
the placement of tracks analyzed after the last full build.

A full build fits UMAP on a seeded sample of at most `fit_sample` tracks and places the rest with the fitted
model's `transform`, in chunks (so a caller can report progress): the fit is the costly part (at 100k tracks
the fit on 20k of them is 83 s of a 141 s build, the transform of the other 80k 48 s: bench/RESULTS.md).
Tracks added later are placed at the similarity-weighted mean of the map positions of their `k` nearest
mapped neighbours (cosine, in the 200-d space) — the first step of UMAP's own transform — which needs only the
stored coordinates, not the fitted model (a pickle tied to the umap-learn and numba versions that made it); the
next full build recomputes everything.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from discovery.projection import sampled_pca_2d
from discovery.types import DiscoveryError

__all__ = ["MapProjection", "map_order", "place_new_tracks", "project_library"]

DEFAULT_NEIGHBORS = 15
DEFAULT_MIN_DIST = 0.1


@dataclass(frozen=True)
class MapProjection:
    """(n, 2) float32 coordinates of `item_ids`, how they were made, and why PCA was used when it was."""

    item_ids: list[str]
    coords: np.ndarray
    method: str  # "umap" or "pca"
    params: dict[str, Any] = field(default_factory=dict)
    fallback_reason: str | None = None


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _scaled(coords: np.ndarray) -> np.ndarray:
    """Centred on 0 and scaled to a unit standard deviation: maps of different builds look alike in size."""
    coords = np.asarray(coords, dtype=np.float64)
    if coords.shape[0] == 0:
        return coords.astype(np.float32)
    centred = coords - coords.mean(axis=0)
    spread = float(centred.std())
    return (centred / spread if spread > 0 else centred).astype(np.float32)


def project_library(item_ids: Sequence[str], vectors: np.ndarray, *, seed: int = 42,
                    n_neighbors: int = DEFAULT_NEIGHBORS, min_dist: float = DEFAULT_MIN_DIST,
                    fit_sample: int = 20_000, chunk: int = 5_000,
                    progress: Callable[[str, float], None] = lambda message, share: None) -> MapProjection:
    """Map every track: UMAP (cosine, `random_state=seed`, fitted on at most `fit_sample` tracks chosen by
    `seed`, the rest transformed `chunk` at a time), or PCA when there are not more than `n_neighbors` + 1
    tracks or UMAP fails. `vectors` is (n, d); `progress(message, share done in 0..1)` is called as it goes."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != len(item_ids):
        raise DiscoveryError("vectors", f"vectors of shape {x.shape} do not match {len(item_ids)} item ids")
    if not all(np.isfinite(x[start:start + chunk]).all() for start in range(0, x.shape[0], chunk)):
        raise DiscoveryError("vectors", "vectors hold NaN or infinite values")
    n = x.shape[0]
    params = {"n_neighbors": n_neighbors, "min_dist": min_dist, "seed": seed, "fit_sample": fit_sample,
              "metric": "cosine"}
    if n <= n_neighbors + 1:
        return MapProjection(list(item_ids), _pca(x, seed=seed), "pca", {"tracks": n},
                             f"{n} tracks are too few for UMAP with {n_neighbors} neighbours")
    try:
        coords = _umap(x, seed=seed, n_neighbors=n_neighbors, min_dist=min_dist, fit_sample=fit_sample,
                       chunk=chunk, progress=progress)
    except Exception as exc:  # numba, pynndescent and scipy raise many kinds; PCA always works
        return MapProjection(list(item_ids), _pca(x, seed=seed), "pca", {"tracks": n},
                             f"UMAP failed ({type(exc).__name__}: {str(exc)[:200]})")
    return MapProjection(list(item_ids), _scaled(coords), "umap", params)


def _pca(x: np.ndarray, *, seed: int) -> np.ndarray:
    return _scaled(sampled_pca_2d(lambda rows: x[rows], x.shape[0], seed=seed))


def _umap(x: np.ndarray, *, seed: int, n_neighbors: int, min_dist: float, fit_sample: int, chunk: int,
          progress: Callable[[str, float], None]) -> np.ndarray:
    import umap  # lazy: importing it compiles numba code

    n = x.shape[0]
    rng = np.random.default_rng(seed)
    fitted = np.sort(rng.choice(n, size=min(fit_sample, n), replace=False))
    rest = np.setdiff1d(np.arange(n), fitted, assume_unique=True)
    coords = np.zeros((n, 2), dtype=np.float64)
    with warnings.catch_warnings():
        # a fixed random_state makes UMAP single-threaded, which is what a worker per core wants; it warns anyway
        warnings.simplefilter("ignore")
        reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric="cosine",
                            random_state=seed, low_memory=True, n_jobs=1)
        progress(f"Fitting UMAP on {len(fitted)} of {n} tracks", 0.0)
        coords[fitted] = reducer.fit_transform(x[fitted])
        done = len(fitted)
        for start in range(0, len(rest), chunk):
            progress(f"Placing tracks {done + 1}-{min(done + chunk, n)} of {n}", done / n)
            part = rest[start:start + chunk]
            coords[part] = reducer.transform(x[part])
            done += len(part)
    progress(f"Mapped {n} tracks", 1.0)
    return coords


def place_new_tracks(known_vectors: np.ndarray, known_coords: np.ndarray, new_vectors: np.ndarray, *,
                     k: int = DEFAULT_NEIGHBORS, rows: np.ndarray | None = None, batch: int = 512,
                     chunk: int = 8_192) -> np.ndarray:
    """(m, 2) float32 positions of new tracks: the similarity-weighted mean of the positions of their `k` nearest
    known tracks (cosine similarity, negative similarities weigh nothing; a track like nothing known lands on the mean
    of its nearest). known_vectors (n, d) — or, with `rows` (n,), the known tracks are `known_vectors[rows]`, so a
    caller need not copy them out of a larger matrix — known_coords (n, 2), new_vectors (m, d).

    The known tracks are compared `chunk` at a time with `batch` new ones, keeping the k best of each new track as
    it goes: the working memory is about batch × chunk × 12 bytes (48 MB by default) whatever the size of the
    library, and the result is the one comparing with every known track at once gives (up to ties at the k-th
    neighbour)."""
    source = np.asarray(known_vectors)
    chosen = np.arange(source.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    n = len(chosen)
    coords = np.asarray(known_coords, dtype=np.float64)
    if n == 0:
        raise DiscoveryError("known_vectors", "there is no mapped track to place new ones by")
    if coords.shape != (n, 2):
        raise DiscoveryError("known_coords", f"coordinates of shape {coords.shape} do not match {n} known tracks")
    new = _unit_rows(np.asarray(new_vectors, dtype=np.float32))
    m = new.shape[0]
    k = min(k, n)
    best_similarity = np.full((m, k), -np.inf, dtype=np.float32)
    best_row = np.zeros((m, k), dtype=np.int64)
    for start in range(0, n, chunk):
        part = _unit_rows(np.asarray(source[chosen[start:start + chunk]], dtype=np.float32))
        for first in range(0, m, batch):
            similarity = new[first:first + batch] @ part.T  # (b, c): at most batch × chunk
            if similarity.shape[1] > k:
                top = np.argpartition(similarity, similarity.shape[1] - k, axis=1)[:, -k:]
            else:
                top = np.broadcast_to(np.arange(similarity.shape[1]), similarity.shape)
            both_similarity = np.concatenate([best_similarity[first:first + batch],
                                              np.take_along_axis(similarity, top, axis=1)], axis=1)
            both_row = np.concatenate([best_row[first:first + batch], top + start], axis=1)
            keep = np.argpartition(both_similarity, both_similarity.shape[1] - k, axis=1)[:, -k:]
            best_similarity[first:first + batch] = np.take_along_axis(both_similarity, keep, axis=1)
            best_row[first:first + batch] = np.take_along_axis(both_row, keep, axis=1)
            del similarity, top  # before the next product is made, not after: one of each alive at a time
    weights = np.clip(best_similarity, 0.0, None).astype(np.float64)
    weights[weights.sum(axis=1) == 0] = 1.0
    placed = np.einsum("bk,bkc->bc", weights, coords[best_row]) / weights.sum(axis=1, keepdims=True)
    return placed.astype(np.float32)


def map_order(item_ids: Sequence[str]) -> np.ndarray:
    """Indices of `item_ids` in a fixed pseudo-random order (by a hash of each id): the first p % of it is the
    p % sample of the map, the same songs at every reload, and each smaller sample inside the larger ones."""
    keys = np.fromiter((int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "big")
                        for i in item_ids), dtype=np.uint64, count=len(item_ids))
    return np.argsort(keys, kind="stable").astype(np.int64)
