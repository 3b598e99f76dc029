"""A clustering that always gives an answer: the relaxation ladder and automatic parameter discovery."""

from __future__ import annotations

import numpy as np

from clustering.assemble import AssemblySettings
from clustering.autoparams import cluster_range_for, discover, k_distance_elbow
from clustering.orchestration import calibration_line
from clustering.params import RunParams, SearchSpace
from clustering.relax import assemble_relaxed, fewer_clusters, minimum_steps
from clustering.search import PreparedLibrary, evaluate_run
from tests.unit.test_clustering_search import STYLE_TAGS, blob_library, settings

GENRES = tuple(STYLE_TAGS)


def test_fewer_clusters_halves_the_count_and_widens_dbscan():
    counts = [p.n_clusters for p in fewer_clusters(RunParams("kmeans", 0, n_clusters=24))]
    assert counts == [12, 6, 3]
    assert [p.n_clusters for p in fewer_clusters(RunParams("spectral", 4, n_clusters=3))] == [2]
    assert fewer_clusters(RunParams("gmm", 0, n_clusters=2)) == []
    assert [p.eps for p in fewer_clusters(RunParams("dbscan", 0, eps=0.4, min_samples=5))] == [0.6, 0.9, 1.35]


def test_minimum_steps_go_one_song_at_a_time_down_to_the_floor():
    assert minimum_steps(8) == [7, 6, 5, 4, 3]
    assert minimum_steps(5, floor=4) == [4]
    assert minimum_steps(3) == [] and minimum_steps(2) == []


def test_the_run_as_found_is_kept_when_it_gives_a_playlist():
    data = blob_library()
    library = PreparedLibrary(data, settings())
    run = evaluate_run(library, settings(), params=RunParams("kmeans", 0, n_clusters=24), seed=3,
                       sample=np.arange(len(data)))
    result = assemble_relaxed(library, run, AssemblySettings(min_size=20, max_songs=0, max_per_artist=0,
                                                             genres=GENRES), seed=1)
    assert result.relaxed == [] and result.run is run
    assert [len(d.item_ids) for d in result.drafts] == [20]


def test_fewer_clusters_come_before_a_smaller_minimum():
    data = blob_library()
    library = PreparedLibrary(data, settings())
    run = evaluate_run(library, settings(), params=RunParams("kmeans", 0, n_clusters=24), seed=3,
                       sample=np.arange(len(data)))
    result = assemble_relaxed(library, run, AssemblySettings(min_size=30, max_songs=0, max_per_artist=0,
                                                             genres=GENRES), seed=1)
    assert result.relaxed == ["fewer clusters: 24 → 12",
                              "because kmeans, 24 clusters, no PCA gave no playlist of 30 songs"]
    assert [len(d.item_ids) for d in result.drafts] == [38] and result.run.params.n_clusters == 12


def test_the_minimum_is_lowered_when_fewer_clusters_cannot_help():
    data = blob_library(n_per_style=5)  # 30 songs: no playlist of 40 whatever the clusters
    library = PreparedLibrary(data, settings(genre_minimum=5))
    run = evaluate_run(library, settings(), params=RunParams("kmeans", 0, n_clusters=2), seed=3,
                       sample=np.arange(30))
    result = assemble_relaxed(library, run, AssemblySettings(min_size=40, max_songs=0, max_per_artist=0,
                                                             genres=GENRES), seed=1)
    assert result.relaxed == ["min_playlist_size lowered from 40 to 25",
                              "because kmeans, 2 clusters, no PCA gave no playlist of 40 songs"]
    assert [len(d.item_ids) for d in result.drafts] == [25]


def test_k_distance_elbow_is_where_the_dense_part_ends():
    line = np.array([[float(x)] for x in [*range(10), 100, 200, 300]])
    assert k_distance_elbow(line, k=1) == 1.0
    assert k_distance_elbow(line[:2], k=1) == 0.0  # too few points
    # a subset of queries measured against every point gives the same elbow here
    assert k_distance_elbow(line, k=1, max_queries=12, seed=2) == 1.0


def test_cluster_range_is_aimed_at_the_playlists_wanted_within_what_the_library_fills():
    assert cluster_range_for(8, library_size=233, min_size=8) == (8, 14)
    assert cluster_range_for(8, library_size=60, min_size=8) == (3, 3)
    assert cluster_range_for(4, library_size=10_000, min_size=8) == (4, 8)
    assert cluster_range_for(1, library_size=10, min_size=8) == (2, 2)


def test_discovery_lowers_cluster_counts_that_give_no_playlist_of_the_size():
    library = PreparedLibrary(blob_library(), settings())
    assembly = AssemblySettings(min_size=20, max_songs=40, max_per_artist=0, top_n=4, genres=GENRES)
    found = discover(library, SearchSpace(algorithm="spectral", spectral_clusters=(20, 60), pca_components=(0, 6)),
                     assembly, wanted=0, seed=5)
    assert found.changes == {"spectral_n_clusters_min": 15, "spectral_n_clusters_max": 15}
    assert found.notes == [
        "spectral_n_clusters_max lowered from 60 to 30: probe runs with 60 clusters gave no playlist of 20 songs",
        "spectral_n_clusters_max lowered from 30 to 15: probe runs with 30 clusters gave no playlist of 20 songs"]
    assert found.probes == 6
    # ranges that already work are kept
    kept = discover(library, SearchSpace(clusters=(3, 6), pca_components=(0, 6)), assembly, wanted=0, seed=5)
    assert kept.changes == {} and kept.notes == []
    aimed = discover(library, SearchSpace(clusters=(20, 60), pca_components=(0, 6)),
                     AssemblySettings(min_size=8, top_n=4, max_per_artist=0, genres=GENRES), wanted=6, seed=5)
    assert aimed.changes == {"num_clusters_min": 6, "num_clusters_max": 12}
    assert aimed.notes == ["num_clusters_min..num_clusters_max aimed at 6 playlists: 6..12"]


def test_discovery_places_dbscan_eps_at_the_k_distance_elbow():
    library = PreparedLibrary(blob_library(), settings())
    assembly = AssemblySettings(min_size=20, max_songs=40, max_per_artist=0, top_n=4, genres=GENRES)
    found = discover(library, SearchSpace(algorithm="dbscan", pca_components=(0, 6)), assembly, wanted=0, seed=5)
    assert found.changes == {"dbscan_eps_min": 0.5039, "dbscan_eps_max": 0.8189}
    assert found.notes == ["dbscan_eps 0.5039..0.8189 from the k-distance elbow (0.6299 per √dimension, k = 12, "
                           "PCA 3)"]


def test_calibration_line_tells_how_many_random_runs_counted():
    assert calibration_line(40, 8) == ("Scores normalised by the 8 of 40 random runs of this library that found two "
                                       "or more clusters")
    assert calibration_line(40, 3) == ("only 3 of 40 random runs found two or more clusters: the LN_*_STATS "
                                       "settings normalise the scores")
