"""The float32 vectors file of a compressed index (index_vectors): rows written at their positions in any order and
read back unit length, zeros where none was given, another index's file refused, grown in place for an update that
keeps every position (changed kept rows written again), and candidates ordered by exact cosine."""

from __future__ import annotations

import os

import numpy as np
import pytest

from index_vectors import ExactVectors, vectors_file


def _rows(vectors: np.ndarray, positions: list[int]) -> list[tuple[int, bytes]]:
    return [(p, vectors[p].astype("<f4").tobytes()) for p in positions]


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_rows_come_back_unit_length_at_their_positions(tmp_path):
    vectors = np.random.default_rng(1).normal(size=(50, 8)).astype(np.float32) * 3
    given = [p for p in range(50) if p != 7]
    shuffled = list(np.random.default_rng(2).permutation(given))
    exact = ExactVectors.write(tmp_path, "lib", sha256="a" * 64, rows=50, dimensions=8,
                               vectors=_rows(vectors, [int(p) for p in shuffled]))
    got = exact.get([3, 7, 49, 0])
    np.testing.assert_allclose(got[[0, 2, 3]], _unit(vectors)[[3, 49, 0]], atol=1e-6)
    assert not got[1].any()  # position 7 had no vector
    with pytest.raises(IndexError):
        exact.get([50])
    reopened = ExactVectors.open(vectors_file(tmp_path, "lib"), "a" * 64)
    assert reopened is not None and (reopened.rows, reopened.dimensions) == (50, 8)
    np.testing.assert_array_equal(reopened.get(list(range(50))), exact.get(list(range(50))))


def test_a_file_of_another_index_or_cut_short_is_not_used(tmp_path):
    vectors = np.ones((4, 3), dtype=np.float32)
    ExactVectors.write(tmp_path, "lib", sha256="a" * 64, rows=4, dimensions=3, vectors=_rows(vectors, [0, 1, 2, 3]))
    path = vectors_file(tmp_path, "lib")
    assert ExactVectors.open(path, "b" * 64) is None
    assert ExactVectors.open(tmp_path / "missing.vectors", "a" * 64) is None
    os.truncate(path, os.path.getsize(path) - 4)
    assert ExactVectors.open(path, "a" * 64) is None


def test_an_update_grows_the_file_in_place_and_the_old_reader_keeps_its_rows(tmp_path):
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(30, 6)).astype(np.float32)
    old = ExactVectors.write(tmp_path, "lib", sha256="a" * 64, rows=20, dimensions=6,
                             vectors=_rows(vectors, list(range(20))))
    inode = os.stat(vectors_file(tmp_path, "lib")).st_ino
    grown = old.extended(sha256="b" * 64, rows=30, vectors=_rows(vectors, list(range(20, 30))))
    assert grown is not None and grown.rows == 30 and grown.sha256 == "b" * 64
    assert os.stat(vectors_file(tmp_path, "lib")).st_ino == inode  # grown, not rewritten
    np.testing.assert_allclose(grown.get(list(range(30))), _unit(vectors), atol=1e-6)
    np.testing.assert_allclose(old.get(list(range(20))), _unit(vectors[:20]), atol=1e-6)
    assert ExactVectors.open(vectors_file(tmp_path, "lib"), "a" * 64) is None  # the header is the new index's
    # the old reader's file is now another index's: growing it again is refused (built whole instead)
    assert old.extended(sha256="c" * 64, rows=31, vectors=[]) is None
    # a kept position whose vector changed is written again; one of another size is left out
    changed = rng.normal(size=6).astype("<f4")
    again = grown.extended(sha256="c" * 64, rows=31, vectors=[(5, changed.tobytes()), (30, b"\0" * 8)])
    assert again is not None and again.rows == 31
    np.testing.assert_allclose(again.get([5])[0], changed / np.linalg.norm(changed), atol=1e-6)
    assert not again.get([30]).any()
    with pytest.raises(ValueError):
        again.extended(sha256="d" * 64, rows=31, vectors=_rows(vectors, [0]) + [(31, vectors[0].tobytes())])


def test_candidates_are_ordered_by_exact_cosine(tmp_path):
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(40, 10)).astype(np.float32)
    exact = ExactVectors.write(None, "lib", sha256="a" * 64, rows=40, dimensions=10,
                               vectors=_rows(vectors, list(range(40))))
    assert exact.path is None  # an unnamed temporary file
    query = rng.normal(size=10).astype(np.float32)
    candidates = list(rng.permutation(40)[:25])
    positions, distances = exact.rerank(query, candidates, 5)
    cosine = _unit(vectors) @ (query / np.linalg.norm(query))
    expected = sorted(candidates, key=lambda p: -cosine[p])[:5]
    assert positions == [int(p) for p in expected]
    np.testing.assert_allclose(distances, 1 - cosine[expected], atol=1e-6)
    assert exact.rerank(query, [], 5) == ([], [])


def test_a_batch_of_queries_is_ordered_as_each_alone_with_shared_rows_read_once(tmp_path):
    rng = np.random.default_rng(6)
    vectors = rng.normal(size=(60, 12)).astype(np.float32)
    exact = ExactVectors.write(None, "lib", sha256="a" * 64, rows=60, dimensions=12,
                               vectors=_rows(vectors, list(range(60))))
    queries = rng.normal(size=(7, 12)).astype(np.float32)
    queries[3] = 0  # a zero query: cosine 0 against every row, ties in the given order
    candidates = np.stack([rng.permutation(np.arange(i * 5, i * 5 + 20)) for i in range(7)])  # overlapping rows
    read: list[int] = []
    get = exact.get
    exact.get = lambda positions: (read.extend(positions), get(positions))[1]  # type: ignore[method-assign]
    batch = exact.rerank_batch(queries, candidates, 6)
    assert sorted(read) == sorted(set(candidates.ravel().tolist()))  # each shared row once
    exact.get = get  # type: ignore[method-assign]
    assert batch == [exact.rerank(q, row.tolist(), 6) for q, row in zip(queries, candidates, strict=True)]
    assert exact.rerank_batch(queries[:0], candidates[:0], 6) == []


def test_a_row_cut_short_reads_as_zeros(tmp_path):
    vectors = np.ones((5, 4), dtype=np.float32)
    exact = ExactVectors.write(tmp_path, "lib", sha256="a" * 64, rows=5, dimensions=4,
                               vectors=_rows(vectors, list(range(5))))
    path = vectors_file(tmp_path, "lib")
    os.truncate(path, os.path.getsize(path) - 8)  # the open handle now reads half of the last row
    got = exact.get([4, 0])
    assert not got[0].any() and np.allclose(got[1], 0.5)
