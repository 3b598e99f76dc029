"""Queries on tracks, embeddings and analysis_failures."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from psycopg2.extras import Json, RealDictCursor

from audio.parts import FEATURE_PARTS
from db.criteria_sql import criteria_sql, escape_like
from db.exclusions_sql import exclusion_sql
from db.pool import Database
from db.vector_rows import VectorRows
from discovery.criteria import Criterion
from discovery.exclusions import Exclusions


def save_parts(db: Database, item_id: str, values: dict[str, Any], versions: dict[str, int]) -> None:
    """Store parts of a track's analysis computed again (`values`: their columns and `moods`) with their `versions`
    ({part: version}), in one statement."""
    columns = [c for part in versions for c in FEATURE_PARTS[part]] + ["moods"]
    assignments = [f"{c} = %({c})s" for c in columns] + [f"{p}_version = %({p}_version)s" for p in versions]
    params = {c: Json(values[c]) if c == "moods" else values[c] for c in columns}
    params.update({f"{p}_version": v for p, v in versions.items()}, item_id=item_id)
    with db.transaction() as cur:
        cur.execute(f"UPDATE tracks SET {', '.join(assignments)}, updated_at = now() WHERE item_id = %(item_id)s",
                    params)
        cur.execute("DELETE FROM analysis_failures WHERE item_id = %s", (item_id,))


def count_fast(db: Database) -> int:
    """Analysed tracks whose embedding and tags came from a fast analysis (through tracks_fast_idx)."""
    row = db.fetch_one("SELECT count(*) AS n FROM tracks WHERE patch_stride > 1 AND analyzed_at IS NOT NULL")
    return int(row["n"]) if row else 0


def outdated_parts(db: Database, versions: dict[str, int], *, model_version: int) -> dict[str, int]:
    """{part: analysed tracks whose part is older than `versions[part]`} among the tracks analysed with the model
    part `model_version` (the others are analysed again whole anyway)."""
    # one count per part, each through its version's index: only the older rows are read
    counts = ", ".join(f"""(SELECT count(*) FROM tracks WHERE {p}_version < %({p})s AND analyzed_at IS NOT NULL
                                 AND analysis_version = %(model)s) AS {p}""" for p in versions)
    row = db.fetch_one(f"SELECT {counts}", {**versions, "model": model_version})
    return {p: int(row[p]) for p in versions} if row else dict.fromkeys(versions, 0)


def analysis_state(db: Database, item_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """For each known item: its signature, fingerprint, analysis version, and whether an embedding exists;
    items that failed are included with `failed_version` set."""
    if not item_ids:
        return {}
    rows = db.fetch_all(
        """SELECT t.item_id, t.source_signature, t.content_fingerprint, t.analysis_version, t.tempo_version,
                  t.key_version, t.energy_version, t.tags, t.energy, t.tempo_confidence, t.tempo_bpm, t.camelot,
                  t.patch_stride,
                  EXISTS (SELECT 1 FROM embeddings e WHERE e.item_id = t.item_id) AS has_embedding
             FROM tracks t WHERE t.item_id = ANY(%s)""",
        (list(item_ids),),
    )
    state = {r["item_id"]: dict(r, failed_version=None, failed_signature=None, failed_retryable=False,
                                failed_attempts=0) for r in rows}
    for r in db.fetch_all(
            """SELECT item_id, analysis_version, source_signature, retryable, attempts
                 FROM analysis_failures WHERE item_id = ANY(%s)""",
            (list(item_ids),)):
        entry = state.setdefault(r["item_id"], {"item_id": r["item_id"], "has_embedding": False,
                                                "analysis_version": None, "source_signature": None,
                                                "content_fingerprint": None})
        entry["failed_version"] = r["analysis_version"]
        entry["failed_signature"] = r["source_signature"]
        entry["failed_retryable"] = r["retryable"]
        entry["failed_attempts"] = r["attempts"]
    return state


def save_analysis(db: Database, *, track: Any, analysis: Any, fingerprint: str, access: str) -> None:
    """Upsert the track row and its embedding in one transaction (a kill leaves either both or neither)."""
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO tracks (item_id, title, artist, album, album_artist, album_id, file_path, duration_seconds,
                                   year, track_number, source_signature, content_fingerprint, tempo_bpm,
                                   tempo_confidence, musical_key, scale, camelot, key_confidence, energy,
                                   loudness_lufs, tags, moods, analysis_model, analysis_version, analyzed_at,
                                   patches_analyzed, audio_access, genres, artist_id, tempo_version, key_version,
                                   energy_version, patch_stride, updated_at)
               VALUES (%(item_id)s, %(title)s, %(artist)s, %(album)s, %(album_artist)s, %(album_id)s, %(path)s,
                       %(duration)s, %(year)s, %(track_number)s, %(signature)s, %(fingerprint)s, %(tempo)s,
                       %(tempo_conf)s, %(key)s, %(scale)s, %(camelot)s, %(key_conf)s, %(energy)s, %(loudness)s,
                       %(tags)s, %(moods)s, %(model)s, %(version)s, now(), %(patches)s, %(access)s, %(genres)s,
                       %(artist_id)s, %(tempo_version)s, %(key_version)s, %(energy_version)s, %(patch_stride)s, now())
               ON CONFLICT (item_id) DO UPDATE SET
                   title = EXCLUDED.title, artist = EXCLUDED.artist, album = EXCLUDED.album,
                   album_artist = EXCLUDED.album_artist, album_id = EXCLUDED.album_id,
                   file_path = EXCLUDED.file_path, duration_seconds = EXCLUDED.duration_seconds,
                   year = EXCLUDED.year, track_number = EXCLUDED.track_number,
                   source_signature = EXCLUDED.source_signature, content_fingerprint = EXCLUDED.content_fingerprint,
                   tempo_bpm = EXCLUDED.tempo_bpm, tempo_confidence = EXCLUDED.tempo_confidence,
                   musical_key = EXCLUDED.musical_key, scale = EXCLUDED.scale, camelot = EXCLUDED.camelot,
                   key_confidence = EXCLUDED.key_confidence, energy = EXCLUDED.energy,
                   loudness_lufs = EXCLUDED.loudness_lufs, tags = EXCLUDED.tags, moods = EXCLUDED.moods,
                   analysis_model = EXCLUDED.analysis_model, analysis_version = EXCLUDED.analysis_version,
                   analyzed_at = now(), patches_analyzed = EXCLUDED.patches_analyzed,
                   audio_access = EXCLUDED.audio_access, genres = EXCLUDED.genres, artist_id = EXCLUDED.artist_id,
                   tempo_version = EXCLUDED.tempo_version, key_version = EXCLUDED.key_version,
                   energy_version = EXCLUDED.energy_version, patch_stride = EXCLUDED.patch_stride,
                   updated_at = now()""",
            {
                "item_id": track.item_id, "title": track.title, "artist": track.artist, "album": track.album,
                "album_artist": track.album_artist, "album_id": track.album_id, "path": track.path,
                "duration": analysis.duration_seconds, "year": track.year, "track_number": track.track_number,
                "signature": track.signature, "fingerprint": fingerprint, "tempo": analysis.tempo_bpm,
                "tempo_conf": analysis.tempo_confidence, "key": analysis.key, "scale": analysis.scale,
                "camelot": analysis.camelot, "key_conf": analysis.key_confidence, "energy": analysis.energy,
                "loudness": analysis.loudness_lufs, "tags": Json(analysis.tags), "moods": Json(analysis.moods),
                "model": analysis.model, "version": analysis.version, "patches": analysis.patches_analyzed,
                "access": access, "genres": list(getattr(track, "genres", ())),
                "artist_id": getattr(track, "artist_id", None),
                **{f"{part}_version": version for part, version in analysis.part_versions.items()},
                "patch_stride": int(getattr(analysis, "patch_stride", 1)),
            },
        )
        vector = np.asarray(analysis.embedding, dtype="<f4")
        cur.execute(
            """INSERT INTO embeddings (item_id, model, dimensions, vector) VALUES (%s, %s, %s, %s)
               ON CONFLICT (item_id, model) DO UPDATE SET dimensions = EXCLUDED.dimensions, vector = EXCLUDED.vector,
                                                         created_at = now()""",
            (track.item_id, analysis.model, int(vector.size), vector.tobytes()),
        )
        cur.execute("DELETE FROM analysis_failures WHERE item_id = %s", (track.item_id,))


def mark_unchanged(db: Database, item_id: str, signature: str | None) -> None:
    """The file was touched but its content is the same: remember the new signature so it is not hashed again."""
    with db.transaction() as cur:
        cur.execute("UPDATE tracks SET source_signature = %s, updated_at = now() WHERE item_id = %s",
                    (signature, item_id))
        cur.execute("DELETE FROM analysis_failures WHERE item_id = %s", (item_id,))


CRASH_REASON = "the worker stopped while analyzing this track (crash, out of memory or a kill)"


def mark_attempt(db: Database, *, track: Any, version: int, task_id: str | None) -> None:
    """Note that analysis of this track is starting. If the worker dies during it, this row is what remains: the
    track is then tried again on later runs, but not forever (see MAX_ATTEMPTS in tasks/analysis.py)."""
    db.execute(
        """INSERT INTO analysis_failures (item_id, album_id, title, artist, album, file_path, source_signature, reason,
                                          analysis_version, task_id, retryable, attempt_open)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, true, true)
           ON CONFLICT (item_id) DO UPDATE SET
               reason = EXCLUDED.reason, analysis_version = EXCLUDED.analysis_version, retryable = true,
               attempt_open = true,
               source_signature = EXCLUDED.source_signature, task_id = EXCLUDED.task_id,
               attempts = CASE WHEN analysis_failures.source_signature IS NOT DISTINCT FROM EXCLUDED.source_signature
                                AND analysis_failures.analysis_version = EXCLUDED.analysis_version
                               THEN analysis_failures.attempts + 1 ELSE 1 END,
               failed_at = now()""",
        (track.item_id, track.album_id, track.title, track.artist, track.album, track.path, track.signature,
         CRASH_REASON, version, task_id),
    )


def record_failure(db: Database, *, track: Any, reason: str, version: int, task_id: str | None,
                   retryable: bool, count_attempt: bool = False) -> None:
    """Record why the track could not be analyzed (replacing the attempt marker; `count_attempt` for a failure no
    attempt marker counted, e.g. updating a part of its analysis)."""
    db.execute(
        """INSERT INTO analysis_failures (item_id, album_id, title, artist, album, file_path, source_signature, reason,
                                          analysis_version, task_id, retryable)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (item_id) DO UPDATE SET
               reason = EXCLUDED.reason, analysis_version = EXCLUDED.analysis_version,
               source_signature = EXCLUDED.source_signature, task_id = EXCLUDED.task_id,
               retryable = EXCLUDED.retryable, title = EXCLUDED.title, artist = EXCLUDED.artist,
               album = EXCLUDED.album, file_path = EXCLUDED.file_path, attempt_open = false, failed_at = now(),
               attempts = CASE WHEN NOT %s THEN analysis_failures.attempts
                               WHEN analysis_failures.source_signature IS NOT DISTINCT FROM EXCLUDED.source_signature
                                AND analysis_failures.analysis_version = EXCLUDED.analysis_version
                               THEN analysis_failures.attempts + 1 ELSE 1 END""",
        (track.item_id, track.album_id, track.title, track.artist, track.album, track.path, track.signature,
         reason[:1000], version, task_id, retryable, count_attempt),
    )


# An open attempt marker whose task is still alive: the track is being analyzed right now.
_ANALYZING_NOW = """f.attempt_open AND EXISTS (
    SELECT 1 FROM task_status s WHERE s.task_id = f.task_id AND s.status IN ('PENDING', 'STARTED', 'PROGRESS'))"""


def list_failures(db: Database, *, limit: int = 200) -> list[dict[str, Any]]:
    """Tracks that could not be analyzed, newest first: recorded failures, and attempts whose task ended without
    closing them (the worker crashed, ran out of memory or was killed). Tracks being analyzed now are left out."""
    return db.fetch_all(
        f"""SELECT f.item_id, f.title, f.artist, f.album, f.file_path, f.reason, f.attempts, f.retryable, f.failed_at
              FROM analysis_failures f WHERE NOT ({_ANALYZING_NOW}) ORDER BY f.failed_at DESC LIMIT %s""",
        (limit,),
    )


def analyzing_now(db: Database, *, limit: int = 200) -> list[dict[str, Any]]:
    """Tracks whose analysis is running now (an open attempt of a live task), longest-running first."""
    return db.fetch_all(
        f"""SELECT f.item_id, f.title, f.artist, f.album, f.file_path, f.task_id, f.failed_at AS started_at
              FROM analysis_failures f WHERE {_ANALYZING_NOW} ORDER BY f.failed_at LIMIT %s""",
        (limit,),
    )


def all_embeddings(db: Database, model: str, *, batch: int = 10_000) -> tuple[list[str], np.ndarray]:
    """Every stored embedding of `model`: (item ids, float32 array of shape (n, d)) in item-id order. Streamed as
    tuples through a server-side cursor (100k rows as dicts cost seconds and hundreds of MB) into one array sized by
    a count first (grown if rows arrive meanwhile): the peak is the array, not the rows' bytes, their join and a
    converted copy besides (three times it; 2.4 GB at 1M tracks). Raises ValueError when the embeddings differ in
    size."""
    item_ids: list[str] = []
    with db.transaction() as cur, cur.connection.cursor(name="all_embeddings") as stream:
        cur.execute("SELECT count(*) AS n FROM embeddings WHERE model = %s", (model,))
        counted = cur.fetchone()
        vectors = VectorRows(int(counted["n"]) if counted else 0, model=model, grow_by=batch)
        stream.itersize = batch
        stream.execute("SELECT item_id, vector FROM embeddings WHERE model = %s ORDER BY item_id", (model,))
        for item_id, vector in stream:
            vectors.append(item_id, vector)
            item_ids.append(item_id)
    if not item_ids:
        return [], np.zeros((0, 0), dtype=np.float32)
    return item_ids, vectors.array() if vectors.full else vectors.array().copy()


def embeddings_of(db: Database, model: str, item_ids: Sequence[str], *, dimensions: int) -> np.ndarray:
    """The stored embeddings of `model` of `item_ids`, float32 (len(item_ids), dimensions) in that order; zeros for
    an item without one."""
    out = np.zeros((len(item_ids), dimensions), dtype=np.float32)
    if not item_ids:
        return out
    rows = db.fetch_all(
        """SELECT (u.n - 1)::int AS row, e.vector FROM unnest(%s::text[]) WITH ORDINALITY AS u(item_id, n)
             JOIN embeddings e ON e.item_id = u.item_id AND e.model = %s""", (list(item_ids), model))
    for found in rows:
        vector = np.frombuffer(bytes(found["vector"]), dtype="<f4")
        if len(vector) == dimensions:
            out[found["row"]] = vector
    return out


def search_library(db: Database, *, limit: int, offset: int,
                   where: Sequence[Criterion] = ()) -> tuple[int, list[dict[str, Any]]]:
    """Analyzed tracks meeting the criteria `where` (discovery.criteria), in artist, album and track order;
    (total, page)."""
    clauses, params = criteria_sql(where)
    clause = " AND ".join(["t.analyzed_at IS NOT NULL", *clauses])
    total = db.fetch_one(f"SELECT count(*) AS n FROM tracks t WHERE {clause}", params)
    rows = db.fetch_all(
        f"""SELECT t.item_id, t.title, t.artist, t.album, t.duration_seconds, t.tempo_bpm, t.tempo_confidence,
                   t.musical_key, t.scale, t.camelot, t.energy, t.loudness_lufs, t.tags, t.moods, t.analyzed_at
              FROM tracks t WHERE {clause}
             ORDER BY t.artist, t.album, t.track_number NULLS LAST, t.title LIMIT %(limit)s OFFSET %(offset)s""",
        {**params, "limit": limit, "offset": offset},
    )
    return int(total["n"]) if total else 0, rows


def library_stats(db: Database, *, bpm_bin: float, energy_bin: float, loudness_bin: float,
                  top: int) -> dict[str, Any]:
    """The analyzed library at a glance: tempo, energy and loudness histograms ({low: count}, bins of the given
    widths), tracks per Camelot key, how often each tag is among a track's top three, tracks per top mood (the
    `top` most frequent tags and all moods)."""

    def histogram(column: str, width: float) -> list[dict[str, Any]]:
        rows = db.fetch_all(
            f"""SELECT floor({column} / %(w)s) * %(w)s AS low, count(*) AS n FROM tracks
                 WHERE analyzed_at IS NOT NULL AND {column} IS NOT NULL GROUP BY 1 ORDER BY 1""", {"w": width})
        return [{"low": float(r["low"]), "high": float(r["low"]) + width, "count": int(r["n"])} for r in rows]

    camelot = db.fetch_all("""SELECT camelot AS key, count(*) AS n FROM tracks
                               WHERE analyzed_at IS NOT NULL AND camelot IS NOT NULL GROUP BY 1 ORDER BY 1""")
    # the stored top tags and mood (migration 0015), which the library filter's tag and mood criteria compare
    tags = db.fetch_all("""SELECT top.tag, count(*) AS n FROM tracks t CROSS JOIN LATERAL unnest(t.top_tags) AS top(tag)
                            WHERE t.analyzed_at IS NOT NULL GROUP BY top.tag ORDER BY n DESC, top.tag LIMIT %s""",
                        (top,))
    moods = db.fetch_all("""SELECT t.top_mood AS mood, count(*) AS n FROM tracks t
                             WHERE t.analyzed_at IS NOT NULL AND t.top_mood IS NOT NULL
                             GROUP BY 1 ORDER BY n DESC, mood""")
    return {"tracks": count_analyzed(db), "tempo": histogram("tempo_bpm", bpm_bin),
            "energy": histogram("energy", energy_bin), "loudness": histogram("loudness_lufs", loudness_bin),
            "camelot": [{"key": r["key"], "count": int(r["n"])} for r in camelot],
            "tags": [{"name": r["tag"], "count": int(r["n"])} for r in tags],
            "moods": [{"name": r["mood"], "count": int(r["n"])} for r in moods if r["mood"]]}


def count_analyzed(db: Database) -> int:
    """How many tracks are analysed: the rows of the narrow `track_names` (one per analysed track, kept by a
    trigger), which at 1M tracks is read in a tenth of the time a scan of the wide `tracks` rows takes."""
    row = db.fetch_one("SELECT count(*) AS n FROM track_names")
    return int(row["n"]) if row else 0


def search_tracks(db: Database, *, title: str = "", artist: str = "", text: str = "",
                  limit: int) -> list[dict[str, Any]]:
    """Analyzed tracks whose title and/or artist contain the given text (`text`: either of them), ignoring case
    and accents; titles that start with the text first, then shorter titles. Matched on the narrow, pre-folded
    `track_names` (migration 0021), the page of hits cut there before the wide `tracks` rows are read."""
    clauses: list[str] = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    for name, value in (("title", title), ("artist", artist)):
        if value:
            params[name] = "%" + escape_like(value) + "%"
            clauses.append(f"n.{name}_fold LIKE audiomuse_fold(%({name})s)")
    if text:
        params["text"] = "%" + escape_like(text) + "%"
        clauses.append("(n.title_fold LIKE audiomuse_fold(%(text)s) OR n.artist_fold LIKE audiomuse_fold(%(text)s))")
    params["prefix"] = escape_like(text or title or artist) + "%"
    return db.fetch_all(
        f"""SELECT t.item_id, t.title, t.artist, t.album, t.duration_seconds, t.tempo_bpm, t.camelot, t.year,
                   t.file_path
              FROM (SELECT n.item_id, n.title_fold LIKE audiomuse_fold(%(prefix)s) AS starts, n.title_length,
                           n.artist_fold, n.title_fold
                      FROM track_names n WHERE {' AND '.join(clauses)}
                     ORDER BY starts DESC, n.title_length, n.artist_fold, n.title_fold, n.item_id
                     LIMIT %(limit)s) AS hit
              JOIN tracks t ON t.item_id = hit.item_id
             ORDER BY hit.starts DESC, hit.title_length, hit.artist_fold, hit.title_fold, hit.item_id""",
        params,
    )


def keyword_search(db: Database, text: str, *, limit: int) -> list[dict[str, Any]]:
    """Analyzed tracks whose title, artist or album contains `text` (case and accents ignored), with `matched`
    naming the first field that does; title matches first, then artist, then album, shorter titles first (matched
    on `track_names`, as `search_tracks`)."""
    pattern = "%" + escape_like(text) + "%"
    return db.fetch_all(
        """SELECT t.item_id, t.title, t.artist, t.album, hit.matched FROM (
               SELECT item_id, matched, array_position(ARRAY['title', 'artist', 'album'], matched) AS field,
                      title_length, artist_fold, title_fold
                 FROM (SELECT n.item_id, n.title_length, n.artist_fold, n.title_fold,
                              CASE WHEN n.title_fold LIKE audiomuse_fold(%(p)s) THEN 'title'
                                   WHEN n.artist_fold LIKE audiomuse_fold(%(p)s) THEN 'artist'
                                   ELSE 'album' END AS matched
                         FROM track_names n
                        WHERE n.title_fold LIKE audiomuse_fold(%(p)s) OR n.artist_fold LIKE audiomuse_fold(%(p)s)
                              OR n.album_fold LIKE audiomuse_fold(%(p)s)) AS found
                ORDER BY field, title_length, artist_fold, title_fold, item_id LIMIT %(limit)s) AS hit
              JOIN tracks t ON t.item_id = hit.item_id
             ORDER BY hit.field, hit.title_length, hit.artist_fold, hit.title_fold, hit.item_id""",
        {"p": pattern, "limit": limit})


def save_genres(db: Database, genres: dict[str, Sequence[str]]) -> int:
    """Set the media server's genres of already stored tracks (item id → names); rows whose genres are already
    these are not touched. Returns how many rows changed."""
    if not genres:
        return 0
    with db.transaction() as cur:
        cur.execute(
            """UPDATE tracks t SET genres = g.names, updated_at = now()
                 FROM (SELECT key AS item_id, ARRAY(SELECT jsonb_array_elements_text(value)) AS names
                         FROM jsonb_each(%s::jsonb)) AS g
                WHERE t.item_id = g.item_id AND t.genres IS DISTINCT FROM g.names""",
            (Json({k: list(v) for k, v in genres.items()}),))
        return int(cur.rowcount)


def save_artist_ids(db: Database, artist_ids: dict[str, str | None]) -> int:
    """Set the media server's artist ids of already stored tracks (item id → id; None leaves a row alone): tracks
    analyzed before the server's ids were kept get them on the next run without being analyzed again. Rows whose id
    is already this one are not touched. Returns how many rows changed."""
    return _set_text_column(db, "artist_id", artist_ids)


def save_libraries(db: Database, libraries: dict[str, str | None]) -> int:
    """Set the media-server library of already stored tracks (item id → library name; None leaves a row alone):
    the analysis records it for every track of an album it lists, analyzed or unchanged. Rows that already hold
    this library are not touched (idempotent). Returns how many rows changed."""
    return _set_text_column(db, "library", libraries)


def _set_text_column(db: Database, column: str, values: dict[str, str | None]) -> int:
    """Set a text column of stored tracks from item id → value (None or empty leaves a row alone), touching only
    rows whose value differs; how many rows changed."""
    known = {item_id: value for item_id, value in values.items() if value}
    if not known:
        return 0
    with db.transaction() as cur:
        cur.execute(
            f"""UPDATE tracks t SET {column} = v.value, updated_at = now()
                  FROM jsonb_each_text(%s::jsonb) AS v
                 WHERE t.item_id = v.key AND t.{column} IS DISTINCT FROM v.value""",
            (Json(known),))
        return int(cur.rowcount)


def recommendation_row(db: Database, item_id: str) -> dict[str, Any] | None:
    """The tag scores and the media server's genres of one track (None when it is not stored)."""
    return db.fetch_one("SELECT item_id, tags, genres, analyzed_at FROM tracks WHERE item_id = %s", (item_id,))


def track_rows(db: Database, item_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Metadata of analyzed tracks by item id (missing ids are left out)."""
    if not item_ids:
        return {}
    rows = db.fetch_all(
        """SELECT item_id, title, artist, album, album_id, file_path, duration_seconds, tempo_bpm, camelot, energy,
                  moods
             FROM tracks WHERE item_id = ANY(%s)""",
        (list(item_ids),),
    )
    return {r["item_id"]: r for r in rows}


CATALOG_COLUMNS = ("title", "artist", "album", "duration_seconds", "tempo_bpm", "camelot", "energy", "moods",
                   # what the blocklists and scope test (discovery.exclusions), then the version groups
                   # (discovery.versions), appended after the others
                   "genres", "file_path", "library", "recording_id", "song_id")


def catalog_rows(cur: Any, item_ids: Sequence[str], *, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
    """One row per item id, in the order given: (item_id, found, *CATALOG_COLUMNS), the columns None when the
    tracks table has no such item. Read with the caller's cursor's connection and transaction (so it shares the
    caller's snapshot), through a server-side cursor `batch` rows at a time, so 100k rows never sit in memory at
    once; consume the iterator before that transaction ends."""
    columns = ", ".join(f"t.{c}" for c in CATALOG_COLUMNS)
    with cur.connection.cursor(name="catalog_rows") as stream:
        stream.itersize = batch
        stream.execute(
            f"""SELECT u.item_id, t.item_id IS NOT NULL, {columns}
                  FROM unnest(%s::text[]) WITH ORDINALITY AS u(item_id, position)
                  LEFT JOIN tracks t ON t.item_id = u.item_id
                 ORDER BY u.position""",
            (list(item_ids),))
        yield from stream


def top_tags(db: Database, item_ids: Sequence[str], *, top: int = 3,
             batch: int = 20_000) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The `top` highest-scoring tags of each of `item_ids` (ties by name): (tag names, int16 codes (n, top) into
    those names with -1 for none, float32 scores (n, top) with NaN for none). Streamed through a server-side
    cursor into the arrays, so 100k tracks never sit in memory as rows."""
    names: list[str] = []
    code_of: dict[str, int] = {}
    codes = np.full((len(item_ids), top), -1, dtype=np.int16)
    scores = np.full((len(item_ids), top), np.nan, dtype=np.float32)
    filled = np.zeros(len(item_ids), dtype=np.int8)
    with db.transaction() as cur, cur.connection.cursor(name="top_tags") as stream:
        stream.itersize = batch
        stream.execute(
            """SELECT u.position - 1, best.k, best.v
                 FROM unnest(%s::text[]) WITH ORDINALITY AS u(item_id, position)
                 JOIN tracks t ON t.item_id = u.item_id
                 CROSS JOIN LATERAL (SELECT k, v::float8 AS v FROM jsonb_each_text(t.tags) AS e(k, v)
                                      ORDER BY v::float8 DESC, k LIMIT %s) AS best
                ORDER BY u.position, best.v DESC, best.k""",
            (list(item_ids), top))
        for position, name, score in stream:
            code = code_of.get(name)
            if code is None:
                code = code_of[name] = len(names)
                names.append(name)
            slot = filled[position]
            codes[position, slot] = code
            scores[position, slot] = score
            filled[position] = slot + 1
    return names, codes, scores


def text_search_rows(db: Database, item_ids: Sequence[str], *,
                     batch: int = 10_000) -> Iterator[tuple[Any, ...]]:
    """(tags, moods, tempo_bpm, energy, scale) of each of `item_ids`, in that order (all None for an item the
    tracks table does not hold), streamed through a server-side cursor."""
    with db.transaction() as cur, cur.connection.cursor(name="text_search_rows") as stream:
        stream.itersize = batch
        stream.execute(
            """SELECT t.tags, t.moods, t.tempo_bpm, t.energy, t.scale
                 FROM unnest(%s::text[]) WITH ORDINALITY AS u(item_id, position)
                 LEFT JOIN tracks t ON t.item_id = u.item_id
                ORDER BY u.position""",
            (list(item_ids),))
        yield from stream


@contextmanager
def clustering_rows(db: Database, model: str, *, exclusions: Exclusions | None = None,
                    batch: int = 5_000) -> Iterator[tuple[int, Iterator[dict[str, Any]]]]:
    """(how many rows to expect, the rows one at a time): every analyzed track with its tags, moods, tempo,
    energy, song id and its `model` embedding (`vector`, float32 bytes; `dimensions`), in item-id order; none that
    `exclusions` (blocklists, scope) leave out, and of a recording held by several files only the copy lists show
    (discovery/versions.py). Streamed through a server-side cursor: the caller keeps what it needs of each row, so a
    library of a million tracks is never a million dicts at once."""
    excluded, params = exclusion_sql(db, exclusions)
    where = " AND ".join(["t.tags IS NOT NULL", "t.moods IS NOT NULL",
                          "(t.recording_id IS NULL OR t.recording_id = t.item_id)", *excluded])
    joined = f"tracks t JOIN embeddings e ON e.item_id = t.item_id AND e.model = %(model)s WHERE {where}"
    arguments = {**params, "model": model}
    with db.transaction() as cur, cur.connection.cursor(name="clustering_rows",
                                                         cursor_factory=RealDictCursor) as stream:
        cur.execute(f"SELECT count(*) AS n FROM {joined}", arguments)
        counted = cur.fetchone()
        stream.itersize = batch
        stream.execute(f"""SELECT t.item_id, t.title, t.artist, t.tempo_bpm, t.energy, t.tags, t.moods, t.song_id,
                                  e.dimensions, e.vector
                             FROM {joined} ORDER BY t.item_id""", arguments)
        yield (int(counted["n"]) if counted else 0), iter(stream)


def library_counts(db: Database) -> tuple[int, int]:
    """(analyzed tracks, distinct artists among them)."""
    row = db.fetch_one("SELECT count(*) AS n, count(DISTINCT lower(artist)) AS artists FROM tracks "
                       "WHERE analyzed_at IS NOT NULL")
    return (int(row["n"]), int(row["artists"])) if row else (0, 0)
