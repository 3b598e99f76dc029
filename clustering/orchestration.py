"""The clustering use case apart from its I/O: the settings one task runs with, how its runs are split into batches,
which elites each batch may see, the bookkeeping of finished batches and the best run, and the naming of playlists.

tasks/clustering.py does the I/O around this (child jobs, Redis, the database, the media server). Batch i is given
the elites of batches 0..i-c (c = the concurrency) and no others, and a batch is launched only when every batch
before i-c+1 has ended, so the same seed gives the same search whatever order the batches finish in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from clustering.assemble import AssemblySettings, PlaylistDraft
from clustering.autoparams import discover
from clustering.data import LibraryData
from clustering.errors import ClusteringError
from clustering.fitness import FitnessWeights, NormalisationStats, calibration_stats, diversity_raw, purity_raw
from clustering.models import fit_run
from clustering.naming import unique_names
from clustering.params import Mutation, SearchSpace, random_params
from clustering.relax import assemble_relaxed, stand_in_run
from clustering.request import ClusteringRequest, fit_to_library
from clustering.search import PreparedLibrary, RunResult, SearchSettings, run_batch, run_seed
from config import parse_mean_std


def search_settings(request: ClusteringRequest) -> SearchSettings:
    """Everything a batch needs besides the library, from the request (whose defaults are the configuration's)."""
    r = request
    embeddings = r.enable_clustering_embeddings
    space = SearchSpace(
        algorithm=r.clustering_method, clusters=(r.num_clusters_min, r.num_clusters_max),
        eps=(r.dbscan_eps_min, r.dbscan_eps_max), min_samples=(r.dbscan_min_samples_min, r.dbscan_min_samples_max),
        gmm_components=(r.gmm_n_components_min, r.gmm_n_components_max), covariance_type=r.gmm_covariance_type,
        spectral_clusters=(r.spectral_n_clusters_min, r.spectral_n_clusters_max),
        spectral_neighbors=r.spectral_n_neighbors, pca_components=(r.pca_components_min, r.pca_components_max))
    weights = FitnessWeights(
        diversity=r.score_weight_diversity, purity=r.score_weight_purity,
        other_feature_diversity=r.score_weight_other_feature_diversity,
        other_feature_purity=r.score_weight_other_feature_purity, silhouette=r.score_weight_silhouette,
        davies_bouldin=r.score_weight_davies_bouldin, calinski_harabasz=r.score_weight_calinski_harabasz)
    stats = NormalisationStats(
        mood_diversity=parse_mean_std("ln_mood_diversity_stats", r.ln_mood_diversity_embeding_stats if embeddings
                                      else r.ln_mood_diversity_stats),
        mood_purity=parse_mean_std("ln_mood_purity_stats", r.ln_mood_purity_embeding_stats if embeddings
                                   else r.ln_mood_purity_stats),
        other_diversity=parse_mean_std("ln_other_features_diversity_stats", r.ln_other_features_diversity_stats),
        other_purity=parse_mean_std("ln_other_features_purity_stats", r.ln_other_features_purity_stats))
    return SearchSettings(
        space=space, weights=weights, stats=stats, use_embeddings=embeddings, total_runs=r.clustering_runs,
        exploitation_start_fraction=r.exploitation_start_fraction,
        exploitation_probability=r.exploitation_probability_config,
        mutation=Mutation(int_delta=r.mutation_int_abs_delta, float_delta=r.mutation_float_abs_delta,
                          coord_fraction=r.mutation_kmeans_coord_fraction),
        genres=tuple(g.strip() for g in r.stratified_genres.split(",") if g.strip()),
        genre_minimum=r.min_songs_per_genre_for_stratification,
        genre_percentile=r.stratified_sampling_target_percentile, sample_max=r.clustering_sample_max,
        sample_change_fraction=r.sampling_percentage_change_per_run,
        top_k_moods=r.top_k_moods_for_purity_calculation,
        other_feature_threshold=r.other_feature_predominance_threshold_for_purity)


def assembly_settings(request: ClusteringRequest, settings: SearchSettings) -> AssemblySettings:
    """How the best run becomes playlists: sizes, caps and duplicates."""
    return AssemblySettings(
        max_distance=request.max_distance, max_songs=request.max_songs_per_cluster,
        max_per_artist=request.max_songs_per_artist, min_size=request.min_playlist_size,
        top_n=request.top_n_playlists, duplicate_cosine=request.duplicate_distance_threshold_cosine,
        duplicate_lookback=request.duplicate_distance_check_lookback, genres=settings.genres)


CALIBRATION_STD_FLOOR = 0.05  # a metric random runs barely move (real-music purity: std 0.001) must not dominate


def calibrate_stats(library: PreparedLibrary, settings: SearchSettings, *, runs: int, seed: int,
                    fallback: NormalisationStats) -> tuple[NormalisationStats, int]:
    """The normalisation statistics of this library: mean and std of log1p of each label metric over `runs` random
    runs drawn from the request's ranges (seeded), std floored at CALIBRATION_STD_FLOOR. A normalised 0 is then a
    typical random grouping of *this* library, whatever its size (the spread of tag diversity, say, depends on how
    many playlists a library can make). Returns (stats, valid runs); `fallback` when fewer than 5 runs were valid."""
    rng = np.random.default_rng([seed, 0xCA1])
    data = library.data
    values: dict[str, list[float]] = {"mood_purity": [], "mood_diversity": [], "other_purity": [],
                                      "other_diversity": []}
    sample = library.sampler.initial(rng)
    for _ in range(runs):
        sample = library.sampler.perturb(sample, rng, fraction=settings.sample_change_fraction)
        try:
            fitted = fit_run(random_params(settings.space, rng), library.features[sample],
                             seed=int(rng.integers(1 << 30)))
        except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError):
            continue  # the same runs the search counts as invalid
        labels = fitted.labels
        if not 2 <= np.unique(labels[labels >= 0]).size < int((labels >= 0).sum()):
            continue
        tags, moods = data.tags[sample], data.moods[sample]
        values["mood_purity"].append(purity_raw(labels, tags, top_k=settings.top_k_moods))
        values["mood_diversity"].append(diversity_raw(labels, tags))
        values["other_purity"].append(purity_raw(labels, moods, top_k=settings.top_k_moods,
                                                 threshold=settings.other_feature_threshold))
        values["other_diversity"].append(diversity_raw(labels, moods))
    valid = len(values["mood_purity"])
    if valid < 5:
        return fallback, valid
    stats = {}
    for name, raw in values.items():
        mean, std = calibration_stats(raw)
        stats[name] = (round(mean, 4), round(max(std, CALIBRATION_STD_FLOOR), 4))
    return NormalisationStats(**stats), valid


@dataclass(frozen=True)
class BatchPlan:
    """`total_runs` runs in batches of `per_batch`, at most `concurrency` batches queued or running at once."""

    total_runs: int
    per_batch: int
    concurrency: int

    @property
    def n_batches(self) -> int:
        return math.ceil(self.total_runs / self.per_batch)

    def first_run(self, index: int) -> int:
        return index * self.per_batch

    def runs_in(self, index: int) -> int:
        return min(self.per_batch, self.total_runs - self.first_run(index))


@dataclass
class SearchBook:
    """What the main task knows about its batches: which ended, each one's best run, the best so far, failures."""

    plan: BatchPlan
    top_n_elites: int
    max_failed_batches: int
    batch_bests: dict[int, RunResult] = field(default_factory=dict)  # successful batches' best runs
    best_run: RunResult | None = None
    best_index: int = -1
    ended: set[int] = field(default_factory=set)  # batches that finished, failed or timed out
    live_runs: dict[int, int] = field(default_factory=dict)  # running batch → runs it has done so far
    failed: int = 0
    invalid_runs: int = 0
    valid_scores: list[float] = field(default_factory=list)  # every valid run's score, for the median
    failures: list[str] = field(default_factory=list)
    best_history: list[dict[str, Any]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # lines for the task log, taken by the task
    started: float = field(default_factory=time.monotonic)

    def elites_for(self, index: int) -> list[dict[str, Any]]:
        """The top_n_elites best runs of batches 0..index-concurrency (a fixed set, hence reproducible)."""
        runs = sorted((r for i, r in self.batch_bests.items() if i <= index - self.plan.concurrency),
                      key=lambda r: -r.score)
        return [{"score": r.score, "params": r.params.as_dict(), "seed": r.seed, "sample": {"n": 0, "bits": ""},
                 "centroids": r.centroids} for r in runs[:self.top_n_elites]]

    def can_launch(self, index: int, in_flight: int) -> bool:
        """Whether batch `index` may start now, with `in_flight` batches queued or running."""
        return in_flight < self.plan.concurrency and all(
            i in self.ended for i in range(max(0, index - self.plan.concurrency + 1)))

    def running(self, index: int, runs_done: int) -> None:
        self.live_runs[index] = runs_done

    def succeeded(self, index: int, result: dict[str, Any]) -> None:
        """Batch `index` ended with `result` (its best run and how many runs were invalid)."""
        self._end(index)
        self.invalid_runs += int(result.get("invalid_runs", 0))
        self.valid_scores.extend(float(s) for s in result.get("scores", []) if s is not None)
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
                self.log.append(f"New best score {run.score:.3f} after {self.runs_done()} runs "
                                f"({run.params.describe()})")

    def failed_batch(self, index: int, reason: str) -> None:
        """Batch `index` failed or timed out; ClusteringError once too many have."""
        self._end(index)
        self.failed += 1
        self.failures.append(reason)
        self.log.append(reason)
        if self.failed >= self.max_failed_batches:
            raise ClusteringError(f"{self.failed} batches failed (CLUSTERING_MAX_FAILED_BATCHES="
                                  f"{self.max_failed_batches}); last: {reason}")

    def _end(self, index: int) -> None:
        self.ended.add(index)
        self.live_runs.pop(index, None)

    def runs_done(self) -> int:
        return sum(self.plan.runs_in(i) for i in self.ended) + sum(self.live_runs.values())

    def take_log(self) -> list[str]:
        lines, self.log = self.log, []
        return lines


# (top tags, moods, tempo range, sample songs, taken names, fallback) → (name, how: "ai" | "fallback" | "unreachable")
PlaylistNamer = Callable[..., tuple[str, str]]


def name_drafts(drafts: list[PlaylistDraft], namer: PlaylistNamer, *,
                between: Callable[[], None] = lambda: None) -> tuple[int, bool]:
    """Ask `namer` for each draft's name (its feature name is the fallback); stop asking once it says the provider
    is unreachable (it would cost the full timeout for every playlist); make the names unique. Return (how many
    were named by the AI, whether the provider was unreachable). `between` runs before each draft (cancellation)."""
    taken: list[str] = []
    named = 0
    unreachable = False
    for draft in drafts:
        between()
        name, how = namer(top_tags=draft.top_tags, moods=draft.top_moods, tempo_range=draft.tempo_range,
                          sample_songs=draft.sample_songs, taken_names=taken, fallback=draft.feature_name)
        if how == "unreachable":
            unreachable = True
            break
        draft.name = name  # the namer refuses a taken name; unique_names below settles the rest
        taken.append(name)
        named += how == "ai"
    for draft, unique in zip(drafts, unique_names([d.name for d in drafts]), strict=True):
        draft.name = unique  # an AI name may equal another playlist's feature name
    return named, unreachable


def discover_parameters(request: ClusteringRequest, library: PreparedLibrary, *, seed: int
                        ) -> tuple[ClusteringRequest, list[str], int]:
    """The request with the ranges automatic parameter discovery finds for this library (clustering.autoparams),
    the lines saying what changed, and the probe runs it took; the request unchanged when discovery is off."""
    if not request.auto_parameter_discovery:
        return request, [], 0
    settings = search_settings(request)
    found = discover(library, settings.space, assembly_settings(request, settings), wanted=request.playlists_wanted,
                     seed=seed)
    return replace(request, **found.changes), found.notes, found.probes


def calibration_line(runs: int, valid: int) -> str:
    """The log line of a calibration: how many of the random runs it drew were usable, and what normalises."""
    if valid >= 5:
        return f"Scores normalised by the {valid} of {runs} random runs of this library that found two or more clusters"
    return (f"only {valid} of {runs} random runs found two or more clusters: the LN_*_STATS settings normalise the "
            "scores")


@dataclass
class InProcessResult:
    """What a clustering task would publish, computed in one process (the bench and the tests of the use case)."""

    request: ClusteringRequest
    drafts: list[PlaylistDraft]
    relaxed: list[str]
    discovery: list[str]
    adjustments: list[str]
    best: RunResult | None
    calibration: tuple[int, int]  # (random runs drawn, valid)


def run_in_process(data: LibraryData, request: ClusteringRequest, *, seed: int) -> InProcessResult:
    """The whole clustering use case without workers: fit the ranges to the library, discover parameters, calibrate,
    search in batches (sequentially, elites as the task passes them), assemble with relaxation. The task does the
    same steps with batch jobs."""
    request, adjustments = fit_to_library(request, len(data))
    prepared = PreparedLibrary(data, search_settings(request))
    request, discovery, _ = discover_parameters(request, prepared, seed=seed)
    settings = search_settings(request)
    stats, valid = settings.stats, 0
    if request.clustering_calibration_runs:
        stats, valid = calibrate_stats(prepared, settings, runs=request.clustering_calibration_runs, seed=seed,
                                       fallback=settings.stats)
    settings = replace(settings, stats=stats)
    book = SearchBook(BatchPlan(request.clustering_runs, request.iterations_per_batch_job,
                                request.max_concurrent_batch_jobs), top_n_elites=request.top_n_elites,
                      max_failed_batches=request.clustering_max_failed_batches)
    for index in range(book.plan.n_batches):
        outcome = run_batch(prepared, settings, batch_seed=run_seed(seed, index), n_runs=book.plan.runs_in(index),
                            first_run=book.plan.first_run(index), elites=book.elites_for(index))
        book.succeeded(index, {"best": outcome.best.as_dict() if outcome.best else None,
                               "invalid_runs": outcome.invalid_runs})
    best = book.best_run
    relaxed: list[str] = []
    run = best
    if run is None:
        run = stand_in_run(prepared, prepared.sampler.initial(np.random.default_rng(seed)),
                           min_size=request.min_playlist_size, pca_components=request.pca_components_min, seed=seed)
        relaxed.append(f"no {request.clustering_method} run found two or more clusters: "
                       f"{run.params.describe()} instead")
    outcome_relaxed = assemble_relaxed(prepared, run, assembly_settings(request, settings), seed=seed)
    return InProcessResult(request=request, drafts=outcome_relaxed.drafts, relaxed=relaxed + outcome_relaxed.relaxed,
                           discovery=discovery, adjustments=adjustments, best=best,
                           calibration=(request.clustering_calibration_runs, valid))
