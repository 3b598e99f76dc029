"""Queries on map_projections: the music map's stored 2-D coordinates (item ids and float32 x, y pairs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from psycopg2.extras import Json

from db.pool import Database


@dataclass(frozen=True)
class StoredProjection:
    name: str
    model: str
    method: str
    params: dict[str, Any]
    fallback_reason: str | None
    item_ids: list[str]
    coords: np.ndarray  # (n, 2) float32
    full_count: int
    placed_count: int
    built_at: datetime
    updated_at: datetime


def save_projection(db: Database, *, name: str, model: str, method: str, params: dict[str, Any],
                    fallback_reason: str | None, item_ids: Sequence[str], coords: np.ndarray, full_build: bool,
                    placed_count: int) -> None:
    """Store the projection `name` (replacing the previous one). A full build sets built_at and full_count; an
    incremental one keeps built_at and records how many tracks were placed since it."""
    xy = np.ascontiguousarray(coords, dtype="<f4")
    if xy.shape != (len(item_ids), 2):
        raise ValueError(f"coordinates of shape {xy.shape} do not match {len(item_ids)} item ids")
    values = {"name": name, "model": model, "method": method, "params": Json(params), "reason": fallback_reason,
              "n": len(item_ids), "ids": json.dumps(list(item_ids)), "coords": xy.tobytes(),
              "placed": placed_count}
    if full_build:
        db.execute(
            """INSERT INTO map_projections (name, model, method, params, fallback_reason, track_count, full_count,
                                            placed_count, item_ids, coords, built_at, updated_at)
               VALUES (%(name)s, %(model)s, %(method)s, %(params)s, %(reason)s, %(n)s, %(n)s, 0, %(ids)s,
                       %(coords)s, now(), now())
               ON CONFLICT (name) DO UPDATE SET model = EXCLUDED.model, method = EXCLUDED.method,
                   params = EXCLUDED.params, fallback_reason = EXCLUDED.fallback_reason,
                   track_count = EXCLUDED.track_count, full_count = EXCLUDED.full_count, placed_count = 0,
                   item_ids = EXCLUDED.item_ids, coords = EXCLUDED.coords, built_at = now(), updated_at = now()""",
            values)
    else:
        updated = db.execute(
            """UPDATE map_projections SET track_count = %(n)s, placed_count = %(placed)s, item_ids = %(ids)s,
                      coords = %(coords)s, updated_at = now()
                WHERE name = %(name)s""", values)
        if updated != 1:
            raise LookupError(f"no stored map projection {name!r} to update")


def load_projection(db: Database, name: str) -> StoredProjection | None:
    row = db.fetch_one(
        """SELECT name, model, method, params, fallback_reason, item_ids, coords, full_count, placed_count, built_at,
                  updated_at
             FROM map_projections WHERE name = %s""", (name,))
    if row is None:
        return None
    coords = np.frombuffer(bytes(row["coords"]), dtype="<f4").reshape(-1, 2).astype(np.float32)
    return StoredProjection(name=row["name"], model=row["model"], method=row["method"], params=dict(row["params"]),
                            fallback_reason=row["fallback_reason"], item_ids=list(row["item_ids"]), coords=coords,
                            full_count=row["full_count"], placed_count=row["placed_count"],
                            built_at=row["built_at"], updated_at=row["updated_at"])


def projection_version(db: Database, name: str) -> datetime | None:
    """When the stored projection `name` last changed (None: none stored): tells a reader whether its copy is
    current without reading the coordinates."""
    row = db.fetch_one("SELECT updated_at FROM map_projections WHERE name = %s", (name,))
    return row["updated_at"] if row else None


def delete_projection(db: Database, name: str) -> None:
    db.execute("DELETE FROM map_projections WHERE name = %s", (name,))
