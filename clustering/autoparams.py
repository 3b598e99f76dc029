"""Automatic parameter discovery: before the search, a few quick probe runs on the library check that the request's
ranges can give playlists of the requested size, and lower (or, for DBSCAN, place) them where they cannot.

- Cluster counts (K-Means, GMM, spectral): with `playlists_wanted` the range is aimed at it first
  (wanted..2·wanted, within what the library can fill); then the top of the range is probed and halved until most
  probes give a playlist of `min_playlist_size` songs.
- DBSCAN: eps comes from the elbow of the sorted k-distance curve (k = min_samples) of the sample, per √dimension
  as the search uses it; min_samples is kept below what the sample's playlists can hold; the probes then widen eps
  while most runs find fewer than two clusters.

Every function is seeded and free of I/O; `discover` returns the changed parameters and one line per change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from clustering.assemble import AssemblySettings, assemble_playlists
from clustering.models import fit_run
from clustering.params import RunParams, SearchSpace
from clustering.search import PreparedLibrary, RunResult, pack_sample

PROBES = 3             # probe runs per candidate
PROBE_PASS = 2         # of which this many must give a playlist of the requested size
EPS_MARGIN = (0.8, 1.3)  # the eps range around the k-distance elbow
MAX_EPS_WIDENINGS = 3
EPS_WIDENING = 1.5


def k_distance_elbow(points: np.ndarray, *, k: int, max_queries: int = 2000, seed: int = 0) -> float:
    """The distance to the k-th nearest neighbour at the elbow of the sorted k-distance curve of `points` (n, d):
    the point of the ascending curve farthest below the chord from its first to its last value (Kneedle). Euclidean
    units of `points`; 0.0 for fewer than k + 2 points. Over `max_queries` points drawn at random (seeded) when n
    is larger, each measured against all n, so the distances are the whole set's."""
    n = len(points)
    if n < k + 2:
        return 0.0
    queries = np.arange(n) if n <= max_queries else np.sort(
        np.random.default_rng(seed).choice(n, max_queries, replace=False))
    sq = (points ** 2).sum(axis=1)
    kth = np.empty(len(queries))
    for start in range(0, len(queries), 500):
        rows = queries[start:start + 500]
        block = np.sqrt(np.maximum(sq[rows, None] - 2 * points[rows] @ points.T + sq[None, :], 0))
        kth[start:start + len(rows)] = np.partition(block, k, axis=1)[:, k]  # column 0 is the point itself
    kth.sort()
    span = kth[-1] - kth[0]
    if span <= 0:
        return float(kth[0])
    chord = kth[0] + span * np.linspace(0.0, 1.0, len(kth))
    return float(kth[int(np.argmax(chord - kth))])


def cluster_range_for(wanted: int, *, library_size: int, min_size: int) -> tuple[int, int]:
    """A cluster-count range aimed at `wanted` playlists: wanted..2·wanted, capped so that clusters average at
    least 2·min_size songs of the library (assembly loses some to duplicates and caps), at least 2."""
    most = max(2, library_size // max(2 * min_size, 1))
    high = max(2, min(2 * wanted, most))
    return max(2, min(wanted, high)), high


def _sample_size_limit(sample_size: int, wanted: int) -> int:
    """The largest DBSCAN min_samples that lets the sample make `wanted` clusters (a core point needs that many
    neighbours): sample / (2·wanted), at least 2."""
    return max(2, sample_size // max(2 * wanted, 1))


@dataclass(frozen=True)
class Discovery:
    changes: dict[str, Any]  # request parameter → discovered value
    notes: list[str]
    probes: int              # probe runs done


def _probe(library: PreparedLibrary, params: RunParams, assembly: AssemblySettings, rng: np.random.Generator
           ) -> bool:
    """One probe: params fitted on a fresh stratified sample, then assembled as the final playlists are; whether it
    gives a playlist of the requested size."""
    sample = library.sampler.initial(rng)
    seed = int(rng.integers(1 << 30))
    try:
        fitted = fit_run(params, library.features[sample], seed=seed)
        if len(fitted.centres) < 2:
            return False
        run = RunResult(score=0.0, params=params, seed=seed, sample=pack_sample(sample, len(library.data)),
                        metrics={})
        return bool(assemble_playlists(library, run, assembly, seed=seed))
    except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError):
        return False


def _passes(library: PreparedLibrary, params: RunParams, assembly: AssemblySettings, rng: np.random.Generator
            ) -> tuple[bool, int]:
    passed = done = 0
    for _ in range(PROBES):
        done += 1
        passed += _probe(library, params, assembly, rng)
        if passed >= PROBE_PASS or done - passed > PROBES - PROBE_PASS:
            break
    return passed >= PROBE_PASS, done


COUNT_PARAMETERS = {"kmeans": ("num_clusters_min", "num_clusters_max", "clusters"),
                    "gmm": ("gmm_n_components_min", "gmm_n_components_max", "gmm_components"),
                    "spectral": ("spectral_n_clusters_min", "spectral_n_clusters_max", "spectral_clusters")}


def discover(library: PreparedLibrary, space: SearchSpace, assembly: AssemblySettings, *, wanted: int,
             seed: int) -> Discovery:
    """The request parameters to change so that `space`'s runs give playlists of assembly.min_size songs on this
    library (see the module docstring); `wanted` 0 keeps the ranges and only lowers them."""
    rng = np.random.default_rng([seed, 0xD15C])
    pca = (space.pca_components[0] + space.pca_components[1]) // 2
    n = len(library.data)
    changes: dict[str, Any] = {}
    notes: list[str] = []
    probes = 0
    if space.algorithm == "dbscan":
        return _discover_dbscan(library, space, assembly, wanted=wanted or max(assembly.top_n, 2), pca=pca, rng=rng)
    low_name, high_name, attr = COUNT_PARAMETERS[space.algorithm]
    low, high = getattr(space, attr)
    if wanted:
        low, high = cluster_range_for(wanted, library_size=n, min_size=assembly.min_size)
        notes.append(f"{low_name}..{high_name} aimed at {wanted} playlists: {low}..{high}")
    base = RunParams(space.algorithm, pca, covariance_type=space.covariance_type,
                     n_neighbors=space.spectral_neighbors)
    while True:
        ok, done = _passes(library, replace(base, n_clusters=high), assembly, rng)
        probes += done
        if ok or high <= 2:
            break
        lowered = max(2, high // 2)
        notes.append(f"{high_name} lowered from {high} to {lowered}: probe runs with {high} clusters gave no "
                     f"playlist of {assembly.min_size} songs")
        high = lowered
    low = min(low, high)
    if (low, high) != getattr(space, attr):
        changes[low_name], changes[high_name] = low, high
    return Discovery(changes=changes, notes=notes, probes=probes)


def _discover_dbscan(library: PreparedLibrary, space: SearchSpace, assembly: AssemblySettings, *, wanted: int,
                     pca: int, rng: np.random.Generator) -> Discovery:
    changes: dict[str, Any] = {}
    notes: list[str] = []
    sample = library.sampler.initial(rng)
    ms_low, ms_high = space.min_samples
    limit = _sample_size_limit(len(sample), wanted)
    if ms_high > limit:
        ms_high, ms_low = limit, min(ms_low, limit)
        changes.update(dbscan_min_samples_min=ms_low, dbscan_min_samples_max=ms_high)
        notes.append(f"dbscan_min_samples range lowered to {ms_low}..{ms_high}: a sample of {len(sample)} songs "
                     f"makes {wanted} clusters only with fewer neighbours per core point")
    k = (ms_low + ms_high) // 2
    features = library.features[sample]
    points = features
    if pca > 0:
        fitted = fit_run(RunParams("kmeans", pca, n_clusters=2), features, seed=int(rng.integers(1 << 30)))
        points = fitted.points
    elbow = k_distance_elbow(points, k=k) / float(np.sqrt(points.shape[1]))
    eps_low, eps_high = max(0.001, round(elbow * EPS_MARGIN[0], 4)), max(0.002, round(elbow * EPS_MARGIN[1], 4))
    probes = widened = 0
    for _ in range(MAX_EPS_WIDENINGS + 1):
        ok, done = _passes(library, RunParams("dbscan", pca, eps=round((eps_low + eps_high) / 2, 4), min_samples=k),
                           assembly, rng)
        probes += done
        if ok:
            break
        eps_low, eps_high = round(eps_low * EPS_WIDENING, 4), round(eps_high * EPS_WIDENING, 4)
        widened += 1
    changes.update(dbscan_eps_min=eps_low, dbscan_eps_max=eps_high)
    notes.append(f"dbscan_eps {eps_low:g}..{eps_high:g} from the k-distance elbow ({elbow:.4f} per √dimension, "
                 f"k = {k}, PCA {pca or 'none'})" + (f", widened {widened}× by {EPS_WIDENING:g} after probe runs "
                                                    "gave no playlist" if widened else ""))
    return Discovery(changes=changes, notes=notes, probes=probes)
