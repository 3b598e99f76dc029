"""Clustering jobs: a main task that runs the evolutionary search as batch child jobs, then publishes playlists.

The main task (`main_clustering`, queue high) snapshots the analyzed library into Redis, splits CLUSTERING_RUNS
into batches of ITERATIONS_PER_BATCH_JOB runs and keeps at most MAX_CONCURRENT_BATCH_JOBS of them queued or running
on the worker fleet. Batch i is given the elites of batches 0..i-c (c = the concurrency) and no others, so the
search is the same for the same seed whatever order the batches finish in. A batch running longer than
CLUSTERING_BATCH_TIMEOUT_MINUTES is failed and the search goes on without it; CLUSTERING_MAX_FAILED_BATCHES failures
end the task. The best run is then turned into playlists, named, stored and pushed to the media server.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import signal
import time
from typing import Any

from audio.moods import MOODS
from audio.musicnn import MODEL_NAME, MSD_TAGS
from clustering.assemble import AssemblySettings, PlaylistDraft, assemble_playlists
from clustering.data import ClusteringError, LibraryData, library_from_rows
from clustering.fitness import FitnessWeights, NormalisationStats
from clustering.naming import unique_names
from clustering.params import Mutation, SearchSpace
from clustering.request import MIN_TRACKS, ClusteringRequest
from clustering.search import PreparedLibrary, RunResult, SearchSettings, run_batch, run_seed
from config import Config
from db import playlists as playlist_store
from db import task_status as task_store
from db import tracks as track_store
from db.app_settings import effective_config
from infra.connections import get_redis
from mediaserver import AUTOMATIC_SUFFIX, MediaServerError, delete_automatic_playlists, get_media_server
from tasks.hostid import host_identity
from tasks.progress import TaskContext, task
from tasks.queues import MAIN_CLUSTERING, cancel_task
from tasks.reconcile import process_alive

log = logging.getLogger(__name__)

MAIN_TASK_TYPE = MAIN_CLUSTERING.task_type
BATCH_TASK_TYPE = "clustering_batch"
PLAYLIST_SOURCE = "clustering"
SNAPSHOT_TTL_SECONDS = 3600  # refreshed while the task runs, so a crashed task leaves nothing for long


# A worker keeps the prepared library of the task it last served: batches of one task reuse it.
_prepared: tuple[str, PreparedLibrary] | None = None


def snapshot_key(task_id: str) -> str:
    return f"audiomuse:clustering:library:{task_id}"


def search_settings(request: ClusteringRequest, config: Config) -> SearchSettings:
    embeddings = request.enable_clustering_embeddings
    space = SearchSpace(
        algorithm=request.clustering_method, clusters=(request.num_clusters_min, request.num_clusters_max),
        eps=(request.dbscan_eps_min, request.dbscan_eps_max),
        min_samples=(request.dbscan_min_samples_min, request.dbscan_min_samples_max),
        gmm_components=(request.gmm_n_components_min, request.gmm_n_components_max),
        covariance_type=request.gmm_covariance_type,
        spectral_clusters=(request.spectral_n_clusters_min, request.spectral_n_clusters_max),
        spectral_neighbors=request.spectral_n_neighbors,
        pca_components=(request.pca_components_min, request.pca_components_max))
    weights = FitnessWeights(
        diversity=request.score_weight_diversity, purity=request.score_weight_purity,
        other_feature_diversity=request.score_weight_other_feature_diversity,
        other_feature_purity=request.score_weight_other_feature_purity,
        silhouette=request.score_weight_silhouette, davies_bouldin=request.score_weight_davies_bouldin,
        calinski_harabasz=request.score_weight_calinski_harabasz)
    stats = NormalisationStats(
        mood_diversity=config.normalisation_stats(
            "LN_MOOD_DIVERSITY_EMBEDING_STATS" if embeddings else "LN_MOOD_DIVERSITY_STATS"),
        mood_purity=config.normalisation_stats(
            "LN_MOOD_PURITY_EMBEDING_STATS" if embeddings else "LN_MOOD_PURITY_STATS"),
        other_diversity=config.normalisation_stats("LN_OTHER_FEATURES_DIVERSITY_STATS"),
        other_purity=config.normalisation_stats("LN_OTHER_FEATURES_PURITY_STATS"))
    return SearchSettings(
        space=space, weights=weights, stats=stats, use_embeddings=embeddings, total_runs=request.clustering_runs,
        exploitation_start_fraction=config.EXPLOITATION_START_FRACTION,
        exploitation_probability=config.EXPLOITATION_PROBABILITY_CONFIG,
        mutation=Mutation(int_delta=config.MUTATION_INT_ABS_DELTA, float_delta=config.MUTATION_FLOAT_ABS_DELTA,
                          coord_fraction=config.MUTATION_KMEANS_COORD_FRACTION),
        genres=tuple(config.stratified_genres), genre_minimum=config.MIN_SONGS_PER_GENRE_FOR_STRATIFICATION,
        genre_percentile=config.STRATIFIED_SAMPLING_TARGET_PERCENTILE,
        sample_change_fraction=config.SAMPLING_PERCENTAGE_CHANGE_PER_RUN,
        top_k_moods=config.TOP_K_MOODS_FOR_PURITY_CALCULATION,
        other_feature_threshold=config.OTHER_FEATURE_PREDOMINANCE_THRESHOLD_FOR_PURITY)


def load_library(ctx_db: Any) -> LibraryData:
    rows, embeddings = track_store.clustering_rows(ctx_db, MODEL_NAME)
    return library_from_rows(rows, embeddings, tag_names=MSD_TAGS, mood_names=MOODS)


def _library_for(ctx: TaskContext, parent_task_id: str, settings: SearchSettings) -> PreparedLibrary:
    global _prepared
    key = f"{parent_task_id}:{settings.use_embeddings}:{settings.genres}"
    if _prepared is None or _prepared[0] != key:
        blob = get_redis(ctx.config).get(snapshot_key(parent_task_id))
        if not isinstance(blob, bytes):
            raise ClusteringError("the library snapshot of this clustering task is gone from Redis")
        _prepared = (key, PreparedLibrary(LibraryData.from_bytes(blob), settings))
    return _prepared[1]


def elites_key(task_id: str, batch_index: int) -> str:
    return f"audiomuse:clustering:elites:{task_id}:{batch_index}"


@task(BATCH_TASK_TYPE)
def run_clustering_batch_task(ctx: TaskContext, clustering_task_id: str, batch_index: int, batch_seed: int,
                              first_run: int, n_runs: int, settings: dict[str, Any]) -> dict[str, Any]:
    search = SearchSettings.from_dict(settings)
    library = _library_for(ctx, clustering_task_id, search)
    # Elites (with K-Means centres) travel through Redis, not the job's arguments, to keep task rows small.
    raw = get_redis(ctx.config).get(elites_key(clustering_task_id, batch_index))
    if not isinstance(raw, bytes):
        raise ClusteringError(f"the elites of batch {batch_index} are gone from Redis")
    elites = json.loads(raw)
    ctx.report(f"Batch {batch_index}: runs {first_run + 1}-{first_run + n_runs}", phase="runs", current=0,
               total=n_runs)
    last_report = time.monotonic()

    def between_runs(done: int) -> None:
        nonlocal last_report
        ctx.check_cancelled()
        if time.monotonic() - last_report >= 1.0 or done == n_runs:
            last_report = time.monotonic()
            ctx.report(current=done, total=n_runs)

    outcome = run_batch(library, search, batch_seed=batch_seed, n_runs=n_runs, first_run=first_run, elites=elites,
                        between_runs=between_runs)
    return {"batch_index": batch_index, "best": outcome.best.as_dict() if outcome.best else None,
            "scores": [round(s, 4) if math.isfinite(s) else None for s in outcome.scores],
            "invalid_runs": outcome.invalid_runs, "errors": outcome.errors}


class _Search:
    """The main task's bookkeeping of batches, elites and progress."""

    def __init__(self, ctx: TaskContext, request: ClusteringRequest, settings: SearchSettings, seed: int) -> None:
        config = ctx.config
        self.ctx, self.request, self.settings, self.seed = ctx, request, settings, seed
        self.per_batch = config.ITERATIONS_PER_BATCH_JOB
        self.n_batches = math.ceil(request.clustering_runs / self.per_batch)
        self.concurrency = config.MAX_CONCURRENT_BATCH_JOBS
        self.timeout = config.CLUSTERING_BATCH_TIMEOUT_MINUTES * 60
        self.redis = get_redis(config)
        self.batch_bests: dict[int, RunResult] = {}   # batch index → its best run (successful batches)
        self.best_run: RunResult | None = None
        self.best_index = -1
        self.ended: set[int] = set()                   # batches that finished, failed or timed out
        self.in_flight: dict[str, int] = {}            # child task id → batch index
        self.live_runs: dict[str, int] = {}
        self.failed = 0
        self.invalid_runs = 0
        self.failures: list[str] = []
        self.best_history: list[dict[str, Any]] = []
        self.started = time.monotonic()

    def elites_for(self, index: int) -> list[dict[str, Any]]:
        """The TOP_N_ELITES best runs of batches 0..index-concurrency (a fixed set, hence reproducible)."""
        runs = sorted((r for i, r in self.batch_bests.items() if i <= index - self.concurrency),
                      key=lambda r: -r.score)
        return [{"score": r.score, "params": r.params.as_dict(), "seed": r.seed, "sample": {"n": 0, "bits": ""},
                 "centroids": r.centroids} for r in runs[:self.ctx.config.TOP_N_ELITES]]

    def can_launch(self, index: int) -> bool:
        return len(self.in_flight) < self.concurrency and all(
            i in self.ended for i in range(max(0, index - self.concurrency + 1)))

    def launch(self, index: int) -> None:
        first = index * self.per_batch
        n_runs = min(self.per_batch, self.request.clustering_runs - first)
        self.redis.set(elites_key(self.ctx.task_id, index), json.dumps(self.elites_for(index)),
                       ex=SNAPSHOT_TTL_SECONDS + int(self.timeout))
        child = self.ctx.spawn_child(
            run_clustering_batch_task, job_timeout=self.timeout + 60, clustering_task_id=self.ctx.task_id,
            batch_index=index, batch_seed=run_seed(self.seed, index), first_run=first, n_runs=n_runs,
            settings=self.settings.as_dict())
        self.in_flight[child] = index

    def poll(self) -> None:
        rows = task_store.children_state(self.ctx.db, self.ctx.task_id, list(self.in_flight))
        for row in rows:
            child, index = row["task_id"], self.in_flight[row["task_id"]]
            if row["finished_at"] is not None:
                self._end(child, index)
                if row["status"] == task_store.SUCCESS and row["result"]:
                    self._accept(index, row["result"])
                else:
                    self._fail(index, f"batch {index} {row['status'].lower()}: {row['message']}")
            elif row["started_at"] is not None and float(row["running_seconds"] or 0) > self.timeout:
                reason = f"timed out after {self.timeout / 60:g} min"
                # Kill first: a worker frozen inside a transaction holds its task row's lock, and fail_task would
                # wait on that lock for ever; the killed connection releases it.
                _stop_worker(row)
                if not task_store.fail_task(self.ctx.db, child, reason):
                    continue  # it ended just now; the next poll collects it
                self._end(child, index)
                self._fail(index, f"batch {index} {reason}")
            else:
                self.live_runs[child] = int(row["current_item"] or 0)

    def _end(self, child: str, index: int) -> None:
        del self.in_flight[child]
        self.live_runs.pop(child, None)
        self.ended.add(index)
        self.redis.delete(elites_key(self.ctx.task_id, index))

    def _accept(self, index: int, result: dict[str, Any]) -> None:
        self.invalid_runs += int(result.get("invalid_runs", 0))
        if not result.get("best"):
            return
        run = RunResult.from_dict(result["best"])
        self.batch_bests[index] = run
        # ties go to the lower batch index, so the outcome does not depend on which batch ended first
        if self.best_run is None or (run.score, -index) > (self.best_run.score, -self.best_index):
            improved = self.best_run is None or run.score > self.best_run.score
            self.best_run, self.best_index = run, index
            if improved:
                self.best_history.append({"runs_done": self.runs_done(), "score": round(run.score, 4),
                                          "seconds": round(time.monotonic() - self.started, 1)})
                self.ctx.append_log(f"New best score {run.score:.3f} after {self.runs_done()} runs "
                                    f"({run.params.describe()})")

    def _fail(self, index: int, reason: str) -> None:
        self.failed += 1
        self.failures.append(reason)
        self.ctx.append_log(reason)
        if self.failed >= self.ctx.config.CLUSTERING_MAX_FAILED_BATCHES:
            raise ClusteringError(f"{self.failed} batches failed (CLUSTERING_MAX_FAILED_BATCHES="
                                  f"{self.ctx.config.CLUSTERING_MAX_FAILED_BATCHES}); last: {reason}")

    def stop_all(self) -> None:
        """Revoke the batches still queued or running (the task is ending without them)."""
        for child in list(self.in_flight):
            cancel_task(child, config=self.ctx.config)
        for index in range(self.n_batches):
            self.redis.delete(elites_key(self.ctx.task_id, index))

    def runs_done(self) -> int:
        finished = sum(min(self.per_batch, self.request.clustering_runs - i * self.per_batch) for i in self.ended)
        return finished + sum(self.live_runs.values())

    def report(self) -> None:
        best_text = f"{self.best_run.score:.3f}" if self.best_run else "none yet"
        done = self.runs_done()
        self.ctx.report(f"Progress: {done}/{self.request.clustering_runs} runs. Active batches: "
                        f"{len(self.in_flight)}. Best score: {best_text}", phase="search",
                        current=done, total=self.request.clustering_runs,
                        progress=90.0 * done / self.request.clustering_runs, log=False)


def _stop_worker(row: dict[str, Any]) -> None:
    """Kill the worker process of a timed-out batch when it runs on this host: a batch stuck in native code
    (BLAS, ARPACK) never reaches a cancellation check, and RQ's own timeout cannot interrupt it either.
    supervisord starts a fresh worker; elsewhere RQ's job timeout is the backstop."""
    if row.get("worker_host") != host_identity() or not row.get("worker_pid"):
        return
    if not process_alive(int(row["worker_pid"]), row.get("worker_proc_started")):
        return  # gone already, or the pid now belongs to another process
    try:
        os.kill(int(row["worker_pid"]), signal.SIGKILL)
        log.warning("killed worker pid %s: its batch %s timed out", row["worker_pid"], row["task_id"])
    except ProcessLookupError:
        pass


@task(MAIN_TASK_TYPE)
def run_clustering_task(ctx: TaskContext, **params: Any) -> dict[str, Any]:
    config = ctx.config
    request = ClusteringRequest().with_values(params)
    seed = request.seed or secrets.randbelow(2**31 - 2) + 1
    settings = search_settings(request, config)
    ctx.report("Loading the analyzed library", phase="loading", progress=0)
    data = load_library(ctx.db)
    if len(data) < MIN_TRACKS:
        raise ClusteringError(f"only {len(data)} analyzed tracks: run an analysis first (clustering needs at "
                              f"least {MIN_TRACKS})")
    redis = get_redis(config)
    snapshot = data.to_bytes()
    redis.set(snapshot_key(ctx.task_id), snapshot, ex=SNAPSHOT_TTL_SECONDS)
    search = _Search(ctx, request, settings, seed)
    try:
        ctx.report(f"{len(data)} tracks; {request.clustering_runs} runs of {request.clustering_method} in "
                   f"{search.n_batches} batches (seed {seed})", phase="search")
        _search_loop(ctx, search, snapshot)
    except BaseException:
        search.stop_all()  # cancelled, failed or killed by RQ: its batches must not run on for nothing
        redis.delete(snapshot_key(ctx.task_id))
        raise
    redis.delete(snapshot_key(ctx.task_id))
    best = search.best_run
    if best is None:
        raise ClusteringError(f"none of the {request.clustering_runs} runs found two or more clusters "
                              f"({search.invalid_runs} invalid); widen the parameter ranges or pick another algorithm")
    ctx.report(f"Best score {best.score:.3f} ({best.params.describe()}); building playlists", phase="playlists",
               progress=92)
    drafts = assemble_playlists(PreparedLibrary(data, settings), best, AssemblySettings(
        max_distance=request.max_distance, max_songs=request.max_songs_per_cluster,
        max_per_artist=request.max_songs_per_artist, min_size=request.min_playlist_size,
        top_n=request.top_n_playlists, duplicate_cosine=config.DUPLICATE_DISTANCE_THRESHOLD_COSINE,
        duplicate_lookback=config.DUPLICATE_DISTANCE_CHECK_LOOKBACK, genres=settings.genres), seed=seed)
    if not drafts:
        raise ClusteringError(
            f"the best clustering gave no playlist of at least {request.min_playlist_size} songs; lower "
            "min_playlist_size or the number of clusters, or raise max_songs_per_artist")
    _name_with_ai(ctx, request, drafts)
    published = _store_and_publish(ctx, drafts)
    summary = {"seed": seed, "runs": request.clustering_runs, "batches": search.n_batches,
               "failed_batches": search.failed, "batch_failures": search.failures[:20],
               "invalid_runs": search.invalid_runs, "best_score": round(best.score, 4),
               "best_params": best.params.as_dict(), "best_description": best.params.describe(),
               "best_metrics": best.metrics, "best_history": search.best_history,
               "elapsed_seconds": round(time.monotonic() - search.started, 1),
               # everything besides the request that the result depends on, so a run can be repeated
               "search_settings": {**settings.as_dict(), "iterations_per_batch_job": search.per_batch,
                                   "max_concurrent_batch_jobs": search.concurrency,
                                   "top_n_elites": config.TOP_N_ELITES},
               "playlists": [{"name": d.name + AUTOMATIC_SUFFIX, "size": len(d.item_ids),
                              "top_tags": d.top_tags} for d in drafts], "published": published}
    ctx.report(f"{len(drafts)} playlists created; best score {best.score:.3f} ({best.params.describe()})",
               progress=100)
    return summary


def _search_loop(ctx: TaskContext, search: _Search, snapshot: bytes) -> None:
    key = snapshot_key(ctx.task_id)
    next_batch = 0
    refreshed = time.monotonic()
    while next_batch < search.n_batches or search.in_flight:
        ctx.check_cancelled(force=True)
        if time.monotonic() - refreshed > 60:
            if not search.redis.expire(key, SNAPSHOT_TTL_SECONDS):  # Redis restarted or evicted it
                search.redis.set(key, snapshot, ex=SNAPSHOT_TTL_SECONDS)
            refreshed = time.monotonic()
        while next_batch < search.n_batches and search.can_launch(next_batch):
            search.launch(next_batch)
            next_batch += 1
        time.sleep(ctx.config.CLUSTERING_BATCH_CHECK_INTERVAL_SECONDS)
        search.poll()
        search.report()


def _name_with_ai(ctx: TaskContext, request: ClusteringRequest, drafts: list[PlaylistDraft]) -> None:
    if request.ai_model_provider == "none":
        return
    import ai

    config = effective_config(ctx.config, ctx.db).with_overrides(AI_MODEL_PROVIDER=request.ai_model_provider)
    taken: list[str] = []
    named = 0
    for draft in drafts:
        ctx.check_cancelled()
        name, how = ai.name_playlist(config, top_tags=draft.top_tags, moods=draft.top_moods,
                                     tempo_range=draft.tempo_range, sample_songs=draft.sample_songs,
                                     taken_names=taken, fallback=draft.feature_name)
        if how == "unreachable":
            # a provider that is down or hangs would cost the full timeout for every playlist
            ctx.append_log(f"AI provider {request.ai_model_provider} unreachable; feature names for the rest")
            break
        draft.name = name  # name_playlist already refuses a taken name; unique_names below settles the rest
        taken.append(name)
        named += how == "ai"
    for draft, unique in zip(drafts, unique_names([d.name for d in drafts]), strict=True):
        draft.name = unique  # an AI name may equal another playlist's feature name
    ctx.report(f"AI ({request.ai_model_provider}) named {named} of {len(drafts)} playlists; the others keep their "
               "feature names")


def _store_and_publish(ctx: TaskContext, drafts: list[PlaylistDraft]) -> dict[str, Any]:
    """Save the playlists in PostgreSQL first (nothing is lost if the media server fails), then replace the old
    _automatic playlists on the media server, recording each one's id as it is created."""
    names = [d.name + AUTOMATIC_SUFFIX for d in drafts]
    playlist_store.replace_playlists(ctx.db, source=PLAYLIST_SOURCE,
                                     playlists=[(n, d.item_ids, None) for n, d in zip(names, drafts, strict=True)])
    ctx.report(f"Saved {len(drafts)} playlists; publishing to the media server", phase="publish", progress=95)
    config = effective_config(ctx.config, ctx.db)
    created = 0
    try:
        server = get_media_server(config)
        deleted = delete_automatic_playlists(server)
        for name, draft in zip(names, drafts, strict=True):
            playlist_id = server.create_playlist(name, draft.item_ids)
            playlist_store.set_mediaserver_ids(ctx.db, source=PLAYLIST_SOURCE, ids={name: playlist_id})
            created += 1
    except (MediaServerError, OSError) as exc:
        raise MediaServerError(f"the playlists are saved in AudioMuse but could not be published to the "
                               f"{config.MEDIASERVER_TYPE} server ({created} of {len(drafts)} created): {exc}") from exc
    return {"server": server.kind, "deleted": len(deleted), "created": created}


assert MAIN_CLUSTERING.path == f"{__name__}.{run_clustering_task.__name__}", "tasks.queues.MAIN_CLUSTERING is stale"
