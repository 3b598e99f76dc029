"""The music map around the domain code: computing and storing the projection (in a worker), and building the web
process's map cache from what is stored and the index in memory.

A worker's `refresh_projection` maps the library with UMAP (discovery.map_projection), stores the coordinates
(db/map_projections.py) and publishes `<index name>:map` on the reload channel, so the web process rebuilds its map
cache without a restart. After an analysis run it only places the new tracks (and drops removed ones) until they
exceed MAP_FULL_REBUILD_SHARE of the mapped tracks; the Rebuild button always builds from scratch.

The web process's `build_map_cache` is registered on the IndexHolder: it serves the stored coordinates of the
tracks the loaded index holds; a track the index holds but the projection does not yet (the index is reloaded
before the projection job ends) is placed at once among its nearest mapped neighbours in the index; with no
projection stored at all the map is a PCA of the index's vectors (fitted on a sample, applied a chunk at a time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, overload

import numpy as np
import redis

from config import Config
from db import map_projections as projection_store
from db.pool import Database
from db.tracks import all_embeddings, top_tags
from discovery.catalog import DELETED, Catalog
from discovery.map_cache import MapCache, build_map_cache
from discovery.map_projection import place_new_tracks, project_library
from discovery.projection import sampled_pca_2d
from voyager_manager import LoadedIndex, publish_reload

log = logging.getLogger(__name__)

CACHE_NAME = "map"
Progress = Callable[[str, float], None]


def reload_message(config: Config) -> str:
    return f"{config.INDEX_NAME}:{CACHE_NAME}"


def refresh_projection(db: Database, connection: redis.Redis, *, config: Config, model: str, full: bool,
                       progress: Progress = lambda message, share: None) -> dict[str, Any]:
    """Bring the stored map up to date with the stored embeddings of `model` and announce it; return what was
    done: mode (full, incremental, unchanged, empty), method, tracks, placed, removed, fallback_reason."""
    name = config.INDEX_NAME
    item_ids, vectors = all_embeddings(db, model)
    stored = projection_store.load_projection(db, name)
    if not item_ids:
        if stored is not None:
            projection_store.delete_projection(db, name)
            publish_reload(connection, config.INDEX_RELOAD_CHANNEL, reload_message(config))
        removed = len(stored.item_ids) if stored else 0
        return {"mode": "empty", "method": None, "tracks": 0, "placed": 0, "removed": removed}
    mode = "full" if full else _mode(stored, item_ids, config=config, model=model)
    if mode == "full":
        result = _full_build(db, config=config, model=model, item_ids=item_ids, vectors=vectors, progress=progress)
    else:
        assert stored is not None
        result = _incremental(db, stored, config=config, item_ids=item_ids, vectors=vectors, progress=progress)
    if result["mode"] != "unchanged":
        publish_reload(connection, config.INDEX_RELOAD_CHANNEL, reload_message(config))
    return result


def _mode(stored: projection_store.StoredProjection | None, item_ids: list[str], *, config: Config,
          model: str) -> str:
    if stored is None or stored.model != model:
        return "full"
    mapped = set(stored.item_ids)
    new = sum(1 for i in item_ids if i not in mapped)
    if stored.method == "pca" and new and len(item_ids) > config.MAP_UMAP_NEIGHBORS + 1:
        return "full"  # the library has grown enough for UMAP
    if stored.placed_count + new > config.MAP_FULL_REBUILD_SHARE * max(stored.full_count, 1):
        return "full"
    return "incremental"


def _full_build(db: Database, *, config: Config, model: str, item_ids: list[str], vectors: np.ndarray,
                progress: Progress) -> dict[str, Any]:
    projection = project_library(item_ids, vectors, seed=config.MAP_SEED, n_neighbors=config.MAP_UMAP_NEIGHBORS,
                                 min_dist=config.MAP_UMAP_MIN_DIST, fit_sample=config.MAP_UMAP_FIT_SAMPLE,
                                 progress=progress)
    if projection.fallback_reason:
        log.warning("music map built with PCA: %s", projection.fallback_reason)
    projection_store.save_projection(db, name=config.INDEX_NAME, model=model, method=projection.method,
                                     params=projection.params, fallback_reason=projection.fallback_reason,
                                     item_ids=projection.item_ids, coords=projection.coords, full_build=True,
                                     placed_count=0)
    return {"mode": "full", "method": projection.method, "tracks": len(item_ids), "placed": 0, "removed": 0,
            "fallback_reason": projection.fallback_reason}


def _incremental(db: Database, stored: projection_store.StoredProjection, *, config: Config, item_ids: list[str],
                 vectors: np.ndarray, progress: Progress) -> dict[str, Any]:
    row_of = {item_id: row for row, item_id in enumerate(item_ids)}
    kept = [i for i, item_id in enumerate(stored.item_ids) if item_id in row_of]
    kept_ids = [stored.item_ids[i] for i in kept]
    kept_set = set(kept_ids)
    new_rows = [row for row, item_id in enumerate(item_ids) if item_id not in kept_set]
    removed = len(stored.item_ids) - len(kept)
    if not new_rows and not removed:
        return {"mode": "unchanged", "method": stored.method, "tracks": len(kept), "placed": 0, "removed": 0,
                "fallback_reason": stored.fallback_reason}
    coords = stored.coords[kept]
    if new_rows:
        progress(f"Placing {len(new_rows)} new tracks among {len(kept)} mapped ones", 0.1)
        known_rows = np.fromiter((row_of[i] for i in kept_ids), dtype=np.int64, count=len(kept_ids))
        placed = place_new_tracks(vectors, coords, vectors[new_rows], k=config.MAP_UMAP_NEIGHBORS, rows=known_rows)
        coords = np.concatenate([coords, placed]) if len(kept) else placed
    ids = kept_ids + [item_ids[row] for row in new_rows]
    projection_store.save_projection(db, name=config.INDEX_NAME, model=stored.model, method=stored.method,
                                     params=stored.params, fallback_reason=stored.fallback_reason, item_ids=ids,
                                     coords=coords, full_build=False,
                                     placed_count=stored.placed_count + len(new_rows))
    progress(f"Placed {len(new_rows)} new tracks, removed {removed}", 1.0)
    return {"mode": "incremental", "method": stored.method, "tracks": len(ids), "placed": len(new_rows),
            "removed": removed, "fallback_reason": stored.fallback_reason}


def map_cache_builder(config: Config) -> Callable[[Database, LoadedIndex | None], MapCache]:
    """The IndexHolder cache builder of the map for this configuration."""

    def build(db: Database, loaded: LoadedIndex | None) -> MapCache:
        return build_web_map(db, loaded, name=config.INDEX_NAME, neighbours=config.MAP_UMAP_NEIGHBORS,
                             query_ef=config.VOYAGER_QUERY_EF)

    return build


def build_web_map(db: Database, loaded: LoadedIndex | None, *, name: str, neighbours: int = 15,
                  query_ef: int = 400) -> MapCache:
    """The map cache of the tracks `loaded` holds (see the module docstring for where coordinates come from)."""
    empty = np.zeros((0, 2), dtype=np.float32)
    if loaded is None or len(loaded) == 0:
        return build_map_cache(positions=[], item_ids=[], names=[], coords=empty, tag_names=[],
                               tag_codes=np.zeros((0, 3), np.int16), tag_scores=np.zeros((0, 3), np.float32),
                               index_size=0, projection="none")
    catalog = loaded.catalog
    size = len(loaded)
    coords = np.full((size, 2), np.nan, dtype=np.float32)
    stored = projection_store.load_projection(db, name)
    meta: dict[str, Any] = {"built_at": None, "fallback_reason": None, "placed_since_build": 0,
                            "placed_now": 0}
    if stored is not None:
        for item_id, xy in zip(stored.item_ids, stored.coords, strict=True):
            position = catalog.position(item_id)
            if position is not None:
                coords[position] = xy
        projection = stored.method
        meta.update(built_at=stored.built_at.isoformat(timespec="seconds"), fallback_reason=stored.fallback_reason,
                    placed_since_build=stored.placed_count, params=stored.params)
        live = catalog.live_positions()  # positions deleted by an update in place have no vector to place
        missing = live[np.isnan(coords[live, 0])]
        if len(missing) == len(live):
            stored = None  # a projection of another library: start again from PCA
        elif len(missing):
            _place_by_index(loaded, coords, missing, k=neighbours, query_ef=query_ef)
            meta["placed_now"] = int(len(missing))
    if stored is None:
        projection = "pca"
        # a sample fits the axes and the index is read a chunk at a time: never a copy of all its vectors
        live = catalog.live_positions()
        flat = sampled_pca_2d(lambda rows: loaded.vectors_of(live[rows].tolist()), len(live))
        spread = float(flat.std()) or 1.0
        coords = np.full((size, 2), np.nan, dtype=np.float32)
        coords[live] = ((flat - flat.mean(axis=0)) / spread).astype(np.float32)
        meta["fallback_reason"] = "no map projection has been computed yet"
    positions = [p for p in range(size) if catalog.names(p) is not None]
    item_ids = [catalog.item_id(p) for p in positions]
    tag_names, tag_codes, tag_scores = top_tags(db, item_ids)
    return build_map_cache(positions=positions, item_ids=item_ids, names=_CatalogNames(catalog, positions),
                           coords=coords[positions], tag_names=tag_names, tag_codes=tag_codes,
                           tag_scores=tag_scores, index_size=size, projection=projection, meta=meta,
                           index_id=loaded.sha256)


class _CatalogNames(Sequence[tuple[str, str, str]]):
    """(title, artist, album) of the tracks at `positions`, read from the catalogue when asked (the map cache reads
    each once): a million of them as a list of tuples would be about 250 MB while the cache is built."""

    def __init__(self, catalog: Catalog, positions: list[int]) -> None:
        self._catalog = catalog
        self._positions = positions

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, i: int) -> tuple[str, str, str]: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[tuple[str, str, str]]: ...

    def __getitem__(self, i: int | slice) -> tuple[str, str, str] | Sequence[tuple[str, str, str]]:
        if isinstance(i, slice):
            return _CatalogNames(self._catalog, self._positions[i])
        found = self._catalog.names(self._positions[i])
        assert found is not None, "only positions with names are listed"
        return found


def move_web_map(cache: MapCache, loaded: LoadedIndex, moved: np.ndarray) -> MapCache:
    """The map moved onto a new index (an IndexHolder cache mover): the same points, each at its track's new
    position; tracks new to the index are placed when it is built again."""
    return cache.moved(moved, index_size=len(loaded), index_id=loaded.sha256)


class StaleMap(Exception):
    """The map cache in memory was built against another index than the one loaded (its rebuild failed)."""


def describe_points(cache: MapCache, loaded: LoadedIndex | None, indices: Sequence[int]) -> list[dict[str, Any]]:
    """The points `indices` of `cache` as the JSON document's items, without mood_vector, plus their index: names
    and ids come from the catalogue of `loaded`, not from a copy in the cache. Raises StaleMap when the cache is not
    of `loaded`."""
    if not indices:
        return []
    if loaded is None or not loaded.has_positions_of(cache.index_id):
        raise StaleMap("the map in memory is of another index than the one loaded")
    catalog = loaded.catalog
    out = []
    for i in indices:
        position = int(cache.positions[i])
        if position < 0 or catalog.item_id(position) == DELETED:
            continue  # left the index since the map was built (until it is built again)
        title, artist, album = catalog.names(position) or ("", "", "")
        out.append({"index": i, "item_id": catalog.item_id(position), "title": title, "artist": artist,
                    "album": album, "top_mood": cache.top_tag(i), "embedding_2d": list(cache.xy(i))})
    return out


def _place_by_index(loaded: LoadedIndex, coords: np.ndarray, missing: np.ndarray, *, k: int, query_ef: int,
                    chunk: int = 4096) -> None:
    """Fill `coords` of the `missing` positions in place: the similarity-weighted mean of their nearest mapped
    neighbours in the index (the same rule as the worker's incremental placement, with Voyager finding them), a
    `chunk` of them per batch query."""
    mapped = ~np.isnan(coords[:, 0])
    known = np.where(mapped[:, None], coords, 0.0)
    ask = min(loaded.live, max(4 * k, 64))  # a few of the hits may be unmapped too
    for start in range(0, len(missing), chunk):
        part = missing[start:start + chunk]
        # the index's own order is close enough for a weighted mean (an exact one would read ~2 × ask rows each)
        found = loaded.query_positions_batch(loaded.vectors_of(part.tolist()), ask, query_ef=query_ef, exact=False)
        hits = np.array([p for p, _ in found], dtype=np.int64).reshape(len(part), -1)
        distances = np.array([d for _, d in found], dtype=np.float32).reshape(len(part), -1)
        usable = mapped[hits] & (hits != part[:, None])
        take = usable & (np.cumsum(usable, axis=1) <= k)  # the k nearest mapped hits (hits come nearest first)
        weights = np.where(take, np.clip(1.0 - distances, 0.0, None), 0.0)
        unweighted = take.any(axis=1) & (weights.sum(axis=1) == 0)
        weights[unweighted] = take[unweighted]
        total = weights.sum(axis=1)
        placed = (weights[:, :, None] * known[hits]).sum(axis=1) / np.where(total > 0, total, 1.0)[:, None]
        coords[part] = placed  # a track near no mapped one (total 0) lands on the origin
