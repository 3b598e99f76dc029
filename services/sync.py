"""The diffable export: a paged index of {id, fp} for clients to compare with what they hold, and the full rows of
the tracks they lack or hold stale (metadata, tempo, key, energy, moods, the embedding as base64 float32 and the
music map's coordinates when the map has the track). `fp` is db.sync's fingerprint of the analysis result."""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from db import map_projections as projection_store
from db import sync as sync_store
from db.pool import Database


@dataclass(frozen=True)
class Page:
    """Which page: 1-based `page` of `limit` rows."""

    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def index_page(db: Database, page: Page, *, model: str) -> dict[str, Any]:
    """{tracks: [{id, fp}], total_tracks, has_more, next_page} of one page, in item-id order."""
    total = sync_store.count_analyzed(db)
    rows = sync_store.index_page(db, model=model, limit=page.limit, offset=page.offset)
    return {"tracks": [{"id": r["item_id"], "fp": r["fp"]} for r in rows], **_paging(page, len(rows), total)}


def payload_page(db: Database, page: Page, *, model: str, map_name: str, embeddings: bool) -> dict[str, Any]:
    """The full rows of one page, as index_page pages them."""
    total = sync_store.count_analyzed(db)
    rows = sync_store.payload_page(db, model=model, limit=page.limit, offset=page.offset, embeddings=embeddings)
    return {"tracks": _payloads(db, rows, map_name=map_name, embeddings=embeddings),
            **_paging(page, len(rows), total)}


def payload_by_id(db: Database, item_ids: Sequence[str], *, model: str, map_name: str,
                  embeddings: bool) -> dict[str, Any]:
    """The full rows of the analyzed tracks among `item_ids` (unknown ones left out), in item-id order."""
    rows = sync_store.payload_rows(db, item_ids, model=model, embeddings=embeddings)
    return {"tracks": _payloads(db, rows, map_name=map_name, embeddings=embeddings), "total_tracks": len(rows),
            "has_more": False, "next_page": None}


def _paging(page: Page, count: int, total: int) -> dict[str, Any]:
    more = page.offset + count < total and count > 0
    return {"total_tracks": total, "page": page.page, "limit": page.limit, "has_more": more,
            "next_page": page.page + 1 if more else None}


def _payloads(db: Database, rows: list[dict[str, Any]], *, map_name: str, embeddings: bool) -> list[dict[str, Any]]:
    coords = _map_coordinates(db, map_name, [r["item_id"] for r in rows]) if rows else {}
    out = []
    for r in rows:
        moods = r["moods"] if isinstance(r["moods"], dict) else {}
        xy = coords.get(r["item_id"])
        track: dict[str, Any] = {
            "id": r["item_id"], "item_id": r["item_id"], "title": r["title"], "artist": r["artist"],
            "author": r["artist"], "album_artist": r["album_artist"], "album": r["album"], "year": r["year"],
            "duration_seconds": r["duration_seconds"], "tempo": r["tempo_bpm"], "key": r["musical_key"],
            "scale": r["scale"], "camelot": r["camelot"], "energy": r["energy"], "loudness_lufs": r["loudness_lufs"],
            "moods": moods,
            # the reference's "label:score,..." form of the same scores
            "mood_vector": ",".join(f"{name}:{float(score):.3f}" for name, score in moods.items()),
            "top_mood": r["top_mood"], "top_tags": list(r["top_tags"] or []), "genres": list(r["genres"] or []),
            "rating": None, "umap_x": xy[0] if xy else None, "umap_y": xy[1] if xy else None, "fp": r["fp"],
            "analysis_version": r["analysis_version"],
            "analyzed_at": r["analyzed_at"].isoformat() if r["analyzed_at"] else None,
        }
        if embeddings:
            vector = bytes(r["vector"]) if r["vector"] is not None else None
            track["embedding"] = base64.b64encode(vector).decode("ascii") if vector else None
            track["embedding_dimensions"] = len(vector) // 4 if vector else None
        out.append(track)
    return out


_projections: dict[str, tuple[Any, dict[str, tuple[float, float]]]] = {}  # name -> (version, coordinates by id)
_projections_lock = threading.Lock()


def _map_coordinates(db: Database, name: str, item_ids: list[str]) -> dict[str, tuple[float, float]]:
    """(x, y) on the music map of those of `item_ids` it places; {} while no map is built. The stored map is read
    once per version (a client paging through the export asks for it on every page)."""
    version = projection_store.projection_version(db, name)
    if version is None:
        return {}
    with _projections_lock:
        held = _projections.get(name)
        if held is None or held[0] != version:
            stored = projection_store.load_projection(db, name)
            if stored is None:
                return {}
            held = (stored.updated_at, {item_id: (round(float(x), 6), round(float(y), 6))
                                        for item_id, (x, y) in zip(stored.item_ids, stored.coords.tolist(),
                                                                   strict=True)})
            _projections[name] = held
    coordinates = held[1]
    return {item_id: coordinates[item_id] for item_id in item_ids if item_id in coordinates}
