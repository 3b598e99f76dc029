"""Fitting one run: optional PCA, then K-Means, DBSCAN, a Gaussian mixture or spectral clustering.

The result carries the PCA and each cluster's centre in model space, so the whole library (not just the sample)
can later be placed into the clusters by nearest centre.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import DBSCAN, KMeans, SpectralClustering
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from clustering.errors import ClusteringError
from clustering.params import RunParams

MAX_ITER = 100


@dataclass(frozen=True)
class FittedRun:
    """labels: (n,) cluster of each sample row, -1 = noise; points: (n, d) the rows in model space;
    centres: (k, d) mean of each cluster's points, row i for label i."""

    labels: np.ndarray
    points: np.ndarray
    centres: np.ndarray
    pca: PCA | None

    def feature_centres(self) -> np.ndarray:
        """The centres in scaled-feature space (k, f): comparable between runs whose PCA differs."""
        if self.pca is None or not len(self.centres):
            return self.centres
        return np.asarray(self.pca.inverse_transform(self.centres))

    def project(self, features: np.ndarray) -> np.ndarray:
        """Scaled feature rows (m, f) → model space (m, d)."""
        return self.pca.transform(features) if self.pca is not None else features


def fit_run(params: RunParams, features: np.ndarray, *, seed: int,
            init_centroids: np.ndarray | None = None) -> FittedRun:
    """Cluster the scaled sample `features` (n, f). `init_centroids` (k, f, in scaled-feature space) starts K-Means
    from an elite's nudged centres, projected by this run's PCA. Raises ClusteringError when the parameters cannot fit
    this sample."""
    n, f = features.shape
    pca = None
    points = features
    components = min(params.pca_components, f, n - 1)
    if params.pca_components > 0 and components >= 1:
        pca = PCA(n_components=components, svd_solver="full", random_state=seed)
        points = pca.fit_transform(features)
    if init_centroids is not None and pca is not None:
        init_centroids = pca.transform(init_centroids)
    labels = _labels(params, points, seed=seed, init_centroids=init_centroids)
    labels = _compact(labels)
    k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    centres = np.vstack([points[labels == c].mean(axis=0) for c in range(k)]) if k else np.zeros((0, points.shape[1]))
    return FittedRun(labels=labels, points=points, centres=centres, pca=pca)


def _labels(params: RunParams, points: np.ndarray, *, seed: int, init_centroids: np.ndarray | None) -> np.ndarray:
    n = len(points)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # well-separated styles leave the neighbour graph disconnected; the clustering is still right
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        if params.algorithm == "kmeans":
            k = min(params.n_clusters, n - 1)
            if k < 2:
                raise ClusteringError(f"{n} songs are too few for {params.n_clusters} clusters")
            if init_centroids is not None and init_centroids.shape == (k, points.shape[1]):
                model = KMeans(n_clusters=k, init=init_centroids, n_init=1, max_iter=MAX_ITER, random_state=seed)
            else:
                model = KMeans(n_clusters=k, n_init=1, max_iter=MAX_ITER, random_state=seed)
            return np.asarray(model.fit_predict(points))
        if params.algorithm == "dbscan":
            # eps is per √dimension: distances grow with the number of (standardised) dimensions, and PCA makes
            # that number vary between runs, so a fixed eps would mean something else in every run
            eps = params.eps * float(np.sqrt(points.shape[1]))
            return np.asarray(DBSCAN(eps=eps, min_samples=params.min_samples).fit_predict(points))
        if params.algorithm == "gmm":
            k = min(params.n_clusters, n - 1)
            gmm = GaussianMixture(n_components=k, covariance_type=params.covariance_type, max_iter=MAX_ITER,
                                  random_state=seed, reg_covar=1e-4)
            return np.asarray(gmm.fit(points).predict(points))
        if params.algorithm == "spectral":
            k = min(params.n_clusters, n - 1)
            neighbours = min(params.n_neighbors, n - 1)
            model = SpectralClustering(n_clusters=k, affinity="nearest_neighbors", n_neighbors=neighbours,
                                       assign_labels="cluster_qr", random_state=seed)
            return np.asarray(model.fit_predict(points))
    raise ClusteringError(f"unknown algorithm {params.algorithm!r}")


def _compact(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 in order of first appearance (empty GMM components leave gaps); -1 stays."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(labels.shape, -1, dtype=np.int64)
    clustered = labels >= 0
    found, first_seen, position = np.unique(labels[clustered], return_index=True, return_inverse=True)
    rank = np.empty(len(found), dtype=np.int64)
    rank[np.argsort(first_seen)] = np.arange(len(found))
    out[clustered] = rank[position]
    return out
