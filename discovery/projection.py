"""2-D projection of embedding vectors for plots (alchemy inputs, centroids, kept and removed songs; the map).

PCA is the default: exact (numpy SVD), deterministic, instant. UMAP is imported only when asked for, because
importing it compiles numba code for several seconds.

A whole library (the music map before UMAP has run, or when it fails) is projected by `sampled_pca_2d`: the axes
come from the covariance of a seeded sample (200 × 200, whatever the number of tracks) and the tracks are read and
projected a chunk at a time — an SVD of all of them holds about nine copies of the vectors (8.9 GB at 1M tracks).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from discovery.types import DiscoveryError

__all__ = ["Pca2d", "fit_pca_2d", "pca_2d", "project_2d", "sampled_pca_2d"]

# UMAP's spectral initialisation needs a few more points than neighbours; below this PCA is used instead.
_UMAP_MIN_POINTS = 5


def pca_2d(x: np.ndarray) -> np.ndarray:
    """First two principal coordinates of rows of `x` (n, d); missing components (rank < 2) are zeros."""
    n = x.shape[0]
    out = np.zeros((n, 2), dtype=np.float64)
    if n < 2:
        return out
    centred = x - x.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    rank = int(np.sum(s > s[0] * 1e-10)) if s.size and s[0] > 0 else 0
    for c in range(min(2, rank)):
        # An SVD's signs are arbitrary; pin each axis so its largest loading is positive, for stable pictures.
        sign = 1.0 if vt[c, np.argmax(np.abs(vt[c]))] >= 0 else -1.0
        out[:, c] = sign * u[:, c] * s[c]
    return out


@dataclass(frozen=True)
class Pca2d:
    """The first two principal axes of a set of vectors: `mean` (d,) and `axes` (2, d) float64, unit rows (a zero
    row where the data has no such axis), each signed so that its largest loading is positive."""

    mean: np.ndarray
    axes: np.ndarray

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(n, 2) float64 principal coordinates of the rows of `x` (n, d)."""
        return (np.asarray(x, dtype=np.float64) - self.mean) @ self.axes.T


def fit_pca_2d(x: np.ndarray, *, chunk: int = 10_000) -> Pca2d:
    """The principal axes of the rows of `x` (n, d), from their d × d covariance, accumulated `chunk` rows at a time
    in float64 (no centred copy of `x`). `fit_pca_2d(x).transform(x)` is `pca_2d(x)` up to rounding."""
    n, d = x.shape
    mean = np.zeros(d)
    for start in range(0, n, chunk):
        mean += x[start:start + chunk].sum(axis=0, dtype=np.float64)
    mean /= max(n, 1)
    scatter = np.zeros((d, d))
    for start in range(0, n, chunk):
        centred = x[start:start + chunk].astype(np.float64) - mean
        scatter += centred.T @ centred
    axes = np.zeros((2, d))
    if n < 2:
        return Pca2d(mean, axes)
    values, vectors = np.linalg.eigh(scatter)  # ascending
    top = values[-1]
    # an eigenvalue is a squared singular value: pca_2d's 1e-10 rank cut squared, above eigh's rounding noise
    rank = int(np.sum(values > top * 1e-12)) if top > 0 else 0
    for c in range(min(2, rank)):
        axis = vectors[:, -1 - c]
        axes[c] = axis if axis[np.argmax(np.abs(axis))] >= 0 else -axis
    return Pca2d(mean, axes)


def sampled_pca_2d(read: Callable[[np.ndarray], np.ndarray], n: int, *, sample: int = 50_000, chunk: int = 20_000,
                   seed: int = 0) -> np.ndarray:
    """(n, 2) float64 principal coordinates of n vectors that `read(rows)` gives (rows: sorted int64 positions in
    0..n-1 → (len(rows), d) array), without holding them all: the axes are fitted on a `seed`ed sample of at most
    `sample` rows (all of them when n ≤ sample, which is then `pca_2d`'s answer) and the rows are read and projected
    `chunk` at a time. Memory: the sample plus a chunk, whatever n."""
    out = np.zeros((n, 2))
    if n == 0:
        return out
    rows = np.arange(n) if n <= sample else np.sort(np.random.default_rng(seed).choice(n, size=sample,
                                                                                        replace=False))
    model = fit_pca_2d(np.asarray(read(rows)))
    for start in range(0, n, chunk):
        part = np.arange(start, min(start + chunk, n))
        out[start:start + len(part)] = model.transform(read(part))
    return out


def project_2d(vectors: np.ndarray, *, method: Literal["pca", "umap"] = "pca", seed: int = 0) -> np.ndarray:
    """Project `vectors` (n, d) to 2-D coordinates (n, 2), float64.

    "pca": the first two principal coordinates (centred; axis signs fixed so the result is deterministic).
    "umap": UMAP with cosine metric and `random_state=seed` (reproducible, single-threaded); with fewer than 5
    points it falls back to PCA, which is all such a plot needs. n = 0 gives an empty (0, 2) array, n = 1 the
    origin, and n = 2 two points on the x axis.

    Raises DiscoveryError when `vectors` is not 2-D, holds non-finite values, or `method` is unknown.
    """
    if method not in ("pca", "umap"):
        raise DiscoveryError("method", f"method must be 'pca' or 'umap', got {method!r}")
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise DiscoveryError("vectors", f"vectors must be a 2-D array (n, d), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DiscoveryError("vectors", "vectors hold NaN or infinite values")
    if method == "pca" or x.shape[0] < _UMAP_MIN_POINTS:
        return pca_2d(x)

    import umap  # lazy: numba compilation makes the import slow

    with warnings.catch_warnings():
        # A fixed random_state forces n_jobs=1, which is what we want; UMAP warns about it regardless.
        warnings.simplefilter("ignore", UserWarning)
        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=min(15, x.shape[0] - 1),
            metric="cosine",
            random_state=seed,
            init="spectral" if x.shape[0] > 10 else "random",
        )
        return np.asarray(reducer.fit_transform(x), dtype=np.float64)
