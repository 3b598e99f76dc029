"""Substring search of titles, artists and albums held in memory, fast on 100k tracks without a trigram index.

Each field of every track is folded (case and accents ignored) and joined into one string per field, the tracks
in ranking order (shorter titles first, then artist, then title). A search scans the title string, then the artist
string, then the album string with `str.find`, which stops as soon as `limit` tracks are found: the first hits are
already the best ranked, and a query that matches nothing costs three scans of a few megabytes.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from discovery.textfold import fold

__all__ = ["FIELDS", "KeywordIndex", "fold"]

FIELDS = ("title", "artist", "album")
_SEPARATOR = "\x1f"  # cannot occur in folded text (control characters are dropped), so no match spans two tracks


@dataclass(frozen=True)
class KeywordIndex:
    """`order[i]` is the caller's row of the i-th track in ranking order; `texts[f]` the folded field f of all
    tracks joined, and `starts[f][i]` where track i begins in it."""

    order: tuple[int, ...]
    texts: tuple[str, str, str]
    starts: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]

    @classmethod
    def build(cls, names: Sequence[tuple[str, str, str | None] | None]) -> KeywordIndex:
        """From (title, artist, album) per row (None for a row that cannot be searched)."""
        rows = [(i, n) for i, n in enumerate(names) if n is not None]
        rows.sort(key=lambda r: (len(r[1][0]), fold(r[1][1]), fold(r[1][0]), r[0]))
        texts, starts = [], []
        for field in range(3):
            folded = [fold(n[field] or "") for _, n in rows]
            offsets, at = [], 0
            for text in folded:
                offsets.append(at)
                at += len(text) + 1
            texts.append(_SEPARATOR.join(folded) + _SEPARATOR)
            starts.append(tuple(offsets))
        return cls(tuple(i for i, _ in rows), (texts[0], texts[1], texts[2]), (starts[0], starts[1], starts[2]))

    def __len__(self) -> int:
        return len(self.order)

    def moved(self, rows: np.ndarray) -> KeywordIndex:
        """This index with each caller's row r renamed `rows[r]` (-1: no longer searchable; never found), the texts
        shared: the index of the same tracks under the rows of a new index until it is built again."""
        order = np.asarray(self.order, dtype=np.int64)
        renamed = np.where(order >= 0, rows[np.maximum(order, 0)], -1) if len(order) else order
        return KeywordIndex(tuple(renamed.tolist()), self.texts, self.starts)

    @property
    def nbytes(self) -> int:
        return sum(len(t) for t in self.texts) + 8 * (len(self.order) * 4)

    def search(self, text: str, *, limit: int) -> list[tuple[int, str]]:
        """(row, field) of up to `limit` tracks whose title, artist or album contains `text`; title matches first,
        then artist, then album, each in ranking order; a track is listed once, under its first matching field."""
        needle = fold(text).strip()
        if not needle or limit <= 0:
            return []
        found: list[tuple[int, str]] = []
        seen: set[int] = set()
        for field, (haystack, starts) in enumerate(zip(self.texts, self.starts, strict=True)):
            at = haystack.find(needle)
            while at >= 0 and len(found) < limit:
                track = bisect.bisect_right(starts, at) - 1
                if track not in seen:
                    seen.add(track)
                    if self.order[track] >= 0:
                        found.append((self.order[track], FIELDS[field]))
                next_start = starts[track + 1] if track + 1 < len(starts) else len(haystack)
                at = haystack.find(needle, next_start)
            if len(found) >= limit:
                break
        return found
