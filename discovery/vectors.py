"""Vector arithmetic of discovery: norms, unit vectors, cosine distance, and the one near-duplicate rule.

The near-duplicate rule (similar songs, song path, alchemy, fingerprint): a candidate is a near-duplicate of a kept
song when `cosine_distance` to that song's vector is *strictly* below the threshold. A threshold of 0 switches the
rule off (only a copy whose distance rounds below zero would still count). A zero vector is at distance 1 from
everything.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["NearDuplicates", "cosine_distance", "norm", "unit"]

# Distances this close to the threshold are decided by cosine_distance itself: the matrix form rounds differently
# (float32 vectors carry ~1e-7 · dimensions of rounding at worst).
_BAND = 1e-4


def norm(x: np.ndarray) -> Any:
    """np.linalg.norm(x) of a real vector, the same arithmetic in the same dtype, without the general function's
    overhead (it runs hundreds of times per request)."""
    if not issubclass(x.dtype.type, np.inexact):
        x = x.astype(float)
    flat = x.ravel(order="K")
    return np.sqrt(flat.dot(flat))


def unit(vector: np.ndarray) -> tuple[np.ndarray, float]:
    """(vector / its norm, the norm) in float64; a zero vector comes back unchanged with norm 0."""
    v = np.asarray(vector, dtype=np.float64)
    length = math.sqrt(float(v @ v))
    return (v / length if length > 0.0 else v), length


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 − cos(a, b), in [0, 2]; the metric of the index."""
    a, b = np.asarray(a), np.asarray(b)
    denominator = float(norm(a) * norm(b))
    if denominator == 0.0:
        return 1.0
    return float(1.0 - np.dot(a, b) / denominator)


class NearDuplicates:
    """The kept songs' vectors, checked against the near-duplicate rule in one matrix-vector product."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._vectors: list[np.ndarray] = []
        self._rows: np.ndarray | None = None  # unit rows; capacity doubles as songs are kept
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, vector: np.ndarray) -> None:
        """Keep `vector` (d,): later candidates are checked against it."""
        vector = np.asarray(vector)
        row, _ = unit(vector)
        if self._rows is None:
            self._rows = np.zeros((16, row.shape[0]), dtype=np.float64)
        elif self._count == self._rows.shape[0]:
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows)])
        self._rows[self._count] = row
        self._vectors.append(vector)
        self._count += 1

    def is_near(self, vector: np.ndarray) -> bool:
        """Whether `vector` lies strictly closer than the threshold to a kept vector (by `cosine_distance`)."""
        if self._count == 0 or self._rows is None:
            return False
        v, length = unit(vector)
        distances = 1.0 - self._rows[: self._count] @ v if length > 0.0 else np.ones(self._count)
        if bool((distances < self.threshold - _BAND).any()):
            return True
        borderline = np.flatnonzero(np.abs(distances - self.threshold) <= _BAND)
        return any(cosine_distance(vector, self._vectors[i]) < self.threshold for i in borderline)

    def copy(self) -> NearDuplicates:
        """An independent copy (for tentative selections that may be rolled back)."""
        clone = NearDuplicates(self.threshold)
        clone._vectors = list(self._vectors)
        clone._rows = None if self._rows is None else self._rows.copy()
        clone._count = self._count
        return clone
