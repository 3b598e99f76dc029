"""What a client may know of the configuration in force, under the reference's key names: the clustering ranges
and algorithm, the AI provider and its model names and server URLs (never a key or password), the moods, the path
metric and the alchemy defaults (/api/config), and the instant playlist's defaults (/chat/api/config_defaults)."""

from __future__ import annotations

import math
from typing import Any

from ai import PROVIDERS, default_model
from audio.moods import MOODS
from clustering.request import defaults_from
from config import Config, redact_url

# Clustering parameters reported as they are (the request's names are the reference's here).
CLUSTERING_KEYS = (
    "num_clusters_min", "num_clusters_max", "dbscan_eps_min", "dbscan_eps_max", "gmm_covariance_type",
    "dbscan_min_samples_min", "dbscan_min_samples_max", "gmm_n_components_min", "gmm_n_components_max",
    "spectral_n_clusters_min", "spectral_n_clusters_max", "pca_components_min", "pca_components_max",
    "min_songs_per_genre_for_stratification", "stratified_sampling_target_percentile", "clustering_runs",
    "enable_clustering_embeddings", "score_weight_diversity", "score_weight_silhouette",
    "score_weight_davies_bouldin", "score_weight_calinski_harabasz", "score_weight_purity",
    "score_weight_other_feature_diversity", "score_weight_other_feature_purity", "max_songs_per_cluster",
    "max_songs_per_artist", "max_distance",
)


def config_snapshot(config: Config) -> dict[str, Any]:
    """The flat configuration object of /api/config (the reference's keys, then a few of ours)."""
    clustering = defaults_from(config)
    values = clustering.as_dict()
    subtract = config.ALCHEMY_SUBTRACT_DISTANCE  # a cosine distance; the reference states it in two other metrics
    body: dict[str, Any] = {
        "num_recent_albums": config.NUM_RECENT_ALBUMS,
        "cluster_algorithm": clustering.clustering_method,
        "clustering_auto_calibration": config.CLUSTERING_CALIBRATION_RUNS > 0,
        **{key: values[key] for key in CLUSTERING_KEYS},
        "top_n_clustering_playlist": clustering.top_n_playlists,
        "ai_model_provider": config.AI_MODEL_PROVIDER.upper(),
        "ollama_server_url": redact_url(config.OLLAMA_SERVER_URL),
        "openai_server_url": redact_url(config.OPENAI_SERVER_URL),
        **{f"{provider}_model_name": default_model(config, provider) for provider in PROVIDERS},
        "top_n_moods": config.TOP_N_MOODS,
        "mood_labels": list(MOODS),
        "path_distance_metric": "cosine",
        "path_default_length": config.PATH_DEFAULT_LENGTH,
        "alchemy_default_n_results": config.ALCHEMY_DEFAULT_N_RESULTS,
        "alchemy_max_n_results": config.ALCHEMY_MAX_N_RESULTS,
        "alchemy_temperature": config.ALCHEMY_TEMPERATURE,
        "alchemy_subtract_distance": subtract,
        # the same threshold on unit vectors: the angle over π, and the chord length
        "alchemy_subtract_distance_angular": round(math.acos(max(-1.0, 1.0 - subtract)) / math.pi, 6),
        "alchemy_subtract_distance_euclid": round(math.sqrt(2.0 * subtract), 6),
        "similar_max_n": config.SIMILAR_MAX_N,
        "distance_metric": "cosine",
    }
    return body


def chat_defaults(config: Config) -> dict[str, Any]:
    """The instant playlist's provider, models and server URLs (no key), and its result counts."""
    return {
        "default_ai_provider": config.AI_MODEL_PROVIDER.upper(),
        **{f"default_{provider}_model_name": default_model(config, provider) for provider in PROVIDERS},
        "ollama_server_url": redact_url(config.OLLAMA_SERVER_URL),
        "openai_server_url": redact_url(config.OPENAI_SERVER_URL),
        "instant_playlist_default_n_results": config.CHAT_DEFAULT_N_RESULTS,
        "instant_playlist_max_n_results": config.ALCHEMY_MAX_N_RESULTS,
    }
