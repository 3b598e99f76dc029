"""The Voyager nearest-neighbour index: build, store in PostgreSQL, load, and hot-reload in the web process.

Workers build the index and store it (in chunks) in `voyager_indexes` / `voyager_index_chunks`, then publish
the index name on the reload channel. The web process holds one `IndexHolder`; its listener thread loads the
new index and swaps it in atomically, so queries never see a half-loaded index and need no restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import redis
import voyager

from db.pool import Database
from db.tracks import all_embeddings, catalog_rows
from discovery.catalog import Catalog
from discovery.types import TrackInfo

log = logging.getLogger(__name__)

CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class LoadedIndex:
    """A Voyager index plus the catalogue of the tracks its integer ids (positions) stand for."""

    name: str
    index: voyager.Index
    catalog: Catalog
    sha256: str
    built_at: datetime | None = None

    def __len__(self) -> int:
        return len(self.catalog)

    def position(self, item_id: str) -> int | None:
        return self.catalog.position(item_id)

    def query_positions(self, vector: np.ndarray, k: int, *, query_ef: int) -> tuple[list[int], list[float]]:
        """Positions and cosine distances of the k nearest items to `vector` (shape (d,)), nearest first."""
        k = min(k, len(self.catalog))
        if k <= 0:
            return [], []
        positions, distances = self.index.query(np.asarray(vector, dtype=np.float32), k=k,
                                                query_ef=max(query_ef, k))
        return positions.tolist(), distances.tolist()

    def query(self, vector: np.ndarray, k: int, *, query_ef: int) -> list[tuple[str, float]]:
        """The k nearest items to `vector` (shape (d,), float32) as (item_id, cosine distance), nearest first."""
        positions, distances = self.query_positions(vector, k, query_ef=query_ef)
        item_id = self.catalog.item_id
        return [(item_id(p), d) for p, d in zip(positions, distances, strict=True)]

    def tracks(self, positions: Sequence[int]) -> list[TrackInfo]:
        """The tracks at `positions` that have metadata, with their vectors (one batch read from the index)."""
        if not positions:
            return []
        vectors = self.index.get_vectors(list(positions))
        found = (self.catalog.track(p, vectors[i]) for i, p in enumerate(positions))
        return [t for t in found if t is not None]


def build_index(item_ids: Sequence[str], vectors: np.ndarray, *, m: int = 16,
                ef_construction: int = 200) -> voyager.Index:
    """A cosine-space index over `vectors` (shape (n, d), float32); Voyager id i is item_ids[i]."""
    if vectors.ndim != 2 or vectors.shape[0] != len(item_ids):
        raise ValueError(f"vectors of shape {vectors.shape} do not match {len(item_ids)} item ids")
    index = voyager.Index(voyager.Space.Cosine, num_dimensions=int(vectors.shape[1]), M=m,
                          ef_construction=ef_construction)
    if len(item_ids):
        index.add_items(np.ascontiguousarray(vectors, dtype=np.float32), ids=list(range(len(item_ids))))
    return index


def store_index(db: Database, name: str, index: voyager.Index, item_ids: Sequence[str], *, model: str) -> str:
    """Replace the stored index `name` in one transaction; return its sha256."""
    data = index.as_bytes()
    digest = hashlib.sha256(data).hexdigest()
    with db.transaction() as cur:
        cur.execute("DELETE FROM voyager_indexes WHERE name = %s", (name,))
        cur.execute(
            """INSERT INTO voyager_indexes (name, model, space, dimensions, num_items, item_ids, byte_size, sha256)
               VALUES (%s, %s, 'cosine', %s, %s, %s, %s, %s)""",
            (name, model, index.num_dimensions, len(item_ids), json.dumps(list(item_ids)), len(data), digest),
        )
        for chunk_no, start in enumerate(range(0, len(data), CHUNK_BYTES)):
            cur.execute("INSERT INTO voyager_index_chunks (name, chunk_no, data) VALUES (%s, %s, %s)",
                        (name, chunk_no, data[start:start + CHUNK_BYTES]))
    return digest


def load_index(db: Database, name: str) -> LoadedIndex | None:
    """The stored index `name`, or None when none is stored yet. Raises ValueError if the bytes are damaged."""
    with tempfile.TemporaryDirectory(prefix="audiomuse-index-") as folder:
        path = Path(folder) / "index.voyager"
        with db.transaction() as cur:
            # One snapshot for all reads, so an index stored meanwhile cannot mix old metadata with new chunks.
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT item_ids, sha256, built_at FROM voyager_indexes WHERE name = %s", (name,))
            meta = cur.fetchone()
            if meta is None:
                return None
            digest = _write_chunks(cur, name, path)
            if digest != meta["sha256"]:
                raise ValueError(f"stored index {name!r} does not match its checksum")
            catalog = Catalog.build(meta["item_ids"], catalog_rows(cur, meta["item_ids"]))
        # From a file rather than from bytes: the chunks never sit in memory all at once (with the joined copy and
        # Voyager's own that was ~3x the index at the peak of a reload, beside the index still in use).
        index = voyager.Index.load(str(path))
    return LoadedIndex(name=name, index=index, catalog=catalog, sha256=meta["sha256"], built_at=meta["built_at"])


def _write_chunks(cur: Any, name: str, path: Path) -> str:
    """Stream the chunks of index `name` into `path`, one at a time; return their sha256."""
    digest = hashlib.sha256()
    with cur.connection.cursor(name="index_chunks") as chunks, path.open("wb") as out:
        chunks.itersize = 1
        chunks.execute("SELECT data FROM voyager_index_chunks WHERE name = %s ORDER BY chunk_no", (name,))
        for (data,) in chunks:
            digest.update(data)
            out.write(data)
    return digest.hexdigest()


def publish_reload(connection: redis.Redis, channel: str, name: str) -> None:
    connection.publish(channel, name)


def rebuild_from_embeddings(db: Database, connection: redis.Redis, *, name: str, model: str, channel: str,
                            m: int, ef_construction: int) -> int:
    """Build the index from every stored embedding of `model`, store it, announce it; return its size."""
    item_ids, vectors = all_embeddings(db, model)
    if not item_ids:
        return 0
    index = build_index(item_ids, vectors, m=m, ef_construction=ef_construction)
    store_index(db, name, index, item_ids, model=model)
    publish_reload(connection, channel, name)
    return len(item_ids)


def _release_freed_memory() -> None:
    """Give the transient buffers of a load (index bytes, rows) back to the OS; glibc keeps them otherwise,
    which would leave the web process hundreds of MB larger than the index it holds."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc


class IndexHolder:
    """The web process's current index; `current` is swapped as a whole, so readers need no lock."""

    def __init__(self, db: Database, name: str) -> None:
        self._db = db
        self.name = name
        self.current: LoadedIndex | None = None
        self.last_error: str | None = None
        self._reload_lock = threading.Lock()

    @property
    def size(self) -> int:
        current = self.current
        return len(current) if current is not None else 0

    def reload(self) -> bool:
        """Load the stored index and swap it in; keep the old one (and record why) if loading fails."""
        with self._reload_lock:
            try:
                loaded = load_index(self._db, self.name)
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("could not load index %s; keeping the previous one", self.name)
                return False
            self.current = loaded
            self.last_error = None
            _release_freed_memory()
            if loaded is None:
                log.info("no index %s stored yet", self.name)
            else:
                log.info("index %s loaded: %d items", self.name, self.size)
            return True

    def listen(self, connection: redis.Redis, channel: str, stop: threading.Event) -> None:
        """Reload whenever `channel` announces our index; run in a daemon thread until `stop` is set."""
        first = True
        while not stop.is_set():
            pubsub = connection.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(channel)
                if not first:
                    self.reload()  # a message may have been missed while Redis was away
                first = False
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        payload = message["data"].decode() if isinstance(message["data"], bytes) else message["data"]
                        if payload == self.name:
                            self.reload()
            except redis.RedisError as exc:
                log.warning("index reload listener lost Redis (%s); retrying", exc)
                stop.wait(2.0)
            finally:
                pubsub.close()

    def start_listener(self, connection: redis.Redis, channel: str) -> threading.Event:
        stop = threading.Event()
        thread = threading.Thread(target=self.listen, args=(connection, channel, stop), name="index-reload",
                                  daemon=True)
        thread.start()
        return stop
