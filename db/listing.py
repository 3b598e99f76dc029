"""A media server's whole listing staged in PostgreSQL for one analysis run, and what it says about `tracks`.

The listing is streamed into two temporary tables (no WAL, gone with the session) with one COPY each, then compared
with tracks, analysis_failures, embeddings and clap_embeddings in one set-based statement: a run over a library where
nothing changed costs a handful of statements, whatever its size, instead of one job and a few queries per album.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg2.extras

from db.pool import Database

_CREATE = """
DROP TABLE IF EXISTS pg_temp.listing_albums, pg_temp.listing_tracks;
CREATE TEMP TABLE listing_albums (album_id TEXT NOT NULL, library TEXT);
CREATE TEMP TABLE listing_tracks (item_id TEXT NOT NULL, album_id TEXT NOT NULL, signature TEXT,
                                  genres TEXT[] NOT NULL, artist_id TEXT)"""


def _text(value: str | None) -> str:
    """A value in COPY's text format."""
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _array(values: Sequence[str]) -> str:
    """A TEXT[] literal of `values` (each quoted, so commas, braces and NULL spellings stay plain text)."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


class _Lines:
    """A file-like object for copy_expert that encodes rows only as COPY reads them: the whole listing goes in with
    one statement, never held in memory. An exception raised while producing rows aborts the COPY; it is kept in
    `error` so the caller can raise it instead of psycopg2's wrapper."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self._buffer = b""
        self.error: BaseException | None = None

    def read(self, size: int = 8192) -> bytes:
        try:
            while len(self._buffer) < size:
                line = next(self._lines, None)
                if line is None:
                    break
                self._buffer += line.encode("utf-8", "surrogateescape")
        except BaseException as exc:
            self.error = exc
            raise
        chunk, self._buffer = self._buffer[:size], self._buffer[size:]
        return chunk

    readline = read


def _copy(cur: Any, sql: str, lines: Iterable[str]) -> int:
    source = _Lines(lines)
    try:
        cur.copy_expert(sql, source)
    except BaseException:
        if source.error is not None:
            raise source.error from None
        raise
    return int(cur.rowcount)


@dataclass(frozen=True)
class Comparison:
    """What the staged listing says: the albums whose tracks need an album job (new, changed, failed but worth
    another try, analyzed by an older version, or lacking the CLAP embedding of `clap_model`), each with its number
    of listed tracks, and how many listed tracks belong to the other, unchanged albums."""

    pending: dict[str, int]
    unchanged_albums: int
    unchanged_tracks: int


class StagedListing:
    """The listing of one run on one connection (temporary tables live as long as their session)."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def add_albums(self, albums: Iterable[tuple[str, str | None]]) -> int:
        """Stage (album id, library name or None) pairs; the number staged."""
        return _copy(self._cur, "COPY listing_albums (album_id, library) FROM STDIN",
                     (f"{_text(album_id)}\t{_text(library)}\n" for album_id, library in albums))

    def add_tracks(self, pages: Iterable[Sequence[Any]]) -> int:
        """Stage every track of `pages` (Track-like: item_id, album_id, signature, genres, artist_id), read as the
        COPY goes; the number staged. An error raised by `pages` aborts the COPY and is raised as it is."""
        lines = (f"{_text(t.item_id)}\t{_text(t.album_id)}\t{_text(t.signature)}\t{_text(_array(t.genres))}\t"
                 f"{_text(t.artist_id)}\n" for page in pages for t in page)
        count = _copy(self._cur, "COPY listing_tracks (item_id, album_id, signature, genres, artist_id) FROM STDIN",
                      lines)
        self._cur.execute("ANALYZE listing_albums; ANALYZE listing_tracks")  # temporary tables get no autovacuum
        return count

    def compare(self, *, version: int, max_attempts: int, clap_model: str | None,
                parts: dict[str, int] | None = None, upgrade_fast: bool = False) -> Comparison:
        """Judge every staged track as tasks.analysis._up_to_date and _outdated_parts do for one, all at once (see
        Comparison); `parts`: the current version of each feature part (a track with an older one has work)."""
        parts = parts or {}
        older = " OR ".join(f"t.{p}_version < %(part_{p})s" for p in parts) or "false"
        self._cur.execute(
            f"""WITH judged AS (
                   SELECT s.album_id,
                          NOT COALESCE(
                              (f.item_id IS NOT NULL AND f.analysis_version = %(version)s
                               AND f.source_signature IS NOT DISTINCT FROM s.signature
                               AND (NOT f.retryable OR f.attempts >= %(max_attempts)s))
                              OR (e.item_id IS NOT NULL AND t.analysis_version = %(version)s
                                  AND s.signature IS NOT NULL AND t.source_signature = s.signature), false)
                          OR (%(clap)s::text IS NOT NULL AND e.item_id IS NOT NULL
                              AND c.model IS DISTINCT FROM %(clap)s::text)
                          OR (e.item_id IS NOT NULL AND t.analysis_version = %(version)s AND ({older})
                              AND NOT COALESCE(f.item_id IS NOT NULL AND f.analysis_version = %(version)s
                                               AND f.source_signature IS NOT DISTINCT FROM s.signature
                                               AND (NOT f.retryable OR f.attempts >= %(max_attempts)s), false))
                          OR (%(upgrade_fast)s AND e.item_id IS NOT NULL AND t.patch_stride > 1) AS work
                     FROM listing_tracks s
                     LEFT JOIN tracks t ON t.item_id = s.item_id
                     LEFT JOIN analysis_failures f ON f.item_id = s.item_id
                     LEFT JOIN (SELECT DISTINCT item_id FROM embeddings) e ON e.item_id = t.item_id
                     LEFT JOIN clap_embeddings c ON c.item_id = s.item_id),
               albums AS (
                   SELECT a.album_id, count(j.album_id) AS tracks, COALESCE(bool_or(j.work), false) AS work
                     FROM (SELECT DISTINCT album_id FROM listing_albums) a
                     LEFT JOIN judged j ON j.album_id = a.album_id
                    GROUP BY a.album_id)
               SELECT album_id, tracks, 1 AS albums, true AS work FROM albums WHERE work
               UNION ALL
               SELECT NULL, COALESCE(sum(tracks), 0), count(*), false FROM albums WHERE NOT work""",
            {"version": version, "max_attempts": max_attempts, "clap": clap_model, "upgrade_fast": upgrade_fast,
             **{f"part_{p}": v for p, v in parts.items()}})
        pending: dict[str, int] = {}
        unchanged_albums = unchanged_tracks = 0
        for row in self._cur.fetchall():
            if row["work"]:
                pending[row["album_id"]] = int(row["tracks"])
            else:
                unchanged_albums, unchanged_tracks = int(row["albums"]), int(row["tracks"])
        return Comparison(pending, unchanged_albums, unchanged_tracks)

    def save_metadata(self) -> dict[str, int]:
        """Give stored tracks the genres, artist ids (where the server has them) and libraries the listing says,
        as an album job does for the tracks it lists; rows already right are not touched. Rows changed, by
        column."""
        changed = {}
        for column, sql in (
                ("genres", """UPDATE tracks t SET genres = s.genres, updated_at = now() FROM listing_tracks s
                               WHERE t.item_id = s.item_id AND t.genres IS DISTINCT FROM s.genres"""),
                ("artist_id", """UPDATE tracks t SET artist_id = s.artist_id, updated_at = now()
                                   FROM listing_tracks s
                                  WHERE t.item_id = s.item_id AND s.artist_id IS NOT NULL
                                    AND t.artist_id IS DISTINCT FROM s.artist_id"""),
                ("library", """UPDATE tracks t SET library = a.library, updated_at = now()
                                 FROM listing_tracks s JOIN listing_albums a ON a.album_id = s.album_id
                                WHERE t.item_id = s.item_id AND a.library IS NOT NULL
                                  AND t.library IS DISTINCT FROM a.library""")):
            self._cur.execute(sql)
            changed[column] = int(self._cur.rowcount)
        return changed


@contextmanager
def staged_listing(db: Database) -> Iterator[StagedListing]:
    """Empty staging tables on one pooled connection, in one transaction (committed at the end, with the metadata
    updates), dropped afterwards."""
    with db.connection() as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(_CREATE)
        yield StagedListing(cur)
        # (after an error the rollback undoes their creation)
        cur.execute("DROP TABLE pg_temp.listing_albums, pg_temp.listing_tracks")
