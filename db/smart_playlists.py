"""Queries of smart playlists: a rule's conditions as SQL (bound parameters only: no value of a rule is ever part of
the statement's text), the tracks it matches in the playlist's order, and the smart_playlists rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg2.extras import Json

from db.criteria_sql import criteria_sql
from db.exclusions_sql import exclusion_sql
from db.pool import Database
from db.versions import SHOWN_COPY, SONG
from discovery.criteria import Criterion
from discovery.exclusions import Exclusions

COLUMNS = """smart_playlist_id, name, rule, order_by, seed, size_cap, last_refreshed_at, last_matches, last_count,
             last_added, last_removed, last_error, mediaserver_playlist, created_at, updated_at"""
SOURCE = "smart"
SUFFIX = "_smart"


def rule_sql(conditions: Sequence[Criterion]) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of `conditions` (AND-ed; NOT keeps tracks whose value is unknown) and its parameters: the
    tracks a smart playlist may hold are analyzed and have an embedding."""
    clauses, params = criteria_sql(conditions)
    base = ["t.analyzed_at IS NOT NULL", "EXISTS (SELECT 1 FROM embeddings em WHERE em.item_id = t.item_id)"]
    return " AND ".join(base + clauses), params


_ORDER = {"bpm": "t.tempo_bpm NULLS LAST, t.item_id", "energy": "t.energy DESC NULLS LAST, t.item_id",
          "random": "md5(t.item_id || ':' || %(seed)s::text), t.item_id", "similarity": "t.item_id"}


@dataclass(frozen=True)
class Matches:
    count: int
    item_ids: list[str]  # in the playlist's order, at most the cap


def matching(db: Database, conditions: Sequence[Criterion], *, order_by: str, seed: int, limit: int,
             model: str, exclusions: Exclusions | None = None) -> Matches:
    """The tracks `conditions` match, ordered by `order_by` (similarity: to the mean embedding of every match,
    nearest first), the first `limit` of them, and how many match in all; none that `exclusions` (blocklists,
    scope) leave out."""
    where, params = rule_sql(conditions)
    excluded, exclusion_params = exclusion_sql(db, exclusions)
    where = " AND ".join([where, *excluded])
    params = {**params, **exclusion_params, "seed": seed, "limit": limit, "model": model}
    if order_by != "similarity":
        # One row per song (its first version in the order, shown by its recording's kept copy); the window count
        # is taken over every song before the LIMIT.
        order = _ORDER[order_by]
        rows = db.fetch_all(
            f"""SELECT t.shown AS item_id, count(*) OVER () AS n
                  FROM (SELECT t.*, {SHOWN_COPY} AS shown,
                               row_number() OVER (PARTITION BY {SONG} ORDER BY {order}) AS version_rank
                          FROM tracks t WHERE {where}) t
                 WHERE t.version_rank = 1 ORDER BY {order} LIMIT %(limit)s""", params)
        return Matches(int(rows[0]["n"]) if rows else 0, [r["item_id"] for r in rows])
    rows = db.fetch_all(f"""SELECT t.item_id, {SHOWN_COPY} AS shown, {SONG} AS song, em.vector FROM tracks t
                              JOIN embeddings em ON em.item_id = t.item_id AND em.model = %(model)s
                             WHERE {where} ORDER BY t.item_id""", params)
    if not rows:
        return Matches(0, [])
    song_rows: dict[str, dict[str, Any]] = {}
    for row in rows:  # one row per song: its first version by item id, shown by its recording's kept copy
        song_rows.setdefault(str(row["song"]), row)
    rows = list(song_rows.values())
    count = len(rows)
    ids = [r["shown"] for r in rows]
    vectors = np.stack([np.frombuffer(bytes(r["vector"]), dtype="<f4") for r in rows]).astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centroid = vectors.mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    similarity = vectors @ centroid
    ranking = np.lexsort((np.arange(len(ids)), -similarity))[:limit]
    return Matches(count, [ids[int(i)] for i in ranking])


def list_smart_playlists(db: Database) -> list[dict[str, Any]]:
    return db.fetch_all(f"SELECT {COLUMNS} FROM smart_playlists ORDER BY name")


def get_smart_playlist(db: Database, smart_playlist_id: int) -> dict[str, Any] | None:
    return db.fetch_one(f"SELECT {COLUMNS} FROM smart_playlists WHERE smart_playlist_id = %s", (smart_playlist_id,))


def save_smart_playlist(db: Database, *, smart_playlist_id: int | None, name: str, rule: str, order_by: str,
                        seed: int, size_cap: int) -> dict[str, Any] | None:
    """Create (id None) or update; the row, or None for an unknown id. A name another playlist has raises
    psycopg2's UniqueViolation."""
    values = (name, rule, order_by, seed, size_cap)
    if smart_playlist_id is None:
        return db.fetch_one(f"""INSERT INTO smart_playlists (name, rule, order_by, seed, size_cap)
                                VALUES (%s, %s, %s, %s, %s) RETURNING {COLUMNS}""", values)
    with db.transaction() as cur:
        # a new name is a new playlist on the media server: forget what the old name published
        cur.execute("""WITH old AS (SELECT name FROM smart_playlists WHERE smart_playlist_id = %s)
                        DELETE FROM playlists WHERE source = %s AND name = (SELECT name FROM old) || %s
                          AND (SELECT name FROM old) <> %s""", (smart_playlist_id, SOURCE, SUFFIX, name))
        cur.execute(f"""UPDATE smart_playlists SET
                            published_ids = CASE WHEN name = %s THEN published_ids ELSE '[]'::jsonb END,
                            mediaserver_playlist = CASE WHEN name = %s THEN mediaserver_playlist END,
                            name = %s, rule = %s, order_by = %s, seed = %s, size_cap = %s, updated_at = now()
                        WHERE smart_playlist_id = %s RETURNING {COLUMNS}""",
                    (name, name, *values, smart_playlist_id))
        row = cur.fetchone()
        return dict(row) if row else None


def delete_smart_playlist(db: Database, smart_playlist_id: int) -> dict[str, Any] | None:
    """Delete the smart playlist and AudioMuse's record of its tracks; its row (None when unknown)."""
    with db.transaction() as cur:
        cur.execute(f"DELETE FROM smart_playlists WHERE smart_playlist_id = %s RETURNING {COLUMNS}",
                    (smart_playlist_id,))
        row = cur.fetchone()
        if row is not None:
            cur.execute("DELETE FROM playlists WHERE name = %s AND source = %s", (row["name"] + SUFFIX, SOURCE))
        return dict(row) if row else None


def published(db: Database, smart_playlist_id: int) -> list[str]:
    """The tracks the media server was last given for this smart playlist, in order."""
    row = db.fetch_one("SELECT published_ids FROM smart_playlists WHERE smart_playlist_id = %s",
                       (smart_playlist_id,))
    return [str(i) for i in row["published_ids"]] if row else []


def record_refresh(db: Database, smart_playlist_id: int, *, matches: int | None, count: int | None,
                   added: int | None, removed: int | None, error: str | None, mediaserver_playlist: str | None,
                   published_ids: Sequence[str] | None = None, clear_playlist: bool = False) -> None:
    db.execute(
        """UPDATE smart_playlists SET last_refreshed_at = now(), last_matches = coalesce(%s, last_matches),
                  last_count = coalesce(%s, last_count), last_added = %s, last_removed = %s, last_error = %s,
                  mediaserver_playlist = CASE WHEN %s THEN NULL ELSE coalesce(%s, mediaserver_playlist) END,
                  published_ids = coalesce(%s, published_ids)
            WHERE smart_playlist_id = %s""",
        (matches, count, added, removed, error, clear_playlist, mediaserver_playlist,
         Json(list(published_ids)) if published_ids is not None else None, smart_playlist_id))
