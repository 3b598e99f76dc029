"""Song path with its first queries asked in one batch (IndexQueries.neighbours_batch) finds the very path it finds
asking one target at a time, on a real Voyager index and catalogue."""

from __future__ import annotations

import numpy as np
import pytest

from discovery.catalog import Catalog
from discovery.path import song_path
from voyager_manager import LoadedIndex, build_index


def _library(count: int = 400, dims: int = 16) -> LoadedIndex:
    rng = np.random.default_rng(29)
    vectors = rng.normal(size=(count, dims)).astype(np.float32)
    item_ids = [f"t{i:04d}" for i in range(count)]
    rows = [(item_id, True, f"Song {i}", f"Artist {i % 40}", "Album", 200.0, 120.0, "8A", 0.5, {})
            for i, item_id in enumerate(item_ids)]
    return LoadedIndex(name="test", index=build_index(item_ids, vectors), catalog=Catalog.build(item_ids, rows),
                       sha256="")


def test_a_batch_of_queries_answers_as_the_queries_one_by_one() -> None:
    loaded = _library()
    vectors = np.random.default_rng(3).normal(size=(12, 16)).astype(np.float32)
    one_by_one = loaded.queries(query_ef=200)
    assert loaded.queries(query_ef=200).neighbours_batch(vectors, 10) == [one_by_one.neighbours(v, 10)
                                                                           for v in vectors]


@pytest.mark.parametrize("steps", [3, 8, 25])
@pytest.mark.parametrize("exact_length", [False, True])
def test_song_path_with_batched_queries_is_the_same_path(steps: int, exact_length: bool) -> None:
    loaded = _library()
    pairs = [("t0001", "t0200"), ("t0017", "t0350"), ("t0123", "t0124")]
    for start_id, end_id in pairs:
        results = []
        for batched in (False, True):
            queries = loaded.queries(query_ef=200)
            found = queries.lookup([start_id, end_id])
            results.append(song_path(found[start_id], found[end_id], steps=steps, neighbours=queries.neighbours,
                                     lookup=queries.lookup, max_per_artist=2, exact_length=exact_length,
                                     neighbours_batch=queries.neighbours_batch if batched else None))
        single, batch = results
        assert [t.item_id for t in batch.tracks] == [t.item_id for t in single.tracks]
        assert batch.step_distances == single.step_distances and batch.missed_reasons == single.missed_reasons
