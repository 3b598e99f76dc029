"""The one place that reads the environment.

Every setting is a typed field of `Config` with a default and a one-line description (the README table is
checked against these). `Config.from_env()` validates everything at once and raises `ConfigError` naming the
variable and the bad value, so a typo stops start-up instead of surfacing hours later in a worker. Secrets are
never part of `repr()` or `describe()`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import typing
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent
VERSION = "0.1.0"


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the variable and the value."""


# The choice lists other modules validate against (clustering requests, ai.py): defined once, here.
CLUSTERING_ALGORITHMS = ("kmeans", "dbscan", "gmm", "spectral")
GMM_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
AI_PROVIDERS = ("ollama", "openai", "gemini", "mistral")
# The blocklists and scope every list applies (discovery.exclusions), as the Settings page saves them.
EXCLUSION_SETTINGS = ("EXCLUDE_ARTISTS", "EXCLUDE_ALBUMS", "EXCLUDE_GENRES", "EXCLUDE_FOLDERS", "SCOPE_LIBRARIES",
                      "SCOPE_FOLDERS", "MAX_SUGGESTED_TRACK_SECONDS")


def _setting(default: Any, doc: str, *, secret: bool = False, choices: tuple[str, ...] = (),
             minimum: float | None = None, maximum: float | None = None) -> Any:
    return field(default=default, metadata={"doc": doc, "secret": secret, "choices": choices, "minimum": minimum,
                                            "maximum": maximum})


@dataclass(frozen=True)
class Config:
    # --- infrastructure -------------------------------------------------------------------------------
    DATABASE_URL: str = _setting(
        "", "PostgreSQL URL; when empty and POSTGRES_HOST is empty, a private embedded PostgreSQL is started",
        secret=True)
    POSTGRES_HOST: str = _setting("", "PostgreSQL host, used to build the URL when DATABASE_URL is empty")
    POSTGRES_PORT: int = _setting(5432, "PostgreSQL port (with POSTGRES_HOST)", minimum=1)
    POSTGRES_USER: str = _setting("audiomuse", "PostgreSQL user (with POSTGRES_HOST)")
    POSTGRES_PASSWORD: str = _setting("", "PostgreSQL password (with POSTGRES_HOST)", secret=True)
    POSTGRES_DB: str = _setting("audiomuse", "PostgreSQL database name (with POSTGRES_HOST)")
    DB_POOL_MIN: int = _setting(1, "Connections each process keeps open to PostgreSQL", minimum=0)
    DB_POOL_MAX: int = _setting(10, "Most connections one process opens to PostgreSQL", minimum=1)
    REDIS_URL: str = _setting(
        "", "Redis URL for queues and pub/sub; when empty a private embedded redis-server is started", secret=True)
    REDIS_TIMEOUT_SECONDS: float = _setting(
        5.0, "Longest wait for Redis to connect or answer one command (RQ workers wait longer while idle)", minimum=0.5)
    DATA_DIR: str = _setting(str(PROJECT_ROOT / "var"), "Folder for embedded database/redis data and logs")
    TEMP_DIR: str = _setting("/tmp/audiomuse", "Folder for temporary audio files during analysis")

    # --- processes --------------------------------------------------------------------------------------
    SERVICE_TYPE: str = _setting("all", "Which processes this container runs", choices=("web", "worker", "all"))
    HOST: str = _setting("127.0.0.1", "Address the web server listens on (0.0.0.0 in Docker)")
    PORT: int = _setting(8000, "Port the web server listens on", minimum=1)
    WEB_THREADS: int = _setting(8, "Threads of the single gunicorn web process", minimum=1)
    NUM_WORKERS: int = _setting(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else
                                (os.cpu_count() or 1), "RQ worker processes (default: CPU cores)", minimum=1)
    LOG_LEVEL: str = _setting("INFO", "Log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    BACKUP_KEEP: int = _setting(7, "Backups kept in DATA_DIR/backups; a new one removes the oldest beyond this",
                                minimum=1)
    LOG_FORMAT: str = _setting("text", "Log lines as text, or as one JSON object a line (time, level, logger, "
                                       "message, exception) for a log collector", choices=("text", "json"))

    # --- jobs -------------------------------------------------------------------------------------------
    TASK_LOG_LINES: int = _setting(10, "Log lines kept per task and shown in the task panel", minimum=1)
    MAIN_TASK_TIMEOUT_SECONDS: int = _setting(
        7 * 24 * 3600, "Longest a main (orchestrator) task may run before RQ stops it", minimum=60)
    CHILD_TASK_TIMEOUT_SECONDS: int = _setting(3600, "Longest a child task (an album, a batch) may run", minimum=10)
    TASK_RESULT_TTL_SECONDS: int = _setting(86400, "How long RQ keeps finished job data in Redis", minimum=0)
    TASK_HEARTBEAT_SECONDS: float = _setting(
        10.0, "How often a running task records that it is alive (and a worker checks it is registered)", minimum=0.1)
    WORKER_REDIS_OUTAGE_SECONDS: float = _setting(
        120.0, "How long a worker retries a Redis command while Redis is unreachable (a restart) before giving up",
        minimum=0)
    TASK_DEAD_AFTER_SECONDS: float = _setting(
        90.0, "A running task silent this long is failed by the reconciler (its worker is gone)", minimum=1)
    CANCEL_CHECK_INTERVAL_SECONDS: float = _setting(
        1.0, "Least time between two cancellation checks of one running task", minimum=0)

    # --- security ---------------------------------------------------------------------------------------
    ADMIN_PASSWORD: str = _setting(
        "", "When set, every page and API needs a login (or API_TOKEN); also settable on the /setup page",
        secret=True)
    API_TOKEN: str = _setting("", "Token for scripts: send 'Authorization: Bearer <token>'", secret=True)
    SECRET_KEY: str = _setting(
        "", "Signs session cookies; generated and stored (sealed) in the database when empty", secret=True)
    SETTINGS_KEY: str = _setting(
        "", "Seals the credentials AudioMuse stores in its database (media-server secrets, the session key); empty: "
            "a key file DATA_DIR/settings.key is made. Set the same value on every host when workers run elsewhere",
        secret=True)
    SESSION_COOKIE_SECURE: bool = _setting(False, "Send the session cookie over HTTPS only (set behind TLS)")
    TRUSTED_HOSTS: str = _setting(
        "", "Comma-separated host names the server answers to (stops DNS rebinding); empty: localhost names when "
            "HOST is loopback, any host otherwise")

    # --- media server -----------------------------------------------------------------------------------
    MEDIASERVER_TYPE: str = _setting("local", "Where the library comes from",
                                     choices=("local", "jellyfin", "emby", "navidrome", "lyrion", "mpd"))
    MUSIC_DIR: str = _setting(str(Path.home() / "Music"), "Music folder read by MEDIASERVER_TYPE=local")
    PLAYLIST_DIR: str = _setting("", "Where local playlists (.m3u8) are written (default: DATA_DIR/playlists)")
    MUSIC_LIBRARIES: str = _setting("", "Comma-separated library (folder) names to analyze; empty: all")
    PATH_MAPPING: str = _setting(
        "", "Rewrite the server's file paths to paths readable here: 'server_prefix=local_prefix;…' "
            "('=/local/music' for servers that report library-relative paths, like Subsonic)")
    HTTP_TIMEOUT_SECONDS: float = _setting(
        30.0, "Timeout of one media-server request (HTTP, or an MPD connection or command)", minimum=1)
    HTTP_RETRIES: int = _setting(3, "Retries (with backoff) of a media-server request that failed transiently",
                                 minimum=0)
    COVER_CACHE_MB: int = _setting(
        200, "Disk space the resized cover art kept in DATA_DIR/covers may take (the oldest are dropped first)",
        minimum=1)
    DOWNLOAD_MAX_MB: int = _setting(
        2048, "Most a track's download may take (less for a short track: its length at 16 Mbit/s plus 16 MB)",
        minimum=1)
    DOWNLOAD_TIMEOUT_SECONDS: float = _setting(900.0, "Longest one track's download may take", minimum=5)
    JELLYFIN_URL: str = _setting("", "Jellyfin server URL, e.g. http://jellyfin:8096")
    JELLYFIN_USER_ID: str = _setting("", "Jellyfin user id (or user name) whose library is read")
    JELLYFIN_TOKEN: str = _setting("", "Jellyfin API key", secret=True)
    EMBY_URL: str = _setting("", "Emby server URL, e.g. http://emby:8096")
    EMBY_USER_ID: str = _setting("", "Emby user id (or user name) whose library is read")
    EMBY_TOKEN: str = _setting("", "Emby API key", secret=True)
    NAVIDROME_URL: str = _setting("", "Navidrome (or any Subsonic API server) URL, e.g. http://navidrome:4533")
    NAVIDROME_USER: str = _setting("", "Navidrome user name")
    NAVIDROME_PASSWORD: str = _setting("", "Navidrome password", secret=True)
    LYRION_URL: str = _setting("", "Lyrion Music Server URL, e.g. http://lms:9000")
    LYRION_USER: str = _setting("", "Lyrion user (when its password protection is on)")
    LYRION_PASSWORD: str = _setting("", "Lyrion password", secret=True)
    MPD_HOST: str = _setting("127.0.0.1", "MPD host")
    MPD_PORT: int = _setting(6600, "MPD port", minimum=1)
    MPD_PASSWORD: str = _setting("", "MPD password", secret=True)
    MPD_MUSIC_DIRECTORY: str = _setting("", "MPD's music_directory as readable here (MPD cannot send audio)")
    MPD_WRITE_STICKERS: bool = _setting(
        False, "Also store tempo, key, energy and top mood as MPD song stickers (needs sticker_file in mpd.conf)")

    # --- analysis ---------------------------------------------------------------------------------------
    NUM_RECENT_ALBUMS: int = _setting(0, "Albums an analysis run covers, most recent first (0 or less: all)")
    TOP_N_MOODS: int = _setting(5, "Top tags shown per track in the library table", minimum=1)
    MAX_QUEUED_ANALYSIS_JOBS: int = _setting(
        8, "Most album jobs an analysis run keeps queued or running at once", minimum=1)
    REBUILD_INDEX_BATCH_SIZE: int = _setting(
        100, "Rebuild the similarity index after this many finished albums (and at the end)", minimum=1)
    AUDIO_LOAD_TIMEOUT: float = _setting(
        180.0, "Seconds the decoder may keep a track waiting for its samples before the file is given up as a "
               "failure (the analysis of each block as it arrives does not count)", minimum=1)
    MAX_FULL_ANALYSIS_SECONDS: float = _setting(
        1200.0, "Tracks longer than this are analyzed through patches spread evenly over the whole file",
        minimum=30)
    MAX_TRACK_SECONDS: float = _setting(
        7200.0, "Longer files are recorded as failures instead of being decoded (memory)", minimum=60)
    DECODER_MEMORY_LIMIT_MB: int = _setting(
        2048, "Address space the decoder helper (and its ffmpeg) may use; a file needing more is a recorded failure "
              "(0: no limit; a 2-hour file needs about 1.3 GB)", minimum=0)
    LONG_TRACK_PATCHES: int = _setting(
        200, "Number of 3-second patches analyzed for a track longer than MAX_FULL_ANALYSIS_SECONDS", minimum=1)
    ANALYSIS_IDLE_RELEASE_SECONDS: float = _setting(
        60.0, "A worker's analysis process (its models and decoders) ends after this many seconds without a track, "
              "so an idle worker gives its memory back", minimum=1)
    MODEL_PATH: str = _setting(str(PROJECT_ROOT / "models" / "msd_musicnn.onnx"), "The musicnn ONNX model file")
    ONNX_INTRA_OP_THREADS: int = _setting(1, "ONNX Runtime threads per analysis job (1 is best with one worker "
                                             "per core)", minimum=1)
    FAST_ANALYSIS_PATCH_STRIDE: int = _setting(
        3, "Fast analysis (a run with {\"fast\": true}): every n-th 3-second patch goes through the model",
        minimum=2, maximum=20)
    FAST_ANALYSIS_FIRST_RUN_TRACKS: int = _setting(
        200_000, "A first analysis run over a library of at least this many tracks is fast unless the request says "
        "fast: false (0: never by default)", minimum=0)
    ONNX_PROVIDERS: str = _setting(
        "auto", "ONNX Runtime providers of the analysis models: auto (CUDA, ROCm, OpenVINO, CoreML when the installed "
        "onnxruntime has them, then CPU) or a list such as cuda,cpu; one that fails falls back to the CPU, and the "
        "Analysis page says why")
    FFMPEG_BINARY: str = _setting("ffmpeg", "ffmpeg executable used for formats libsndfile cannot read")

    # --- discovery --------------------------------------------------------------------------------------
    MAX_SONGS_PER_ARTIST: int = _setting(3, "Most songs by one artist in a similar-songs, path or alchemy result",
                                         minimum=1, maximum=100_000)
    DUPLICATE_DISTANCE: float = _setting(
        0.01, "Songs closer than this cosine distance to a kept song count as duplicates", minimum=0)
    SIMILAR_MAX_N: int = _setting(500, "Largest n accepted by similar songs and mixable tracks", minimum=1)
    PATH_DEFAULT_LENGTH: int = _setting(25, "Songs in a song path when the request does not say", minimum=2)
    PATH_MAX_LENGTH: int = _setting(200, "Longest song path accepted", minimum=2)
    ALCHEMY_DEFAULT_N_RESULTS: int = _setting(100, "Songs an alchemy returns when the request does not say",
                                              minimum=1)
    ALCHEMY_MAX_N_RESULTS: int = _setting(500, "Largest n accepted by song alchemy", minimum=1)
    ALCHEMY_TEMPERATURE: float = _setting(
        0.05, "Default softmax temperature of song alchemy, in cosine-similarity units (0: always the closest)",
        minimum=0)
    ALCHEMY_SUBTRACT_DISTANCE: float = _setting(
        0.2, "Default cosine distance within which songs near the subtracted ones are removed", minimum=0.001)
    SONIC_FINGERPRINT_TOP_N_SONGS: int = _setting(20, "Most-played songs the sonic fingerprint is built from",
                                                  minimum=1)
    SONIC_FINGERPRINT_NEIGHBORS: int = _setting(100, "Songs in a sonic fingerprint result by default", minimum=1)

    # --- blocklists and scope (every list: discovery.exclusions; editable on the Settings page) ---------------
    EXCLUDE_ARTISTS: str = _setting(
        "", "Artists never suggested in any list (comma-separated or one per line; case, accents and 'feat. X' "
            "ignored)")
    EXCLUDE_ALBUMS: str = _setting("", "Albums never suggested (comma-separated or one per line; case and accents "
                                       "ignored)")
    EXCLUDE_GENRES: str = _setting("", "Genres (the media server's) never suggested (comma-separated or one per "
                                       "line; case and accents ignored)")
    EXCLUDE_FOLDERS: str = _setting(
        "", "Folders whose songs are never suggested (comma-separated or one per line; an absolute path is a prefix, "
            "a relative one a folder at any depth)")
    SCOPE_LIBRARIES: str = _setting(
        "", "Suggest only songs of these media-server libraries (comma-separated names; a local folder's libraries "
            "are its top-level folders; empty: all)")
    SCOPE_FOLDERS: str = _setting("", "Suggest only songs in these folders (comma-separated or one per line; "
                                      "empty: everywhere)")
    MAX_SUGGESTED_TRACK_SECONDS: float = _setting(
        0.0, "Songs longer than this are never suggested, e.g. 1800 leaves 2-hour DJ mixes out (0: off)", minimum=0,
        maximum=1e6)

    # --- clustering -------------------------------------------------------------------------------------
    CLUSTER_ALGORITHM: str = _setting("kmeans", "Default clustering algorithm", choices=CLUSTERING_ALGORITHMS)
    ENABLE_CLUSTERING_EMBEDDINGS: bool = _setting(
        False, "Cluster on the 200-d musicnn embeddings instead of the score vector (tempo, energy, tags, moods)")
    CLUSTERING_RUNS: int = _setting(1000, "Evolutionary search runs of one clustering task", minimum=1, maximum=100_000)
    TOP_N_PLAYLISTS: int = _setting(
        8, "Playlists kept: the N most different ones (0: all that qualify)", minimum=0, maximum=1000)
    MAX_DISTANCE: float = _setting(
        0.0, "Songs farther than this (scaled feature units) from their playlist's centre are left out (0: off)",
        minimum=0, maximum=1e6)
    MAX_SONGS_PER_CLUSTER: int = _setting(
        40, "Most songs in one generated playlist (0: unlimited)", minimum=0, maximum=100_000)
    MIN_PLAYLIST_SIZE_FOR_TOP_N: int = _setting(
        8, "Generated playlists with fewer songs are dropped", minimum=1, maximum=100_000)
    NUM_CLUSTERS_MIN: int = _setting(20, "K-Means: fewest clusters tried", minimum=2, maximum=10_000)
    NUM_CLUSTERS_MAX: int = _setting(60, "K-Means: most clusters tried", minimum=2, maximum=10_000)
    DBSCAN_EPS_MIN: float = _setting(
        0.25, "DBSCAN: smallest eps tried, per square root of the dimensions clustered (standardised units)",
        minimum=0.001, maximum=10_000)
    DBSCAN_EPS_MAX: float = _setting(0.6, "DBSCAN: largest eps tried (per square root of the dimensions)",
                                     minimum=0.001, maximum=10_000)
    DBSCAN_MIN_SAMPLES_MIN: int = _setting(5, "DBSCAN: smallest min_samples tried", minimum=1, maximum=10_000)
    DBSCAN_MIN_SAMPLES_MAX: int = _setting(20, "DBSCAN: largest min_samples tried", minimum=1, maximum=10_000)
    GMM_N_COMPONENTS_MIN: int = _setting(20, "GMM: fewest components tried", minimum=2, maximum=10_000)
    GMM_N_COMPONENTS_MAX: int = _setting(60, "GMM: most components tried", minimum=2, maximum=10_000)
    GMM_COVARIANCE_TYPE: str = _setting("diag", "GMM covariance type", choices=GMM_COVARIANCE_TYPES)
    SPECTRAL_N_CLUSTERS_MIN: int = _setting(20, "Spectral: fewest clusters tried", minimum=2, maximum=10_000)
    SPECTRAL_N_CLUSTERS_MAX: int = _setting(60, "Spectral: most clusters tried", minimum=2, maximum=10_000)
    SPECTRAL_N_NEIGHBORS: int = _setting(20, "Spectral: neighbours of the affinity graph", minimum=2, maximum=1000)
    PCA_COMPONENTS_MIN: int = _setting(0, "Fewest PCA components tried (0: no PCA)", minimum=0, maximum=10_000)
    PCA_COMPONENTS_MAX: int = _setting(16, "Most PCA components tried (0: no PCA)", minimum=0, maximum=10_000)
    ITERATIONS_PER_BATCH_JOB: int = _setting(20, "Clustering runs per batch child job", minimum=1)
    MAX_CONCURRENT_BATCH_JOBS: int = _setting(4, "Batch jobs a clustering task keeps queued or running", minimum=1)
    CLUSTERING_BATCH_TIMEOUT_MINUTES: float = _setting(
        30.0, "A batch running longer than this is stopped and counted as failed", minimum=0.01)
    CLUSTERING_MAX_FAILED_BATCHES: int = _setting(
        10, "The clustering task gives up after this many failed batches", minimum=1)
    CLUSTERING_BATCH_CHECK_INTERVAL_SECONDS: float = _setting(
        1.0, "How often the clustering task checks its batches", minimum=0.05)
    TOP_N_ELITES: int = _setting(10, "Best solutions kept for the evolutionary search to mutate", minimum=1)
    EXPLOITATION_START_FRACTION: float = _setting(
        0.2, "Share of the runs done before elites are mutated", minimum=0, maximum=1)
    EXPLOITATION_PROBABILITY_CONFIG: float = _setting(
        0.7, "Probability that a run mutates an elite instead of drawing new parameters", minimum=0, maximum=1)
    MUTATION_INT_ABS_DELTA: int = _setting(3, "Largest change of an integer parameter in a mutation", minimum=0)
    MUTATION_FLOAT_ABS_DELTA: float = _setting(
        0.05, "Largest change of a float parameter (DBSCAN eps) in a mutation", minimum=0)
    MUTATION_KMEANS_COORD_FRACTION: float = _setting(
        0.05, "K-Means centroid nudge in a mutation, as a fraction of each coordinate's spread", minimum=0)
    SCORE_WEIGHT_DIVERSITY: float = _setting(
        2.0, "Fitness weight of tag diversity across playlists", minimum=-100, maximum=100)
    SCORE_WEIGHT_PURITY: float = _setting(
        1.0, "Fitness weight of tag purity inside playlists", minimum=-100, maximum=100)
    SCORE_WEIGHT_OTHER_FEATURE_DIVERSITY: float = _setting(
        0.0, "Fitness weight of mood (danceable, relaxed, ...) diversity across playlists", minimum=-100, maximum=100)
    SCORE_WEIGHT_OTHER_FEATURE_PURITY: float = _setting(
        0.0, "Fitness weight of mood purity inside playlists", minimum=-100, maximum=100)
    SCORE_WEIGHT_SILHOUETTE: float = _setting(0.0, "Fitness weight of the silhouette score", minimum=-100, maximum=100)
    SCORE_WEIGHT_DAVIES_BOULDIN: float = _setting(
        0.0, "Fitness weight of the Davies-Bouldin index (lower is better)", minimum=-100, maximum=100)
    SCORE_WEIGHT_CALINSKI_HARABASZ: float = _setting(
        0.0, "Fitness weight of the Calinski-Harabasz index", minimum=-100, maximum=100)
    LN_MOOD_DIVERSITY_STATS: str = _setting(
        "2.624,0.257", "mean,std of log1p(raw tag diversity) used to normalise it (bench/clustering.py --calibrate)")
    LN_MOOD_PURITY_STATS: str = _setting("0.475,0.049", "mean,std of log1p(raw tag purity), score vectors")
    LN_MOOD_DIVERSITY_EMBEDING_STATS: str = _setting("2.596,0.287", "mean,std of log1p(raw tag diversity), embeddings")
    LN_MOOD_PURITY_EMBEDING_STATS: str = _setting("0.472,0.047", "mean,std of log1p(raw tag purity), embeddings")
    LN_OTHER_FEATURES_DIVERSITY_STATS: str = _setting("1.468,0.078", "mean,std of log1p(raw mood diversity)")
    LN_OTHER_FEATURES_PURITY_STATS: str = _setting(
        "0.418,0.05", "mean,std of log1p(raw mood purity) (measured std 0.005, floored so its weight stays comparable)")
    TOP_K_MOODS_FOR_PURITY_CALCULATION: int = _setting(3, "Top tags of a playlist's profile used for purity",
                                                       minimum=1)
    OTHER_FEATURE_PREDOMINANCE_THRESHOLD_FOR_PURITY: float = _setting(
        0.3, "A mood counts for a song's purity only from this score up", minimum=0)
    STRATIFIED_GENRES: str = _setting(
        "rock,pop,alternative,indie,electronic,dance,jazz,metal,soul,folk,Hip-Hop,classic rock,blues,country,"
        "punk,ambient,hard rock,rnb,electro,House,funk,instrumental",
        "Genre tags a sample is balanced over (a track's primary genre is its highest of these)")
    MIN_SONGS_PER_GENRE_FOR_STRATIFICATION: int = _setting(
        100, "Songs of each genre a sample tries to include", minimum=1)
    CLUSTERING_SAMPLE_MAX: int = _setting(
        20000, "Most songs one clustering run clusters: the per-genre target is lowered to fit (the rest of the "
        "library joins the playlists by nearest centre); keeps a run's cost flat in large libraries", minimum=100)
    STRATIFIED_SAMPLING_TARGET_PERCENTILE: float = _setting(
        50.0, "Percentile of the genre counts that sets the per-genre sample target", minimum=0, maximum=100)
    SAMPLING_PERCENTAGE_CHANGE_PER_RUN: float = _setting(
        0.2, "Share of the sample swapped for other songs of the same genre between runs", minimum=0, maximum=1)
    DUPLICATE_DISTANCE_THRESHOLD_COSINE: float = _setting(
        0.01, "Inside a generated playlist, songs this close (cosine distance of embeddings) count as duplicates",
        minimum=0)
    DUPLICATE_DISTANCE_CHECK_LOOKBACK: int = _setting(
        0, "Compare each song with only this many songs kept before it (0: all)", minimum=0)
    CLUSTERING_CALIBRATION_RUNS: int = _setting(
        40, "Random runs on the library itself that set the normalisation of purity and diversity before the search "
            "(0: use the LN_*_STATS settings)", minimum=0, maximum=1000)
    CLUSTERING_SEED: int = _setting(0, "Seed of the search when a request gives none (0: a new seed each run)",
                                    minimum=0, maximum=2**31 - 1)
    CLUSTERING_AUTO_PARAMETER_DISCOVERY: bool = _setting(
        True, "Before the search, probe runs on the library check the cluster-count range (DBSCAN: eps from the "
              "k-distance elbow, min_samples) and lower what would give no playlist of the requested size")
    CLUSTERING_PLAYLISTS_WANTED: int = _setting(
        0, "With parameter discovery: aim the cluster counts at about this many playlists (0: keep the ranges, "
           "only lowered where probes find no playlist)", minimum=0, maximum=1000)

    # --- AI ---------------------------------------------------------------------------------------------
    AI_MODEL_PROVIDER: str = _setting("none", "LLM used to name playlists", choices=("none", *AI_PROVIDERS))
    AI_REQUEST_TIMEOUT_SECONDS: float = _setting(60.0, "Timeout of one LLM request", minimum=1)
    OLLAMA_SERVER_URL: str = _setting("http://127.0.0.1:11434", "Ollama server URL")
    AI_ALLOWED_URLS: str = _setting(
        "", "Comma-separated URL prefixes a request may name as its LLM server (the chat's ollama_server_url) "
        "besides the configured server URLs; empty: only those")
    OLLAMA_MODEL_NAME: str = _setting("llama3.1:8b", "Ollama model")
    OPENAI_SERVER_URL: str = _setting("https://api.openai.com/v1",
                                      "Base URL of an OpenAI-compatible chat completions API")
    OPENAI_MODEL_NAME: str = _setting("gpt-4o-mini", "OpenAI-compatible model")
    OPENAI_API_KEY: str = _setting("", "OpenAI-compatible API key", secret=True)
    GEMINI_SERVER_URL: str = _setting("https://generativelanguage.googleapis.com/v1beta", "Gemini API base URL")
    GEMINI_MODEL_NAME: str = _setting("gemini-2.0-flash", "Gemini model")
    GEMINI_API_KEY: str = _setting("", "Gemini API key", secret=True)
    MISTRAL_SERVER_URL: str = _setting("https://api.mistral.ai/v1", "Mistral API base URL")
    MISTRAL_MODEL_NAME: str = _setting("mistral-small-latest", "Mistral model")
    MISTRAL_API_KEY: str = _setting("", "Mistral API key", secret=True)

    AI_CHAT_DB_USER_NAME: str = _setting(
        "audiomuse_chat", "PostgreSQL role the chat's queries run as: it may read only the chat_tracks view")
    AI_CHAT_DB_USER_PASSWORD: str = _setting(
        "", "Password of that role (empty: a role that cannot log in; the web process switches to it per query)",
        secret=True)
    CHAT_STATEMENT_TIMEOUT_MS: int = _setting(3000, "Longest a chat query may run before PostgreSQL stops it",
                                              minimum=10)
    CHAT_DEFAULT_N_RESULTS: int = _setting(25, "Songs in an instant playlist when the request does not say",
                                           minimum=1)
    CHAT_MAX_REQUESTS_PER_MINUTE: int = _setting(20, "Instant-playlist requests one client may make per minute",
                                                 minimum=1)
    GEMINI_API_CALL_DELAY_SECONDS: float = _setting(
        0.0, "Least time between two Gemini calls (their free tier limits requests per minute)", minimum=0)
    MISTRAL_API_CALL_DELAY_SECONDS: float = _setting(0.0, "Least time between two Mistral calls", minimum=0)

    # --- index ------------------------------------------------------------------------------------------
    INDEX_NAME: str = _setting("music_library", "Name of the Voyager index row in the database")
    INDEX_RELOAD_CHANNEL: str = _setting("index-updates", "Redis pub/sub channel that announces a new index")
    VOYAGER_M: int = _setting(16, "Voyager graph degree M", minimum=2)
    VOYAGER_EF_CONSTRUCTION: int = _setting(200, "Voyager ef_construction (build-time search width)", minimum=10)
    VOYAGER_QUERY_EF: int = _setting(
        400, "Voyager query ef (search width); high enough for recall >= 0.98 at k=100", minimum=10)
    INDEX_STORAGE: str = _setting(
        "e4m3", "How the similarity index stores its vectors: e4m3 (a byte a dimension, ~37 % of the memory; the web "
        "process re-ranks the candidates exactly from a float32 file in DATA_DIR/index, read through the page "
        "cache) or float32 (every vector in memory, no file). A change applies at the next full rebuild",
        choices=("e4m3", "float32"))
    INDEX_REBUILD_SHARE: float = _setting(
        0.1, "Largest share of changed tracks (added, removed, re-analyzed, over the index size) applied to the "
        "stored index in place; more, or more deleted positions than this share, rebuilds it whole", minimum=0,
        maximum=1)

    # --- text search ---
    TEXT_MODEL_DIR: str = _setting(
        str(PROJECT_ROOT / "models" / "minilm"),
        "Folder of the sentence-embedding model of text search (unpacked by models/fetch_text_model.py)")
    CLAP_TEXT_SEARCH_WARMUP_DURATION: int = _setting(
        300, "Seconds the text model stays loaded in the web process after its last use (a search or a warm-up)",
        minimum=10)
    TEXT_SEARCH_QUERY_CACHE: int = _setting(512, "Query embeddings kept, so a repeated query costs no inference",
                                            minimum=0)
    CLAP_ENABLED: bool = _setting(
        False, "Text search with CLAP: the workers embed each track with CLAP_AUDIO_MODEL_PATH during analysis, the "
        "web process answers queries with CLAP_TEXT_MODEL_PATH (both LAION-CLAP-style split ONNX models, not shipped)")
    CLAP_AUDIO_MODEL_PATH: str = _setting("", "CLAP audio encoder (ONNX), loaded by the workers when CLAP_ENABLED")
    CLAP_TEXT_MODEL_PATH: str = _setting("", "CLAP text encoder (ONNX), loaded by the web process when CLAP_ENABLED")
    CLAP_TOKENIZER_PATH: str = _setting("", "tokenizer.json of the CLAP text encoder")
    CLAP_EMBEDDING_DIMENSION: int = _setting(512, "Width of the CLAP embeddings both encoders give", minimum=8,
                                             maximum=4096)
    CLAP_MAX_SEGMENTS: int = _setting(
        60, "At most this many 10-s windows of a track go through the CLAP audio model (spread over the track)",
        minimum=1)

    # --- music map ---
    MAP_UMAP_NEIGHBORS: int = _setting(
        15, "UMAP n_neighbors of the music map (larger: more global structure, fewer small islands)", minimum=2,
        maximum=200)
    MAP_UMAP_MIN_DIST: float = _setting(0.1, "UMAP min_dist of the music map (how tightly similar songs pack)",
                                        minimum=0.0, maximum=1.0)
    MAP_UMAP_FIT_SAMPLE: int = _setting(
        20000, "Tracks UMAP is fitted on (a seeded sample); the rest are placed with the fitted model's transform",
        minimum=100)
    MAP_SEED: int = _setting(42, "Random seed of the music map: the same library gives the same map")
    MAP_FULL_REBUILD_SHARE: float = _setting(
        0.25, "After an analysis run, new tracks are placed on the existing map until they exceed this share of "
        "the mapped tracks; then the map is built again from scratch", minimum=0.0, maximum=10.0)
    MAP_SELECTION_MAX: int = _setting(500, "Most songs the music map's selection holds (clicks, lassos, paths)",
                                      minimum=1, maximum=5000)
    MAP_TASK_TIMEOUT_SECONDS: int = _setting(3600, "Longest a map_projection job may run before it is stopped",
                                             minimum=60)

    # --- database cleaning ---
    CLEANING_SAFETY_LIMIT: int = _setting(
        100, "Most orphaned tracks (analyzed, but no longer on the media server) one cleaning run deletes; the "
        "rest wait for the next run", minimum=1)
    CLEANING_MIN_REMAINING_FRACTION: float = _setting(
        0.5, "Cleaning deletes nothing when the media server lists fewer than this share of the analyzed tracks "
        "(a server that is down or an unmounted disk must never empty the library)", minimum=0.0, maximum=1.0)
    CLEANING_DELETE_BATCH_SIZE: int = _setting(
        200, "Tracks deleted per transaction by a cleaning run (cancel is checked between batches)", minimum=1)

    # --- playlist matching ---
    PLAYLIST_MATCHING_AFTER_ANALYSIS: bool = _setting(
        True, "After each analysis run, suggest for the new songs which of your own playlists they fit")

    # --- scheduled tasks ---
    CRON_ENABLED: bool = _setting(True, "Run the schedules of the Schedules page (the scheduler runs in every "
                                  "worker process; each due run is started once)")
    CRON_POLL_SECONDS: float = _setting(20.0, "How often a scheduler looks for due runs", minimum=1.0,
                                        maximum=60.0)
    CRON_CATCH_UP: bool = _setting(
        True, "After downtime, start one catch-up run for a schedule that missed its runs (never one per missed "
        "time); false: missed runs are recorded as missed")
    CRON_DEFAULT_TIMEZONE: str = _setting("UTC", "Time zone of a new schedule when it names none (an IANA name, "
                                          "e.g. Europe/Rome)")

    # --- queue-aware mix and MPD's queue mode ---
    MIX_MAX_COUNT: int = _setting(200, "Most songs one /api/mix request may ask for", minimum=1, maximum=1000)
    MPD_QUEUE_MODE: bool = _setting(
        False, "Keep MPD's queue going: a worker appends mixed songs when few remain (switchable on the Mix page, "
               "which overrides this)")
    MPD_QUEUE_MIN_AHEAD: int = _setting(5, "Queue mode: add songs when fewer than this remain after the current one",
                                        minimum=1, maximum=100)
    MPD_QUEUE_ADD: int = _setting(10, "Queue mode: songs appended each time", minimum=1, maximum=100)
    MPD_QUEUE_RECONNECT_MAX_SECONDS: float = _setting(
        60.0, "Queue mode: longest wait between two attempts to reach MPD (the wait doubles from 0.5 s)",
        minimum=0.5, maximum=3600)

    # ----------------------------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Read every setting from `env` (default: os.environ); raise ConfigError on the first bad value."""
        source = os.environ if env is None else env
        return cls.from_mapping({f.name: source[f.name] for f in dataclasses.fields(cls) if f.name in source})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Config:
        """Build from a mapping of raw strings or typed values (tests pass one); unknown names are an error."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        parsed = {name: _parse(known[name], hints[name], raw) for name, raw in values.items()}
        config = cls(**parsed)
        config._check_consistency()
        return config

    def with_overrides(self, **values: Any) -> Config:
        merged = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        merged.update(values)
        return Config.from_mapping(merged)

    def allows_ai_url(self, url: str) -> bool:
        """Whether a request may have the server call `url` as its LLM: a configured server URL, or one under a
        prefix of AI_ALLOWED_URLS (never any address a client names: that would make the server a port scanner)."""
        wanted = url.strip().rstrip("/")
        configured = {u.strip().rstrip("/") for u in (self.OLLAMA_SERVER_URL, self.OPENAI_SERVER_URL,
                                                      self.GEMINI_SERVER_URL, self.MISTRAL_SERVER_URL) if u.strip()}
        prefixes = [p.strip().rstrip("/") for p in self.AI_ALLOWED_URLS.split(",") if p.strip()]
        return wanted in configured or any(wanted == p or wanted.startswith(p + "/") for p in prefixes)

    def _check_consistency(self) -> None:
        from audio.providers import ProviderSettingError, parse_setting

        try:
            parse_setting(self.ONNX_PROVIDERS)
        except ProviderSettingError as exc:
            raise ConfigError(str(exc)) from None
        if self.DB_POOL_MAX < self.WEB_THREADS + 2:
            raise ConfigError(f"DB_POOL_MAX={self.DB_POOL_MAX} is below WEB_THREADS + 2 = {self.WEB_THREADS + 2} "
                              "(every web thread and two background threads need a connection)")
        if self.DB_POOL_MIN > self.DB_POOL_MAX:
            raise ConfigError(f"DB_POOL_MIN={self.DB_POOL_MIN} is larger than DB_POOL_MAX={self.DB_POOL_MAX}")
        for name in ("DATABASE_URL",):
            url = getattr(self, name)
            if url and urlsplit(url).scheme not in ("postgres", "postgresql"):
                raise ConfigError(f"{name}={redact_url(url)!r} is not a postgresql:// URL")
        for name in ("JELLYFIN_URL", "EMBY_URL", "NAVIDROME_URL", "LYRION_URL"):
            url = getattr(self, name)
            if url and urlsplit(url).scheme not in ("http", "https"):
                raise ConfigError(f"{name}={redact_url(url)!r} is not an http:// or https:// URL")
            if url and (urlsplit(url).username or urlsplit(url).password):
                raise ConfigError(f"{name} must not hold a user or password; use the server's USER and PASSWORD "
                                  "(or TOKEN) settings")
        if self.PATH_MAPPING:
            for pair in self.PATH_MAPPING.split(";"):
                if pair.strip() and "=" not in pair:
                    raise ConfigError(f"PATH_MAPPING entry {pair!r} is not 'server_prefix=local_prefix'")
        for low, high in (("NUM_CLUSTERS_MIN", "NUM_CLUSTERS_MAX"), ("DBSCAN_EPS_MIN", "DBSCAN_EPS_MAX"),
                          ("DBSCAN_MIN_SAMPLES_MIN", "DBSCAN_MIN_SAMPLES_MAX"),
                          ("GMM_N_COMPONENTS_MIN", "GMM_N_COMPONENTS_MAX"),
                          ("SPECTRAL_N_CLUSTERS_MIN", "SPECTRAL_N_CLUSTERS_MAX"),
                          ("PCA_COMPONENTS_MIN", "PCA_COMPONENTS_MAX")):
            if getattr(self, low) > getattr(self, high):
                raise ConfigError(f"{low}={getattr(self, low)} is larger than {high}={getattr(self, high)}")
        for name in ("LN_MOOD_DIVERSITY_STATS", "LN_MOOD_PURITY_STATS", "LN_MOOD_DIVERSITY_EMBEDING_STATS",
                     "LN_MOOD_PURITY_EMBEDING_STATS", "LN_OTHER_FEATURES_DIVERSITY_STATS",
                     "LN_OTHER_FEATURES_PURITY_STATS"):
            parse_mean_std(name, getattr(self, name))
        for name in ("OLLAMA_SERVER_URL", "OPENAI_SERVER_URL", "GEMINI_SERVER_URL", "MISTRAL_SERVER_URL"):
            url = getattr(self, name)
            if url and urlsplit(url).scheme not in ("http", "https"):
                raise ConfigError(f"{name}={redact_url(url)!r} is not an http:// or https:// URL")
        try:
            zoneinfo.ZoneInfo(self.CRON_DEFAULT_TIMEZONE)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"CRON_DEFAULT_TIMEZONE={self.CRON_DEFAULT_TIMEZONE!r} is not a known time zone "
                              "(an IANA name such as UTC or Europe/Rome)") from None
        if self.REDIS_URL and urlsplit(self.REDIS_URL).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"REDIS_URL={redact_url(self.REDIS_URL)!r} is not a redis:// URL")

    # --- derived values ---------------------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        """The URL to connect with, built from POSTGRES_* parts when DATABASE_URL is empty ('' if neither)."""
        if self.DATABASE_URL:
            return self.DATABASE_URL
        if self.POSTGRES_HOST:
            auth = quote(self.POSTGRES_USER, safe="")
            if self.POSTGRES_PASSWORD:
                auth += ":" + quote(self.POSTGRES_PASSWORD, safe="")
            return f"postgresql://{auth}@{self.POSTGRES_HOST}:{self.POSTGRES_PORT}/{quote(self.POSTGRES_DB)}"
        return ""

    @property
    def needs_embedded_postgres(self) -> bool:
        return not self.database_url

    @property
    def needs_embedded_redis(self) -> bool:
        return not self.REDIS_URL

    @property
    def cover_dir(self) -> Path:
        """Where the web process keeps cover art it resized (bounded by COVER_CACHE_MB)."""
        return Path(self.DATA_DIR) / "covers"

    @property
    def index_dir(self) -> Path:
        """Where the web process and the workers keep the similarity index's file (beside its PostgreSQL copy)."""
        return Path(self.DATA_DIR) / "index"

    @property
    def playlist_dir(self) -> Path:
        return Path(self.PLAYLIST_DIR) if self.PLAYLIST_DIR else Path(self.DATA_DIR) / "playlists"

    @property
    def path_mapping(self) -> list[tuple[str, str]]:
        """(server prefix, local prefix) pairs, longest server prefix first."""
        pairs = [tuple(p.split("=", 1)) for p in self.PATH_MAPPING.split(";") if p.strip()]
        return sorted(((a.strip(), b.strip()) for a, b in pairs), key=lambda ab: -len(ab[0]))

    @property
    def exposed(self) -> bool:
        """Whether the web server listens beyond this machine (then it fails closed until a password exists)."""
        return self.HOST not in ("127.0.0.1", "localhost", "::1")

    @property
    def trusted_hosts(self) -> list[str] | None:
        """Host names to accept, or None for any (a server on 0.0.0.0 with TRUSTED_HOSTS unset)."""
        if self.TRUSTED_HOSTS:
            return [h.strip() for h in self.TRUSTED_HOSTS.split(",") if h.strip()]
        if self.HOST in ("127.0.0.1", "localhost", "::1"):
            return ["localhost", "127.0.0.1", "[::1]", "::1"]
        return None

    @property
    def stratified_genres(self) -> list[str]:
        return [name.strip() for name in self.STRATIFIED_GENRES.split(",") if name.strip()]

    def normalisation_stats(self, name: str) -> tuple[float, float]:
        """(mean, std) of one LN_*_STATS setting."""
        return parse_mean_std(name, getattr(self, name))

    @property
    def music_libraries(self) -> list[str]:
        return [name.strip() for name in self.MUSIC_LIBRARIES.split(",") if name.strip()]

    @property
    def auth_enabled_by_env(self) -> bool:
        return bool(self.ADMIN_PASSWORD)

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, shown value, description) for every setting; secrets appear as 'set' / 'not set'."""
        rows = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["secret"]:
                shown = "set" if value else "not set"
            else:
                shown = str(value)
            rows.append((f.name, shown, f.metadata["doc"]))
        return rows

    def __repr__(self) -> str:
        return "Config(" + ", ".join(f"{name}={shown!r}" for name, shown, _ in self.describe()) + ")"


def setting_default(name: str) -> Any:
    """The default of setting `name` (what it is when the environment does not set it)."""
    return _FIELDS[name].default


def setting_range(name: str) -> tuple[float | None, float | None]:
    """(minimum, maximum) a numeric setting accepts; None where it is open."""
    metadata = _FIELDS[name].metadata
    return metadata["minimum"], metadata["maximum"]


def setting_choices(name: str) -> tuple[str, ...]:
    """The values a choice setting accepts (empty for a free one)."""
    return tuple(_FIELDS[name].metadata["choices"])


def settings_table_markdown() -> str:
    """The README settings table: name, default, description."""
    lines = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    for f in dataclasses.fields(Config):
        default = f.default
        if f.name == "NUM_WORKERS":
            default = "CPU cores"
        elif f.name == "DATA_DIR":
            default = "./var"
        elif f.name == "MUSIC_DIR":
            default = "~/Music"
        elif isinstance(default, str) and default.startswith(str(PROJECT_ROOT) + "/"):
            default = "./" + default[len(str(PROJECT_ROOT)) + 1:]  # the checkout's folder, wherever it is
        shown = "" if default == "" else f"`{default}`"
        choices = f.metadata["choices"]
        doc = f.metadata["doc"] + (f" ({' / '.join(choices)})" if choices else "")
        lines.append(f"| `{f.name}` | {shown} | {doc} |")
    return "\n".join(lines)


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def redact_url(url: str) -> str:
    """The URL with any password replaced by '***' (safe for logs and pages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc[-1]}"))


def parse_mean_std(name: str, text: str) -> tuple[float, float]:
    """(mean, std) of a 'mean,std' setting; ConfigError naming `name` otherwise."""
    try:
        mean, std = (float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not 'mean,std' (two numbers)") from None
    if not std > 0:
        raise ConfigError(f"{name}={text!r}: the std must be above 0")
    return mean, std


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(raw: object) -> bool | None:
    """A boolean from a setting or request value: True/False themselves, or 1/true/yes/on and 0/false/no/off in any
    case around blanks; None for anything else (the caller says what it expected)."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


class NumberError(ValueError):
    """A setting or request value that is not the number asked for; `expected` says what was asked ("an integer",
    "at least 1", …), for the caller's own message naming the value."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def parse_int(raw: object, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer from a setting or request value: an int, a float without a fraction, or text that int() reads
    (blanks around it allowed). NumberError expecting "an integer" for anything else (True and False included),
    "at least `minimum`" or "at most `maximum`" when out of bounds."""
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise NumberError("an integer")
    try:
        value = int(raw)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise NumberError("an integer") from None
    if minimum is not None and value < minimum:
        raise NumberError(f"at least {minimum}")
    if maximum is not None and value > maximum:
        raise NumberError(f"at most {maximum}")
    return value


def parse_number(raw: object, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """A finite number from a setting or request value: an int or float, or text that float() reads. NumberError
    expecting "a number" for anything else (True and False included), "a finite number" for NaN and infinities,
    "between `minimum` and `maximum`" when out of bounds."""
    if isinstance(raw, bool):
        raise NumberError("a number")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise NumberError("a number") from None
    if not math.isfinite(value):
        raise NumberError("a finite number")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise NumberError(f"between {minimum} and {maximum}")
    return value


def _parse(f: dataclasses.Field[Any], kind: Any, raw: Any) -> Any:
    name = f.name
    shown = "<hidden>" if f.metadata["secret"] else repr(raw)
    if kind is bool:
        flag = False if isinstance(raw, str) and not raw.strip() else parse_bool(raw)
        if flag is None:
            raise ConfigError(f"{name}={shown} is not a boolean (use true/false)")
        return flag
    if kind in (int, float):
        if isinstance(raw, bool):
            raise ConfigError(f"{name}={shown} is not a number")
        try:
            number = parse_int(raw) if kind is int else parse_number(raw)
        except NumberError as exc:
            raise ConfigError(f"{name}={shown} is not {exc.expected}") from None
        minimum, maximum = f.metadata["minimum"], f.metadata["maximum"]
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name}={shown} is below the minimum {minimum}")
        if maximum is not None and number > maximum:
            raise ConfigError(f"{name}={shown} is above the maximum {maximum}")
        return number
    if not isinstance(raw, str):
        raise ConfigError(f"{name}={shown} is not a string")
    value = raw.strip()
    choices = f.metadata["choices"]
    if choices:
        value = value.upper() if name == "LOG_LEVEL" else value.lower()
        if value not in choices:
            raise ConfigError(f"{name}={shown} is not one of {', '.join(choices)}")
    return value


_installed: Config | None = None


def install(config: Config) -> None:
    """Make `config` the process-wide configuration returned by get_config() (entry points and tests)."""
    global _installed
    _installed = config


def get_config() -> Config:
    """The process-wide configuration: the installed one, else read from the environment once."""
    global _installed
    if _installed is None:
        _installed = Config.from_env()
    return _installed


def load_or_exit() -> Config:
    """For process entry points: the config, or a one-line message on stderr and exit status 2."""
    try:
        return Config.from_env()
    except ConfigError as exc:
        print(f"AudioMuse configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        print(settings_table_markdown())
    else:
        for row in load_or_exit().describe():
            print(f"{row[0]:32} {row[1]}")
