"""The Voyager nearest-neighbour index: build, store in PostgreSQL, load, and hot-reload in the web process.

Workers build the index and store it (in chunks, db/voyager_indexes.py), then publish the index name on the reload
channel. The web process holds one `IndexHolder`; its listener thread loads the new index, rebuilds the in-memory
caches that hang on it (registered with `add_cache`: the music map, the text-search caches, the artist model stored
beside the index), and swaps the whole `LibraryState` in at once, so a request never sees a half-loaded index or an
index with another one's caches, and needs no restart. A message `<index name>:<cache name>` rebuilds that one cache
against the current index.

A request asks the index through `IndexQueries` (`holder.queries(...)`): the two lookups discovery code works
through, neighbours and tracks by id, with no database trip.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import redis
import voyager

from db import artists as artist_store
from db import versions as version_store
from db import voyager_indexes as index_store
from db.pool import Database
from db.tracks import all_embeddings, embeddings_of
from discovery.artist_similarity import fit_artists
from discovery.catalog import DELETED, Catalog
from discovery.dedup import song_key
from discovery.exclusions import Exclusions, MaskCache, MaskResult, allowed_mask
from discovery.types import TrackInfo
from discovery.versions import group_versions
from index_vectors import ExactVectors, vectors_file
from version_groups import regroup_versions, store_version_groups

log = logging.getLogger(__name__)

# INDEX_STORAGE's values: how a built index stores its vectors.
STORAGE_TYPES: Mapping[str, voyager.StorageDataType] = MappingProxyType({
    "float32": voyager.StorageDataType.Float32, "e4m3": voyager.StorageDataType.E4M3})
# A compressed index is asked for this many candidates more than k (and at least twice k), which exact cosine on the
# float32 vectors then orders (bench/compressed_index.py: the top 30 for 10 keep recall@10 at 0.9975 at 1M).
RERANK_EXTRA = 20


@dataclass(frozen=True)
class LoadedIndex:
    """A Voyager index plus the catalogue of the tracks its integer ids (positions) stand for."""

    name: str
    index: voyager.Index
    catalog: Catalog
    sha256: str
    built_at: datetime | None = None
    # the allowed-track masks of recent blocklists and scopes (discovery.exclusions), built on first use
    masks: MaskCache = field(default_factory=MaskCache, compare=False, repr=False)
    # the hash of each position's catalogue row (db.voyager_indexes catalog_hashes), to update the catalogue in place
    row_hashes: np.ndarray | None = field(default=None, compare=False, repr=False)
    # the sha256 of earlier indexes this one was updated in place from: their positions mean the same tracks here
    # (or deleted ones), so what was built against them stays valid until it is built again
    extends: frozenset[str] = frozenset()
    # seconds of each step of loading it (load_index; "carry" added by IndexHolder.reload), for /api/health
    load_seconds: dict[str, float] = field(default_factory=dict, compare=False, repr=False)
    # the float32 vectors of a compressed index (index_vectors), which orders its candidates exactly; None for a
    # float32 index, which holds them itself
    exact: ExactVectors | None = field(default=None, compare=False, repr=False)
    # the sha256 of the index as last stored whole: an index of the same base is it plus updates in place, which
    # never change the vector at a kept position
    base_sha256: str = ""

    def __len__(self) -> int:
        """Positions, deleted ones included (the length of the per-position caches); `live` counts tracks."""
        return len(self.catalog)

    @property
    def live(self) -> int:
        """Tracks the index holds (positions deleted by an update in place left out)."""
        return self.catalog.live

    def position(self, item_id: str) -> int | None:
        return self.catalog.position(item_id)

    def has_positions_of(self, sha256: str) -> bool:
        """Whether positions of the index `sha256` mean the same tracks here (or deleted ones): it is this index or
        one it was updated in place from."""
        return sha256 == self.sha256 or sha256 in self.extends

    def query_positions(self, vector: np.ndarray, k: int, *, query_ef: int) -> tuple[list[int], list[float]]:
        """Positions and cosine distances of the k nearest items to `vector` (shape (d,)), nearest first."""
        found = self.query_positions_batch(np.asarray(vector, dtype=np.float32).reshape(1, -1), k,
                                           query_ef=query_ef)
        return found[0] if found else ([], [])

    def query_positions_batch(self, vectors: np.ndarray, k: int, *, query_ef: int,
                              exact: bool = True) -> list[tuple[list[int], list[float]]]:
        """`query_positions` of each row of `vectors` (m, d), in one Voyager query (its threads search the rows side
        by side). A compressed index is asked for more candidates, ordered again by exact cosine (`exact`; without
        it, the index's own order and distances)."""
        k = min(k, self.catalog.live)  # Voyager raises when asked for more than it holds undeleted
        if k <= 0 or len(vectors) == 0:
            return [([], []) for _ in range(len(vectors))]
        if not exact or self.exact is None:
            positions, distances = self.index.query(np.asarray(vectors, dtype=np.float32), k=k,
                                                    query_ef=max(query_ef, k))
            return [(p.tolist(), d.tolist()) for p, d in zip(positions, distances, strict=True)]
        ask = min(self.catalog.live, max(2 * k, k + RERANK_EXTRA))
        positions, _ = self.index.query(np.asarray(vectors, dtype=np.float32), k=ask, query_ef=max(query_ef, ask))
        return self.exact.rerank_batch(vectors, positions, k)

    def query_allowed(self, vector: np.ndarray, ask: int, allowed: np.ndarray, *,
                      query_ef: int) -> tuple[list[int], list[float], bool]:
        """The `ask` nearest positions to `vector`, nearest first, with only the `allowed` ones kept (a compressed
        index orders those again exactly: only they are read), and whether the index had fewer than `ask`."""
        ask = min(ask, self.catalog.live)
        if ask <= 0:
            return [], [], True
        positions, distances = self.index.query(np.asarray(vector, dtype=np.float32), k=ask,
                                                query_ef=max(query_ef, ask))
        found = positions.tolist()
        if self.exact is None:
            return found, distances.tolist(), len(found) < ask
        kept = [p for p in found if allowed[p]]
        ranked, exact = self.exact.rerank(vector, kept, len(kept))
        return ranked, exact, len(found) < ask

    def vectors_of(self, positions: Sequence[int]) -> np.ndarray:
        """The unit float32 vectors at `positions`, (len(positions), d): exact ones, also for a compressed index."""
        if self.exact is not None:
            return self.exact.get(positions)
        return self.index.get_vectors(list(positions))

    def query(self, vector: np.ndarray, k: int, *, query_ef: int) -> list[tuple[str, float]]:
        """The k nearest items to `vector` (shape (d,), float32) as (item_id, cosine distance), nearest first."""
        positions, distances = self.query_positions(vector, k, query_ef=query_ef)
        item_id = self.catalog.item_id
        return [(item_id(p), d) for p, d in zip(positions, distances, strict=True)]

    def tracks(self, positions: Sequence[int]) -> list[TrackInfo]:
        """The tracks at `positions` that have metadata, with their vectors (one batch read from the index)."""
        if not positions:
            return []
        vectors = self.vectors_of(positions)
        found = (self.catalog.track(p, vectors[i]) for i, p in enumerate(positions))
        return [t for t in found if t is not None]

    def queries(self, *, query_ef: int, exclusions: Exclusions | None = None) -> IndexQueries:
        """The lookups one request makes (discovery.types.Neighbours and Lookup), sharing what its queries found;
        with `exclusions`, its neighbours are only the tracks they allow."""
        return IndexQueries(self, query_ef=query_ef, exclusions=exclusions)

    def exclusion_mask(self, exclusions: Exclusions) -> MaskResult:
        """Which positions `exclusions` allow, from the catalogue (cached per exclusions value)."""
        return self.masks.get(exclusions, lambda: allowed_mask(self.catalog.exclusion_columns(), exclusions))


class IndexQueries:
    """discovery's `Neighbours` and `Lookup` over one loaded index, for one request.

    The item ids its queries return are remembered with their index positions, so looking up a hit (which discovery
    code does for almost every hit) needs no search by id.

    With active `exclusions` (blocklists and scope, discovery.exclusions) `neighbours` returns only tracks they
    allow — it asks the index for more and skips the others, so a caller still gets k when the library has them —
    while `lookup` finds every track (a seed the user names is found even when it is blocked; it is then never
    another seed's neighbour). `mask` is then the allowed positions, `excluded` how many are left out."""

    def __init__(self, loaded: LoadedIndex, *, query_ef: int, exclusions: Exclusions | None = None) -> None:
        self.loaded = loaded
        self.query_ef = query_ef
        self._returned: dict[str, int] = {}
        self.exclusions = exclusions if exclusions is not None and exclusions.active else None
        self.mask = loaded.exclusion_mask(self.exclusions) if self.exclusions is not None else None

    def neighbours(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """(item_id, cosine distance) of the k nearest tracks to `vector` (d,), nearest first, one file per song: a
        copy or a version stands for the file lists show for its song (discovery.versions; when the exclusions allow
        it) at the distance of the nearest, so fewer than k may come back. With exclusions, only allowed tracks:
        the index is asked for k over the allowed share (and more, doubling) until k are found or it has no more."""
        allowed = self.mask.allowed if self.mask is not None else None
        size = self.loaded.live
        if allowed is None:
            ask = k
        else:
            share = max(float(np.count_nonzero(allowed)) / max(size, 1), 1e-3)
            ask = min(size, int(k / share) + 16)
        if allowed is None:
            positions, distances = self.loaded.query_positions(vector, ask, query_ef=self.query_ef)
            return self._hits(positions, distances, k, None)
        while True:
            positions, distances, exhausted = self.loaded.query_allowed(vector, ask, allowed, query_ef=self.query_ef)
            hits = self._hits(positions, distances, k, allowed)
            if len(hits) == k or ask >= size or exhausted:
                return hits
            ask = min(size, ask * 2)

    def neighbours_batch(self, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """`neighbours` of each row of `vectors` (m, d), the same lists, in one Voyager query (its threads search the
        rows side by side) when no exclusions apply."""
        vectors = np.asarray(vectors, dtype=np.float32)
        k_asked = min(k, self.loaded.live)
        if self.mask is not None or len(vectors) == 0 or k_asked <= 0:
            return [self.neighbours(vector, k) for vector in vectors]
        found = self.loaded.query_positions_batch(vectors, k_asked, query_ef=self.query_ef)
        return [self._hits(positions, distances, k, None) for positions, distances in found]

    def _hits(self, positions: Sequence[int], distances: Sequence[float], k: int,
              allowed: np.ndarray | None) -> list[tuple[str, float]]:
        """A query's hits as `neighbours` returns them (allowed ones, one file per song, at most k with `allowed`)."""
        catalog = self.loaded.catalog
        hits: list[tuple[str, float]] = []
        listed: set[int] = set()
        for position, distance in zip(positions, distances, strict=True):
            if allowed is not None and not allowed[position]:
                continue
            shown = catalog.kept_copy(position)
            if allowed is not None and not allowed[shown]:
                shown = position  # the song's usual file is excluded (its folder, say): this one stands
            if shown in listed:
                continue
            listed.add(shown)
            found = catalog.item_id(shown)
            self._returned[found] = shown
            hits.append((found, distance))
            if allowed is not None and len(hits) == k:
                break
        return hits

    def allows(self, item_id: str) -> bool:
        """Whether the exclusions allow the track (any track the index does not hold is allowed: it is never
        suggested from here)."""
        if self.mask is None:
            return True
        position = self._returned.get(item_id)
        if position is None:
            position = self.loaded.position(item_id)
        return position is None or bool(self.mask.allowed[position])

    def allowed_lookup(self, item_ids: Sequence[str]) -> dict[str, TrackInfo]:
        """`lookup`, without the tracks the exclusions leave out (for lists built from lookups, artist radio)."""
        return {i: t for i, t in self.lookup(item_ids).items() if self.allows(i)}

    def lookup(self, item_ids: Sequence[str]) -> dict[str, TrackInfo]:
        """{item_id: TrackInfo} for those of `item_ids` the index holds and the catalogue has metadata for."""
        positions = []
        for item_id in item_ids:
            position = self._returned.get(item_id)
            if position is None:
                position = self.loaded.position(item_id)
            if position is not None:
                positions.append(position)
        return {track.item_id: track for track in self.loaded.tracks(positions)}

    def lookup_shown(self, item_ids: Sequence[str]) -> dict[str, TrackInfo]:
        """`allowed_lookup`, each track given as the file lists show for its song (discovery.versions): for
        candidates read by id rather than found by `neighbours` (a seed is looked up as it is, with `lookup`)."""
        catalog = self.loaded.catalog
        allowed = self.mask.allowed if self.mask is not None else None
        positions: dict[str, int] = {}
        for item_id in item_ids:
            position = self._returned.get(item_id)
            if position is None:
                position = self.loaded.position(item_id)
            if position is None or (allowed is not None and not allowed[position]):
                continue
            kept = catalog.kept_copy(position)
            positions[item_id] = position if allowed is not None and not allowed[kept] else kept
        found = {t.item_id: t for t in self.loaded.tracks(sorted(set(positions.values())))}
        shown = {item_id: found.get(catalog.item_id(p)) for item_id, p in positions.items()}
        return {item_id: track for item_id, track in shown.items() if track is not None}

    def artist_tracks(self, name: str) -> list[TrackInfo]:
        """The indexed tracks by the artist `name` (case- and accent-insensitive, "feat. X" ignored), vectors
        included; [] for an artist the catalogue does not know."""
        return self.loaded.tracks(self.loaded.catalog.artist_positions(name))


def build_index(item_ids: Sequence[str], vectors: np.ndarray, *, m: int = 16, ef_construction: int = 200,
                storage: str = "float32") -> voyager.Index:
    """A cosine-space index over `vectors` (shape (n, d), float32) storing them as `storage` (STORAGE_TYPES);
    Voyager id i is item_ids[i]."""
    if vectors.ndim != 2 or vectors.shape[0] != len(item_ids):
        raise ValueError(f"vectors of shape {vectors.shape} do not match {len(item_ids)} item ids")
    index = voyager.Index(voyager.Space.Cosine, num_dimensions=int(vectors.shape[1]), M=m,
                          ef_construction=ef_construction, storage_data_type=STORAGE_TYPES[storage])
    if len(item_ids):
        index.add_items(np.ascontiguousarray(vectors, dtype=np.float32), ids=list(range(len(item_ids))))
    return index


def index_file(folder: Path, name: str) -> Path:
    """Where the copy of the stored index `name` is kept in `folder` (DATA_DIR/index), for a fast start."""
    return folder / f"{name}.voyager"


def catalog_file(folder: Path, name: str) -> Path:
    """Where the catalogue of the stored index `name` is kept in `folder`, beside the index file."""
    return folder / f"{name}.catalog"


_CATALOG_MAGIC = b"AUDIOMUSE CATALOG 1\n"
# The code that shapes a catalogue from its rows: a file that another version of it wrote is built again.
_CATALOG_CODE = hashlib.sha256(b"".join(Path(module.__file__ or "").read_bytes() for module in (
    sys.modules[Catalog.__module__], sys.modules[song_key.__module__], sys.modules[group_versions.__module__],
    sys.modules[allowed_mask.__module__]))).hexdigest()[:16]


def _catalog_stamp(path: Path) -> str | None:
    """The stamp of the catalogue kept in `path`, None without a readable one (its two first lines only)."""
    try:
        with path.open("rb") as source:
            if source.readline() != _CATALOG_MAGIC:
                return None
            return source.readline().decode(errors="replace").strip()
    except OSError:
        return None


def _read_catalog(path: Path, stamp: str) -> Catalog | None:
    """The catalogue kept in `path` when its stamp is `stamp` (same index, same rows, same code); else None."""
    try:
        with path.open("rb") as source:
            if source.readline() != _CATALOG_MAGIC or source.readline().decode(errors="replace").strip() != stamp:
                log.info("catalogue file %s is not the current one; building the catalogue", path)
                return None
            return Catalog.load(source)
    except FileNotFoundError:
        return None
    except Exception:  # damaged or foreign: built from the rows instead
        log.warning("could not read catalogue file %s", path, exc_info=True)
        return None


def _keep_catalog(path: Path, stamp: str, catalog: Catalog) -> None:
    def write(out: Any) -> None:
        out.write(_CATALOG_MAGIC + stamp.encode() + b"\n")
        catalog.dump(out)

    try:
        _write_atomically(path, write)
    except OSError:  # only a faster start is lost
        log.warning("could not keep the catalogue in %s", path, exc_info=True)


def _write_atomically(path: Path, write: Callable[[Any], Any]) -> Any:
    """Call `write(file)` on a temporary file beside `path`, then rename it over `path` (a reader sees the old file or
    the new one, never half of one); return what `write` returned. Nothing is left behind when `write` raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            result = write(out)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return result


def store_index(db: Database, name: str, index: voyager.Index, item_ids: Sequence[str], *, model: str,
                folder: Path | None = None) -> str:
    """Replace the stored index `name` in one transaction (and its file in `folder`, when given); return its sha256.
    `item_ids` has one entry per Voyager id, DELETED for a deleted one."""
    data = index.as_bytes()
    digest = hashlib.sha256(data).hexdigest()
    index_store.replace_index(db, name=name, model=model, dimensions=index.num_dimensions, item_ids=item_ids,
                              data=data, sha256=digest)
    if folder is not None:
        try:
            _write_atomically(index_file(folder, name), lambda out: out.write(data))
        except OSError:  # only a faster start is lost: the next load fetches it from PostgreSQL
            log.warning("could not keep index %r in %s", name, folder, exc_info=True)
    return digest


def _file_if_current(path: Path, sha256: str) -> voyager.Index | None:
    """The index in the file `path` when its sha256 is `sha256`; None when it is missing, differs, or was replaced
    while it was read."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if digest != sha256:
            log.info("index file %s is not the stored index; fetching it from PostgreSQL", path)
            return None
        inode = os.fstat(handle.fileno()).st_ino
        index = voyager.Index.load(str(path))  # native code, without the GIL: requests go on meanwhile
    try:
        replaced = os.stat(path).st_ino != inode  # renamed over between the hash and the load
    except FileNotFoundError:
        replaced = True
    return None if replaced else index


def _open_stored(stored: index_store.StoredIndex, folder: Path | None, *, try_file: bool = True) -> voyager.Index:
    """The Voyager index of `stored`: from its file in `folder` when that file's sha256 is the stored one, else
    its base streamed from PostgreSQL with its deltas applied (kept as that file when the result is the stored
    bytes, so the next start reads it). Raises ValueError if the stored bytes are damaged."""
    if folder is not None:
        path = index_file(folder, stored.name)
        index = _file_if_current(path, stored.sha256) if try_file else None
        if index is not None:
            return index
    # The base goes through a file of its own rather than bytes: the chunks never sit in memory all at once (with
    # the joined copy and Voyager's own that was ~3x the index at the peak of a reload, beside the index in use),
    # and a newer index file another process has just written is never overwritten by an older base.
    keep = folder is not None
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:  # only a faster start is lost
            log.warning("could not keep index %r in %s", stored.name, folder, exc_info=True)
            keep = False
    scratch = Path(tempfile.mkdtemp(prefix=".audiomuse-index-", dir=folder if keep else None))
    base = scratch / "base.voyager"
    try:
        with base.open("wb") as out:
            if stored.write_chunks(out) != stored.base_sha256:
                raise ValueError(f"stored index {stored.name!r} does not match its checksum")
        index = voyager.Index.load(str(base))
        data = None
        for delta in stored.deltas():
            apply_delta(index, delta.deleted, delta.first_position, delta.vectors)
            data = index.as_bytes()
            index = voyager.Index.load(io.BytesIO(data))  # as the updater's next update began: freshly loaded
        if data is not None and hashlib.sha256(data).hexdigest() != stored.sha256:
            log.warning("index %r rebuilt from its base and deltas differs from the updater's bytes (another Voyager "
                        "version?); it holds the same tracks", stored.name)
        elif keep:
            final = data
            if final is None:
                os.replace(base, path)
            else:
                _write_atomically(path, lambda out: out.write(final))
        return index
    finally:
        base.unlink(missing_ok=True)
        scratch.rmdir()


def apply_delta(index: voyager.Index, deleted: Sequence[int], first_position: int, vectors: np.ndarray) -> None:
    """One update in place: `deleted` positions marked deleted, then `vectors` added from `first_position`. One
    thread, in this order, on an index freshly loaded from bytes: the same bytes give the same result wherever it is
    applied, so the stored base and deltas reproduce the updater's index exactly."""
    for position in deleted:
        index.mark_deleted(int(position))
    if len(vectors):
        index.add_items(np.asarray(vectors, dtype=np.float32),
                        ids=list(range(first_position, first_position + len(vectors))), num_threads=1)


# An update in place changes a few rows; past this share of changed rows the catalogue is built whole again.
CATALOG_UPDATE_SHARE = 0.25


def load_index(db: Database, name: str, *, folder: Path | None = None,
               previous: LoadedIndex | None = None) -> LoadedIndex | None:
    """The stored index `name`, or None when none is stored yet; its bytes come from `folder` (DATA_DIR/index) when
    the file there is the stored one, and its catalogue too while the rows it was built from are unchanged. With
    `previous` (the index loaded before) and the stored index an update of it in place, the catalogue is
    `previous`'s with only the changed rows read. Raises ValueError if the stored bytes are damaged."""
    steps = _Steps()
    with index_store.stored_index(db, name) as stored:
        if stored is None:
            return None
        steps.done("id map")
        # The file is hashed and loaded in native code without the GIL: beside the catalogue's rows, not after them.
        from_file: list[voyager.Index | None] = [None]
        reader = None
        if previous is not None and previous.sha256 == stored.sha256:
            from_file[0] = previous.index  # the same bytes: never a second copy of the index beside the first
        elif folder is not None:
            path, sha256 = index_file(folder, name), stored.sha256

            def read() -> None:
                try:
                    from_file[0] = _file_if_current(path, sha256)
                except Exception:  # unreadable: fetched from PostgreSQL below
                    log.warning("could not read index file %s", path, exc_info=True)

            reader = threading.Thread(target=read, name="index-file", daemon=True)
            reader.start()
        try:
            hashes = stored.catalog_hashes()
            steps.done("catalogue hashes")
            update = _catalog_update(previous, stored, hashes) if previous is not None else None
            catalog = update[0] if update is not None else None
            # Kept beside the index file and used while PostgreSQL's checksum of its rows is unchanged: a start reads
            # one file instead of a row per track.
            kept = catalog_file(folder, name) if folder is not None else None
            stamp = f"{stored.sha256} {index_store.catalog_checksum(hashes)} {_CATALOG_CODE}"
            if catalog is None and kept is not None:
                catalog = _read_catalog(kept, stamp)
                if catalog is not None:
                    kept = None  # it is the file's already
            if catalog is None:
                catalog = Catalog.build(stored.item_ids, stored.catalog_rows())
            if kept is not None and previous is not None and catalog is previous.catalog and \
                    _catalog_stamp(kept) == stamp:
                kept = None  # a reload of the same index and rows: the file holds this very catalogue already
            if kept is not None and update is not None:  # an update is served first, its file written meanwhile
                threading.Thread(target=_keep_catalog, args=(kept, stamp, catalog), name="catalog-file",
                                 daemon=True).start()
            elif kept is not None:
                _keep_catalog(kept, stamp, catalog)
            steps.done("catalogue")
        finally:
            if reader is not None:
                reader.join()
        index = from_file[0]
        if index is None:
            index = _open_stored(stored, folder, try_file=False)
        steps.done("index")
        extended = previous if update is not None and update[1] else None
        exact = None if index.storage_data_type == voyager.StorageDataType.Float32 else \
            _exact_vectors(stored, index, catalog, folder, previous)
        steps.done("vectors")
    extends: frozenset[str] = frozenset()
    if extended is not None:
        extends = extended.extends | {extended.sha256}
    return LoadedIndex(name=name, index=index, catalog=catalog, sha256=stored.sha256, built_at=stored.built_at,
                       row_hashes=hashes, extends=extends, exact=exact, base_sha256=stored.base_sha256,
                       load_seconds=steps.seconds)


class _Steps:
    """Seconds of consecutive steps: each `done(name)` ends the step begun at the previous one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._since = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._since, 3)
        self._since = now


def _exact_vectors(stored: index_store.StoredIndex, index: voyager.Index, catalog: Catalog, folder: Path | None,
                   previous: LoadedIndex | None) -> ExactVectors | None:
    """The float32 vectors of the compressed index `stored`: `previous`'s when it is the same index; its file in
    `folder` when that is this index's; else `previous`'s file (an index this one updates in place) grown by the
    new positions and the re-analyzed tracks' rows; else written whole from the embeddings (the positions' vectors
    as PostgreSQL holds them now; a held track without one gets the index's own, rounded). None when no file can be
    written: the index then answers in its own order."""
    size, dimensions = len(stored.item_ids), index.num_dimensions
    if previous is not None and previous.sha256 == stored.sha256 and previous.exact is not None:
        return previous.exact
    if folder is not None:
        try:
            found = ExactVectors.open(vectors_file(folder, stored.name), stored.sha256)
        except OSError:
            log.warning("could not read the vectors file of %r in %s", stored.name, folder, exc_info=True)
            found = None
        if found is not None and found.rows == size and found.dimensions == dimensions:
            return found

    def rounded(position: int) -> bytes:  # a held track without an embedding: the index's own vector
        return bytes(index.get_vectors([position])[0].astype("<f4").tobytes())

    def rows() -> Generator[tuple[int, bytes], None, None]:
        for position, vector in stored.embedding_rows():
            yield position, vector if vector is not None else rounded(position)

    if previous is not None and previous.base_sha256 == stored.base_sha256 and previous.exact is not None \
            and previous.exact.dimensions == dimensions:
        # the new positions' vectors by id, and those re-analyzed below the index's rounding (they kept their
        # positions) by the time they were written: no pass over the whole id map
        item_ids = stored.item_ids
        added = {item_ids[p]: p for p in range(len(previous), size) if item_ids[p] != DELETED}
        fetched = stored.vectors(stored.model, list(added))
        changed = [(p, fetched.get(i) or rounded(p)) for i, p in added.items()]
        if previous.built_at is not None:
            for item_id, vector in stored.vectors_since(stored.model, previous.built_at - _CHANGE_MARGIN).items():
                position = catalog.position(item_id)
                if position is not None and position < len(previous):
                    changed.append((position, vector))
        try:
            grown = previous.exact.extended(sha256=stored.sha256, rows=size, vectors=changed)
        except OSError:
            log.warning("could not grow the vectors file of %r", stored.name, exc_info=True)
            grown = None
        if grown is not None:
            return grown
    for place in ([folder, None] if folder is not None else [None]):
        every = rows()
        try:
            return ExactVectors.write(place, stored.name, sha256=stored.sha256, rows=size, dimensions=dimensions,
                                      vectors=every)
        except OSError:
            log.warning("could not keep the vectors of %r in %s", stored.name, place or "a temporary file",
                        exc_info=True)
        finally:
            every.close()
    log.error("no vectors file for index %r: its neighbours come in the compressed index's own order", stored.name)
    return None


def _catalog_update(previous: LoadedIndex, stored: index_store.StoredIndex,
                    hashes: np.ndarray) -> tuple[Catalog, bool] | None:
    """`previous`'s catalogue brought up to the stored index by reading the rows whose hash changed, and whether the
    stored index extends `previous` (each old position holds the same item or none); None when `previous` has no
    row hashes, has more positions than the stored index, or too many rows changed to be worth it."""
    old = previous.row_hashes
    size = len(stored.item_ids)
    if old is None or len(old) > size or len(hashes) != size:
        return None
    changed = np.flatnonzero(hashes[:len(old)] != old).tolist() + list(range(len(old), size))
    if len(changed) > CATALOG_UPDATE_SHARE * size:
        return None
    if not changed:
        return previous.catalog, True  # nothing to read, and no copy of it
    ids = [stored.item_ids[p] for p in changed]
    before = previous.catalog
    extends = all(i in (DELETED, before.item_id(p)) for p, i in zip(changed, ids, strict=True) if p < len(old))
    rows = stored.catalog_rows_of(ids)
    try:
        return before.updated(stored.item_ids, rows, changed), extends
    except Exception:  # built whole instead: a failed splice must never keep the new index from being served
        log.warning("could not update the catalogue of %s in place; building it whole", stored.name, exc_info=True)
        return None
    finally:
        close = getattr(rows, "close", None)  # its server-side cursor, before a whole build opens one of that name
        if close is not None:
            close()


def publish_reload(connection: redis.Redis, channel: str, name: str) -> None:
    connection.publish(channel, name)


@dataclass(frozen=True)
class IndexUpdate:
    """What `update_index` did: `size` tracks indexed; `full` when it rebuilt the index whole (and why, `reason`),
    else how many tracks it `added` and how many positions it deleted (`removed`; a re-analyzed track is both)."""

    size: int
    full: bool
    added: int = 0
    removed: int = 0
    reason: str = ""
    # seconds of each step of an update in place: "apply" (compare, load, add and delete), "store", "groups"
    seconds: Mapping[str, float] = field(default_factory=dict)


# An embedding written up to this long before the stored index was (its transaction still open while the index was
# read) is compared with the index's vector too, so an update in place misses no re-analyzed track; save_analysis
# writes a track in one short transaction. Only the cost depends on it: each candidate's vector is compared.
_CHANGE_MARGIN = timedelta(minutes=10)


@dataclass
class _Delta:
    index: voyager.Index
    item_ids: list[str]
    deleted: list[int]  # positions marked deleted, in order
    first_position: int  # where the added vectors begin
    vectors: np.ndarray  # the added vectors (n, d)
    stored_deltas: int  # deltas the stored index had before this one
    touched: list[str] = field(default_factory=list)  # tracks added, removed or re-analysed (their version groups)
    seconds: dict[str, float] = field(default_factory=dict)  # of each step of the plan

    @property
    def added(self) -> int:
        return len(self.vectors)

    @property
    def removed(self) -> int:
        return len(self.deleted)


def _plan_update(stored: index_store.StoredIndex, *, model: str, share: float, storage: str,
                 folder: Path | None) -> _Delta | str:
    """The stored index with the changes applied in place (mark_deleted, add_items at new positions), or why it
    must be rebuilt whole instead. Runs inside `stored`'s snapshot."""
    if stored.model != model:
        return f"the stored index is of model {stored.model!r}"
    positions = len(stored.item_ids)
    live = sum(1 for i in stored.item_ids if i != DELETED)
    if live == 0:
        return "the stored index is empty"
    steps = _Steps()
    since = (stored.built_at or datetime.now().astimezone()) - _CHANGE_MARGIN
    changes = stored.changes(model, since=since)
    steps.done("changes")
    added, gone = len(changes.new_ids), changes.removed
    if added + len(gone) > share * live:
        return f"{added + len(gone)} of {live} tracks changed"
    index = _open_stored(stored, folder)
    steps.done("open")
    if index.storage_data_type != STORAGE_TYPES[storage]:
        return f"the stored index holds {index.storage_data_type.name} vectors, INDEX_STORAGE asks for {storage}"
    vectors_of = stored.vectors(model, [*changes.new_ids, *(i for i, _ in changes.recent)])
    new_ids: list[str] = []
    new_vectors: list[np.ndarray] = []
    recent: list[tuple[str, int, np.ndarray]] = []
    for item_id, position in [*((i, None) for i in changes.new_ids), *changes.recent]:
        vector = vectors_of.get(item_id)
        if vector is None:
            continue  # cannot happen in one snapshot; an embedding gone would be removed by the next update
        row = np.frombuffer(vector, dtype="<f4").astype(np.float32)
        if len(row) != index.num_dimensions:
            return f"the embedding of {item_id!r} has {len(row)} dimensions, the index {index.num_dimensions}"
        if position is None:
            new_ids.append(item_id)
            new_vectors.append(row)
        else:
            recent.append((item_id, position, row))
    changed: list[int] = []
    if recent:
        held = index.get_vectors([p for _, p, _ in recent])
        stored_form = _as_stored(index, np.stack([row for _, _, row in recent]))
        for (item_id, position, row), old, now in zip(recent, held, stored_form, strict=True):
            if float(np.linalg.norm(row)) == 0 or not np.allclose(now, old, atol=1e-6):
                changed.append(position)
                new_ids.append(item_id)
                new_vectors.append(row)
    if len(new_ids) + len(gone) > share * live:
        return f"{len(new_ids) + len(gone)} of {live} tracks changed"
    deleted = positions - live + len(gone) + len(changed)
    if deleted > share * (positions + len(new_ids)):
        return f"{deleted} of {positions + len(new_ids)} positions are deleted"
    item_ids = list(stored.item_ids)
    marked = [*gone, *changed]
    for position in marked:
        item_ids[position] = DELETED
    vectors = np.stack(new_vectors) if new_vectors else np.zeros((0, index.num_dimensions), dtype=np.float32)
    steps.done("compare")
    apply_delta(index, marked, positions, vectors)
    steps.done("add")
    item_ids.extend(new_ids)
    touched = [*changes.new_ids, *(i for i, _ in changes.recent), *(stored.item_ids[p] for p in gone)]
    return _Delta(index=index, item_ids=item_ids, deleted=marked, first_position=positions, vectors=vectors,
                  stored_deltas=stored.delta_count(), touched=touched, seconds=steps.seconds)


def _as_stored(index: voyager.Index, rows: np.ndarray) -> np.ndarray:
    """`rows` as `index` would hold them (normalised, and rounded to its storage type): comparable with its
    `get_vectors` exactly."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    rows = np.where(norms > 0, rows, 1.0).astype(np.float32)
    out = []
    for start in range(0, len(rows), 1024):  # small indexes with a minimal graph: only the stored values are read
        part = rows[start:start + 1024]
        scratch = voyager.Index(voyager.Space.Cosine, num_dimensions=index.num_dimensions, M=2, ef_construction=1,
                                storage_data_type=index.storage_data_type)
        scratch.add_items(part, ids=list(range(len(part))), num_threads=1)
        out.append(scratch.get_vectors(list(range(len(part)))))
    return np.concatenate(out) if out else np.zeros((0, index.num_dimensions), dtype=np.float32)


def update_index(db: Database, connection: redis.Redis, *, name: str, model: str, channel: str, m: int,
                 ef_construction: int, rebuild_share: float, storage: str = "e4m3", folder: Path | None = None,
                 full: bool = False) -> IndexUpdate:
    """Bring the stored index up to date with the stored embeddings of `model` and announce it (one reload
    message, as a rebuild does). When the tracks added, removed and re-analyzed since it was stored are at most
    `rebuild_share` of it (and its deleted positions too), they are applied to it in place: removed and changed
    tracks marked deleted, new vectors added at positions after the last; else, or with `full`, or when none is
    stored, it is rebuilt whole (`rebuild_from_embeddings`), which also drops the deleted positions. One update of
    `name` at a time (`index_store.update_lock`): a second one waits and starts from what the first stored. A
    rebuild stores the vectors as `storage` (STORAGE_TYPES); a stored index of another storage is rebuilt."""
    with index_store.update_lock(db, name):
        return _update_index(db, connection, name=name, model=model, channel=channel, m=m,
                             ef_construction=ef_construction, rebuild_share=rebuild_share, storage=storage,
                             folder=folder, full=full)


def _update_index(db: Database, connection: redis.Redis, *, name: str, model: str, channel: str, m: int,
                  ef_construction: int, rebuild_share: float, storage: str, folder: Path | None,
                  full: bool) -> IndexUpdate:
    delta: _Delta | str = "a full rebuild was asked for"
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    if not full:
        try:
            with index_store.stored_index(db, name) as stored:
                delta = "no index is stored yet" if stored is None else \
                    _plan_update(stored, model=model, share=rebuild_share, storage=storage, folder=folder)
        except ValueError as exc:  # the stored index is damaged: the embeddings build it again
            log.warning("the stored index %r could not be read (%s); rebuilding it", name, exc)
            delta = f"the stored index could not be read: {exc}"
    if isinstance(delta, str):
        log.info("rebuilding index %r whole: %s", name, delta)
        size = rebuild_from_embeddings(db, connection, name=name, model=model, channel=channel, m=m,
                                       ef_construction=ef_construction, storage=storage, folder=folder)
        return IndexUpdate(size=size, full=True, reason=delta)
    size = sum(1 for i in delta.item_ids if i != DELETED)
    seconds["apply"] = time.perf_counter() - started
    seconds.update({f"apply: {step}": value for step, value in delta.seconds.items()})
    if delta.added or delta.removed:
        started = time.perf_counter()
        # asked before the update is stored: a regroup that fails leaves the request for the next one
        version_store.request_regroup(db, delta.touched)
        if delta.stored_deltas < MAX_INDEX_DELTAS:
            store_delta(db, name, delta, folder=folder)
        else:  # the deltas are folded into a new base
            store_index(db, name, delta.index, delta.item_ids, model=model, folder=folder)
        seconds["store"] = time.perf_counter() - started
        started = time.perf_counter()
        live = [i for i in delta.item_ids if i != DELETED]
        # the stored embeddings, not the index's vectors (rounded in a compressed index): as a rebuild groups them
        regroup_versions(db, live, lambda ids: embeddings_of(db, model, ids, dimensions=delta.index.num_dimensions))
        seconds["groups"] = time.perf_counter() - started
        # The artist model is refitted at full rebuilds only (fit_artists reads every vector); a new artist's
        # tracks are found by the track index meanwhile.
        publish_reload(connection, channel, name)
    log.info("index %r updated in place: %d added, %d deleted, %d tracks (%s)", name, delta.added, delta.removed,
             size, ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    return IndexUpdate(size=size, full=False, added=delta.added, removed=delta.removed, seconds=seconds)


# An update in place is stored as a delta on the last index stored whole, up to this many; the next one stores it
# whole again (a start without the index file applies each delta, ~1-2 s apiece at a million tracks).
MAX_INDEX_DELTAS = 8


def store_delta(db: Database, name: str, delta: _Delta, *, folder: Path | None) -> str:
    """Store an update in place as a delta on the stored index (and the updated index's file in `folder`); return
    the updated index's sha256."""
    data = delta.index.as_bytes()
    digest = hashlib.sha256(data).hexdigest()

    def keep(folder: Path) -> None:
        try:
            _write_atomically(index_file(folder, name), lambda out: out.write(data))
        except OSError:
            log.warning("could not keep index %r in %s", name, folder, exc_info=True)

    # The file (so the announce finds it: the web process loads it instead of the deltas) is written while
    # PostgreSQL stores the delta; both are done before the announce.
    writer = threading.Thread(target=keep, args=(folder,), name="index-file-write", daemon=True) \
        if folder is not None else None
    if writer is not None:
        writer.start()
    try:
        index_store.append_delta(db, name=name, item_ids=delta.item_ids, sha256=digest, byte_size=len(data),
                                 deleted=delta.deleted, first_position=delta.first_position, vectors=delta.vectors)
    finally:
        if writer is not None:
            writer.join()
    return digest


def rebuild_from_embeddings(db: Database, connection: redis.Redis, *, name: str, model: str, channel: str,
                            m: int, ef_construction: int, storage: str = "e4m3", folder: Path | None = None) -> int:
    """Build the index from every stored embedding of `model` (its vectors stored as `storage`), store it (and its
    file in `folder`) and the artist
    model of the same songs (`store_artist_model`), announce both with one reload message; return the index's
    size."""
    item_ids, vectors = all_embeddings(db, model)
    if not item_ids:
        return 0
    index = build_index(item_ids, vectors, m=m, ef_construction=ef_construction, storage=storage)
    store_index(db, name, index, item_ids, model=model, folder=folder)
    store_version_groups(db, item_ids, vectors)
    try:
        store_artist_model(db, name=name, model=model, item_ids=item_ids, vectors=vectors)
    except Exception:  # the artist model is a by-product: the new track index is announced whatever befalls it
        log.exception("the artist model of index %r could not be built; the previous one stays", name)
    publish_reload(connection, channel, name)
    return len(item_ids)


def store_artist_model(db: Database, *, name: str, model: str, item_ids: Sequence[str], vectors: np.ndarray) -> int:
    """Fit every artist of the indexed songs (discovery.artist_similarity) and store the model under the index's
    `name`, for the web process to load with the index; return the number of artists."""
    songs = artist_store.track_artists(db, item_ids)
    position = {item_id: i for i, item_id in enumerate(item_ids)}
    rows = [position[item_id] for item_id in songs.item_ids]
    fitted = fit_artists(songs.item_ids, songs.titles, songs.artists, songs.artist_ids,
                         vectors[rows] if rows else np.zeros((0, vectors.shape[1]), dtype=np.float32))
    artist_store.replace_model(db, name=name, model=model, num_artists=len(fitted),
                               num_components=len(fitted.weights), data=fitted.to_bytes(),
                               index_data=fitted.index_bytes())
    return len(fitted)


def _payload(data: object) -> str | None:
    """A reload message as text (index and cache names are ASCII); None for anything else."""
    if isinstance(data, str):
        return data
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def _release_freed_memory() -> None:
    """Give the transient buffers of a load (index bytes, rows) back to the OS; glibc keeps them otherwise,
    which would leave the web process hundreds of MB larger than the index it holds."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc


# Builds one in-memory cache from the database and the index just loaded (None when no index is stored yet).
CacheBuilder = Callable[[Database, LoadedIndex | None], Any]
# Fits a cache built against an index to an update of it in place (same positions, a few deleted, new ones after
# them) in memory, without the database, for the time its rebuild takes: e.g. a per-position table grown to the new
# length with "unknown" rows. A cache without one is served as it is meanwhile.
CacheCarrier = Callable[[Any, LoadedIndex], Any]
# Moves a cache built against one index onto a new index whose positions mean other tracks (a full rebuild), in
# memory, without the database: `moved[p]` is the new position of the old position p's track (-1: the new index
# does not hold it). The moved cache is served, stale, until it is built again, so a new index is served without
# every cache built beside the ones in use first. A cache without one is built beside before the swap.
CacheMover = Callable[[Any, LoadedIndex, np.ndarray], Any]


@dataclass(frozen=True)
class LibraryState:
    """What the web process serves from memory: the loaded index and the caches built against it."""

    index: LoadedIndex | None = None
    caches: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


class IndexHolder:
    """The web process's in-memory library. `state` is replaced as a whole, so readers need no lock."""

    def __init__(self, db: Database, name: str, *, folder: Path | None = None) -> None:
        self._db = db
        self.name = name
        self.folder = folder  # where the index file is kept (DATA_DIR/index); None: always from PostgreSQL
        self.state = LibraryState()
        self.last_error: str | None = None
        self.cache_errors: dict[str, str] = {}
        self.loads = 0  # successful loads of the stored index since start (reloads included)
        self._builders: dict[str, CacheBuilder] = {}
        self._carriers: dict[str, CacheCarrier] = {}
        self._movers: dict[str, CacheMover] = {}
        self._reload_lock = threading.Lock()
        self._stale: set[str] = set()  # caches served from before an update in place, being built again
        # the sha256 of the index whose positions each cache's value is of (its build, or its move onto it): a value
        # kept after a failed build may be of an older index than the one served
        self._positions_of: dict[str, str] = {}

    @property
    def current(self) -> LoadedIndex | None:
        return self.state.index

    @property
    def size(self) -> int:
        current = self.state.index
        return current.live if current is not None else 0

    def queries(self, *, query_ef: int, exclusions: Exclusions | None = None) -> IndexQueries | None:
        """A request's lookups on the current index (with `exclusions`: neighbours they allow only); None while no
        index with tracks is loaded."""
        current = self.state.index
        if current is None or current.live == 0:
            return None
        return current.queries(query_ef=query_ef, exclusions=exclusions)

    def add_cache(self, name: str, build: CacheBuilder, *, carry: CacheCarrier | None = None,
                  move: CacheMover | None = None) -> None:
        """Register an in-memory cache, rebuilt at every reload (and alone on the message `<index>:<name>`); `carry`
        fits it to an index updated in place while it is rebuilt, `move` to a new index (see `reload`)."""
        if ":" in name:
            raise ValueError(f"cache name {name!r} must not contain ':'")
        self._builders[name] = build
        if carry is not None:
            self._carriers[name] = carry
        if move is not None:
            self._movers[name] = move

    def cache_states(self) -> dict[str, str]:
        """Each registered cache: "ready" (built against the current index), "failed" (its last build failed; the
        previous value, if any, is served), "updating" (built against the index before an update in place, served
        while it is built again) or "building" (not built yet since start)."""
        caches, stale = self.state.caches, self._stale
        return {name: "failed" if name in self.cache_errors else "updating" if name in stale else
                "ready" if name in caches else "building" for name in self._builders}

    def cache(self, name: str) -> Any:
        """The cache `name` as last built, or None before its first successful build."""
        return self.state.caches.get(name)

    def reload(self, *, build_caches: bool = True) -> bool:
        """Load the stored index and serve it with every cache built against it; keep the old index (and record why)
        if loading fails. A cache whose build fails keeps its previous value. Without `build_caches` the caches are
        left empty (start-up builds them afterwards with `rebuild_caches`).

        A reload never builds a second copy of every cache beside the ones in use:
        - the stored index the loaded one updated in place (its positions mean the same tracks, a few deleted, new
          ones after them): its catalogue is the old one with the changed rows read, and it is served at once with
          the caches as they are (fitted by their `carry`); the stored index being the loaded one (a reload announced
          again) goes the same way with the index object kept;
        - a new index (a full rebuild: each position may mean another track): each cache is moved onto its positions
          (its `move`, which renames positions and shares the large arrays; a cache without one, or whose value is of
          an older index than the one served after a failed build, is built beside first) and the index is served
          with them.
        Either way new tracks are found by discovery straight away and by the caches' searches once each is built
        again, one at a time, each swapped in when built, with the old index already let go."""
        with self._reload_lock:
            stale = self._swap_in_stored(build_caches)
            if stale is None:
                return False
            _release_freed_memory()
            for name in stale:
                self._rebuild_one(name)
            return True

    def _swap_in_stored(self, build_caches: bool) -> list[str] | None:
        """Load the stored index and serve it (see `reload`); the caches still to build against it, None when the
        load failed. Its locals (the previous index among them) are gone once it returns."""
        previous = self.state.index
        try:
            loaded = load_index(self._db, self.name, folder=self.folder, previous=previous)
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("could not load index %s; keeping the previous one", self.name)
            return None
        if not build_caches or loaded is None or previous is None:
            caches = {name: self._build(name, loaded) for name in self._builders} if build_caches else {}
            self._serve(loaded, caches, stale=set())
            return []
        started = time.perf_counter()
        if loaded.has_positions_of(previous.sha256):
            if loaded.sha256 == previous.sha256:  # the same positions: each cache serves as it is meanwhile
                carried = dict(self.state.caches)
            else:
                carried = {name: self._carry(name, value, loaded) for name, value in self.state.caches.items()}
            loaded.load_seconds["carry"] = round(time.perf_counter() - started, 3)
            self._serve(loaded, carried, stale=set(self._builders))
            return list(self._builders)
        movable = [name for name in self._builders if name in self._movers and self.state.caches.get(name) is not None
                   and previous.has_positions_of(self._positions_of.get(name, ""))]
        moved_positions = None
        if movable:
            try:
                moved_positions = previous.catalog.positions_in(loaded.catalog)
            except Exception:  # every cache built beside the ones in use instead
                log.exception("could not match the positions of index %s with the new one", self.name)
        caches, stale = {}, set()
        for name in self._builders:
            value = self._move(name, self.state.caches.get(name), loaded, moved_positions) if name in movable \
                else None
            if value is None:
                value = self._build(name, loaded)
            else:
                stale.add(name)
                self._positions_of[name] = loaded.sha256
            caches[name] = value
        loaded.load_seconds["move"] = round(time.perf_counter() - started, 3)
        self._serve(loaded, caches, stale=stale)
        return [name for name in self._builders if name in stale]

    def _serve(self, loaded: LoadedIndex | None, caches: dict[str, Any], *, stale: set[str]) -> None:
        self._stale = stale
        self.state = LibraryState(index=loaded, caches=MappingProxyType(caches))
        self._accept(loaded)

    def _move(self, name: str, value: Any, loaded: LoadedIndex, moved: np.ndarray | None) -> Any:
        """Cache `name` moved onto the new index `loaded`; None when it has no mover or cannot be moved."""
        mover = self._movers.get(name)
        if mover is None or value is None or moved is None:
            return None
        try:
            return mover(value, loaded, moved)
        except Exception:  # built beside the one in use instead
            log.exception("could not move cache %s onto the new index", name)
            return None

    def _accept(self, loaded: LoadedIndex | None) -> None:
        self.loads += 1
        self.last_error = None
        if loaded is None:
            log.info("no index %s stored yet", self.name)
        else:
            log.info("index %s loaded: %d items", self.name, self.size)

    def _carry(self, name: str, value: Any, loaded: LoadedIndex) -> Any:
        carry = self._carriers.get(name)
        if carry is None or value is None:
            return value
        try:
            return carry(value, loaded)
        except Exception:  # not served until it is built again: its readers say it is being prepared
            log.exception("could not fit cache %s to the updated index", name)
            return None

    def rebuild_caches(self) -> None:
        """Build every registered cache against the index already loaded."""
        for name in list(self._builders):
            self.reload_cache(name)

    def rebuild_caches_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.rebuild_caches, name="cache-build", daemon=True)
        thread.start()
        return thread

    def reload_cache(self, name: str) -> bool:
        """Rebuild one cache against the index already loaded; False for an unknown name."""
        if name not in self._builders:
            log.warning("reload message for unknown cache %r ignored", name)
            return False
        with self._reload_lock:
            self._rebuild_one(name)
            return True

    def _rebuild_one(self, name: str) -> None:
        """Build cache `name` against the index being served and swap it in alone (the reload lock held)."""
        state = self.state
        caches = dict(state.caches)
        caches[name] = self._build(name, state.index)
        self.state = LibraryState(index=state.index, caches=MappingProxyType(caches))
        self._stale.discard(name)
        del state, caches
        _release_freed_memory()

    def _build(self, name: str, loaded: LoadedIndex | None) -> Any:
        try:
            value = self._builders[name](self._db, loaded)
        except Exception as exc:
            self.cache_errors[name] = f"{type(exc).__name__}: {exc}"
            log.exception("could not build cache %s; keeping the previous one", name)
            return self.state.caches.get(name)
        self.cache_errors.pop(name, None)
        self._positions_of[name] = loaded.sha256 if loaded is not None else ""
        return value

    def handle_message(self, payload: str) -> None:
        """Act on one reload message: the index name reloads everything, `<index>:<cache>` one cache."""
        if payload == self.name:
            self.reload()
        elif payload.startswith(self.name + ":"):
            self.reload_cache(payload[len(self.name) + 1:])

    def listen(self, connection: redis.Redis, channel: str, stop: threading.Event) -> None:
        """Reload whenever `channel` announces our index; run in a daemon thread until `stop` is set.

        It never gives up: whatever goes wrong (Redis gone or hung, a message it cannot read, a bug), it logs,
        waits (1 s, doubling up to 30 s), subscribes again and reloads, since a message may have been missed."""
        first = True
        delay = 1.0
        while not stop.is_set():
            pubsub = None
            try:
                pubsub = connection.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(channel)
                if not first:
                    self.reload()
                first = False
                delay = 1.0
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        payload = _payload(message.get("data"))
                        if payload is None:
                            log.warning("ignored a reload message that is not text: %r", message.get("data"))
                        else:
                            self.handle_message(payload)
            except Exception as exc:
                log.warning("index reload listener: %s: %s; subscribing again in %g s", type(exc).__name__, exc,
                            delay, exc_info=not isinstance(exc, redis.RedisError))
                stop.wait(delay)
                delay = min(2 * delay, 30.0)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # the connection is gone already
                        pass

    def listen_in_background(self, connection: redis.Redis, channel: str, stop: threading.Event) -> threading.Thread:
        """Run `listen` in a daemon thread until `stop` is set."""
        thread = threading.Thread(target=self.listen, args=(connection, channel, stop), name="index-reload",
                                  daemon=True)
        thread.start()
        return thread
