"""The parameters of a clustering request: defaults from the configuration, validation of a user's values, and the
one-click preset that picks settings from the library size.

Parameter names are the HTTP API's (`clustering_method`, `num_clusters_min`, `score_weight_purity`, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from clustering.errors import ClusteringError
from config import (
    Config,
    NumberError,
    parse_bool,
    parse_int,
    parse_mean_std,
    parse_number,
    setting_choices,
    setting_default,
    setting_range,
)

MIN_TRACKS = 4  # fewer analyzed tracks cannot make two clusters of two
IGNORED = frozenset({"preset"})  # read by the route, not a parameter of the run

# Each request parameter stands for a setting of config.py: its default and its accepted range or choices are that
# setting's, so a value refused in the environment is refused in a request too, with the same limits.
SETTING_OF = {
    "clustering_method": "CLUSTER_ALGORITHM",
    "clustering_runs": "CLUSTERING_RUNS",
    "top_n_playlists": "TOP_N_PLAYLISTS",
    "enable_clustering_embeddings": "ENABLE_CLUSTERING_EMBEDDINGS",
    "num_clusters_min": "NUM_CLUSTERS_MIN",
    "num_clusters_max": "NUM_CLUSTERS_MAX",
    "dbscan_eps_min": "DBSCAN_EPS_MIN",
    "dbscan_eps_max": "DBSCAN_EPS_MAX",
    "dbscan_min_samples_min": "DBSCAN_MIN_SAMPLES_MIN",
    "dbscan_min_samples_max": "DBSCAN_MIN_SAMPLES_MAX",
    "gmm_n_components_min": "GMM_N_COMPONENTS_MIN",
    "gmm_n_components_max": "GMM_N_COMPONENTS_MAX",
    "gmm_covariance_type": "GMM_COVARIANCE_TYPE",
    "spectral_n_clusters_min": "SPECTRAL_N_CLUSTERS_MIN",
    "spectral_n_clusters_max": "SPECTRAL_N_CLUSTERS_MAX",
    "spectral_n_neighbors": "SPECTRAL_N_NEIGHBORS",
    "pca_components_min": "PCA_COMPONENTS_MIN",
    "pca_components_max": "PCA_COMPONENTS_MAX",
    "max_songs_per_cluster": "MAX_SONGS_PER_CLUSTER",
    "min_playlist_size": "MIN_PLAYLIST_SIZE_FOR_TOP_N",
    "max_songs_per_artist": "MAX_SONGS_PER_ARTIST",
    "max_distance": "MAX_DISTANCE",
    "score_weight_diversity": "SCORE_WEIGHT_DIVERSITY",
    "score_weight_purity": "SCORE_WEIGHT_PURITY",
    "score_weight_other_feature_diversity": "SCORE_WEIGHT_OTHER_FEATURE_DIVERSITY",
    "score_weight_other_feature_purity": "SCORE_WEIGHT_OTHER_FEATURE_PURITY",
    "score_weight_silhouette": "SCORE_WEIGHT_SILHOUETTE",
    "score_weight_davies_bouldin": "SCORE_WEIGHT_DAVIES_BOULDIN",
    "score_weight_calinski_harabasz": "SCORE_WEIGHT_CALINSKI_HARABASZ",
    "ai_model_provider": "AI_MODEL_PROVIDER",
    "seed": "CLUSTERING_SEED",  # 0: a fresh seed is drawn and recorded
    # the search, sampling, fitness and assembly settings, per run under their lowercase names
    "iterations_per_batch_job": "ITERATIONS_PER_BATCH_JOB",
    "max_concurrent_batch_jobs": "MAX_CONCURRENT_BATCH_JOBS",
    "clustering_batch_timeout_minutes": "CLUSTERING_BATCH_TIMEOUT_MINUTES",
    "clustering_max_failed_batches": "CLUSTERING_MAX_FAILED_BATCHES",
    "top_n_elites": "TOP_N_ELITES",
    "exploitation_start_fraction": "EXPLOITATION_START_FRACTION",
    "exploitation_probability_config": "EXPLOITATION_PROBABILITY_CONFIG",
    "mutation_int_abs_delta": "MUTATION_INT_ABS_DELTA",
    "mutation_float_abs_delta": "MUTATION_FLOAT_ABS_DELTA",
    "mutation_kmeans_coord_fraction": "MUTATION_KMEANS_COORD_FRACTION",
    "ln_mood_diversity_stats": "LN_MOOD_DIVERSITY_STATS",
    "ln_mood_purity_stats": "LN_MOOD_PURITY_STATS",
    "ln_mood_diversity_embeding_stats": "LN_MOOD_DIVERSITY_EMBEDING_STATS",
    "ln_mood_purity_embeding_stats": "LN_MOOD_PURITY_EMBEDING_STATS",
    "ln_other_features_diversity_stats": "LN_OTHER_FEATURES_DIVERSITY_STATS",
    "ln_other_features_purity_stats": "LN_OTHER_FEATURES_PURITY_STATS",
    "top_k_moods_for_purity_calculation": "TOP_K_MOODS_FOR_PURITY_CALCULATION",
    "other_feature_predominance_threshold_for_purity": "OTHER_FEATURE_PREDOMINANCE_THRESHOLD_FOR_PURITY",
    "stratified_genres": "STRATIFIED_GENRES",
    "min_songs_per_genre_for_stratification": "MIN_SONGS_PER_GENRE_FOR_STRATIFICATION",
    "stratified_sampling_target_percentile": "STRATIFIED_SAMPLING_TARGET_PERCENTILE",
    "clustering_sample_max": "CLUSTERING_SAMPLE_MAX",
    "sampling_percentage_change_per_run": "SAMPLING_PERCENTAGE_CHANGE_PER_RUN",
    "duplicate_distance_threshold_cosine": "DUPLICATE_DISTANCE_THRESHOLD_COSINE",
    "duplicate_distance_check_lookback": "DUPLICATE_DISTANCE_CHECK_LOOKBACK",
    "clustering_calibration_runs": "CLUSTERING_CALIBRATION_RUNS",
    "auto_parameter_discovery": "CLUSTERING_AUTO_PARAMETER_DISCOVERY",  # the reference's name
    "playlists_wanted": "CLUSTERING_PLAYLISTS_WANTED",
}
# Lowercase setting names whose parameter has a name of its own (both are accepted).
ALIASES = {"cluster_algorithm": "clustering_method", "min_playlist_size_for_top_n": "min_playlist_size",
           "clustering_seed": "seed",
           # the reference's names for the playlist count (its current one and a legacy one)
           "top_n_clustering_playlist": "top_n_playlists", "min_clustering_top": "top_n_playlists"}
# Parameters whose value is "mean,std" (the LN_*_STATS normalisation statistics).
MEAN_STD = frozenset(n for n in SETTING_OF if n.startswith("ln_") and n.endswith("_stats"))
# (low, high) parameter pairs that describe one range
RANGES = (("num_clusters_min", "num_clusters_max"), ("dbscan_min_samples_min", "dbscan_min_samples_max"),
          ("gmm_n_components_min", "gmm_n_components_max"), ("spectral_n_clusters_min", "spectral_n_clusters_max"),
          ("pca_components_min", "pca_components_max"), ("dbscan_eps_min", "dbscan_eps_max"))


def is_parameter(name: str) -> bool:
    """Whether `name` is a clustering parameter (or an alias of one)."""
    return ALIASES.get(name, name) in SETTING_OF


class RequestError(ClusteringError):
    """A parameter has a value that cannot be used."""

    def __init__(self, parameter: str, value: Any, expected: str) -> None:
        super().__init__(f"{parameter}={value!r} is not valid: expected {expected}")
        self.parameter, self.value, self.expected = parameter, value, expected


def _default(parameter: str) -> Any:
    return field(default=setting_default(SETTING_OF[parameter]))


@dataclass(frozen=True)
class ClusteringRequest:
    """One clustering run's parameters (the HTTP API's names); defaults are the settings' defaults."""

    clustering_method: str = _default("clustering_method")
    clustering_runs: int = _default("clustering_runs")
    top_n_playlists: int = _default("top_n_playlists")
    enable_clustering_embeddings: bool = _default("enable_clustering_embeddings")
    num_clusters_min: int = _default("num_clusters_min")
    num_clusters_max: int = _default("num_clusters_max")
    dbscan_eps_min: float = _default("dbscan_eps_min")
    dbscan_eps_max: float = _default("dbscan_eps_max")
    dbscan_min_samples_min: int = _default("dbscan_min_samples_min")
    dbscan_min_samples_max: int = _default("dbscan_min_samples_max")
    gmm_n_components_min: int = _default("gmm_n_components_min")
    gmm_n_components_max: int = _default("gmm_n_components_max")
    gmm_covariance_type: str = _default("gmm_covariance_type")
    spectral_n_clusters_min: int = _default("spectral_n_clusters_min")
    spectral_n_clusters_max: int = _default("spectral_n_clusters_max")
    spectral_n_neighbors: int = _default("spectral_n_neighbors")
    pca_components_min: int = _default("pca_components_min")
    pca_components_max: int = _default("pca_components_max")
    max_songs_per_cluster: int = _default("max_songs_per_cluster")
    min_playlist_size: int = _default("min_playlist_size")
    max_songs_per_artist: int = _default("max_songs_per_artist")
    max_distance: float = _default("max_distance")
    score_weight_diversity: float = _default("score_weight_diversity")
    score_weight_purity: float = _default("score_weight_purity")
    score_weight_other_feature_diversity: float = _default("score_weight_other_feature_diversity")
    score_weight_other_feature_purity: float = _default("score_weight_other_feature_purity")
    score_weight_silhouette: float = _default("score_weight_silhouette")
    score_weight_davies_bouldin: float = _default("score_weight_davies_bouldin")
    score_weight_calinski_harabasz: float = _default("score_weight_calinski_harabasz")
    ai_model_provider: str = _default("ai_model_provider")
    seed: int = _default("seed")
    iterations_per_batch_job: int = _default("iterations_per_batch_job")
    max_concurrent_batch_jobs: int = _default("max_concurrent_batch_jobs")
    clustering_batch_timeout_minutes: float = _default("clustering_batch_timeout_minutes")
    clustering_max_failed_batches: int = _default("clustering_max_failed_batches")
    top_n_elites: int = _default("top_n_elites")
    exploitation_start_fraction: float = _default("exploitation_start_fraction")
    exploitation_probability_config: float = _default("exploitation_probability_config")
    mutation_int_abs_delta: int = _default("mutation_int_abs_delta")
    mutation_float_abs_delta: float = _default("mutation_float_abs_delta")
    mutation_kmeans_coord_fraction: float = _default("mutation_kmeans_coord_fraction")
    ln_mood_diversity_stats: str = _default("ln_mood_diversity_stats")
    ln_mood_purity_stats: str = _default("ln_mood_purity_stats")
    ln_mood_diversity_embeding_stats: str = _default("ln_mood_diversity_embeding_stats")
    ln_mood_purity_embeding_stats: str = _default("ln_mood_purity_embeding_stats")
    ln_other_features_diversity_stats: str = _default("ln_other_features_diversity_stats")
    ln_other_features_purity_stats: str = _default("ln_other_features_purity_stats")
    top_k_moods_for_purity_calculation: int = _default("top_k_moods_for_purity_calculation")
    other_feature_predominance_threshold_for_purity: float = _default("other_feature_predominance_threshold_for_purity")
    stratified_genres: str = _default("stratified_genres")
    min_songs_per_genre_for_stratification: int = _default("min_songs_per_genre_for_stratification")
    stratified_sampling_target_percentile: float = _default("stratified_sampling_target_percentile")
    clustering_sample_max: int = _default("clustering_sample_max")
    sampling_percentage_change_per_run: float = _default("sampling_percentage_change_per_run")
    duplicate_distance_threshold_cosine: float = _default("duplicate_distance_threshold_cosine")
    duplicate_distance_check_lookback: int = _default("duplicate_distance_check_lookback")
    clustering_calibration_runs: int = _default("clustering_calibration_runs")
    auto_parameter_discovery: bool = _default("auto_parameter_discovery")
    playlists_wanted: int = _default("playlists_wanted")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_values(self, raw: Mapping[str, Any]) -> ClusteringRequest:
        """These defaults overridden by the user's `raw` values (strings from a form or JSON values); an unknown
        name or a bad value raises RequestError naming the parameter."""
        known = {f.name for f in fields(self)}
        raw = {ALIASES.get(name, name): value for name, value in raw.items()}
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
        """Every value within its setting's range or choices, and every (min, max) pair in order."""
        for f in fields(self):
            value, setting = getattr(self, f.name), SETTING_OF[f.name]
            if choices := setting_choices(setting):
                if value not in choices:
                    raise RequestError(f.name, value, "one of " + ", ".join(choices))
            elif f.name in MEAN_STD:
                try:
                    parse_mean_std(setting, value)
                except ValueError:
                    raise RequestError(f.name, value, "'mean,std': two numbers, the std above 0") from None
            elif isinstance(value, int | float) and not isinstance(value, bool):
                least, most = setting_range(setting)
                if not math.isfinite(value) or (least is not None and value < least) or (
                        most is not None and value > most):
                    raise RequestError(f.name, value, f"between {least} and {most}")
        for low, high in RANGES:
            if getattr(self, low) > getattr(self, high):
                raise RequestError(high, getattr(self, high), f"at least {low}={getattr(self, low)}")


# (low, high) ranges of a number of clusters, by the algorithm that uses them
CLUSTER_COUNT_RANGES = {"kmeans": ("num_clusters_min", "num_clusters_max"),
                        "gmm": ("gmm_n_components_min", "gmm_n_components_max"),
                        "spectral": ("spectral_n_clusters_min", "spectral_n_clusters_max")}


def fit_to_library(request: ClusteringRequest, library_size: int) -> tuple[ClusteringRequest, list[str]]:
    """The request with cluster counts no library of `library_size` songs can fill lowered, and a line for each
    change to the chosen algorithm's range: n songs make at most n / min_playlist_size playlists of that size."""
    most = max(2, library_size // max(request.min_playlist_size, 1))
    changes: dict[str, Any] = {}
    notes = []
    for algorithm, (low, high) in CLUSTER_COUNT_RANGES.items():
        if getattr(request, high) <= most:
            continue
        changes[high] = most
        changes[low] = min(getattr(request, low), most)
        if algorithm == request.clustering_method:
            notes.append(f"{high} lowered from {getattr(request, high)} to {most} (and {low} to {changes[low]}): "
                         f"{library_size} songs fill at most {most} playlists of {request.min_playlist_size}")
    return replace(request, **changes), notes


def _coerce(name: str, kind: type, raw: Any) -> Any:
    if kind is bool:
        if (flag := parse_bool(raw)) is None:
            raise RequestError(name, raw, "true or false")
        return flag
    if kind in (int, float):
        try:
            return parse_int(raw) if kind is int else parse_number(raw)
        except NumberError as exc:
            raise RequestError(name, raw, exc.expected) from None
    if not isinstance(raw, str):
        raise RequestError(name, raw, "a string")
    # choices are lower case (kmeans, diag, ollama); free text such as the genre list keeps its case
    return raw.strip().lower() if setting_choices(SETTING_OF[name]) else raw.strip()


def defaults_from(config: Config) -> ClusteringRequest:
    """The request defaults from the configuration in force."""
    return ClusteringRequest(**{name: getattr(config, setting) for name, setting in SETTING_OF.items()})


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
