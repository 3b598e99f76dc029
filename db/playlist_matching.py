"""Queries of playlist matching: the user's playlists as read from the media server, their stored profiles, the
suggestions and their accept/reject state, and what the job needs of the analyzed songs (MatchingLibrary)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from psycopg2.extras import Json, execute_values

from db.exclusions_sql import exclusion_sql
from db.pool import Database
from db.vector_rows import VectorRows
from db.versions import SHOWN_COPY, SONG
from discovery.exclusions import Exclusions
from discovery.playlist_matching import MatchingLibrary
from discovery.ranking import to_unit_rows


def save_user_playlist(db: Database, *, playlist_id: str, name: str, item_ids: Sequence[str], content_hash: str,
                       generated: bool) -> bool:
    """Store a playlist as the server lists it now; True when its membership changed (or it is new)."""
    row = db.fetch_one(
        """INSERT INTO user_playlists (playlist_id, name, item_ids, content_hash, generated, fetched_at)
           VALUES (%s, %s, %s, %s, %s, now())
           ON CONFLICT (playlist_id) DO UPDATE SET name = EXCLUDED.name, item_ids = EXCLUDED.item_ids,
               content_hash = EXCLUDED.content_hash, generated = EXCLUDED.generated, fetched_at = now()
           RETURNING (xmax = 0) AS created,
                     (SELECT content_hash FROM user_playlists WHERE playlist_id = %s) AS previous""",
        (playlist_id, name, Json(list(item_ids)), content_hash, generated, playlist_id))
    return bool(row and (row["created"] or row["previous"] != content_hash))


def forget_playlists_except(db: Database, playlist_ids: Sequence[str]) -> int:
    """Drop the playlists the server no longer lists (their profiles and suggestions go with them)."""
    return db.execute("DELETE FROM user_playlists WHERE NOT (playlist_id = ANY(%s))", (list(playlist_ids),))


def user_playlists(db: Database, *, include_generated: bool = False) -> list[dict[str, Any]]:
    where = "" if include_generated else "WHERE NOT generated"
    return db.fetch_all(f"""SELECT playlist_id, name, item_ids, content_hash, generated, fetched_at
                              FROM user_playlists {where} ORDER BY name, playlist_id""")


def get_user_playlist(db: Database, playlist_id: str) -> dict[str, Any] | None:
    return db.fetch_one("""SELECT playlist_id, name, item_ids, content_hash, generated, fetched_at
                             FROM user_playlists WHERE playlist_id = %s""", (playlist_id,))


@dataclass(frozen=True)
class ProfileKey:
    profile_kind: str
    model: str
    analysis_version: int
    code_version: int
    content_hash: str


def stored_profile_keys(db: Database) -> dict[str, ProfileKey]:
    rows = db.fetch_all("""SELECT playlist_id, profile_kind, model, analysis_version, code_version, content_hash
                             FROM playlist_profiles""")
    return {r["playlist_id"]: ProfileKey(r["profile_kind"], r["model"], r["analysis_version"], r["code_version"],
                                         r["content_hash"]) for r in rows}


def save_profile(db: Database, playlist_id: str, key: ProfileKey, *, members: int, profile: dict[str, Any],
                 centroid: np.ndarray, tag_profile: np.ndarray) -> None:
    db.execute(
        """INSERT INTO playlist_profiles (playlist_id, profile_kind, model, analysis_version, code_version,
                                          content_hash, members, profile, centroid, tag_profile, computed_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
           ON CONFLICT (playlist_id) DO UPDATE SET profile_kind = EXCLUDED.profile_kind, model = EXCLUDED.model,
               analysis_version = EXCLUDED.analysis_version, code_version = EXCLUDED.code_version,
               content_hash = EXCLUDED.content_hash, members = EXCLUDED.members, profile = EXCLUDED.profile,
               centroid = EXCLUDED.centroid, tag_profile = EXCLUDED.tag_profile, computed_at = now()""",
        (playlist_id, key.profile_kind, key.model, key.analysis_version, key.code_version, key.content_hash, members,
         Json(profile), np.ascontiguousarray(centroid, "<f4").tobytes(),
         np.ascontiguousarray(tag_profile, "<f4").tobytes()))


def analyzed_among(db: Database, model: str, item_ids: Sequence[str]) -> set[str]:
    """Those of `item_ids` that are analyzed and have an embedding of `model`: the songs matching knows."""
    rows = db.fetch_all("""SELECT t.item_id FROM tracks t JOIN embeddings e ON e.item_id = t.item_id AND e.model = %s
                            WHERE t.analyzed_at IS NOT NULL AND t.item_id = ANY(%s)""", (model, list(item_ids)))
    return {r["item_id"] for r in rows}


_ANALYZED = """FROM tracks t JOIN embeddings e ON e.item_id = t.item_id AND e.model = %(model)s
              WHERE t.analyzed_at IS NOT NULL"""


def matching_library(db: Database, model: str, *, members: Collection[str], since: datetime | None,
                     batch: int = 10_000) -> MatchingLibrary:
    """What the matching job needs of every analyzed song with an embedding of `model`, in item-id order: its unit
    vector; and, of the songs in `members` and those analyzed since `since` (every one when None; the candidates),
    the item id, song and shown copy (discovery/versions.py); of the members also title, artist, tags, moods, tempo
    and energy. The vectors are streamed as tuples through a server-side cursor into one float32 array sized by a
    count first (grown if rows arrive meanwhile), as db.tracks.all_embeddings: no other row is kept, so a million
    songs cost their 800 MB of vectors. Raises ValueError when the embeddings differ in size."""
    wanted = set(members)
    params = {"model": model, "since": since}
    rows: list[int] = []
    item_ids: list[str] = []
    songs: list[str] = []
    shown: list[str] = []
    candidate: list[bool] = []
    with db.transaction() as cur, cur.connection.cursor(name="matching_library") as stream:
        cur.execute(f"SELECT count(*) AS n {_ANALYZED}", params)
        counted = cur.fetchone()
        library = VectorRows(int(counted["n"]) if counted else 0, model=model, grow_by=batch)
        stream.itersize = batch
        # a song or shown copy that is the item itself comes as NULL (most do): no second string per row
        stream.execute(
            f"""SELECT t.item_id, e.vector, (%(since)s::timestamptz IS NULL OR t.analyzed_at >= %(since)s),
                       NULLIF({SHOWN_COPY}, t.item_id), NULLIF({SONG}, t.item_id)
                  {_ANALYZED} ORDER BY t.item_id""", params)
        for item_id, vector, is_candidate, shown_copy, song in stream:
            n = library.append(item_id, vector)
            if is_candidate or item_id in wanted:
                rows.append(n)
                item_ids.append(item_id)
                songs.append(song or item_id)
                shown.append(shown_copy or item_id)
                candidate.append(bool(is_candidate))
    vectors = library.array()  # a view: rows deleted since the count leave a few unused rows, not a copy of them all
    found = [item_id for item_id in item_ids if item_id in wanted]
    details = {r["item_id"]: r for r in db.fetch_all(
        "SELECT item_id, title, artist, tags, moods, tempo_bpm, energy FROM tracks WHERE item_id = ANY(%s)",
        (found,))} if found else {}
    return MatchingLibrary(
        vectors=to_unit_rows(vectors), rows=np.asarray(rows, dtype=np.int64), item_ids=item_ids, songs=songs,
        shown=shown, candidate=np.asarray(candidate, dtype=bool),
        member_rows={item_id: row for row, item_id in zip(rows, item_ids, strict=True) if item_id in details},
        members=details)


def decided(db: Database) -> set[tuple[str, str]]:
    """(item, playlist) pairs the user accepted or rejected: never suggested again."""
    rows = db.fetch_all("SELECT item_id, playlist_id FROM playlist_suggestions WHERE status <> 'open'")
    return {(r["item_id"], r["playlist_id"]) for r in rows}


def save_suggestions(db: Database, suggestions: Sequence[tuple[str, str, float, list[str]]]) -> int:
    """Upsert open suggestions (item, playlist, score, reasons); decided ones are left as they are."""
    if not suggestions:
        return 0
    # one statement may not upsert a row twice: of a pair given twice the last is kept, as row by row
    unique = {(i, p): (s, r) for i, p, s, r in suggestions}
    with db.transaction() as cur:
        execute_values(
            cur,
            """INSERT INTO playlist_suggestions (item_id, playlist_id, score, reasons) VALUES %s
               ON CONFLICT (item_id, playlist_id) DO UPDATE SET score = EXCLUDED.score, reasons = EXCLUDED.reasons
               WHERE playlist_suggestions.status = 'open'""",
            [(i, p, s, Json(r)) for (i, p), (s, r) in unique.items()], page_size=1000)
    return len(unique)


def drop_member_suggestions(db: Database) -> int:
    """Open suggestions of songs that are in the playlist by now (added on the server or from the page)."""
    return db.execute(
        """DELETE FROM playlist_suggestions s USING user_playlists p
            WHERE s.playlist_id = p.playlist_id AND s.status = 'open' AND p.item_ids ? s.item_id""")


def list_suggestions(db: Database, *, since: datetime | None, status: str | None = "open",
                     limit: int = 500, exclusions: Exclusions | None = None) -> list[dict[str, Any]]:
    """Suggestions of songs analyzed since `since`, newest songs first; none of a song `exclusions` (blocklists,
    scope) leave out."""
    excluded, params = exclusion_sql(db, exclusions)
    return db.fetch_all(
        f"""SELECT s.item_id, t.title, t.artist, t.album, s.playlist_id, p.name AS playlist_name, s.score, s.reasons,
                   s.status, s.created_at, s.decided_at
              FROM playlist_suggestions s JOIN tracks t ON t.item_id = s.item_id
              JOIN user_playlists p ON p.playlist_id = s.playlist_id
             WHERE (%(status)s::text IS NULL OR s.status = %(status)s)
               AND (%(since)s::timestamptz IS NULL OR t.analyzed_at >= %(since)s)
               {"".join(" AND " + c for c in excluded)}
             ORDER BY t.analyzed_at DESC, s.item_id, s.score DESC LIMIT %(limit)s""",
        {**params, "status": status, "since": since, "limit": limit})


def decide(db: Database, item_id: str, playlist_id: str, status: str) -> bool:
    """Mark a suggestion accepted or rejected (a pair never suggested is recorded too); False for unknown ids."""
    row = db.fetch_one(
        """INSERT INTO playlist_suggestions (item_id, playlist_id, score, status, decided_at)
           SELECT %s, %s, 0, %s, now()
            WHERE EXISTS (SELECT 1 FROM tracks WHERE item_id = %s)
              AND EXISTS (SELECT 1 FROM user_playlists WHERE playlist_id = %s)
           ON CONFLICT (item_id, playlist_id) DO UPDATE SET status = EXCLUDED.status, decided_at = now()
           RETURNING item_id""", (item_id, playlist_id, status, item_id, playlist_id))
    return row is not None


def is_analyzed(db: Database, item_id: str) -> bool:
    return db.fetch_one("SELECT 1 AS yes FROM tracks WHERE item_id = %s AND analyzed_at IS NOT NULL",
                        (item_id,)) is not None


def rejected_pairs(db: Database) -> list[tuple[str, str]]:
    rows = db.fetch_all("SELECT item_id, playlist_id FROM playlist_suggestions WHERE status = 'rejected'")
    return [(r["item_id"], r["playlist_id"]) for r in rows]
