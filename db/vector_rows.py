"""Embeddings streamed from a server-side cursor into one float32 array, a row at a time: the array is sized by a
count taken first and grown if rows arrive meanwhile, so a million vectors cost their array (800 MB), not their rows'
bytes, a join and a converted copy besides."""

from __future__ import annotations

import numpy as np

__all__ = ["VectorRows"]


class VectorRows:
    """append() each row's little-endian float32 bytes; array() the rows so far (a view of the array)."""

    def __init__(self, expected: int, *, model: str, grow_by: int) -> None:
        self.model = model
        self.expected = expected
        self.grow_by = grow_by
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, item_id: str, vector: bytes | memoryview) -> int:
        """Store the row; its index. ValueError when its size differs from the first row's."""
        row = np.frombuffer(vector, dtype="<f4")
        n = self._n
        if n == 0:
            self._matrix = np.empty((max(self.expected, 1), len(row)), dtype=np.float32)
        elif len(row) != self._matrix.shape[1]:
            raise ValueError(f"the {self.model} embedding of {item_id!r} has {len(row)} dimensions, not "
                             f"{self._matrix.shape[1]} like the others")
        if n == len(self._matrix):  # rows stored since the count
            self._matrix = np.concatenate([self._matrix, np.empty((max(n // 8, self.grow_by),
                                                                   self._matrix.shape[1]), np.float32)])
        self._matrix[n] = row
        self._n = n + 1
        return n

    def array(self) -> np.ndarray:
        """The rows appended, (n, d); a view (rows counted but never read leave a few unused rows behind it)."""
        return self._matrix[:self._n]

    @property
    def full(self) -> bool:
        """Whether the array holds exactly the rows appended (no spare rows behind the view)."""
        return len(self._matrix) == self._n
