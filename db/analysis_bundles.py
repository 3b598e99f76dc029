"""Queries behind analysis bundles (services/analysis_bundle.py): the analysed tracks read out for export, and the
imported analyses (migration 0030) kept by content fingerprint until a track with that content is analysed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from psycopg2.extras import Json, execute_values

from db.pool import Database

# what a bundle row holds besides the vector, named as the tracks table names them
ANALYSIS_COLUMNS = ("content_fingerprint", "analysis_model", "analysis_version", "duration_seconds", "tempo_bpm",
                    "tempo_confidence", "musical_key", "scale", "camelot", "key_confidence", "energy",
                    "loudness_lufs", "tags", "moods", "patches_analyzed", "tempo_version", "key_version",
                    "energy_version", "patch_stride")


def analysed_rows(db: Database, model: str, *, batch: int = 2000) -> Iterator[dict[str, Any]]:
    """Each analysed track with a content fingerprint and an embedding of `model`: ANALYSIS_COLUMNS, `dimensions`
    and `vector` (float32 bytes), one per fingerprint (copies of one file in two places are one row), streamed
    through a server-side cursor from one snapshot."""
    columns = ", ".join(f"t.{c}" for c in ANALYSIS_COLUMNS)
    with db.transaction() as cur, cur.connection.cursor(name="analysed_rows", cursor_factory=type(cur)) as stream:
        stream.itersize = batch
        stream.execute(
            f"""SELECT DISTINCT ON (t.content_fingerprint) {columns}, e.dimensions, e.vector
                  FROM tracks t JOIN embeddings e ON e.item_id = t.item_id AND e.model = %s
                 WHERE t.analyzed_at IS NOT NULL AND t.content_fingerprint IS NOT NULL
                   AND t.analysis_model = %s
                 ORDER BY t.content_fingerprint, t.analyzed_at DESC""", (model, model))
        for row in stream:
            yield dict(row, vector=bytes(row["vector"]))


class ImportedWriter:
    """Keeps imported analyses (ANALYSIS_COLUMNS, `dimensions`, `vector`) by content fingerprint, replacing one kept
    for the same content, all in the transaction of `imported_writer`."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def add(self, rows: Iterable[dict[str, Any]]) -> int:
        """Store these rows (the last of two with one fingerprint wins); the number stored."""
        names = (*ANALYSIS_COLUMNS, "dimensions", "vector")
        latest = {r["content_fingerprint"]: r for r in rows}  # one statement may not touch a row twice
        values = [tuple(Json(r[c]) if c in ("tags", "moods") else r[c] for c in names) for r in latest.values()]
        if values:
            updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c != "content_fingerprint")
            execute_values(self._cur, f"""INSERT INTO imported_analyses ({", ".join(names)}) VALUES %s
                                          ON CONFLICT (content_fingerprint) DO UPDATE SET {updates},
                                                                                         imported_at = now()""",
                           values, page_size=1000)
        return len(values)


@contextmanager
def imported_writer(db: Database) -> Iterator[ImportedWriter]:
    """A writer of imported analyses whose rows are committed together when the block ends, or none of them if it
    raises (an import that fails half-way leaves what was there)."""
    with db.transaction() as cur:
        yield ImportedWriter(cur)


def imported_analysis(db: Database, fingerprint: str, *, model: str, version: int) -> dict[str, Any] | None:
    """The imported analysis of the file with this content, when it is of `model` and `version`."""
    row = db.fetch_one(
        f"""SELECT {", ".join(ANALYSIS_COLUMNS)}, dimensions, vector FROM imported_analyses
             WHERE content_fingerprint = %s AND analysis_model = %s AND analysis_version = %s""",
        (fingerprint, model, version))
    return None if row is None else dict(row, vector=bytes(row["vector"]))


def imported_count(db: Database) -> int:
    row = db.fetch_one("SELECT count(*) AS n FROM imported_analyses")
    return int(row["n"]) if row else 0
