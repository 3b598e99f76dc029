"""A clustering that always gives an answer: when the best run yields no playlist of the requested size, relax the
assembly step by step and say what was relaxed.

The ladder, first rung that gives a playlist wins: (1) the run as found; (2) fewer clusters — the best run refitted
with its cluster count halved (DBSCAN: eps widened), which keeps the requested playlist size; (3) the minimum size
lowered one song at a time down to RELAX_FLOOR, on the run as found and then on the fewest clusters; (4) the
per-artist cap lifted (a library by few artists loses most of every playlist to it). When no run of the search was
valid at all (DBSCAN finding only noise), a K-Means run on the same sample stands in for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from clustering.assemble import AssemblySettings, PlaylistDraft, assemble_playlists
from clustering.errors import ClusteringError
from clustering.params import RunParams
from clustering.search import PreparedLibrary, RunResult, pack_sample

RELAX_FLOOR = 3          # a playlist of fewer songs is not worth publishing
FEWER_CLUSTER_STEPS = 3  # halvings of the cluster count (or widenings of DBSCAN's eps) tried
EPS_WIDENING = 1.5


@dataclass(frozen=True)
class Relaxed:
    """The playlists and, when the request could not be met as asked, one line per relaxation (else empty)."""

    drafts: list[PlaylistDraft]
    relaxed: list[str]
    run: RunResult  # the run the playlists came from (the best run, or its relaxed refit)


def fewer_clusters(params: RunParams, steps: int = FEWER_CLUSTER_STEPS) -> list[RunParams]:
    """Up to `steps` parameter sets with fewer (bigger) clusters than `params`, fewest last: the cluster count
    halved each step down to 2 (no repeats), or DBSCAN's eps widened by EPS_WIDENING each step."""
    out: list[RunParams] = []
    if params.algorithm == "dbscan":
        return [replace(params, eps=round(params.eps * EPS_WIDENING ** (i + 1), 4)) for i in range(steps)]
    k = params.n_clusters
    for _ in range(steps):
        k = max(2, k // 2)
        if out and out[-1].n_clusters == k or k == params.n_clusters:
            break
        out.append(replace(params, n_clusters=k))
    return out


def minimum_steps(min_size: int, floor: int = RELAX_FLOOR) -> list[int]:
    """The relaxed minimum sizes to try, one song at a time: min_size-1 down to min(floor, min_size-1)... only
    sizes below min_size and at least `floor` (a request already under the floor is not lowered)."""
    return list(range(min_size - 1, max(floor, 1) - 1, -1))


def stand_in_run(library: PreparedLibrary, sample: np.ndarray, *, min_size: int, pca_components: int,
                 seed: int) -> RunResult:
    """A K-Means run on `sample` with about one cluster per 2·min_size songs (at least 2): used when the search
    found no valid run at all."""
    k = max(2, min(len(sample) // max(2 * min_size, 1), 8))
    params = RunParams("kmeans", pca_components=pca_components, n_clusters=k)
    return RunResult(score=0.0, params=params, seed=seed, sample=pack_sample(sample, len(library.data)), metrics={})


def _rungs(best: RunResult, settings: AssemblySettings) -> Iterator[tuple[RunResult, AssemblySettings, list[str]]]:
    yield best, settings, []
    smaller = [replace(best, params=p, init_centroids=None) for p in fewer_clusters(best.params)]
    for run in smaller:
        yield run, settings, [_fewer_note(best.params, run.params)]
    runs = [best, *smaller[-1:]]
    for size in minimum_steps(settings.min_size):
        for run in runs:
            notes = [f"min_playlist_size lowered from {settings.min_size} to {size}"]
            if run is not best:
                notes.insert(0, _fewer_note(best.params, run.params))
            yield run, replace(settings, min_size=size), notes
    if settings.max_per_artist:
        floor = minimum_steps(settings.min_size)[-1:] or [settings.min_size]
        for run in runs:
            notes = [f"max_songs_per_artist lifted (was {settings.max_per_artist})"]
            if floor[0] != settings.min_size:
                notes.insert(0, f"min_playlist_size lowered from {settings.min_size} to {floor[0]}")
            if run is not best:
                notes.insert(0, _fewer_note(best.params, run.params))
            yield run, replace(settings, min_size=floor[0], max_per_artist=0), notes


def _fewer_note(before: RunParams, after: RunParams) -> str:
    if before.algorithm == "dbscan":
        return f"fewer clusters: DBSCAN eps widened from {before.eps:g} to {after.eps:g}"
    return f"fewer clusters: {before.n_clusters} → {after.n_clusters}"


def assemble_relaxed(library: PreparedLibrary, best: RunResult, settings: AssemblySettings, *,
                     seed: int) -> Relaxed:
    """The playlists of `best` as `settings` ask, or of the first rung of the ladder (module docstring) that gives
    one; raises ClusteringError only when no rung does (a library of near-identical songs, say)."""
    for run, relaxed_settings, notes in _rungs(best, settings):
        try:
            drafts = assemble_playlists(library, run, relaxed_settings, seed=seed)
        except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError, ClusteringError):
            continue  # a relaxed refit this sample cannot support: the next rung
        if drafts:
            if notes:
                notes.append(f"because {best.params.describe()} gave no playlist of {settings.min_size} songs")
            return Relaxed(drafts=drafts, relaxed=notes, run=run)
    raise ClusteringError(f"no playlist of even {min(settings.min_size, RELAX_FLOOR)} songs could be made from this "
                          f"library ({len(library.data)} songs), even with fewer clusters and no per-artist cap")
