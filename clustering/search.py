"""One batch of the evolutionary search: N runs, each on a perturbed stratified sample, scored by the fitness.

`run_batch` is what a batch job executes; it returns its best run (with everything needed to redo it exactly:
parameters, seed, sample) and the fitness of every run. Elites from earlier batches arrive as plain dicts.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clustering.data import LibraryData, StratifiedSampler, genre_target, primary_genres
from clustering.fitness import FitnessWeights, NormalisationStats, evaluate
from clustering.models import FittedRun, fit_run
from clustering.params import Mutation, RunParams, SearchSpace, mutate, nudge_centroids, random_params


@dataclass(frozen=True)
class SearchSettings:
    """Everything a batch needs besides the library; JSON-able through as_dict/from_dict."""

    space: SearchSpace
    weights: FitnessWeights
    stats: NormalisationStats
    use_embeddings: bool = False
    total_runs: int = 1000
    exploitation_start_fraction: float = 0.2
    exploitation_probability: float = 0.7
    mutation: Mutation = field(default_factory=Mutation)
    genres: tuple[str, ...] = ()
    genre_minimum: int = 100
    genre_percentile: float = 50.0
    sample_max: int = 20000  # most songs a run clusters (the per-genre target lowered to fit)
    sample_change_fraction: float = 0.2
    top_k_moods: int = 3
    other_feature_threshold: float = 0.3

    def as_dict(self) -> dict[str, Any]:
        return {"space": self.space.as_dict(), "weights": vars(self.weights).copy(), "stats": vars(self.stats).copy(),
                "use_embeddings": self.use_embeddings, "total_runs": self.total_runs,
                "exploitation_start_fraction": self.exploitation_start_fraction,
                "exploitation_probability": self.exploitation_probability, "mutation": vars(self.mutation).copy(),
                "genres": list(self.genres), "genre_minimum": self.genre_minimum,
                "genre_percentile": self.genre_percentile, "sample_max": self.sample_max,
                "sample_change_fraction": self.sample_change_fraction,
                "top_k_moods": self.top_k_moods, "other_feature_threshold": self.other_feature_threshold}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchSettings:
        stats = {k: tuple(v) for k, v in values["stats"].items()}
        return cls(space=SearchSpace.from_dict(values["space"]), weights=FitnessWeights(**values["weights"]),
                   stats=NormalisationStats(**stats), mutation=Mutation(**values["mutation"]),
                   genres=tuple(values["genres"]),
                   **{k: v for k, v in values.items() if k not in ("space", "weights", "stats", "mutation", "genres")})


@dataclass
class RunResult:
    """A scored run. `sample`: the LibraryData rows it clustered, packed (see unpack_sample); K-Means runs keep
    their centres (scaled-feature space, packed float32) so mutations can start from them."""

    score: float
    params: RunParams
    seed: int
    sample: dict[str, Any]
    metrics: dict[str, Any]
    centroids: dict[str, Any] | None = None       # K-Means: the centres found, for mutations of this run
    init_centroids: dict[str, Any] | None = None  # K-Means started from a mutated elite's centres
    exploited: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "params": self.params.as_dict(), "seed": self.seed, "sample": self.sample,
                "metrics": self.metrics, "centroids": self.centroids, "init_centroids": self.init_centroids,
                "exploited": self.exploited}

    def init_array(self) -> np.ndarray | None:
        return _unpack(self.init_centroids)

    def centroid_array(self) -> np.ndarray | None:
        return _unpack(self.centroids)

    def sample_rows(self) -> np.ndarray:
        return unpack_sample(self.sample)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunResult:
        return cls(score=float(values["score"]), params=RunParams.from_dict(values["params"]), seed=int(values["seed"]),
                   sample=values["sample"], metrics=values.get("metrics", {}),
                   centroids=values.get("centroids"), init_centroids=values.get("init_centroids"),
                   exploited=bool(values.get("exploited")))


@dataclass
class BatchOutcome:
    best: RunResult | None
    scores: list[float]           # every run's score in run order (-inf for an invalid run)
    invalid_runs: int
    errors: list[str]


class PreparedLibrary:
    """The library with its scaled features, genre groups and sampler, computed once per process and task."""

    def __init__(self, data: LibraryData, settings: SearchSettings) -> None:
        self.data = data
        self.features = data.features(use_embeddings=settings.use_embeddings)
        genres = list(settings.genres) or list(data.tag_names)
        genre_of = primary_genres(data.tags, data.tag_names, genres)
        target = genre_target(genre_of, percentile=settings.genre_percentile, minimum=settings.genre_minimum)
        # bounded: at a million tracks the percentile target alone gives samples of ~500,000 songs (a minute or
        # more per K-Means run); the genres stay balanced, each with at most its share of sample_max
        target = min(target, max(1, settings.sample_max // max(len(np.unique(genre_of)), 1)))
        self.sampler = StratifiedSampler(genre_of, target=target)


def run_seed(task_seed: int, batch_index: int) -> int:
    """The seed of batch `batch_index` of a task seeded with `task_seed` (independent streams per batch)."""
    return int(np.random.SeedSequence([task_seed, batch_index]).generate_state(1)[0])


def run_batch(library: PreparedLibrary, settings: SearchSettings, *, batch_seed: int, n_runs: int,
              first_run: int, elites: Sequence[dict[str, Any]],
              between_runs: Callable[[int], None] = lambda done: None) -> BatchOutcome:
    """Run `n_runs` runs numbered from `first_run` (of settings.total_runs). `between_runs(done)` is called after
    each run (the job checks for cancellation there)."""
    rng = np.random.default_rng(batch_seed)
    elite_results = [RunResult.from_dict(e) for e in elites]
    sample = library.sampler.initial(rng)
    best: RunResult | None = None
    scores: list[float] = []
    errors: list[str] = []
    invalid = 0
    exploit_from = settings.exploitation_start_fraction * settings.total_runs
    for offset in range(n_runs):
        if offset:
            sample = library.sampler.perturb(sample, rng, fraction=settings.sample_change_fraction)
        seed = int(rng.integers(0, 2**31 - 1))
        init = None
        exploited = bool(elite_results) and first_run + offset >= exploit_from \
            and rng.random() < settings.exploitation_probability
        if exploited:
            elite = elite_results[int(rng.integers(len(elite_results)))]
            params = mutate(elite.params, settings.space, rng, settings.mutation)
            centres = elite.centroid_array()
            if params.algorithm == "kmeans" and centres is not None:
                # float32, as stored, so the run can be redone exactly from its recorded start
                init = nudge_centroids(centres, min(params.n_clusters, len(sample) - 1), rng,
                                       fraction=settings.mutation.coord_fraction).astype(np.float32)
        else:
            params = random_params(settings.space, rng)
        try:
            result = evaluate_run(library, settings, params=params, seed=seed, sample=sample, init_centroids=init)
            result.exploited = exploited
        except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError) as exc:
            # a parameter set this sample cannot support (ARPACK not converging, a singular covariance, ...)
            invalid += 1
            scores.append(-math.inf)
            if len(errors) < 5:
                errors.append(f"{params.algorithm} {params.as_dict()}: {exc}")
            between_runs(offset + 1)
            continue
        scores.append(result.score)
        if math.isfinite(result.score):
            if best is None or result.score > best.score:
                best = result
        else:
            invalid += 1
        between_runs(offset + 1)
    return BatchOutcome(best=best, scores=scores, invalid_runs=invalid, errors=errors)


def evaluate_run(library: PreparedLibrary, settings: SearchSettings, *, params: RunParams, seed: int,
                 sample: np.ndarray, init_centroids: np.ndarray | None = None) -> RunResult:
    """Fit and score one run; the same arguments give the same result (the final playlists redo the best run)."""
    fitted = refit(library, params=params, seed=seed, sample=sample, init_centroids=init_centroids)
    data = library.data
    fitness = evaluate(labels=fitted.labels, points=fitted.points, tags=data.tags[sample], moods=data.moods[sample],
                       weights=settings.weights, stats=settings.stats, top_k=settings.top_k_moods,
                       other_threshold=settings.other_feature_threshold, rng=np.random.default_rng(seed))
    centroids = None
    if params.algorithm == "kmeans" and len(fitted.centres):
        centroids = _pack(fitted.feature_centres())
    return RunResult(score=float(fitness.score), params=params, seed=seed, sample=pack_sample(sample, len(data)),
                     metrics=fitness.as_dict(), centroids=centroids,
                     init_centroids=None if init_centroids is None else _pack(init_centroids))


def _pack(matrix: np.ndarray) -> dict[str, Any]:
    """A float32 matrix as base64 (exact and about 4× smaller than JSON numbers)."""
    array = np.ascontiguousarray(matrix, dtype="<f4")
    return {"shape": list(array.shape), "f32": base64.b64encode(array.tobytes()).decode("ascii")}


def _unpack(packed: dict[str, Any] | None) -> np.ndarray | None:
    if not packed:
        return None
    return np.frombuffer(base64.b64decode(packed["f32"]), dtype="<f4").reshape(packed["shape"]).astype(np.float64)


def pack_sample(sample: np.ndarray, n: int) -> dict[str, Any]:
    """Sample row indices as a bitmap over the n library rows (10k tracks: 1.7 kB)."""
    mask = np.zeros(n, dtype=bool)
    mask[np.asarray(sample, dtype=np.int64)] = True
    return {"n": n, "bits": base64.b64encode(np.packbits(mask).tobytes()).decode("ascii")}


def unpack_sample(packed: dict[str, Any]) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(base64.b64decode(packed["bits"]), dtype=np.uint8))[:packed["n"]]
    return np.flatnonzero(bits)


def refit(library: PreparedLibrary, *, params: RunParams, seed: int, sample: np.ndarray | Sequence[int],
          init_centroids: np.ndarray | None = None) -> FittedRun:
    """Fit the run again on its sample (rows of the library)."""
    features = library.features[np.asarray(sample, dtype=np.int64)]
    return fit_run(params, features, seed=seed, init_centroids=init_centroids)
