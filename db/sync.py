"""Queries of the diffable export (/api/sync): analyzed tracks in item-id order, each with a fingerprint of its
analysis result, page by page or by id.

The fingerprint `fp` is the first 16 hex digits of an MD5 over the analysis result: tempo, key, scale, Camelot key,
energy, loudness, the tag and mood scores (JSONB's text form, which orders keys the same way every time), the
analysis model and version, and the MD5 of the stored embedding. Metadata (title, artist, ...), analyzed_at and the
map coordinates are left out: a re-analysis that gives the same result keeps the fingerprint, any changed value of
the result changes it. Computed when read, so it can never disagree with the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from db.pool import Database

# '|'-joined with NULLs as '' (concat_ws would skip them and let two rows of different results collide)
FP_SQL = """substr(md5(concat_ws('|', coalesce(t.tempo_bpm::text, ''), coalesce(t.musical_key, ''),
                                 coalesce(t.scale, ''), coalesce(t.camelot, ''), coalesce(t.energy::text, ''),
                                 coalesce(t.loudness_lufs::text, ''), coalesce(t.tags::text, ''),
                                 coalesce(t.moods::text, ''), coalesce(t.analysis_model, ''),
                                 coalesce(t.analysis_version::text, ''), coalesce(md5(e.vector), ''))), 1, 16)"""

_FROM = """FROM tracks t LEFT JOIN embeddings e ON e.item_id = t.item_id AND e.model = %(model)s
          WHERE t.analyzed_at IS NOT NULL"""

_PAYLOAD_COLUMNS = """t.item_id, t.title, t.artist, t.album_artist, t.album, t.year, t.duration_seconds, t.tempo_bpm,
                      t.musical_key, t.scale, t.camelot, t.energy, t.loudness_lufs, t.moods, t.top_mood, t.top_tags,
                      t.genres, t.analysis_version, t.analyzed_at"""


def count_analyzed(db: Database) -> int:
    row = db.fetch_one("SELECT count(*) AS n FROM tracks WHERE analyzed_at IS NOT NULL")
    return int(row["n"]) if row else 0


# The page's ids first, from the primary key's order alone: the fingerprints (an MD5 of each embedding) are computed
# for the page's rows only, not for every row OFFSET skips.
_PAGE = """AND t.item_id IN (SELECT item_id FROM tracks WHERE analyzed_at IS NOT NULL
                              ORDER BY item_id LIMIT %(limit)s OFFSET %(offset)s)"""


def index_page(db: Database, *, model: str, limit: int, offset: int) -> list[dict[str, Any]]:
    """{item_id, fp} of the analyzed tracks `offset`.. `offset + limit - 1` in item-id order."""
    return db.fetch_all(
        f"SELECT t.item_id, {FP_SQL} AS fp {_FROM} {_PAGE} ORDER BY t.item_id",
        {"model": model, "limit": limit, "offset": offset})


def payload_page(db: Database, *, model: str, limit: int, offset: int, embeddings: bool) -> list[dict[str, Any]]:
    """The full rows (with `fp`, and the embedding's bytes as `vector` when `embeddings`) of one page."""
    vector = "e.vector" if embeddings else "NULL::bytea"
    return db.fetch_all(
        f"""SELECT {_PAYLOAD_COLUMNS}, {FP_SQL} AS fp, {vector} AS vector {_FROM} {_PAGE}
             ORDER BY t.item_id""",
        {"model": model, "limit": limit, "offset": offset})


def payload_rows(db: Database, item_ids: Sequence[str], *, model: str, embeddings: bool) -> list[dict[str, Any]]:
    """The full rows of the analyzed tracks among `item_ids`, in item-id order (unknown ids left out)."""
    vector = "e.vector" if embeddings else "NULL::bytea"
    return db.fetch_all(
        f"""SELECT {_PAYLOAD_COLUMNS}, {FP_SQL} AS fp, {vector} AS vector {_FROM} AND t.item_id = ANY(%(ids)s)
             ORDER BY t.item_id""",
        {"model": model, "ids": list(item_ids)})
