"""Queries on voyager_indexes and voyager_index_chunks: the serialized Voyager index, its id map and its chunks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from db.pool import Database
from db.tracks import catalog_rows

CHUNK_BYTES = 8 * 1024 * 1024


def replace_index(db: Database, *, name: str, model: str, dimensions: int, item_ids: Sequence[str],
                  data: bytes, sha256: str) -> None:
    """Make `data` (the serialized index) the stored index `name`, in one transaction, in CHUNK_BYTES chunks."""
    with db.transaction() as cur:
        cur.execute("DELETE FROM voyager_indexes WHERE name = %s", (name,))
        cur.execute(
            """INSERT INTO voyager_indexes (name, model, space, dimensions, num_items, item_ids, byte_size, sha256)
               VALUES (%s, %s, 'cosine', %s, %s, %s, %s, %s)""",
            (name, model, dimensions, len(item_ids), json.dumps(list(item_ids)), len(data), sha256),
        )
        for chunk_no, start in enumerate(range(0, len(data), CHUNK_BYTES)):
            cur.execute("INSERT INTO voyager_index_chunks (name, chunk_no, data) VALUES (%s, %s, %s)",
                        (name, chunk_no, data[start:start + CHUNK_BYTES]))


@dataclass(frozen=True)
class StoredIndex:
    """One stored index read inside a single snapshot: its metadata, and readers for its chunks and the catalogue
    rows of its items. Use only inside the `stored_index` block."""

    name: str
    item_ids: list[str]
    sha256: str
    built_at: datetime | None
    _cur: Any

    def write_chunks(self, out: BinaryIO) -> str:
        """Stream the chunks into `out`, one at a time (never all in memory); return the sha256 of what was written."""
        digest = hashlib.sha256()
        with self._cur.connection.cursor(name="index_chunks") as chunks:
            chunks.itersize = 1
            chunks.execute("SELECT data FROM voyager_index_chunks WHERE name = %s ORDER BY chunk_no", (self.name,))
            for (data,) in chunks:
                digest.update(data)
                out.write(data)
        return digest.hexdigest()

    def catalog_rows(self) -> Iterator[tuple[Any, ...]]:
        """db.tracks.catalog_rows of the index's items, in index order, from the same snapshot."""
        return catalog_rows(self._cur, self.item_ids)


@contextmanager
def stored_index(db: Database, name: str) -> Iterator[StoredIndex | None]:
    """The stored index `name` (None when none is stored yet), all of it read from one snapshot: an index stored
    meanwhile cannot mix its metadata with another's chunks or catalogue."""
    with db.transaction() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("SELECT item_ids, sha256, built_at FROM voyager_indexes WHERE name = %s", (name,))
        meta = cur.fetchone()
        if meta is None:
            yield None
            return
        yield StoredIndex(name=name, item_ids=list(meta["item_ids"]), sha256=meta["sha256"],
                          built_at=meta["built_at"], _cur=cur)


def current_size(db: Database, *, name: str, model: str) -> int | None:
    """The size of the stored index `name` when it is of `model` and holds as many items as there are embeddings of
    `model` (nothing was added or removed since it was built: a run that analyzed nothing keeps it); else None."""
    row = db.fetch_one(
        """SELECT v.num_items FROM voyager_indexes v
            WHERE v.name = %s AND v.model = %s
              AND v.num_items = (SELECT count(*) FROM embeddings e WHERE e.model = %s)""",
        (name, model, model))
    return int(row["num_items"]) if row else None
