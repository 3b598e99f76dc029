"""The compressed similarity index (INDEX_STORAGE e4m3, the default): the web process answers with the exact nearest
tracks and exact distances, re-ranked from the float32 vectors file it keeps in DATA_DIR/index; the file is reused by
the next load, grown in place by an update in place, and written again for another index; a stored index of another
storage is rebuilt whole."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import voyager

from audio.musicnn import MODEL_NAME
from discovery.exclusions import Exclusions
from index_vectors import vectors_file
from tests.seeded_library import insert_track
from voyager_manager import IndexUpdate, LoadedIndex, load_index, update_index

DIMENSIONS = 16
QUERY_EF = 500


def _seed(db: Any, rng: np.random.Generator, start: int, count: int) -> dict[str, np.ndarray]:
    seeded = {}
    for i in range(start, start + count):
        vector = rng.normal(size=DIMENSIONS).astype(np.float32)
        insert_track(db, item_id=f"t{i:04d}", title=f"Song {i}", artist=f"Artist {i}", vector=vector)
        seeded[f"t{i:04d}"] = vector
    return seeded


def _update(db: Any, redis: Any, config: Any, folder: Path, *, storage: str = "e4m3",
            full: bool = False) -> IndexUpdate:
    return update_index(db, redis, name=config.INDEX_NAME, model=MODEL_NAME, channel=config.INDEX_RELOAD_CHANNEL,
                        m=16, ef_construction=200, rebuild_share=0.2, storage=storage, folder=folder, full=full)


def _exact_top(library: dict[str, np.ndarray], query: np.ndarray, k: int) -> list[tuple[str, float]]:
    ids = list(library)
    matrix = np.stack([library[i] for i in ids])
    cosine = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)) @ (query / np.linalg.norm(query))
    order = np.argsort(-cosine, kind="stable")[:k]
    return [(ids[i], float(1 - cosine[i])) for i in order]


def _assert_exact(loaded: LoadedIndex, library: dict[str, np.ndarray], queries: np.ndarray) -> None:
    lookups = loaded.queries(query_ef=QUERY_EF)
    single = [lookups.neighbours(q, 10) for q in queries]
    for q, got, batched in zip(queries, single, lookups.neighbours_batch(queries, 10), strict=True):
        want = _exact_top(library, q, 10)
        assert [i for i, _ in got] == [i for i, _ in want]
        np.testing.assert_allclose([d for _, d in got], [d for _, d in want], atol=1e-5)
        assert batched == got


def test_a_compressed_index_answers_with_the_exact_neighbours_and_vectors(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    library = _seed(db, np.random.default_rng(5), 0, 300)
    assert _update(db, redis, config, folder, full=True).full
    loaded = load_index(db, config.INDEX_NAME, folder=folder)
    assert loaded is not None and loaded.index.storage_data_type == voyager.StorageDataType.E4M3
    assert loaded.exact is not None and loaded.exact.path == vectors_file(folder, config.INDEX_NAME)
    queries = np.random.default_rng(6).normal(size=(30, DIMENSIONS)).astype(np.float32)
    _assert_exact(loaded, library, queries)
    # the index alone holds rounded vectors; the tracks carry the exact ones
    position = loaded.position("t0007")
    exact = library["t0007"] / np.linalg.norm(library["t0007"])
    assert not np.allclose(loaded.index.get_vectors([position])[0], exact, atol=1e-4)
    np.testing.assert_allclose(loaded.tracks([position])[0].vector, exact, atol=1e-6)


def test_the_vectors_file_is_reused_grown_by_an_update_and_rewritten_for_another_index(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    rng = np.random.default_rng(8)
    library = _seed(db, rng, 0, 200)
    _update(db, redis, config, folder, full=True)
    first = load_index(db, config.INDEX_NAME, folder=folder)
    path = vectors_file(folder, config.INDEX_NAME)
    written = os.stat(path)
    again = load_index(db, config.INDEX_NAME, folder=folder)  # `first` holds the file open: a new one is a new inode
    assert again is not None and os.stat(path).st_ino == written.st_ino  # read, not written again

    library.update(_seed(db, rng, 200, 10))
    update = _update(db, redis, config, folder)
    assert not update.full and update.added == 10
    grown = load_index(db, config.INDEX_NAME, folder=folder, previous=first)
    assert grown is not None and grown.exact is not None and grown.exact.rows == 210
    assert os.stat(path).st_ino == written.st_ino  # grown in place, not written whole
    _assert_exact(grown, library, rng.normal(size=(20, DIMENSIONS)).astype(np.float32))

    # a rebuild, every track at its position still, one of them with a new vector: the file is written again
    library["t0005"] = rng.normal(size=DIMENSIONS).astype(np.float32)
    db.execute("UPDATE embeddings SET vector = %s WHERE item_id = 't0005'", (library["t0005"].tobytes(),))
    _update(db, redis, config, folder, full=True)
    rebuilt = load_index(db, config.INDEX_NAME, folder=folder, previous=grown)
    assert rebuilt is not None and rebuilt.exact is not None
    assert os.stat(path).st_ino != written.st_ino
    _assert_exact(rebuilt, library, np.concatenate([library["t0005"][None, :],
                                                    rng.normal(size=(20, DIMENSIONS)).astype(np.float32)]))
    # without DATA_DIR the vectors go to an unnamed temporary file
    bare = load_index(db, config.INDEX_NAME)
    assert bare is not None and bare.exact is not None and bare.exact.path is None
    _assert_exact(bare, library, rng.normal(size=(5, DIMENSIONS)).astype(np.float32))


def test_a_float32_index_holds_its_vectors_and_a_change_of_storage_rebuilds_it(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    rng = np.random.default_rng(9)
    library = _seed(db, rng, 0, 120)
    _update(db, redis, config, folder, storage="float32", full=True)
    loaded = load_index(db, config.INDEX_NAME, folder=folder)
    assert loaded is not None and loaded.exact is None and not vectors_file(folder, config.INDEX_NAME).exists()
    _assert_exact(loaded, library, rng.normal(size=(10, DIMENSIONS)).astype(np.float32))

    library.update(_seed(db, rng, 120, 3))
    update = _update(db, redis, config, folder, storage="e4m3")
    assert update.full and "INDEX_STORAGE asks for e4m3" in update.reason
    compressed = load_index(db, config.INDEX_NAME, folder=folder)
    assert compressed is not None and compressed.exact is not None
    _assert_exact(compressed, library, rng.normal(size=(10, DIMENSIONS)).astype(np.float32))


def test_exclusions_re_ranking_a_tiny_re_analysis_and_a_deleted_track(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    rng = np.random.default_rng(12)
    library = {}
    for i in range(240):
        vector = rng.normal(size=DIMENSIONS).astype(np.float32)
        insert_track(db, item_id=f"t{i:04d}", title=f"Song {i}", artist="Blocked" if i % 3 == 0 else f"Artist {i}",
                     vector=vector)
        library[f"t{i:04d}"] = vector
    _update(db, redis, config, folder, full=True)
    first = load_index(db, config.INDEX_NAME, folder=folder)
    assert first is not None and first.exact is not None

    # only the allowed tracks, in exact order, at exact distances
    allowed = {i: v for i, v in library.items() if int(i[1:]) % 3}
    lookups = first.queries(query_ef=QUERY_EF, exclusions=Exclusions.of(artists=["blocked"]))
    for q in rng.normal(size=(15, DIMENSIONS)).astype(np.float32):
        got, want = lookups.neighbours(q, 10), _exact_top(allowed, q, 10)
        assert [i for i, _ in got] == [i for i, _ in want]
        np.testing.assert_allclose([d for _, d in got], [d for _, d in want], atol=1e-5)

    # a re-analysis too small for the index's rounding keeps the track's position; its exact row is the new vector
    nudged = library["t0010"] * np.float32(1.00001)
    nudged[0] += np.float32(1e-5)
    db.execute("UPDATE embeddings SET vector = %s, created_at = now() WHERE item_id = 't0010'", (nudged.tobytes(),))
    library["t0011"] = rng.normal(size=DIMENSIONS).astype(np.float32)  # and a new track, so the index changes
    insert_track(db, item_id="t0011x", title="New", artist="New", vector=library["t0011"])
    update = _update(db, redis, config, folder)
    assert not update.full and (update.added, update.removed) == (1, 0)
    grown = load_index(db, config.INDEX_NAME, folder=folder, previous=first)
    assert grown is not None and grown.exact is not None and grown.position("t0010") == first.position("t0010")
    np.testing.assert_allclose(grown.tracks([grown.position("t0010")])[0].vector, nudged / np.linalg.norm(nudged),
                               atol=1e-6)

    # a held track whose embedding is gone (deleted, the index not updated yet) keeps the index's own vector
    position = grown.position("t0020")
    rounded = grown.index.get_vectors([position])[0]
    db.execute("DELETE FROM tracks WHERE item_id = 't0020'")
    (folder / "music_library.vectors").unlink()
    bare = load_index(db, config.INDEX_NAME, folder=folder)
    assert bare is not None and bare.exact is not None
    np.testing.assert_allclose(bare.exact.get([position])[0], rounded / np.linalg.norm(rounded), atol=1e-6)
