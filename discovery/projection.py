"""2-D projection of embedding vectors for plots (alchemy inputs, centroids, kept and removed songs; the map).

PCA is the default: exact (numpy SVD), deterministic, instant. UMAP is imported only when asked for, because
importing it compiles numba code for several seconds.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

from discovery.types import DiscoveryError

__all__ = ["pca_2d", "project_2d"]

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
