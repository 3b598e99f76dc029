"""The search side of clustering: sampling, parameter draws and mutations, fitting, batches, assembly, preset."""

from __future__ import annotations

import numpy as np
import pytest

from audio.moods import MOODS
from audio.musicnn import MSD_TAGS
from clustering.assemble import AssemblySettings, assemble_playlists, nearest_centres
from clustering.data import LibraryData, StratifiedSampler, genre_target, primary_genres
from clustering.fitness import FitnessWeights, NormalisationStats
from clustering.models import fit_run
from clustering.params import Mutation, RunParams, SearchSpace, mutate, nudge_centroids, random_params
from clustering.request import ClusteringRequest, RequestError, preset
from clustering.search import PreparedLibrary, RunResult, SearchSettings, evaluate_run, pack_sample, run_batch

STATS = NormalisationStats(mood_diversity=(2.2, 0.35), mood_purity=(1.1, 0.25), other_diversity=(1.2, 0.3),
                           other_purity=(0.8, 0.25))
STYLE_TAGS = ["rock", "jazz", "electronic", "ambient", "metal", "folk"]


def blob_library(n_per_style: int = 40, seed: int = 0) -> LibraryData:
    """Six styles, each one dominant tag and its own embedding centre; artists shared within a style."""
    rng = np.random.default_rng(seed)
    rows = len(STYLE_TAGS) * n_per_style
    style = np.repeat(np.arange(len(STYLE_TAGS)), n_per_style)
    tags = np.clip(rng.normal(0.03, 0.02, size=(rows, len(MSD_TAGS))), 0, 1)
    for s, tag in enumerate(STYLE_TAGS):
        tags[style == s, MSD_TAGS.index(tag)] = rng.uniform(0.6, 0.9, n_per_style)
    moods = np.clip(rng.normal(0.1, 0.05, size=(rows, len(MOODS))) + np.eye(len(MOODS))[style] * 0.7, 0, 1)
    centres = rng.normal(size=(len(STYLE_TAGS), 200)) * 3
    return LibraryData(
        item_ids=[f"id{i:04d}" for i in range(rows)], titles=[f"Song {i}" for i in range(rows)],
        artists=[f"{STYLE_TAGS[s]} artist {i % 8}" for i, s in enumerate(style)], tag_names=MSD_TAGS,
        tags=tags.astype(np.float32), mood_names=MOODS, moods=moods.astype(np.float32),
        tempo=(80 + 15 * style + rng.normal(0, 2, rows)).astype(np.float32),
        energy=rng.uniform(0, 1, rows).astype(np.float32),
        embeddings=(centres[style] + rng.normal(size=(rows, 200))).astype(np.float32))


def settings(**changes) -> SearchSettings:
    values = dict(space=SearchSpace(clusters=(3, 9), pca_components=(0, 6)),
                  weights=FitnessWeights(diversity=2.0, purity=1.0, silhouette=0.5), stats=STATS, total_runs=30,
                  genres=tuple(STYLE_TAGS), genre_minimum=20, exploitation_start_fraction=0.0)
    values.update(changes)
    return SearchSettings(**values)


def test_a_large_library_is_sampled_within_sample_max_and_stays_balanced():
    data = blob_library(n_per_style=200)
    genre_of = primary_genres(data.tags, data.tag_names, STYLE_TAGS)
    unbounded = PreparedLibrary(data, settings(genre_minimum=20, sample_max=100_000)).sampler.initial(
        np.random.default_rng(1))
    assert len(unbounded) == 1200  # the median genre count (200) per genre: the whole library
    bounded = PreparedLibrary(data, settings(genre_minimum=20, sample_max=120)).sampler.initial(
        np.random.default_rng(1))
    assert len(bounded) == 120 and np.bincount(genre_of[bounded]).tolist() == [20] * 6


def test_primary_genre_and_stratified_samples_balance_genres():
    data = blob_library()
    # make rock three times as common as the rest by relabelling two other styles as rock-dominant
    genre_of = primary_genres(data.tags, data.tag_names, STYLE_TAGS)
    assert np.bincount(genre_of).tolist() == [40] * 6
    skewed = np.concatenate([np.zeros(300, dtype=np.int64), np.ones(20, dtype=np.int64), np.full(5, 2)])
    target = genre_target(skewed, percentile=50, minimum=10)
    assert target == 20
    sampler = StratifiedSampler(skewed, target=target)
    rng = np.random.default_rng(1)
    sample = sampler.initial(rng)
    assert np.bincount(skewed[sample]).tolist() == [20, 20, 5]
    moved = sampler.perturb(sample, rng, fraction=0.25)
    assert np.bincount(skewed[moved]).tolist() == [20, 20, 5]
    assert len(set(sample.tolist()) - set(moved.tolist())) == 5  # a quarter of the rock songs (the only free ones)


def test_random_params_and_mutations_stay_inside_the_ranges():
    rng = np.random.default_rng(0)
    for algorithm in ("kmeans", "dbscan", "gmm", "spectral"):
        space = SearchSpace(algorithm=algorithm, clusters=(5, 8), eps=(0.5, 1.5), min_samples=(3, 6),
                            gmm_components=(4, 7), spectral_clusters=(6, 9), pca_components=(2, 4))
        params = random_params(space, rng)
        for _ in range(300):
            params = mutate(params, space, rng, Mutation(int_delta=5, float_delta=2.0))
            assert space.pca_components[0] <= params.pca_components <= space.pca_components[1]
            if algorithm == "dbscan":
                assert 0.5 <= params.eps <= 1.5 and 3 <= params.min_samples <= 6
            else:
                bounds = {"kmeans": (5, 8), "gmm": (4, 7), "spectral": (6, 9)}[algorithm]
                assert bounds[0] <= params.n_clusters <= bounds[1]
    moved = {mutate(RunParams("kmeans", 3, n_clusters=6), SearchSpace(clusters=(2, 40), pca_components=(0, 9)),
                    rng, Mutation(int_delta=2)).n_clusters for _ in range(200)}
    assert moved == {4, 5, 6, 7, 8}  # within ±2 and every value reachable
    other = mutate(RunParams("dbscan", 3, eps=1.0, min_samples=4), SearchSpace(clusters=(5, 8)), rng, Mutation())
    assert other.algorithm == "kmeans"  # an elite of another algorithm does not leak into this search


def test_nudged_centroids_move_a_little_and_match_the_cluster_count():
    rng = np.random.default_rng(2)
    centres = np.array([[0.0, 0.0], [10.0, 10.0], [20.0, 0.0]])
    nudged = nudge_centroids(centres, 3, rng, fraction=0.05)
    spread = centres.std(axis=0)
    assert np.all(np.abs(nudged - centres) <= 0.05 * spread + 1e-12) and not np.allclose(nudged, centres)
    assert nudge_centroids(centres, 2, rng, fraction=0.05).shape == (2, 2)
    assert nudge_centroids(centres, 5, rng, fraction=0.05).shape == (5, 2)


@pytest.mark.parametrize("params", [RunParams("kmeans", 0, n_clusters=6), RunParams("gmm", 4, n_clusters=6),
                                    RunParams("spectral", 4, n_clusters=6, n_neighbors=10),
                                    RunParams("dbscan", 4, eps=1.2, min_samples=5)])
def test_every_algorithm_finds_the_six_styles(params):
    data = blob_library()
    features = data.features(use_embeddings=True)
    fitted = fit_run(params, features, seed=3)
    style = np.repeat(np.arange(6), 40)
    # each found cluster is one style, and (noise aside) each style is one cluster
    clustered = fitted.labels >= 0
    assert clustered.mean() > 0.9
    for label in set(fitted.labels[clustered].tolist()):
        assert len(set(style[fitted.labels == label].tolist())) == 1
    assert len(set(fitted.labels[clustered].tolist())) == 6
    nearest, _ = nearest_centres(fitted.points, fitted.centres)
    assert np.array_equal(nearest[clustered], fitted.labels[clustered])


def test_a_batch_is_reproducible_and_prefers_the_true_structure():
    library = PreparedLibrary(blob_library(), settings())
    first = run_batch(library, settings(), batch_seed=42, n_runs=12, first_run=0, elites=[])
    again = run_batch(library, settings(), batch_seed=42, n_runs=12, first_run=0, elites=[])
    other = run_batch(library, settings(), batch_seed=43, n_runs=12, first_run=0, elites=[])
    assert first.scores == again.scores and first.best is not None and again.best is not None
    assert first.best.as_dict() == again.best.as_dict()
    assert other.scores != first.scores
    assert first.best.params.n_clusters >= 5  # six styles: too few clusters mix them and lose purity/diversity
    # the best run can be redone exactly from what the batch returns (as the main task does)
    redone = evaluate_run(library, settings(), params=first.best.params, seed=first.best.seed,
                          sample=first.best.sample_rows(), init_centroids=first.best.init_array())
    assert redone.score == first.best.score


def test_exploitation_mutates_elites_and_reproduces_from_the_stored_start():
    library = PreparedLibrary(blob_library(), settings())
    seeded = run_batch(library, settings(), batch_seed=1, n_runs=6, first_run=0, elites=[])
    assert seeded.best is not None
    elite = dict(seeded.best.as_dict(), sample={"n": 0, "bits": ""})
    batch = run_batch(library, settings(exploitation_probability=1.0), batch_seed=2, n_runs=6, first_run=10,
                      elites=[elite])
    assert batch.best is not None and batch.best.exploited
    assert abs(batch.best.params.n_clusters - seeded.best.params.n_clusters) <= Mutation().int_delta
    # K-Means mutations start from the elite's centres (kept in feature space, so any PCA size can use them)
    assert batch.best.init_centroids is not None
    if batch.best.init_centroids is not None:
        redone = evaluate_run(library, settings(), params=batch.best.params, seed=batch.best.seed,
                              sample=batch.best.sample_rows(), init_centroids=batch.best.init_array())
        assert redone.score == batch.best.score
    # before the exploitation start, elites are ignored
    early = run_batch(library, settings(exploitation_probability=1.0, exploitation_start_fraction=0.9),
                      batch_seed=2, n_runs=6, first_run=0, elites=[elite])
    assert early.best is not None and not early.best.exploited


def test_assembly_gives_clean_distinct_playlists_deterministically():
    data = blob_library()
    library = PreparedLibrary(data, settings())
    best = RunResult(score=1.0, params=RunParams("kmeans", 0, n_clusters=6), seed=5,
                     sample=pack_sample(np.arange(len(data)), len(data)), metrics={})
    assembly = AssemblySettings(max_songs=25, max_per_artist=3, min_size=5, top_n=4, genres=tuple(STYLE_TAGS))
    drafts = assemble_playlists(library, best, assembly, seed=9)
    assert len(drafts) == 4 and len({d.name for d in drafts}) == 4
    for draft in drafts:
        rows = [data.item_ids.index(i) for i in draft.item_ids]
        assert len(rows) <= 25 and len(set(rows)) == len(rows)
        assert len({data.artists[r] for r in rows}) * 3 >= len(rows)  # at most 3 per artist
        assert len({r // 40 for r in rows}) == 1  # one style per playlist
        assert draft.name.split("_")[0].lower() in STYLE_TAGS
    again = assemble_playlists(library, best, assembly, seed=9)
    assert [d.item_ids for d in again] == [d.item_ids for d in drafts]
    reshuffled = assemble_playlists(library, best, assembly, seed=10)
    assert [sorted(d.item_ids) for d in reshuffled] == [sorted(d.item_ids) for d in drafts]
    assert [d.item_ids for d in reshuffled] != [d.item_ids for d in drafts]
    tight = assemble_playlists(library, best, AssemblySettings(min_size=41, genres=tuple(STYLE_TAGS)), seed=9)
    assert tight == []


def test_request_validation_names_the_parameter_and_preset_scales_with_the_library():
    defaults = ClusteringRequest()
    with pytest.raises(RequestError) as bad:
        defaults.with_values({"num_clusters_min": "70", "num_clusters_max": "10"})
    assert bad.value.parameter == "num_clusters_max"
    with pytest.raises(RequestError) as bad:
        defaults.with_values({"score_weight_purity": "nan"})
    assert bad.value.parameter == "score_weight_purity"
    with pytest.raises(RequestError):
        defaults.with_values({"enable_clustering_embeddings": "maybe"})
    assert defaults.with_values({"clustering_method": "GMM", "clustering_runs": "12"}).clustering_method == "gmm"
    small, medium, large = preset(48, 12, defaults), preset(5000, 500, defaults), preset(50_000, 4000, defaults)
    assert small.num_clusters_max < medium.num_clusters_max <= large.num_clusters_max
    assert small.clustering_runs < medium.clustering_runs and large.clustering_runs < medium.clustering_runs
    assert small.min_playlist_size <= 48 // small.num_clusters_max + 1
    assert small.max_songs_per_artist >= 2 and large.clustering_method == "kmeans"
    small.validate()
    large.validate()
    tiny = preset(6, 3, defaults)
    assert tiny.num_clusters_max * (tiny.min_playlist_size + 1) <= 6 or tiny.num_clusters_max == 2


def _clustering_settings() -> list[str]:
    """The clustering section of the Settings table (CLUSTER_ALGORITHM … CLUSTERING_SEED) and the AI provider."""
    import dataclasses

    from config import Config

    names = [f.name for f in dataclasses.fields(Config)]
    section = names[names.index("CLUSTER_ALGORITHM"):names.index("CLUSTERING_SEED") + 1]
    # how often the main task looks at its batches is the worker's business, not a run's
    return [n for n in section if n != "CLUSTERING_BATCH_CHECK_INTERVAL_SECONDS"] + ["AI_MODEL_PROVIDER"]


def test_every_clustering_setting_is_a_request_parameter_under_its_lowercase_name():
    from config import setting_default, setting_range

    defaults = ClusteringRequest()
    for setting in _clustering_settings():
        name, default = setting.lower(), setting_default(setting)
        value = default if isinstance(default, (bool, str)) else type(default)(default)
        request = defaults.with_values({name: value})
        assert request.as_dict() == defaults.as_dict(), setting  # accepted, and the default is the setting's
        low, high = setting_range(setting)
        if isinstance(default, (int, float)) and not isinstance(default, bool) and high is not None:
            with pytest.raises(RequestError) as refused:
                defaults.with_values({name: high + 1})
            assert refused.value.expected == f"between {low} and {high}", setting
    changed = defaults.with_values({"stratified_sampling_target_percentile": "75", "top_n_elites": 4,
                                    "mutation_int_abs_delta": 1, "sampling_percentage_change_per_run": 0.5,
                                    "cluster_algorithm": "GMM", "stratified_genres": "rock,Hip-Hop"})
    assert (changed.stratified_sampling_target_percentile, changed.top_n_elites, changed.clustering_method,
            changed.stratified_genres) == (75.0, 4, "gmm", "rock,Hip-Hop")
    with pytest.raises(RequestError) as bad_stats:
        defaults.with_values({"ln_mood_purity_stats": "0.4"})
    assert bad_stats.value.parameter == "ln_mood_purity_stats"
    with pytest.raises(RequestError):
        defaults.with_values({"exploitation_start_fraction": 1.5})


def test_calibration_on_the_library_makes_a_random_grouping_score_zero():
    """Statistics measured on another library (the synthetic defaults) put every run of a small real-size library
    far below zero; measured on the library itself, random runs centre on 0 and the search's best is above."""
    from dataclasses import replace

    from clustering.orchestration import calibrate_stats

    far_off = NormalisationStats(mood_diversity=(2.624, 0.257), mood_purity=(0.475, 0.049),
                                 other_diversity=(1.468, 0.078), other_purity=(0.418, 0.05))
    base = settings(stats=far_off, weights=FitnessWeights(diversity=2.0, purity=1.0))
    library = PreparedLibrary(blob_library(n_per_style=12), base)
    stats, valid = calibrate_stats(library, base, runs=40, seed=5, fallback=far_off)
    assert valid >= 30 and stats != far_off and min(std for _, std in vars(stats).values()) >= 0.05
    assert calibrate_stats(library, base, runs=40, seed=5, fallback=far_off)[0] == stats  # seeded
    random_runs = run_batch(library, replace(base, exploitation_probability=0.0), batch_seed=2, n_runs=20,
                            first_run=0, elites=[])
    assert max(s for s in random_runs.scores if np.isfinite(s)) < -3  # before: hopeless on any library this size
    calibrated = replace(base, stats=stats, exploitation_probability=0.0)
    scores = [s for s in run_batch(library, calibrated, batch_seed=2, n_runs=20, first_run=0, elites=[]).scores
              if np.isfinite(s)]
    assert abs(float(np.median(scores))) < 1.5 and max(scores) > 0.5
