"""The music map as the web process serves it: the mapped tracks in a fixed pseudo-random order, serialized once.

`/api/map?percent=p` answers the first p % of that order (so the 25 % sample is inside the 50 % one, and the same
songs at every rebuild of the same library). The items are serialized to JSON once, as one byte string whose
prefixes are the samples; each sample's gzip document is compressed once. At 100k tracks that is about 20 MB of
JSON and 12 MB of gzip, instead of a Python object per track and field (bench/RESULTS.md).
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from discovery.map_projection import map_order

__all__ = ["PERCENTS", "MapCache", "build_map_cache", "sample_size"]

PERCENTS = (25, 50, 75, 100)
EMPTY_MESSAGE = "Nothing has been analyzed yet: run an analysis and the map fills in."
_SERVE_CHUNK = 1 << 20


def sample_size(total: int, percent: int) -> int:
    """How many of `total` mapped tracks the `percent` % sample holds (at least one of a non-empty map)."""
    if total == 0:
        return 0
    return max(1, math.ceil(total * percent / 100))


@dataclass(frozen=True)
class MapCache:
    """The serialized map. `points` is (n, 2) float32 by index position (NaN: not on the map), for drawing songs
    that are not in the sample a page loaded (a song path's steps)."""

    projection: str
    total: int
    meta: dict[str, Any]
    points: np.ndarray
    _body: bytes = field(repr=False)
    _ends: dict[int, int] = field(repr=False)  # percent -> end of that sample's items in _body
    _gzip: dict[int, bytes] = field(repr=False)

    def _head(self, percent: int) -> bytes:
        head = {**self.meta, "projection": self.projection, "percent": percent,
                "count": sample_size(self.total, percent), "total": self.total}
        return json.dumps(head, separators=(",", ":"))[:-1].encode() + b',"items":['

    def json_chunks(self, percent: int) -> Iterator[bytes]:
        """The JSON document of the `percent` sample, in chunks of at most 1 MiB (no copy of the whole)."""
        yield self._head(percent)
        body = memoryview(self._body)[:self._ends[percent]]
        for start in range(0, len(body), _SERVE_CHUNK):
            yield bytes(body[start:start + _SERVE_CHUNK])
        yield b"]}"

    def json_length(self, percent: int) -> int:
        return len(self._head(percent)) + self._ends[percent] + 2

    def json_bytes(self, percent: int) -> bytes:
        return b"".join(self.json_chunks(percent))

    def gzip_bytes(self, percent: int) -> bytes:
        return self._gzip[percent]

    def point(self, position: int) -> tuple[float, float] | None:
        x, y = self.points[position]
        if math.isnan(x):
            return None
        return round(float(x), 4), round(float(y), 4)

    @property
    def nbytes(self) -> int:
        return len(self._body) + sum(len(g) for g in self._gzip.values()) + self.points.nbytes


def build_map_cache(*, positions: Sequence[int], item_ids: Sequence[str], names: Sequence[tuple[str, str, str]],
                    coords: np.ndarray, tag_names: Sequence[str], tag_codes: np.ndarray, tag_scores: np.ndarray,
                    index_size: int, projection: str, meta: dict[str, Any] | None = None,
                    gzip_level: int = 6) -> MapCache:
    """The cache of the mapped tracks: `positions` (their index positions), `item_ids`, `names` ((title, artist,
    album) each), `coords` (n, 2), and their top tags as `tag_codes` (n, k) into `tag_names` (-1: none) with
    `tag_scores` (n, k). `index_size` sizes the by-position point table; `meta` goes into every document."""
    n = len(item_ids)
    xy = np.asarray(coords, dtype=np.float32).reshape(n, 2)
    if not (len(positions) == len(names) == n == tag_codes.shape[0] == tag_scores.shape[0]):
        raise ValueError("map columns differ in length")
    meta = dict(meta or {})
    if n == 0:
        meta.setdefault("message", EMPTY_MESSAGE)
    points = np.full((index_size, 2), np.nan, dtype=np.float32)
    if n:
        points[np.asarray(positions, dtype=np.int64)] = xy
    pieces: list[bytes] = []
    for i in map_order(item_ids).tolist():
        title, artist, album = names[i]
        mood_vector = {tag_names[c]: round(float(s), 3)
                       for c, s in zip(tag_codes[i].tolist(), tag_scores[i].tolist(), strict=True) if c >= 0}
        item = {"item_id": item_ids[i], "title": title, "artist": artist, "album": album,
                "embedding_2d": [round(float(xy[i, 0]), 4), round(float(xy[i, 1]), 4)],
                "top_mood": tag_names[tag_codes[i, 0]] if tag_codes.shape[1] and tag_codes[i, 0] >= 0 else None,
                "mood_vector": mood_vector}
        pieces.append(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode())
    # the end of the first k items in the comma-joined body: their lengths plus k - 1 commas
    lengths = np.cumsum([len(piece) + 1 for piece in pieces]) - 1
    ends = {p: int(lengths[sample_size(n, p) - 1]) if n else 0 for p in PERCENTS}
    body = b",".join(pieces)
    del pieces
    cache = MapCache(projection=projection, total=n, meta=meta, points=points, _body=body, _ends=ends, _gzip={})
    for p in PERCENTS:
        cache._gzip[p] = gzip.compress(cache.json_bytes(p), compresslevel=gzip_level, mtime=0)
    return cache
