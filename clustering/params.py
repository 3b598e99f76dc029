"""The search space of the evolutionary clustering and how one run's parameters are drawn or mutated.

A run's parameters are either drawn uniformly from the user's ranges (exploration) or made by mutating an elite,
one of the best runs so far (exploitation): integers move by at most MUTATION_INT_ABS_DELTA, floats by at most
MUTATION_FLOAT_ABS_DELTA, both clipped to the ranges; a K-Means elite's centroids are nudged and used as the
starting centroids. Every draw takes a numpy Generator, so a seed reproduces the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from clustering.errors import ClusteringError
from config import CLUSTERING_ALGORITHMS as ALGORITHMS
from config import GMM_COVARIANCE_TYPES as COVARIANCE_TYPES


@dataclass(frozen=True)
class SearchSpace:
    """Inclusive parameter ranges (min, max) of one algorithm's search."""

    algorithm: str = "kmeans"
    clusters: tuple[int, int] = (20, 60)            # K-Means clusters
    eps: tuple[float, float] = (0.25, 0.6)          # DBSCAN, per √dimension
    min_samples: tuple[int, int] = (5, 20)         # DBSCAN
    gmm_components: tuple[int, int] = (20, 60)
    covariance_type: str = "diag"
    spectral_clusters: tuple[int, int] = (20, 60)
    spectral_neighbors: int = 20
    pca_components: tuple[int, int] = (0, 16)      # 0: no PCA

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ClusteringError(f"algorithm {self.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ClusteringError(f"covariance type {self.covariance_type!r} is not one of "
                                  f"{', '.join(COVARIANCE_TYPES)}")
        for name in ("clusters", "eps", "min_samples", "gmm_components", "spectral_clusters", "pca_components"):
            low, high = getattr(self, name)
            if low > high:
                raise ClusteringError(f"{name} range {low}..{high} is empty")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchSpace:
        ranges: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**ranges)


@dataclass(frozen=True)
class RunParams:
    """One run's parameters; `n_clusters` is the K-Means clusters, GMM components or spectral clusters."""

    algorithm: str
    pca_components: int
    n_clusters: int = 0
    eps: float = 0.0
    min_samples: int = 0
    covariance_type: str = "diag"
    n_neighbors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for logs and the page, e.g. 'kmeans, 24 clusters, PCA 8'."""
        pca = f"PCA {self.pca_components}" if self.pca_components else "no PCA"
        if self.algorithm == "dbscan":
            return f"dbscan, eps {self.eps:g}, min_samples {self.min_samples}, {pca}"
        extra = {"gmm": f", {self.covariance_type} covariance", "spectral": f", {self.n_neighbors} neighbours"}
        return f"{self.algorithm}, {self.n_clusters} clusters{extra.get(self.algorithm, '')}, {pca}"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunParams:
        return cls(**values)


@dataclass(frozen=True)
class Mutation:
    int_delta: int = 3
    float_delta: float = 0.05
    coord_fraction: float = 0.05


def _draw_int(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _cluster_range(space: SearchSpace) -> tuple[int, int]:
    return {"kmeans": space.clusters, "gmm": space.gmm_components,
            "spectral": space.spectral_clusters}.get(space.algorithm, (0, 0))


def random_params(space: SearchSpace, rng: np.random.Generator) -> RunParams:
    """Parameters drawn uniformly from the space (exploration)."""
    pca = _draw_int(rng, space.pca_components)
    if space.algorithm == "dbscan":
        return RunParams("dbscan", pca, eps=round(float(rng.uniform(*space.eps)), 4),
                         min_samples=_draw_int(rng, space.min_samples))
    return RunParams(space.algorithm, pca, n_clusters=_draw_int(rng, _cluster_range(space)),
                     covariance_type=space.covariance_type, n_neighbors=space.spectral_neighbors)


def _nudge_int(value: int, bounds: tuple[int, int], delta: int, rng: np.random.Generator) -> int:
    return int(np.clip(value + int(rng.integers(-delta, delta + 1)), bounds[0], bounds[1]))


def _nudge_float(value: float, bounds: tuple[float, float], delta: float, rng: np.random.Generator) -> float:
    return round(float(np.clip(value + rng.uniform(-delta, delta), bounds[0], bounds[1])), 4)


def mutate(elite: RunParams, space: SearchSpace, rng: np.random.Generator, mutation: Mutation) -> RunParams:
    """A neighbour of `elite` inside the space. An elite of another algorithm (the user changed it) is ignored and
    fresh parameters are drawn instead."""
    if elite.algorithm != space.algorithm:
        return random_params(space, rng)
    pca = _nudge_int(elite.pca_components, space.pca_components, mutation.int_delta, rng)
    if elite.algorithm == "dbscan":
        return replace(elite, pca_components=pca,
                       eps=_nudge_float(elite.eps, space.eps, mutation.float_delta, rng),
                       min_samples=_nudge_int(elite.min_samples, space.min_samples, mutation.int_delta, rng))
    return replace(elite, pca_components=pca,
                   n_clusters=_nudge_int(elite.n_clusters, _cluster_range(space), mutation.int_delta, rng),
                   covariance_type=space.covariance_type, n_neighbors=space.spectral_neighbors)


def nudge_centroids(centroids: np.ndarray, n_clusters: int, rng: np.random.Generator, *,
                    fraction: float) -> np.ndarray:
    """Starting centres for a mutated K-Means run: the elite's centres (k, d), each coordinate moved by up to
    `fraction` of that coordinate's spread over the centres; centres are dropped at random, or nudged copies added,
    so there are `n_clusters` of them. Returns (n_clusters, d)."""
    spread = centroids.std(axis=0) if len(centroids) > 1 else np.ones(centroids.shape[1])
    spread = np.where(spread > 0, spread, 1.0)
    if n_clusters < len(centroids):
        centroids = centroids[np.sort(rng.choice(len(centroids), n_clusters, replace=False))]
    elif n_clusters > len(centroids):
        copies = centroids[rng.choice(len(centroids), n_clusters - len(centroids), replace=True)]
        # copies need a real push away from their originals or K-Means starts with coinciding centres
        copies = copies + rng.uniform(-1, 1, size=copies.shape) * max(fraction, 0.1) * spread
        centroids = np.vstack([centroids, copies])
    moved = centroids + rng.uniform(-1, 1, size=centroids.shape) * fraction * spread
    return np.asarray(moved, dtype=np.float64)
