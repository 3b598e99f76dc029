"""Caches moved onto a new index (IndexHolder movers): rows of tracks the new index no longer holds stay, at
position -1, shared rather than copied, and are never found; a second move keeps them at -1."""

from __future__ import annotations

from typing import Any

import numpy as np

from discovery.keyword_index import KeywordIndex
from services.text_search import ClapLibrary, move_clap_library, search_clap


class FixedQuery:
    """A text model whose every query embeds to one vector (the CLAP text encoder is not what is tested here)."""

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector

    def embed(self, query: str) -> tuple[Any, np.ndarray]:
        return None, self.vector


def test_a_moved_clap_library_skips_the_gone_rows_and_still_answers_the_limit() -> None:
    matrix = np.eye(5, dtype=np.float32)
    matrix[:, 0] += np.array([0.9, 0.8, 0.7, 0.6, 0.5], dtype=np.float32)  # every row near axis 0, row 0 nearest
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    library = ClapLibrary(np.arange(5, dtype=np.int64), matrix, "clap-model", {})
    model = FixedQuery(np.eye(5, dtype=np.float32)[0])
    assert [p for p, _ in search_clap(model, library, "q", limit=3)] == [0, 1, 2]  # type: ignore[arg-type]

    moved = move_clap_library(library, None, np.array([3, -1, 0, 2, 1]))  # type: ignore[arg-type]
    assert moved.matrix is library.matrix and moved.gone == 1 and moved.positions.tolist() == [3, -1, 0, 2, 1]
    # row 1 (the second nearest) is gone: the three nearest held tracks, at their new positions
    assert [p for p, _ in search_clap(model, moved, "q", limit=3)] == [3, 0, 2]  # type: ignore[arg-type]

    again = move_clap_library(moved, None, np.array([1, 0, 4, -1]))  # type: ignore[arg-type]
    assert again.positions.tolist() == [-1, -1, 1, 4, 0] and again.gone == 2
    assert [p for p, _ in search_clap(model, again, "q", limit=5)] == [1, 4, 0]  # type: ignore[arg-type]


def test_a_moved_keyword_index_never_finds_a_gone_row_even_after_a_second_move() -> None:
    index = KeywordIndex.build([("Song A", "X", None), ("Song B", "X", None), ("Song C", "X", None)])
    moved = index.moved(np.array([2, -1, 0]))
    assert sorted(row for row, _ in moved.search("song", limit=10)) == [0, 2]
    again = moved.moved(np.array([-1, 5, 7]))
    assert sorted(row for row, _ in again.search("song", limit=10)) == [7]  # once: the gone row is not read as the last
