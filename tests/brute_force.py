"""A brute-force stand-in for the index in discovery unit tests: exact cosine neighbours over a dict of TrackInfo,
recording each k it is asked for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from discovery.types import Lookup, Neighbours, TrackInfo, cosine_distance


class Library:
    def __init__(self, tracks: Sequence[TrackInfo]) -> None:
        self.tracks = {t.item_id: t for t in tracks}
        self.queries: list[int] = []

    def neighbours(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        self.queries.append(k)
        scored = sorted((cosine_distance(vector, t.vector), t.item_id) for t in self.tracks.values())
        return [(item_id, d) for d, item_id in scored[:k]]

    def lookup(self, ids: Sequence[str]) -> dict[str, TrackInfo]:
        return {i: self.tracks[i] for i in ids if i in self.tracks}


def brute_force(tracks: Mapping[str, TrackInfo], calls: list[int] | None = None) -> tuple[Neighbours, Lookup]:
    """The (neighbours, lookup) pair discovery functions take, over `tracks`; each k asked for is appended to
    `calls` when given."""
    library = Library(list(tracks.values()))
    if calls is not None:
        library.queries = calls
    return library.neighbours, library.lookup
