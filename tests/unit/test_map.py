"""The music map's domain code: the projection (UMAP, PCA fallback), placing new tracks, the sampling order and
the serialized cache."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from discovery.map_cache import PERCENTS, build_map_cache, decode_binary_map, sample_size
from discovery.map_projection import map_order, place_new_tracks, project_library
from discovery.projection import pca_2d, sampled_pca_2d
from discovery.types import DiscoveryError


def clusters(n_per: int, *, centres: int = 3, dims: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = rng.normal(size=(centres, dims))
    return np.concatenate([middle[i] + 0.05 * rng.normal(size=(n_per, dims)) for i in range(centres)]).astype("f4")


def ids(n: int) -> list[str]:
    return [f"track-{i:05d}" for i in range(n)]


# --- sampling ----------------------------------------------------------------------------------------------
def test_samples_are_the_same_songs_whatever_order_the_library_comes_in_and_nest() -> None:
    library = ids(1000)
    shuffled = list(np.random.default_rng(3).permutation(library))
    first = [library[i] for i in map_order(library)]
    second = [shuffled[i] for i in map_order(shuffled)]
    assert first == second
    samples = {p: set(first[:sample_size(1000, p)]) for p in PERCENTS}
    assert [len(samples[p]) for p in PERCENTS] == [250, 500, 750, 1000]
    assert samples[25] < samples[50] < samples[75] < samples[100]
    # a pseudo-random order, not the library's: the 25 % sample is spread over the whole id range
    positions = sorted(library.index(i) for i in samples[25])
    assert positions[0] < 100 and positions[-1] > 900


def test_adding_tracks_keeps_the_old_ones_in_their_order() -> None:
    before = [ids(500)[i] for i in map_order(ids(500))]
    grown = ids(600)
    after = [grown[i] for i in map_order(grown)]
    assert [i for i in after if i in set(before)] == before


def test_sample_sizes_round_up_and_keep_one_song_of_a_tiny_library() -> None:
    assert sample_size(0, 25) == 0
    assert sample_size(1, 25) == 1
    assert sample_size(3, 25) == 1 and sample_size(3, 50) == 2 and sample_size(3, 100) == 3


# --- the cache ---------------------------------------------------------------------------------------------
def make_cache(n: int, **meta: object):  # type: ignore[no-untyped-def]
    library = ids(n)
    rng = np.random.default_rng(1)
    codes = np.tile(np.array([[0, 1, -1]], dtype=np.int16), (n, 1))
    codes[::2, 0] = 2
    scores = np.tile(np.array([[0.7, 0.4, np.nan]], dtype=np.float32), (n, 1))
    return build_map_cache(positions=list(range(n)), item_ids=library,
                           names=[(f"Song {i} ünïcode \"quoted\"", f"Artist {i % 7}", "Album") for i in range(n)],
                           coords=rng.normal(size=(n, 2)), tag_names=["rock", "pop", "ambient"], tag_codes=codes,
                           tag_scores=scores, index_size=n + 5, projection="umap", meta=dict(meta))


@pytest.mark.parametrize("percent", PERCENTS)
def test_json_and_gzip_documents_agree_for_every_sample(percent: int) -> None:
    cache = make_cache(401, built_at="2026-12-02T10:00:00+00:00")
    raw = cache.json_bytes(percent)
    assert gzip.decompress(cache.gzip_bytes(percent)) == raw
    assert b"".join(cache.json_chunks(percent)) == raw and cache.json_length(percent) == len(raw)
    doc = json.loads(raw)
    assert doc["count"] == len(doc["items"]) == sample_size(401, percent)
    assert doc["total"] == 401 and doc["projection"] == "umap" and doc["percent"] == percent
    assert doc["built_at"] == "2026-12-02T10:00:00+00:00"
    item = doc["items"][0]
    assert set(item) == {"item_id", "title", "artist", "album", "embedding_2d", "top_mood", "mood_vector"}
    assert item["top_mood"] in ("rock", "ambient") and len(item["embedding_2d"]) == 2
    assert list(item["mood_vector"]) == [item["top_mood"], "pop"] and item["mood_vector"]["pop"] == 0.4


def test_the_samples_are_prefixes_of_the_full_map_in_map_order() -> None:
    cache = make_cache(200)
    full = [i["item_id"] for i in json.loads(cache.json_bytes(100))["items"]]
    assert full == [ids(200)[i] for i in map_order(ids(200))]
    for p in (25, 50, 75):
        assert [i["item_id"] for i in json.loads(cache.json_bytes(p))["items"]] == full[:sample_size(200, p)]


def test_every_item_of_a_map_larger_than_a_block_is_its_own_track() -> None:
    n = 9_000  # the items are written from blocks of 4,096 rows: three blocks, the last one short
    library = ids(n)
    codes = np.tile(np.array([[0, 1, -1]], dtype=np.int16), (n, 1))
    codes[::2, 0] = 2
    scores = np.tile(np.array([[0.7, 0.4, np.nan]], dtype=np.float32), (n, 1))
    scores[:, 1] = np.arange(n) / 10_000
    cache = build_map_cache(positions=list(range(n)), item_ids=library,
                            names=[(f"Song {i} x", f"Artist {i % 7}", "Album") for i in range(n)],
                            coords=np.random.default_rng(2).normal(size=(n, 2)), tag_names=["rock", "pop", "ambient"],
                            tag_codes=codes, tag_scores=scores, index_size=n, projection="umap")
    items = json.loads(cache.json_bytes(100))["items"]
    assert [i["item_id"] for i in items] == [library[i] for i in map_order(library)]
    for item in items:
        row = int(item["item_id"].split("-")[1])
        assert item["title"].startswith(f"Song {row} ") and item["artist"] == f"Artist {row % 7}"
        assert item["top_mood"] == ("ambient" if row % 2 == 0 else "rock")
        assert item["mood_vector"] == {item["top_mood"]: 0.7, "pop": pytest.approx(row / 10_000, abs=1e-3)}
        assert cache.point(row) == pytest.approx(item["embedding_2d"], abs=1e-4)


def test_points_are_by_index_position_and_none_off_the_map() -> None:
    cache = make_cache(10)
    doc = json.loads(cache.json_bytes(100))
    by_id = {i["item_id"]: i["embedding_2d"] for i in doc["items"]}
    assert list(cache.point(3)) == by_id["track-00003"]
    assert cache.point(12) is None  # the index holds 15 positions, 10 of them mapped


def test_an_empty_library_is_an_empty_map_with_a_message() -> None:
    cache = build_map_cache(positions=[], item_ids=[], names=[], coords=np.zeros((0, 2)), tag_names=[],
                            tag_codes=np.zeros((0, 3), np.int16), tag_scores=np.zeros((0, 3), np.float32),
                            index_size=0, projection="none")
    for p in PERCENTS:
        doc = json.loads(gzip.decompress(cache.gzip_bytes(p)))
        assert doc["items"] == [] and doc["count"] == doc["total"] == 0
        assert "analysis" in doc["message"]


@pytest.mark.parametrize("percent", PERCENTS)
def test_the_binary_map_round_trips_within_the_quantisation_step(percent: int) -> None:
    cache = make_cache(401, built_at="2026-12-02T10:00:00+00:00")
    data = cache.binary_bytes(percent)
    assert len(data) == cache.binary_length(percent) and b"".join(cache.binary_chunks(percent)) == data
    decoded = decode_binary_map(data)
    doc = json.loads(cache.json_bytes(percent))
    count = sample_size(401, percent)
    header = decoded.header
    assert header["count"] == count == len(decoded.coords) and header["total"] == 401 and header["percent"] == percent
    assert header["projection"] == "umap" and header["built_at"] == "2026-12-02T10:00:00+00:00"
    assert header["version"] == cache.version and header["tags"] == ["rock", "pop", "ambient"]
    # point i is the i-th item of the JSON document: same place (within half a step) and the same top tag
    x0, y0, x1, y1 = header["bounds"]
    step = np.array([(x1 - x0) / 65535, (y1 - y0) / 65535])
    expected = np.array([item["embedding_2d"] for item in doc["items"]])
    assert np.all(np.abs(decoded.coords - expected) <= step / 2 + 1e-4)
    assert [header["tags"][c] for c in decoded.codes] == [item["top_mood"] for item in doc["items"]]


def test_the_binary_map_codes_say_no_tag_and_grow_to_two_bytes_for_many_tags() -> None:
    n = 300
    codes = np.arange(n, dtype=np.int16).reshape(n, 1)
    codes[7, 0] = -1
    cache = build_map_cache(positions=list(range(n)), item_ids=ids(n), names=[("t", "a", "b")] * n,
                            coords=np.random.default_rng(0).normal(size=(n, 2)), tag_names=[f"tag {i}" for i in
                                                                                            range(n)],
                            tag_codes=codes, tag_scores=np.ones((n, 1), np.float32), index_size=n, projection="umap")
    decoded = decode_binary_map(cache.binary_bytes(100))
    by_id = {i["item_id"]: i["top_mood"] for i in json.loads(cache.json_bytes(100))["items"]}
    assert [None if c < 0 else f"tag {c}" for c in decoded.codes] == [by_id[ids(n)[i]] for i in map_order(ids(n))]
    assert cache.codes.dtype == np.uint16 and by_id["track-00007"] is None


def test_a_binary_map_of_one_point_or_none_and_what_is_not_one() -> None:
    one = build_map_cache(positions=[0], item_ids=["a"], names=[("t", "a", "b")], coords=np.array([[1.5, -2.0]]),
                          tag_names=[], tag_codes=np.full((1, 3), -1, np.int16),
                          tag_scores=np.full((1, 3), np.nan, np.float32), index_size=1, projection="pca")
    decoded = decode_binary_map(one.binary_bytes(25))
    np.testing.assert_allclose(decoded.coords, [[1.5, -2.0]])
    assert list(decoded.codes) == [-1]
    empty = make_cache(0)
    assert decode_binary_map(empty.binary_bytes(100)).coords.shape == (0, 2)
    data = one.binary_bytes(100)
    for bad in (b"", b"GIF89a" + data[6:], data[:-1]):
        with pytest.raises(ValueError):
            decode_binary_map(bad)


def test_the_map_holds_its_json_once_compressed() -> None:
    cache = make_cache(4000)
    whole = len(cache.json_bytes(100))
    # one deflate stream for every sample: less than the JSON, and the four gzip documents are not kept
    assert cache.nbytes < whole / 2
    assert sum(cache.gzip_length(p) for p in PERCENTS) > cache.nbytes
    for p in PERCENTS:
        assert gzip.decompress(cache.gzip_bytes(p)) == cache.json_bytes(p)
        assert len(cache.gzip_bytes(p)) == cache.gzip_length(p)


# --- projection --------------------------------------------------------------------------------------------
def test_too_few_tracks_for_umap_are_mapped_with_pca_and_say_why() -> None:
    x = clusters(5)  # 15 tracks: UMAP needs more than n_neighbors + 1 = 16
    projection = project_library(ids(15), x, n_neighbors=15)
    assert projection.method == "pca" and "15 tracks are too few" in (projection.fallback_reason or "")
    assert projection.coords.shape == (15, 2) and np.isfinite(projection.coords).all()


def test_a_single_track_still_gets_a_place() -> None:
    projection = project_library(ids(1), clusters(1, centres=1))
    assert projection.method == "pca" and projection.coords.shape == (1, 2)


def test_umap_is_seeded_and_keeps_clusters_apart_fitting_on_a_sample() -> None:
    x = clusters(40)  # 120 tracks in 3 tight groups
    steps: list[float] = []
    first = project_library(ids(120), x, seed=7, fit_sample=60, chunk=25,
                            progress=lambda message, share: steps.append(share))
    again = project_library(ids(120), x, seed=7, fit_sample=60, chunk=25)
    assert first.method == "umap" and first.fallback_reason is None
    assert first.params["fit_sample"] == 60 and first.params["metric"] == "cosine"
    np.testing.assert_array_equal(first.coords, again.coords)
    assert steps[0] == 0.0 and steps[-1] == 1.0 and steps == sorted(steps) and len(steps) >= 4
    centres = np.stack([first.coords[i * 40:(i + 1) * 40].mean(axis=0) for i in range(3)])
    spread = max(float(np.linalg.norm(first.coords[i * 40:(i + 1) * 40] - centres[i], axis=1).mean())
                 for i in range(3))
    gaps = [float(np.linalg.norm(centres[a] - centres[b])) for a, b in ((0, 1), (0, 2), (1, 2))]
    assert min(gaps) > 3 * spread  # the groups did not mix, including the transformed half


def test_when_umap_fails_the_map_is_pca_with_the_reason() -> None:
    # UMAP refuses a min_dist larger than its spread (1.0): a real failure of the library, not a stand-in
    projection = project_library(ids(60), clusters(20), min_dist=1.5)
    assert projection.method == "pca"
    assert (projection.fallback_reason or "").startswith("UMAP failed (ValueError")


def test_bad_vectors_are_refused_naming_them() -> None:
    x = clusters(10)
    x[3, 0] = np.nan
    with pytest.raises(DiscoveryError, match="NaN"):
        project_library(ids(30), x)
    with pytest.raises(DiscoveryError, match="do not match"):
        project_library(ids(29), clusters(10))


def test_new_tracks_land_among_the_songs_they_sound_like() -> None:
    x = clusters(20)
    coords = np.repeat(np.array([[-10.0, 0.0], [0.0, 10.0], [10.0, 0.0]]), 20, axis=0)
    coords += np.random.default_rng(2).normal(scale=0.1, size=coords.shape)
    new = clusters(2, seed=0)[[0, 2, 4]] + 0.01  # one new song near each group
    placed = place_new_tracks(x, coords, new, k=5)
    np.testing.assert_allclose(placed, [[-10, 0], [0, 10], [10, 0]], atol=0.5)
    with pytest.raises(DiscoveryError, match="no mapped track"):
        place_new_tracks(np.zeros((0, 32)), np.zeros((0, 2)), new)


def placed_by_the_whole_library(known: np.ndarray, coords: np.ndarray, new: np.ndarray, k: int) -> np.ndarray:
    """The placement rule of issue 14, as written then: every new track compared with every known one at once."""
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    similarity = unit(new) @ unit(known).T
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    weights = np.clip(np.take_along_axis(similarity, nearest, axis=1), 0.0, None).astype(np.float64)
    weights[weights.sum(axis=1) == 0] = 1.0
    return np.einsum("bk,bkc->bc", weights, coords[nearest]) / weights.sum(axis=1, keepdims=True)


def test_new_tracks_are_placed_where_comparing_with_the_whole_library_puts_them() -> None:
    known = clusters(1000, centres=6, seed=4)  # 6,000 tracks
    rng = np.random.default_rng(5)
    coords = rng.normal(size=(len(known), 2))
    new = clusters(50, centres=6, seed=9)[rng.permutation(300)] + rng.normal(scale=0.02, size=(300, 32))
    expected = placed_by_the_whole_library(known, coords, new, k=15)
    # compared a few hundred known tracks at a time, through rows of a larger matrix (the caller's copy-free way)
    larger = np.concatenate([rng.normal(size=(500, 32)), known]).astype(np.float32)
    placed = place_new_tracks(larger, coords, new, k=15, rows=np.arange(500, 500 + len(known)), batch=64,
                              chunk=700)
    np.testing.assert_allclose(placed, expected, atol=1e-5)
    np.testing.assert_allclose(place_new_tracks(known, coords, new, k=15), expected, atol=1e-5)


def test_placing_new_tracks_takes_memory_independent_of_the_library_size() -> None:
    import tracemalloc

    new = clusters(50, centres=5, seed=3)  # 250 new tracks
    peaks = {}
    for n in (10_000, 40_000):
        known = np.random.default_rng(n).normal(size=(n, 32)).astype(np.float32)
        coords = np.random.default_rng(1).normal(size=(n, 2))
        tracemalloc.start()
        place_new_tracks(known, coords, new)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # comparing with everything at once needs 4 times as much for 4 times the library (40 MB of similarities alone)
    assert peaks[40_000] < 1.2 * peaks[10_000]
    assert peaks[40_000] < 250 * 40_000 * 4


# --- the PCA fallback --------------------------------------------------------------------------------------
def test_the_pca_of_a_library_within_the_sample_is_the_exact_pca() -> None:
    x = clusters(300, centres=4, seed=6)  # 1,200 tracks
    coords = sampled_pca_2d(lambda rows: x[rows], len(x), sample=5_000, chunk=250)
    np.testing.assert_allclose(coords, pca_2d(x), atol=1e-4)
    flat = np.repeat(np.array([[1.0, 2.0, 3.0]], dtype=np.float32), 4, axis=0)  # rank 0: all at the origin
    np.testing.assert_array_equal(sampled_pca_2d(lambda rows: flat[rows], 4), np.zeros((4, 2)))
    assert sampled_pca_2d(lambda rows: x[rows], 0).shape == (0, 2)


def test_the_pca_of_a_large_library_reads_it_a_chunk_at_a_time_and_fits_a_sample() -> None:
    import tracemalloc

    centres = (np.random.default_rng(0).normal(size=(8, 200)) * 3).astype(np.float32)

    def read(rows: np.ndarray) -> np.ndarray:  # each row is made when asked for: the library is never in memory
        noise = np.random.default_rng(rows[:1] if len(rows) else 0).standard_normal((len(rows), 200), np.float32)
        noise += centres[rows % 8]
        return noise

    peaks = {}
    asked: list[int] = []
    for n in (100_000, 400_000):  # 80 and 320 MB as float32 if they were read at once
        asked.clear()
        tracemalloc.start()
        coords = sampled_pca_2d(lambda rows: (asked.append(len(rows)), read(rows))[1], n, sample=20_000,
                                chunk=10_000)
        peaks[n] = tracemalloc.get_traced_memory()[1] - coords.nbytes
        tracemalloc.stop()
        assert coords.shape == (n, 2) and max(asked) <= 20_000 and sum(asked) == 20_000 + n
    assert peaks[400_000] < 1.1 * peaks[100_000] and peaks[400_000] < 100_000 * 200 * 4
    # the axes of the sample are the library's: the groups lie where the exact PCA of the group centres puts them
    groups = np.stack([coords[np.arange(n) % 8 == g].mean(axis=0) for g in range(8)])
    exact = pca_2d(np.repeat(centres, 100, axis=0))[::100]
    for axis in range(2):
        assert abs(np.corrcoef(groups[:, axis], exact[:, axis])[0, 1]) > 0.99
