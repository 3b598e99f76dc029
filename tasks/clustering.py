"""Clustering jobs: a main task that runs the evolutionary search as batch child jobs, then publishes playlists.

The main task (`main_clustering`, queue high) snapshots the analyzed library into Redis, splits CLUSTERING_RUNS
into batches of ITERATIONS_PER_BATCH_JOB runs and keeps at most MAX_CONCURRENT_BATCH_JOBS of them queued or running
on the worker fleet. Batch i is given the elites of batches 0..i-c (c = the concurrency) and no others, so the
search is the same for the same seed whatever order the batches finish in. A batch running longer than
CLUSTERING_BATCH_TIMEOUT_MINUTES is failed and the search goes on without it; CLUSTERING_MAX_FAILED_BATCHES failures
end the task. The best run is then turned into playlists, named, stored and pushed to the media server.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import secrets
import signal
import time
from dataclasses import replace
from typing import Any

import numpy as np

from audio.moods import MOODS
from audio.musicnn import MODEL_NAME, MSD_TAGS
from clustering.assemble import PlaylistDraft
from clustering.data import ClusteringError, LibraryData, library_from_rows
from clustering.fitness import quality
from clustering.orchestration import (
    BatchPlan,
    SearchBook,
    assembly_settings,
    calibrate_stats,
    calibration_line,
    discover_parameters,
    name_drafts,
    search_settings,
)
from clustering.relax import assemble_relaxed, stand_in_run
from clustering.request import MIN_TRACKS, ClusteringRequest, fit_to_library
from clustering.search import PreparedLibrary, SearchSettings, run_batch, run_seed
from db import task_status as task_store
from db import tracks as track_store
from db.app_settings import effective_config
from discovery.exclusions import Exclusions
from mediaserver import AUTOMATIC_SUFFIX, MediaServerError
from services import automatic_playlists as automatic
from tasks.catalog import CLUSTERING
from tasks.hostid import host_identity
from tasks.progress import TaskContext, task
from tasks.queues import cancel_task
from tasks.reconcile import process_alive

log = logging.getLogger(__name__)

MAIN_TASK_TYPE = CLUSTERING.task_type
BATCH_TASK_TYPE = "clustering_batch"
SNAPSHOT_TTL_SECONDS = 3600  # refreshed while the task runs, so a crashed task leaves nothing for long
SNAPSHOT_PART_BYTES = 256 * 2**20


# A worker keeps the prepared library of the task it last served: batches of one task reuse it.
_prepared: tuple[str, PreparedLibrary] | None = None


def snapshot_key(task_id: str) -> str:
    """The key of the snapshot's part count; part i is at `snapshot_key(task_id):i`."""
    return f"audiomuse:clustering:library:{task_id}"


def _part_keys(task_id: str, parts: int) -> list[str]:
    return [f"{snapshot_key(task_id)}:{i}" for i in range(parts)]


def store_snapshot(redis: Any, task_id: str, snapshot: bytes) -> None:
    """The library snapshot in parts of at most SNAPSHOT_PART_BYTES (a Redis string holds 512 MB at most; with
    the embeddings a million tracks are ~1 GB), each expiring after SNAPSHOT_TTL_SECONDS."""
    view = memoryview(snapshot)
    parts = [view[i:i + SNAPSHOT_PART_BYTES] for i in range(0, len(snapshot), SNAPSHOT_PART_BYTES)] or [view]
    for key, part in zip(_part_keys(task_id, len(parts)), parts, strict=True):
        redis.set(key, part, ex=SNAPSHOT_TTL_SECONDS)
    redis.set(snapshot_key(task_id), len(parts), ex=SNAPSHOT_TTL_SECONDS)


def load_snapshot(redis: Any, task_id: str) -> bytes | None:
    """The snapshot store_snapshot kept, or None when any part of it is gone."""
    count = redis.get(snapshot_key(task_id))
    if count is None:
        return None
    parts = [redis.get(key) for key in _part_keys(task_id, int(count))]
    return b"".join(parts) if all(isinstance(part, bytes) for part in parts) else None


def _keep_snapshot(redis: Any, task_id: str) -> bool:
    """Renew the snapshot's expiry; False when some part of it is gone (Redis restarted or evicted it)."""
    count = redis.get(snapshot_key(task_id))
    keys = [snapshot_key(task_id)] + (_part_keys(task_id, int(count)) if count is not None else [])
    return count is not None and all([bool(redis.expire(key, SNAPSHOT_TTL_SECONDS)) for key in keys])


def drop_snapshot(redis: Any, task_id: str) -> None:
    count = redis.get(snapshot_key(task_id))
    redis.delete(snapshot_key(task_id), *(_part_keys(task_id, int(count)) if count is not None else []))


def load_library(ctx_db: Any, exclusions: Exclusions | None = None) -> LibraryData:
    """The analyzed library the search clusters: every track but those `exclusions` (the saved blocklists and
    scope) leave out, so no playlist can hold one."""
    with track_store.clustering_rows(ctx_db, MODEL_NAME, exclusions=exclusions) as (count, rows):
        return library_from_rows(rows, count=count, tag_names=MSD_TAGS, mood_names=MOODS)


def _library_for(ctx: TaskContext, parent_task_id: str, settings: SearchSettings) -> PreparedLibrary:
    global _prepared
    key = f"{parent_task_id}:{settings.use_embeddings}:{settings.genres}"
    if _prepared is None or _prepared[0] != key:
        _prepared = None  # the previous task's library goes before this one is read
        blob = load_snapshot(ctx.redis, parent_task_id)
        if blob is None:
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
    raw = ctx.redis.get(elites_key(clustering_task_id, batch_index))
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


class _Batches:
    """The main task's batch jobs: launching them (elites through Redis), polling their rows, stopping them."""

    def __init__(self, ctx: TaskContext, book: SearchBook, settings: SearchSettings, seed: int, *,
                 timeout_minutes: float) -> None:
        self.ctx, self.book, self.settings, self.seed = ctx, book, settings, seed
        self.plan = book.plan
        self.timeout = timeout_minutes * 60
        self.redis = ctx.redis
        self.in_flight: dict[str, int] = {}  # child task id → batch index

    def launch(self, index: int) -> None:
        self.redis.set(elites_key(self.ctx.task_id, index), json.dumps(self.book.elites_for(index)),
                       ex=SNAPSHOT_TTL_SECONDS + int(self.timeout))
        child = self.ctx.spawn_child(
            run_clustering_batch_task, job_timeout=self.timeout + 60, clustering_task_id=self.ctx.task_id,
            batch_index=index, batch_seed=run_seed(self.seed, index), first_run=self.plan.first_run(index),
            n_runs=self.plan.runs_in(index), settings=self.settings.as_dict())
        self.in_flight[child] = index

    def poll(self) -> None:
        rows = task_store.children_state(self.ctx.db, self.ctx.task_id, list(self.in_flight))
        for row in rows:
            child, index = row["task_id"], self.in_flight[row["task_id"]]
            if row["finished_at"] is not None:
                self._forget(child, index)
                if row["status"] == task_store.SUCCESS and row["result"]:
                    self.book.succeeded(index, row["result"])
                else:
                    self._failed(index, f"batch {index} {row['status'].lower()}: {row['message']}")
            elif row["started_at"] is not None and float(row["running_seconds"] or 0) > self.timeout:
                reason = f"timed out after {self.timeout / 60:g} min"
                # Kill first: a worker frozen inside a transaction holds its task row's lock, and fail_task would
                # wait on that lock for ever; the killed connection releases it.
                _stop_worker(row)
                if not task_store.fail_task(self.ctx.db, child, reason):
                    continue  # it ended just now; the next poll collects it
                self._forget(child, index)
                self._failed(index, f"batch {index} {reason}")
            else:
                self.book.running(index, int(row["current_item"] or 0))
        for line in self.book.take_log():
            self.ctx.append_log(line)

    def _failed(self, index: int, reason: str) -> None:
        try:
            self.book.failed_batch(index, reason)
        finally:
            for line in self.book.take_log():
                self.ctx.append_log(line)

    def _forget(self, child: str, index: int) -> None:
        del self.in_flight[child]
        self.redis.delete(elites_key(self.ctx.task_id, index))

    def stop_all(self) -> None:
        """Revoke the batches still queued or running (the task is ending without them)."""
        for child in list(self.in_flight):
            cancel_task(child, db=self.ctx.db, connection=self.redis)
        for index in range(self.plan.n_batches):
            self.redis.delete(elites_key(self.ctx.task_id, index))

    def report(self) -> None:
        best = self.book.best_run
        done, total = self.book.runs_done(), self.plan.total_runs
        self.ctx.report(f"Progress: {done}/{total} runs. Active batches: {len(self.in_flight)}. Best score: "
                        f"{f'{best.score:.3f}' if best else 'none yet'}", phase="search", current=done, total=total,
                        progress=90.0 * done / total, log=False)


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
    request = ClusteringRequest().with_values(params)
    seed = request.seed or secrets.randbelow(2**31 - 2) + 1
    ctx.report("Loading the analyzed library", phase="loading", progress=0)
    exclusions = Exclusions.from_settings(effective_config(ctx.config, ctx.db))
    data = load_library(ctx.db, exclusions)
    if exclusions.active:
        ctx.append_log(f"Blocklists and scope in force: {len(data)} tracks may be clustered")
    if len(data) < MIN_TRACKS:
        raise ClusteringError(f"only {len(data)} analyzed tracks: run an analysis first (clustering needs at "
                              f"least {MIN_TRACKS})")
    request, adjustments = fit_to_library(request, len(data))  # the route did this too, for a smaller library
    settings = search_settings(request)
    for note in adjustments:
        ctx.append_log(note)
    prepared = PreparedLibrary(data, settings)
    discovery: list[str] = []
    if request.auto_parameter_discovery:
        ctx.report("Discovering parameters for this library (probe runs)", phase="discovering")
        request, discovery, probes = discover_parameters(request, prepared, seed=seed)
        settings = search_settings(request)
        ctx.append_log(f"Parameter discovery: {probes} probe runs; " + ("; ".join(discovery) or "ranges kept"))
    if request.clustering_calibration_runs:
        ctx.report(f"Calibrating on {request.clustering_calibration_runs} random runs of this library",
                   phase="calibrating")
        stats, calibrated = calibrate_stats(prepared, settings, runs=request.clustering_calibration_runs,
                                            seed=seed, fallback=settings.stats)
        settings = replace(settings, stats=stats)
        shown = ", ".join(f"{name.replace('_', ' ')} {mean:.3f} ± {std:.3f}"
                          for name, (mean, std) in vars(stats).items())
        line = calibration_line(request.clustering_calibration_runs, calibrated)
        ctx.append_log(f"{line} (log1p mean ± std: {shown})" if calibrated >= 5 else line)
    redis = ctx.redis
    # what a batch reads: the numbers, and the embeddings only when the runs cluster them
    snapshot = data.to_bytes(numbers_only=True, embeddings=settings.use_embeddings)
    store_snapshot(redis, ctx.task_id, snapshot)
    book = SearchBook(BatchPlan(request.clustering_runs, request.iterations_per_batch_job,
                                request.max_concurrent_batch_jobs),
                      top_n_elites=request.top_n_elites, max_failed_batches=request.clustering_max_failed_batches)
    batches = _Batches(ctx, book, settings, seed, timeout_minutes=request.clustering_batch_timeout_minutes)
    try:
        ctx.report(f"{len(data)} tracks; {request.clustering_runs} runs of {request.clustering_method} in "
                   f"{book.plan.n_batches} batches (seed {seed})", phase="search")
        _search_loop(ctx, batches, snapshot)
    except BaseException:
        batches.stop_all()  # cancelled, failed or killed by RQ: its batches must not run on for nothing
        drop_snapshot(redis, ctx.task_id)
        raise
    drop_snapshot(redis, ctx.task_id)
    best = book.best_run
    relaxed: list[str] = []
    if best is None:
        # no run found two clusters (DBSCAN finding only noise): a K-Means run stands in rather than no answer
        best = stand_in_run(prepared, prepared.sampler.initial(np.random.default_rng(seed)),
                            min_size=request.min_playlist_size, pca_components=request.pca_components_min, seed=seed)
        relaxed.append(f"none of the {request.clustering_runs} {request.clustering_method} runs found two or more "
                       f"clusters ({book.invalid_runs} invalid): {best.params.describe()} instead")
    ctx.report(f"Best score {best.score:.3f} ({best.params.describe()}); building playlists", phase="playlists",
               progress=92)
    assembled = assemble_relaxed(prepared, best, assembly_settings(request, settings), seed=seed)
    drafts = assembled.drafts
    relaxed += assembled.relaxed
    if relaxed:
        ctx.append_log("Relaxed to give an answer: " + "; ".join(relaxed))
    _name_with_ai(ctx, request, drafts)
    published = _store_and_publish(ctx, drafts)
    covered = len({item_id for d in drafts for item_id in d.item_ids})
    rated = quality(best.metrics, settings.weights)
    scores = sorted(book.valid_scores)
    median = scores[len(scores) // 2] if scores else None
    summary = {"seed": seed, "runs": request.clustering_runs, "batches": book.plan.n_batches,
               "quality": rated["quality"], "quality_parts": rated["parts"],
               "median_run_score": round(median, 4) if median is not None else None,
               "songs_covered": covered, "library_size": len(data), "adjustments": adjustments,
               "relaxed": relaxed, "auto_parameter_discovery": request.auto_parameter_discovery,
               "discovered": discovery, "calibration_runs": request.clustering_calibration_runs,
               "failed_batches": book.failed, "batch_failures": book.failures[:20],
               "num_playlists_created": published["created"] + published["updated"],
               "invalid_runs": book.invalid_runs, "best_score": round(best.score, 4),
               "best_params": best.params.as_dict(), "best_description": best.params.describe(),
               "best_metrics": best.metrics, "best_history": book.best_history,
               "normalisation": vars(settings.stats),
               "elapsed_seconds": round(time.monotonic() - book.started, 1),
               # everything besides the request that the result depends on, so a run can be repeated
               "search_settings": {**settings.as_dict(), "iterations_per_batch_job": book.plan.per_batch,
                                   "max_concurrent_batch_jobs": book.plan.concurrency,
                                   "top_n_elites": request.top_n_elites},
               "playlists": [{"name": d.name + AUTOMATIC_SUFFIX, "size": len(d.item_ids),
                              "top_tags": d.top_tags} for d in drafts], "published": published}
    ctx.report(f"{len(drafts)} playlists of {covered} of {len(data)} songs created; quality {rated['quality']}/100 "
               f"(best score {best.score:.3f}, median run {summary['median_run_score']}; "
               f"{best.params.describe()})" + (f"; relaxed: {'; '.join(relaxed)}" if relaxed else ""), progress=100)
    return summary


def _search_loop(ctx: TaskContext, batches: _Batches, snapshot: bytes) -> None:
    plan, book = batches.plan, batches.book
    next_batch = 0
    refreshed = time.monotonic()
    while next_batch < plan.n_batches or batches.in_flight:
        ctx.check_cancelled(force=True)
        if time.monotonic() - refreshed > 60:
            if not _keep_snapshot(batches.redis, ctx.task_id):  # Redis restarted or evicted it
                store_snapshot(batches.redis, ctx.task_id, snapshot)
            refreshed = time.monotonic()
        while next_batch < plan.n_batches and book.can_launch(next_batch, len(batches.in_flight)):
            batches.launch(next_batch)
            next_batch += 1
        time.sleep(ctx.config.CLUSTERING_BATCH_CHECK_INTERVAL_SECONDS)
        batches.poll()
        batches.report()


def _name_with_ai(ctx: TaskContext, request: ClusteringRequest, drafts: list[PlaylistDraft]) -> None:
    if request.ai_model_provider == "none":
        return
    import ai

    config = effective_config(ctx.config, ctx.db).with_overrides(AI_MODEL_PROVIDER=request.ai_model_provider)
    named, unreachable = name_drafts(drafts, functools.partial(ai.name_playlist, config),
                                     between=ctx.check_cancelled)
    if unreachable:
        ctx.append_log(f"AI provider {request.ai_model_provider} unreachable; feature names for the rest")
    ctx.report(f"AI ({request.ai_model_provider}) named {named} of {len(drafts)} playlists; the others keep their "
               "feature names")


def _store_and_publish(ctx: TaskContext, drafts: list[PlaylistDraft]) -> dict[str, Any]:
    """Save the playlists in PostgreSQL first (nothing is lost if the media server fails), then update the
    _automatic playlists on the media server in place (services.automatic_playlists). A name a pinned playlist has
    goes to the draft as "<name>_2". A playlist the server refuses is logged and the others go on; when the server
    cannot be reached, or refuses every playlist, the task fails saying so."""
    names = automatic.run_names(ctx.db, [d.name for d in drafts])
    for draft, name in zip(drafts, names, strict=True):
        draft.name = name.removesuffix(AUTOMATIC_SUFFIX)
    playlists = [(name, d.item_ids) for name, d in zip(names, drafts, strict=True)]
    automatic.save(ctx.db, playlists)
    ctx.report(f"Saved {len(drafts)} playlists; publishing to the media server", phase="publish", progress=95)
    config = effective_config(ctx.config, ctx.db)
    published = 0
    try:
        server = ctx.media_server()
        outcome = automatic.publish(ctx.db, server, playlists, log=ctx.append_log)
        published = outcome.published
        if playlists and not published:
            raise MediaServerError(outcome.failures[0]["reason"])
    except (MediaServerError, OSError) as exc:
        raise MediaServerError(f"the playlists are saved in AudioMuse but could not be published to the "
                               f"{config.MEDIASERVER_TYPE} server ({published} of {len(drafts)} published): "
                               f"{exc}") from exc
    if outcome.failures:
        ctx.report(f"{len(outcome.failures)} media-server changes failed (see the log); the rest is published")
    return outcome.as_dict()
