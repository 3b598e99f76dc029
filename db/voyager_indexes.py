"""Queries on voyager_indexes and voyager_index_chunks: the serialized Voyager index, its id map and its chunks.

The id map (`item_ids`, JSONB) gives the item id of each position; an empty string marks a position deleted from an
index updated in place (discovery.catalog.DELETED). voyager_index_positions holds the same map's held positions as
rows (migration 0029), written in the same transactions: the set operations against embeddings and tracks join it,
never the JSONB array or a Python loop over a million ids."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

import numpy as np

from db.pool import Database
from db.tracks import catalog_rows

CHUNK_BYTES = 8 * 1024 * 1024

# The first key of the advisory locks that serialize index updates (the second is the index name's hash).
_UPDATE_LOCK_CLASS = 0x766F79  # "voy"


@contextmanager
def update_lock(db: Database, name: str) -> Iterator[None]:
    """Held while one process brings index `name` up to date: a second updater (an analysis and a cleaning run that
    end together, or two worker hosts) waits, then plans its change on the index the first one stored, instead of
    both starting from the same old index and the later store dropping the other's tracks. A session advisory lock
    on a connection of its own: a killed worker's lock ends with its connection."""
    with db.connection() as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_UPDATE_LOCK_CLASS, name))
        conn.commit()  # the lock outlives the transaction; the connection waits idle, not "idle in transaction"
        try:
            yield
        finally:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_UPDATE_LOCK_CLASS, name))


def update_waiters(db: Database, name: str) -> int:
    """How many sessions wait for `update_lock(name)`."""
    row = db.fetch_one("""SELECT count(*) AS n FROM pg_locks
                           WHERE locktype = 'advisory' AND NOT granted AND classid = %s
                             AND objid = hashtext(%s)::oid""", (_UPDATE_LOCK_CLASS, name))
    return int(row["n"]) if row else 0


def replace_index(db: Database, *, name: str, model: str, dimensions: int, item_ids: Sequence[str],
                  data: bytes, sha256: str) -> None:
    """Make `data` (the serialized index) the stored index `name`, in one transaction, in CHUNK_BYTES chunks; its
    deltas go with the old one."""
    with db.transaction() as cur:
        cur.execute("DELETE FROM voyager_indexes WHERE name = %s", (name,))
        cur.execute(
            """INSERT INTO voyager_indexes (name, model, space, dimensions, num_items, item_ids, byte_size, sha256,
                                            base_sha256)
               VALUES (%s, %s, 'cosine', %s, %s, %s, %s, %s, %s)""",
            (name, model, dimensions, sum(1 for i in item_ids if i), json.dumps(list(item_ids)), len(data), sha256,
             sha256),
        )
        cur.execute("""INSERT INTO voyager_index_positions (name, position, item_id)
                       SELECT v.name, (s.n - 1)::int, s.item_id
                         FROM voyager_indexes v
                        CROSS JOIN LATERAL jsonb_array_elements_text(v.item_ids) WITH ORDINALITY AS s(item_id, n)
                        WHERE v.name = %s AND s.item_id <> ''""", (name,))
        for chunk_no, start in enumerate(range(0, len(data), CHUNK_BYTES)):
            cur.execute("INSERT INTO voyager_index_chunks (name, chunk_no, data) VALUES (%s, %s, %s)",
                        (name, chunk_no, data[start:start + CHUNK_BYTES]))
    # the next update's joins planned on this many rows (after the commit: ANALYZE holds its lock to the end of
    # the transaction it runs in)
    db.execute("ANALYZE voyager_index_positions")


def append_delta(db: Database, *, name: str, item_ids: Sequence[str], sha256: str, byte_size: int,
                 deleted: Sequence[int], first_position: int, vectors: np.ndarray) -> None:
    """Store an update in place of the stored index `name` as one more delta (`deleted` positions, `vectors` (n, d)
    added from `first_position`) with the index's new id map and sha256, in one transaction."""
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO voyager_index_deltas (name, seq, deleted, first_position, dimensions, vectors)
               SELECT %s, COALESCE(max(seq), 0) + 1, %s, %s, %s, %s FROM voyager_index_deltas WHERE name = %s""",
            (name, list(map(int, deleted)), first_position, int(rows.shape[1]) if rows.ndim == 2 else 0,
             rows.tobytes(), name))
        cur.execute(
            # base_sha256 keeps naming the chunks (the right-hand sides read the row as it was)
            """UPDATE voyager_indexes SET item_ids = %s, num_items = %s, sha256 = %s, byte_size = %s, built_at = now(),
                                          base_sha256 = COALESCE(base_sha256, sha256)
                WHERE name = %s""",
            (json.dumps(list(item_ids)), sum(1 for i in item_ids if i), sha256, byte_size, name))
        cur.execute("DELETE FROM voyager_index_positions WHERE name = %s AND position = ANY(%s)",
                    (name, list(map(int, deleted))))
        added = list(item_ids[first_position:first_position + len(rows)])
        cur.execute("""INSERT INTO voyager_index_positions (name, position, item_id)
                       SELECT %s, %s + (a.n - 1)::int, a.item_id
                         FROM unnest(%s::text[]) WITH ORDINALITY AS a(item_id, n)
                        WHERE a.item_id <> ''""", (name, first_position, added))


@dataclass(frozen=True)
class IndexDelta:
    """One update in place of a stored index: positions marked deleted, then vectors added from `first_position`."""

    deleted: list[int]
    first_position: int
    vectors: np.ndarray  # (n, d) float32


@dataclass(frozen=True)
class IndexChanges:
    """Changes of the embeddings against a stored index (StoredIndex.changes), each list in item-id or position
    order."""

    new_ids: list[str]  # embeddings the index does not hold
    recent: list[tuple[str, int]]  # (item_id, position) of held tracks whose embedding may have changed
    removed: list[int]  # positions of held tracks without an embedding any more


@dataclass(frozen=True)
class StoredIndex:
    """One stored index read inside a single snapshot: its metadata, and readers for its chunks and the catalogue
    rows of its items. Use only inside the `stored_index` block."""

    name: str
    item_ids: list[str]
    sha256: str
    built_at: datetime | None
    _cur: Any
    model: str = ""
    dimensions: int = 0
    base_sha256: str = ""  # of the chunks: the index as last stored whole, before its deltas

    def delta_count(self) -> int:
        self._cur.execute("SELECT count(*) AS n FROM voyager_index_deltas WHERE name = %s", (self.name,))
        return int(self._cur.fetchone()["n"])

    def deltas(self) -> list[IndexDelta]:
        """The updates in place stored since the chunks, in the order they are applied."""
        self._cur.execute("""SELECT deleted, first_position, dimensions, vectors FROM voyager_index_deltas
                              WHERE name = %s ORDER BY seq""", (self.name,))
        return [IndexDelta(list(r["deleted"]), int(r["first_position"]),
                           np.frombuffer(bytes(r["vectors"]), dtype="<f4").astype(np.float32).reshape(
                               -1, max(int(r["dimensions"]), 1)))
                for r in self._cur.fetchall()]

    def write_chunks(self, out: BinaryIO) -> str:
        """Stream the chunks (the base index) into `out`, one at a time (never all in memory); return the sha256 of
        what was written."""
        digest = hashlib.sha256()
        with self._cur.connection.cursor(name="index_chunks") as chunks:
            chunks.itersize = 1
            chunks.execute("SELECT data FROM voyager_index_chunks WHERE name = %s ORDER BY chunk_no", (self.name,))
            for (data,) in chunks:
                digest.update(data)
                out.write(data)
        return digest.hexdigest()

    def changes(self, model: str, *, since: datetime) -> IndexChanges:
        """What changed since the index was stored, from this snapshot: embeddings of `model` it does not hold and
        held tracks that have no embedding of `model` any more (one full join of the two narrow key sets), and held
        tracks whose embedding was written at `since` or later (embeddings_created_at_idx: it may have changed)."""
        self._cur.execute(
            """SELECT e.item_id, p.position, false AS recent
                 FROM (SELECT item_id FROM embeddings WHERE model = %(model)s) AS e
                 FULL JOIN (SELECT item_id, position FROM voyager_index_positions WHERE name = %(name)s) AS p
                   ON p.item_id = e.item_id
                WHERE e.item_id IS NULL OR p.item_id IS NULL
               UNION ALL
               SELECT e.item_id, p.position, true
                 FROM embeddings e JOIN voyager_index_positions p ON p.name = %(name)s AND p.item_id = e.item_id
                WHERE e.model = %(model)s AND e.created_at >= %(since)s""",
            {"name": self.name, "model": model, "since": since})
        new, recent, removed = [], [], []
        for row in self._cur.fetchall():
            if row["recent"]:
                recent.append((row["item_id"], int(row["position"])))
            elif row["item_id"] is None:
                removed.append(int(row["position"]))
            else:
                new.append(row["item_id"])
        return IndexChanges(new_ids=sorted(new), recent=sorted(recent), removed=sorted(removed))

    def vectors(self, model: str, item_ids: Sequence[str]) -> dict[str, bytes]:
        """{item_id: float32 vector bytes} of the embeddings of `model` of `item_ids`, from this snapshot."""
        self._cur.execute("SELECT item_id, vector FROM embeddings WHERE model = %s AND item_id = ANY(%s)",
                          (model, list(item_ids)))
        return {r["item_id"]: bytes(r["vector"]) for r in self._cur.fetchall()}

    def embedding_rows(self, *, batch: int = 5000) -> Generator[tuple[int, bytes | None], None, None]:
        """(position, float32 vector bytes) of each held position, in no particular order, streamed from the same
        snapshot `batch` rows at a time; the bytes are None for a held track without an embedding of the index's
        model (deleted since the index was stored)."""
        with self._cur.connection.cursor(name="embedding_rows") as stream:
            stream.itersize = batch
            stream.execute(
                """SELECT p.position, e.vector
                     FROM voyager_indexes v JOIN voyager_index_positions p ON p.name = v.name
                     LEFT JOIN embeddings e ON e.item_id = p.item_id AND e.model = v.model
                    WHERE v.name = %s""", (self.name,))
            for position, vector in stream:
                yield int(position), bytes(vector) if vector is not None else None

    def vectors_since(self, model: str, since: datetime) -> dict[str, bytes]:
        """{item_id: float32 vector bytes} of the embeddings of `model` written at `since` or later (through
        embeddings_created_at_idx), from this snapshot."""
        self._cur.execute("SELECT item_id, vector FROM embeddings WHERE model = %s AND created_at >= %s",
                          (model, since))
        return {r["item_id"]: bytes(r["vector"]) for r in self._cur.fetchall()}

    def catalog_rows(self) -> Iterator[tuple[Any, ...]]:
        """db.tracks.catalog_rows of the index's items, in index order, from the same snapshot."""
        return catalog_rows(self._cur, self.item_ids)

    def catalog_rows_of(self, item_ids: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """db.tracks.catalog_rows of `item_ids` (some of the index's items), in that order, from the same
        snapshot."""
        return catalog_rows(self._cur, item_ids)

    def catalog_hashes(self) -> np.ndarray:
        """A 64-bit hash of what `catalog_rows` would return for each position, int64 in index order: equal hashes,
        same row. The track's hash (track_catalog_hashes: its item id and CATALOG_COLUMNS) mixed with the position,
        so that the checksum of all of them changes when two rows trade places; a deleted position and a held track
        without a row hash apart. Read from the same snapshot as one 12-bytes-a-position string, not as rows."""
        self._cur.execute(
            """SELECT string_agg(int4send(p.position) || int8send(COALESCE(h.hash, hashtextextended(p.item_id, 1))),
                                 ''::bytea) AS h
                 FROM voyager_index_positions p LEFT JOIN track_catalog_hashes h ON h.item_id = p.item_id
                WHERE p.name = %s""", (self.name,))
        row = self._cur.fetchone()
        data = bytes(row["h"]) if row and row["h"] is not None else b""
        held = np.frombuffer(data, dtype=[("position", ">i4"), ("hash", ">i8")])
        track_hashes = np.zeros(len(self.item_ids), dtype=np.uint64)
        track_hashes[held["position"].astype(np.int64)] = held["hash"].astype(np.int64).view(np.uint64)
        return _mixed(track_hashes, np.arange(len(self.item_ids), dtype=np.uint64)).view(np.int64)


def _mixed(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer of each value plus its position times the golden ratio: a position's hash depends on
    both, and no two positions' values cancel out in an XOR of them all (uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        z = values + (positions + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def catalog_checksum(hashes: np.ndarray) -> str:
    """One checksum of a stored index's catalogue rows from their `catalog_hashes`: their count and XOR."""
    folded = int(np.bitwise_xor.reduce(hashes)) if len(hashes) else 0
    return f"{len(hashes)}:{folded & 0xFFFFFFFFFFFFFFFF:016x}"


@contextmanager
def stored_index(db: Database, name: str) -> Iterator[StoredIndex | None]:
    """The stored index `name` (None when none is stored yet), all of it read from one snapshot: an index stored
    meanwhile cannot mix its metadata with another's chunks or catalogue."""
    with db.transaction() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("""SELECT item_ids, sha256, built_at, model, dimensions, COALESCE(base_sha256, sha256) AS base
                         FROM voyager_indexes WHERE name = %s""", (name,))
        meta = cur.fetchone()
        if meta is None:
            yield None
            return
        yield StoredIndex(name=name, item_ids=list(meta["item_ids"]), sha256=meta["sha256"],
                          built_at=meta["built_at"], _cur=cur, model=meta["model"], dimensions=meta["dimensions"],
                          base_sha256=meta["base"])


def current_size(db: Database, *, name: str, model: str) -> int | None:
    """The size of the stored index `name` when it is of `model` and holds as many items as there are embeddings of
    `model` (nothing was added or removed since it was built: a run that analyzed nothing keeps it); else None.
    Positions deleted in place (an empty item id, voyager_manager.update_index) are not counted."""
    row = db.fetch_one(
        """SELECT live FROM (SELECT (SELECT count(*) FROM voyager_index_positions p WHERE p.name = v.name) AS live
                               FROM voyager_indexes v WHERE v.name = %s AND v.model = %s) AS stored
            WHERE live = (SELECT count(*) FROM embeddings e WHERE e.model = %s)""",
        (name, model, model))
    return int(row["live"]) if row else None
