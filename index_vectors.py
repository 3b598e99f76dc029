"""The exact (float32) vectors of a compressed index, kept in a file and read a few rows at a time.

A Voyager index stored as E4M3 holds each vector in a byte a dimension (a third of float32), which alone finds the
true 10 nearest songs ~94 % of the time. The web process asks it for a few more candidates than it needs and orders
them again by exact cosine on the float32 vectors from this file (issue 29: recall@10 0.9975 at a million tracks).
The rows are read with `pread`, so they live in the kernel's page cache, not in the process: the OS keeps the rows
in use and can drop the rest, and the web process's resident size does not grow with them.

Layout: a 4,096-byte header (magic, the sha256 of the index the rows belong to, rows, dimensions), then one
little-endian float32 row a position, unit length (a cosine index's own normalisation); positions without a vector
(deleted in place) are zeros.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

__all__ = ["ExactVectors", "vectors_file"]

log = logging.getLogger(__name__)

_MAGIC = b"AUDIOMUSE VECTORS 1\n"
_HEADER = 4096
_LAYOUT = struct.Struct("<20s64sQI")


def vectors_file(folder: Path, name: str) -> Path:
    """Where the exact vectors of the stored index `name` are kept in `folder` (DATA_DIR/index)."""
    return folder / f"{name}.vectors"


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    rows = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1.0)).astype("<f4")


class ExactVectors:
    """Read-only rows of one vectors file (its handle stays open: a file renamed over it later does not change
    what this object reads)."""

    def __init__(self, handle: int, *, sha256: str, rows: int, dimensions: int, path: Path | None) -> None:
        self._fd = handle
        self.sha256 = sha256
        self.rows = rows
        self.dimensions = dimensions
        self.path = path
        self._row_bytes = 4 * dimensions

    def __del__(self) -> None:
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass

    def __len__(self) -> int:
        return self.rows

    def get(self, positions: Sequence[int]) -> np.ndarray:
        """The unit float32 vectors at `positions`, shape (len(positions), d), in that order."""
        out = np.zeros((len(positions), self.dimensions), dtype="<f4")
        size = self._row_bytes
        rows = out.data.cast("B")
        for i, position in enumerate(positions):
            if not 0 <= position < self.rows:
                raise IndexError(f"position {position} is outside the {self.rows} rows of the vectors file")
            # read straight into the row: no bytes object a row (a song path reads ~700)
            if os.preadv(self._fd, [rows[i * size:(i + 1) * size]], _HEADER + int(position) * size) != size:
                out[i] = 0  # cut short: as if deleted
        return out.astype(np.float32, copy=False)

    def rerank(self, query: np.ndarray, positions: Sequence[int], k: int) -> tuple[list[int], list[float]]:
        """The k of `positions` nearest to `query` by exact cosine distance (1 - cos), nearest first; ties keep the
        given order."""
        if not len(positions):
            return [], []
        return _nearest(self.get(positions), query, positions, k)

    def rerank_batch(self, queries: np.ndarray, positions: np.ndarray, k: int) -> list[tuple[list[int], list[float]]]:
        """`rerank` of each row of `queries` (m, d) over the same row of `positions` (m, c): the same lists, with
        the rows the queries share (neighbouring steps of a song path) read once."""
        if positions.size == 0:
            return [([], []) for _ in range(len(queries))]
        unique, inverse = np.unique(positions, return_inverse=True)
        vectors = self.get(unique.tolist())
        where = inverse.reshape(positions.shape)
        return [_nearest(vectors[where[i]], query, row.tolist(), k)
                for i, (query, row) in enumerate(zip(queries, positions, strict=True))]

    @classmethod
    def open(cls, path: Path, sha256: str) -> ExactVectors | None:
        """The file at `path` when it holds the rows of the index `sha256` (else None: missing, another index's, or
        cut short)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            found = _read_header(fd)
            if found is None or found[0] != sha256 or os.fstat(fd).st_size < _HEADER + 4 * found[1] * found[2]:
                os.close(fd)
                return None
        except OSError:
            os.close(fd)
            raise
        return cls(fd, sha256=sha256, rows=found[1], dimensions=found[2], path=path)

    @classmethod
    def write(cls, folder: Path | None, name: str, *, sha256: str, rows: int, dimensions: int,
              vectors: Iterable[tuple[int, bytes]]) -> ExactVectors:
        """A new file of `rows` positions from `vectors` ((position, float32 bytes) in any order; positions not
        given stay zeros), renamed over `vectors_file(folder, name)` when complete; with no `folder`, an unnamed
        temporary file (gone when this object is)."""
        if folder is None:
            with tempfile.TemporaryFile(prefix="audiomuse-vectors-") as out:
                fd = os.dup(out.fileno())
            try:
                _fill(fd, sha256, rows, dimensions, vectors)
            except BaseException:
                os.close(fd)
                raise
            return cls(fd, sha256=sha256, rows=rows, dimensions=dimensions, path=None)
        folder.mkdir(parents=True, exist_ok=True)
        target = vectors_file(folder, name)
        fd_temp, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
        try:
            _fill(fd_temp, sha256, rows, dimensions, vectors)
            os.fsync(fd_temp)
            os.replace(temporary, target)
        except BaseException:
            os.close(fd_temp)
            Path(temporary).unlink(missing_ok=True)
            raise
        # read through the descriptor it was written with: a file another process renames over the path meanwhile
        # (a newer index's) is never taken for this one
        return cls(fd_temp, sha256=sha256, rows=rows, dimensions=dimensions, path=target)

    def extended(self, *, sha256: str, rows: int, vectors: Iterable[tuple[int, bytes]]) -> ExactVectors | None:
        """This file grown in place to `rows` positions for the index `sha256`, which keeps every position of this
        one (an update in place: new positions after the last, and the positions it deleted are never read): the
        rows of `vectors` written (the new ones, and kept ones whose vector changed), then the header. Returns the
        grown file, or None when this one has no path or was replaced meanwhile (build it whole then)."""
        if self.path is None or rows < self.rows:
            return None
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_ino != os.fstat(self._fd).st_ino or _read_header(fd) != (
                    self.sha256, self.rows, self.dimensions):
                return None
            os.ftruncate(fd, _HEADER + 4 * rows * self.dimensions)
            _write_rows(fd, self.dimensions, vectors, rows=rows)
            os.fsync(fd)
            os.pwrite(fd, _header(sha256, rows, self.dimensions), 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        return ExactVectors.open(self.path, sha256)


def _header(sha256: str, rows: int, dimensions: int) -> bytes:
    return _LAYOUT.pack(_MAGIC, sha256.encode("ascii"), rows, dimensions).ljust(_HEADER, b"\0")


def _read_header(fd: int) -> tuple[str, int, int] | None:
    data = os.pread(fd, _LAYOUT.size, 0)
    if len(data) < _LAYOUT.size:
        return None
    magic, sha256, rows, dimensions = _LAYOUT.unpack(data)
    if magic != _MAGIC:
        return None
    return sha256.decode("ascii", "replace"), int(rows), int(dimensions)


def _fill(fd: int, sha256: str, rows: int, dimensions: int, vectors: Iterable[tuple[int, bytes]]) -> None:
    os.ftruncate(fd, _HEADER + 4 * rows * dimensions)  # sparse: positions never written read as zeros
    _write_rows(fd, dimensions, vectors, rows=rows)
    os.pwrite(fd, _header(sha256, rows, dimensions), 0)


def _write_rows(fd: int, dimensions: int, vectors: Iterable[tuple[int, bytes]], *, rows: int,
                batch: int = 4096) -> None:
    """Write the unit rows of `vectors` at their positions, `batch` rows normalised at a time; a vector of another
    size is left out (its row stays as it was: zeros in a new file)."""
    size = 4 * dimensions
    pending: list[tuple[int, bytes]] = []

    def flush() -> None:
        if not pending:
            return
        matrix = np.frombuffer(b"".join(v for _, v in pending), dtype="<f4").reshape(len(pending), dimensions)
        unit = _unit_rows(matrix)
        start = pending[0][0]
        if pending[-1][0] - start == len(pending) - 1 and all(
                p == start + i for i, (p, _) in enumerate(pending)):  # consecutive positions: one write
            os.pwrite(fd, unit.tobytes(), _HEADER + start * size)
        else:
            for (position, _), row in zip(pending, unit, strict=True):
                os.pwrite(fd, row.tobytes(), _HEADER + position * size)
        pending.clear()

    skipped = 0
    for position, vector in vectors:
        if not 0 <= position < rows:
            raise ValueError(f"position {position} is outside rows 0..{rows - 1}")
        if len(vector) != size:
            skipped += 1
            continue
        pending.append((int(position), bytes(vector)))
        if len(pending) == batch:
            flush()
    flush()
    if skipped:
        log.warning("%d vectors of another size than %d left out of the vectors file", skipped, dimensions)


def _nearest(rows: np.ndarray, query: np.ndarray, positions: Sequence[int], k: int) -> tuple[list[int], list[float]]:
    """The k of `positions` (whose unit vectors are `rows`) nearest to `query` by exact cosine, nearest first."""
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(q))
    cosine = rows @ (q / norm if norm > 0 else q)
    order = np.argsort(-cosine, kind="stable")[:k]
    return [int(positions[i]) for i in order], [float(1.0 - cosine[i]) for i in order]
