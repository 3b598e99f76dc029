"""The parameters of a clustering request: defaults from the configuration, validation of a user's values, and the
one-click preset that picks settings from the library size.

Parameter names are the HTTP API's (`clustering_method`, `num_clusters_min`, `score_weight_purity`, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from clustering.params import ALGORITHMS, COVARIANCE_TYPES
from config import parse_bool

AI_PROVIDERS = ("none", "ollama", "openai", "gemini", "mistral")
MAX_RUNS = 100_000
IGNORED = frozenset({"preset"})  # read by the route, not a parameter of the run
MIN_TRACKS = 4  # fewer analyzed tracks cannot make two clusters of two


class RequestError(ValueError):
    """A parameter has a value that cannot be used."""

    def __init__(self, parameter: str, value: Any, expected: str) -> None:
        super().__init__(f"{parameter}={value!r} is not valid: expected {expected}")
        self.parameter, self.value, self.expected = parameter, value, expected


@dataclass(frozen=True)
class ClusteringRequest:
    clustering_method: str = "kmeans"
    clustering_runs: int = 1000
    top_n_playlists: int = 8
    enable_clustering_embeddings: bool = False
    num_clusters_min: int = 20
    num_clusters_max: int = 60
    dbscan_eps_min: float = 0.25
    dbscan_eps_max: float = 0.6
    dbscan_min_samples_min: int = 5
    dbscan_min_samples_max: int = 20
    gmm_n_components_min: int = 20
    gmm_n_components_max: int = 60
    gmm_covariance_type: str = "diag"
    spectral_n_clusters_min: int = 20
    spectral_n_clusters_max: int = 60
    spectral_n_neighbors: int = 20
    pca_components_min: int = 0
    pca_components_max: int = 16
    max_songs_per_cluster: int = 40
    min_playlist_size: int = 8
    max_songs_per_artist: int = 3
    max_distance: float = 0.0
    score_weight_diversity: float = 2.0
    score_weight_purity: float = 1.0
    score_weight_other_feature_diversity: float = 0.0
    score_weight_other_feature_purity: float = 0.0
    score_weight_silhouette: float = 0.0
    score_weight_davies_bouldin: float = 0.0
    score_weight_calinski_harabasz: float = 0.0
    ai_model_provider: str = "none"
    seed: int = 0  # 0: a fresh seed is drawn and recorded

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_values(self, raw: Mapping[str, Any]) -> ClusteringRequest:
        """These defaults overridden by the user's `raw` values (strings from a form or JSON values); an unknown
        name or a bad value raises RequestError naming the parameter."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(raw) - known - IGNORED)
        if unknown:
            raise RequestError(unknown[0], raw[unknown[0]], "a clustering parameter (see the README for the list)")
        changes: dict[str, Any] = {}
        for f in fields(self):
            if f.name in raw and raw[f.name] is not None and raw[f.name] != "":
                changes[f.name] = _coerce(f.name, type(getattr(self, f.name)), raw[f.name])
        result = replace(self, **changes)
        result.validate()
        return result

    def validate(self) -> None:
        _choice("clustering_method", self.clustering_method, ALGORITHMS)
        _choice("gmm_covariance_type", self.gmm_covariance_type, COVARIANCE_TYPES)
        _choice("ai_model_provider", self.ai_model_provider, AI_PROVIDERS)
        _at_least("clustering_runs", self.clustering_runs, 1, MAX_RUNS)
        _at_least("top_n_playlists", self.top_n_playlists, 0, 1000)
        for low, high, minimum in (("num_clusters_min", "num_clusters_max", 2),
                                   ("dbscan_min_samples_min", "dbscan_min_samples_max", 1),
                                   ("gmm_n_components_min", "gmm_n_components_max", 2),
                                   ("spectral_n_clusters_min", "spectral_n_clusters_max", 2),
                                   ("pca_components_min", "pca_components_max", 0),
                                   ("dbscan_eps_min", "dbscan_eps_max", 0.001)):
            _at_least(low, getattr(self, low), minimum, 10_000)
            _at_least(high, getattr(self, high), minimum, 10_000)
            if getattr(self, low) > getattr(self, high):
                raise RequestError(high, getattr(self, high), f"at least {low}={getattr(self, low)}")
        _at_least("spectral_n_neighbors", self.spectral_n_neighbors, 2, 1000)
        _at_least("max_songs_per_cluster", self.max_songs_per_cluster, 0, 100_000)
        _at_least("min_playlist_size", self.min_playlist_size, 1, 100_000)
        _at_least("max_songs_per_artist", self.max_songs_per_artist, 1, 100_000)
        _at_least("max_distance", self.max_distance, 0, 1e6)
        _at_least("seed", self.seed, 0, 2**31 - 1)
        for f in fields(self):
            if f.name.startswith("score_weight_"):
                _at_least(f.name, getattr(self, f.name), -100, 100)


def _coerce(name: str, kind: type, raw: Any) -> Any:
    if kind is bool:
        if (flag := parse_bool(raw)) is None:
            raise RequestError(name, raw, "true or false")
        return flag
    if kind is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise RequestError(name, raw, "an integer")
        try:
            return int(raw)
        except (TypeError, ValueError, OverflowError):
            raise RequestError(name, raw, "an integer") from None
    if kind is float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise RequestError(name, raw, "a number") from None
        if not math.isfinite(value) or isinstance(raw, bool):
            raise RequestError(name, raw, "a finite number")
        return value
    if not isinstance(raw, str):
        raise RequestError(name, raw, "a string")
    return raw.strip().lower()


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise RequestError(name, value, "one of " + ", ".join(choices))


def _at_least(name: str, value: float, minimum: float, maximum: float) -> None:
    if not minimum <= value <= maximum:
        raise RequestError(name, value, f"between {minimum} and {maximum}")


def defaults_from(config: Any) -> ClusteringRequest:
    """The request defaults from the configuration (any object with the Config attribute names)."""
    return ClusteringRequest(
        clustering_method=config.CLUSTER_ALGORITHM, clustering_runs=config.CLUSTERING_RUNS,
        top_n_playlists=config.TOP_N_PLAYLISTS, enable_clustering_embeddings=config.ENABLE_CLUSTERING_EMBEDDINGS,
        num_clusters_min=config.NUM_CLUSTERS_MIN, num_clusters_max=config.NUM_CLUSTERS_MAX,
        dbscan_eps_min=config.DBSCAN_EPS_MIN, dbscan_eps_max=config.DBSCAN_EPS_MAX,
        dbscan_min_samples_min=config.DBSCAN_MIN_SAMPLES_MIN, dbscan_min_samples_max=config.DBSCAN_MIN_SAMPLES_MAX,
        gmm_n_components_min=config.GMM_N_COMPONENTS_MIN, gmm_n_components_max=config.GMM_N_COMPONENTS_MAX,
        gmm_covariance_type=config.GMM_COVARIANCE_TYPE, spectral_n_clusters_min=config.SPECTRAL_N_CLUSTERS_MIN,
        spectral_n_clusters_max=config.SPECTRAL_N_CLUSTERS_MAX, spectral_n_neighbors=config.SPECTRAL_N_NEIGHBORS,
        pca_components_min=config.PCA_COMPONENTS_MIN, pca_components_max=config.PCA_COMPONENTS_MAX,
        max_songs_per_cluster=config.MAX_SONGS_PER_CLUSTER, min_playlist_size=config.MIN_PLAYLIST_SIZE_FOR_TOP_N,
        max_songs_per_artist=config.MAX_SONGS_PER_ARTIST, max_distance=config.MAX_DISTANCE,
        score_weight_diversity=config.SCORE_WEIGHT_DIVERSITY, score_weight_purity=config.SCORE_WEIGHT_PURITY,
        score_weight_other_feature_diversity=config.SCORE_WEIGHT_OTHER_FEATURE_DIVERSITY,
        score_weight_other_feature_purity=config.SCORE_WEIGHT_OTHER_FEATURE_PURITY,
        score_weight_silhouette=config.SCORE_WEIGHT_SILHOUETTE,
        score_weight_davies_bouldin=config.SCORE_WEIGHT_DAVIES_BOULDIN,
        score_weight_calinski_harabasz=config.SCORE_WEIGHT_CALINSKI_HARABASZ,
        ai_model_provider=config.AI_MODEL_PROVIDER, seed=config.CLUSTERING_SEED)


def preset(library_size: int, artist_count: int, defaults: ClusteringRequest) -> ClusteringRequest:
    """Settings that give sensible playlists for a library of `library_size` analyzed tracks in a few minutes:
    K-Means on score vectors, about one playlist per 25-60 songs of the library (playlists of roughly 15-40
    songs), a run count that fits minutes on a small machine, and playlist sizes the library can fill."""
    n = max(library_size, 1)
    clusters_min = int(min(max(2, n // 60), 80))
    clusters_max = int(min(max(clusters_min + 2, n // 25, min(n // 8, 8)), 100))
    # a small library has a small search space; a big one makes every run cost more
    runs = int(min(max(50, n // 2), 300)) if n <= 20_000 else 150
    min_size = int(min(8, max(3, n // 20)))
    # a tiny library cannot fill many playlists of min_size songs
    clusters_max = max(2, min(clusters_max, n // (min_size + 1)))
    clusters_min = min(clusters_min, clusters_max)
    top_n = int(min(20, max(4, n // 40)))
    return replace(defaults, clustering_method="kmeans", enable_clustering_embeddings=False, clustering_runs=runs,
                   num_clusters_min=clusters_min, num_clusters_max=clusters_max, pca_components_min=0,
                   pca_components_max=min(8, defaults.pca_components_max) if defaults.pca_components_max else 8,
                   top_n_playlists=top_n, min_playlist_size=min_size,
                   max_songs_per_cluster=max(defaults.max_songs_per_cluster, 0) or 40,
                   # a small library by few artists would otherwise lose most songs to the artist cap
                   max_songs_per_artist=max(defaults.max_songs_per_artist, math.ceil(n / max(artist_count, 1) / 2)),
                   score_weight_diversity=2.0, score_weight_purity=1.0, score_weight_silhouette=0.5,
                   score_weight_davies_bouldin=0.0, score_weight_calinski_harabasz=0.0)
