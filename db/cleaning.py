"""Queries of database cleaning: what is analyzed, and deleting the tracks the media server no longer lists with
every row that hangs on them (embeddings, CLAP embeddings and AudioMuse's playlist entries by cascade; their
analysis failures and their points on the music map here), one transaction per batch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from db.pool import Database


def analyzed_tracks(db: Database) -> list[dict[str, Any]]:
    """Every track with an embedding: item id, title, artist, album, album id."""
    return db.fetch_all(
        """SELECT t.item_id, t.title, t.artist, t.album, t.album_id FROM tracks t
            WHERE EXISTS (SELECT 1 FROM embeddings e WHERE e.item_id = t.item_id) ORDER BY t.item_id""")


def failure_item_ids(db: Database) -> list[str]:
    """Items with a recorded analysis failure and no attempt of a live task open on them."""
    rows = db.fetch_all(
        """SELECT f.item_id FROM analysis_failures f
            WHERE NOT (f.attempt_open AND EXISTS (SELECT 1 FROM task_status s WHERE s.task_id = f.task_id
                                                    AND s.status IN ('PENDING', 'STARTED', 'PROGRESS')))""")
    return [r["item_id"] for r in rows]


@dataclass(frozen=True)
class DeletedBatch:
    tracks: int  # track rows deleted (their embeddings, CLAP embeddings and playlist entries went with them)
    failures: int  # analysis_failures rows deleted
    map_points: int  # points removed from stored map projections
    skipped: tuple[str, ...]  # ids not deleted: gone already, or written after `listed_at` (analyzed again)


def delete_orphans(db: Database, item_ids: Sequence[str], *, listed_at: datetime) -> DeletedBatch:
    """Delete the tracks `item_ids` and what hangs on them in one transaction. A track written at or after
    `listed_at` (the moment the media server's listing began) is kept: an analysis that ran meanwhile saw it on
    the server. Deleting what is gone already deletes nothing (the call is idempotent)."""
    ids = sorted(set(item_ids))
    if not ids:
        return DeletedBatch(0, 0, 0, ())
    with db.transaction() as cur:
        cur.execute(
            """DELETE FROM tracks WHERE item_id = ANY(%s) AND updated_at < %s RETURNING item_id""", (ids, listed_at))
        deleted = {r["item_id"] for r in cur.fetchall()}
        cur.execute("DELETE FROM analysis_failures WHERE item_id = ANY(%s)", (sorted(deleted),))
        failures = int(cur.rowcount)
        points = _drop_map_points(cur, deleted)
    return DeletedBatch(len(deleted), failures, points, tuple(i for i in ids if i not in deleted))


def delete_failures(db: Database, item_ids: Sequence[str]) -> int:
    """Delete the analysis failures of items the media server no longer lists (no track row: never analyzed)."""
    if not item_ids:
        return 0
    return db.execute(
        """DELETE FROM analysis_failures f WHERE f.item_id = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM tracks t WHERE t.item_id = f.item_id)
              AND NOT (f.attempt_open AND EXISTS (SELECT 1 FROM task_status s WHERE s.task_id = f.task_id
                                                    AND s.status IN ('PENDING', 'STARTED', 'PROGRESS')))""",
        (sorted(set(item_ids)),))


def _drop_map_points(cur: Any, item_ids: set[str]) -> int:
    """Remove `item_ids` from every stored map projection (rows locked for the transaction)."""
    if not item_ids:
        return 0
    cur.execute("SELECT name, item_ids, coords FROM map_projections FOR UPDATE")
    removed = 0
    for row in cur.fetchall():
        ids = list(row["item_ids"])
        keep = [i for i, item_id in enumerate(ids) if item_id not in item_ids]
        if len(keep) == len(ids):
            continue
        coords = np.frombuffer(bytes(row["coords"]), dtype="<f4").reshape(-1, 2)[keep]
        cur.execute(
            """UPDATE map_projections SET item_ids = %s, coords = %s, track_count = %s, updated_at = now()
                WHERE name = %s""",
            (json.dumps([ids[i] for i in keep]), np.ascontiguousarray(coords, dtype="<f4").tobytes(), len(keep),
             row["name"]))
        removed += len(ids) - len(keep)
    return removed
