"""Keyword search ranked by PostgreSQL (migration 0012): full-text `ts_rank_cd` over each track's search document
(title, artist, album, top tags, genres), plus pg_trgm word similarity of title and artist where the extension is
installed; and the per-track values the search facets and filters are computed on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from db.pool import Database

# rank/(rank+1) (normalization 32) keeps ts_rank_cd in 0..1; a fuzzy name match adds at most half of that.
TRIGRAM_WEIGHT = 0.5
TRIGRAM_THRESHOLD = 0.45  # word_similarity below this is not a match (pg_trgm's own default is 0.6)


def trigram_available(db: Database) -> bool:
    """Whether pg_trgm is installed in this database (it is not in the embedded PostgreSQL)."""
    return db.fetch_one("SELECT 1 AS yes FROM pg_extension WHERE extname = 'pg_trgm'") is not None


@dataclass(frozen=True)
class KeywordHit:
    item_id: str
    score: float  # 0..1.5: full text (0..1) plus TRIGRAM_WEIGHT × name similarity
    fulltext: float
    trigram: float


def keyword_hits(db: Database, text: str, *, limit: int, trigram: bool) -> list[KeywordHit]:
    """The `limit` tracks that best match `text`, best first (ties by item id). The words are OR-ed, so a track
    matching more of them (and in its title rather than its tags) ranks higher; English stemming and stop words."""
    query = " ".join(text.split())[:200]
    if not query:
        return []
    # The OR-query is built once and sent as a constant: the planner then uses the GIN index, and no row casts it.
    row = db.fetch_one("SELECT replace(plainto_tsquery('english', %s)::text, '&', '|') AS words", (query,))
    words = str(row["words"]) if row else ""
    params = {"words": words, "raw": query.lower(), "limit": limit}
    if trigram:
        fulltext = ("ts_rank_cd(t.search_document, %(words)s::tsquery, 32)" if words else "0.0")
        match = ("t.search_document @@ %(words)s::tsquery OR " if words else "") + \
            "%(raw)s <%% lower(t.title || ' ' || t.artist)"
        sql = f"""SELECT t.item_id, {fulltext} AS fulltext,
                         word_similarity(%(raw)s, lower(t.title || ' ' || t.artist)) AS trigram
                    FROM tracks t WHERE t.analyzed_at IS NOT NULL AND ({match})"""
        rows = _ranked(db, sql, params, threshold=TRIGRAM_THRESHOLD)
    else:
        if not words:
            return []
        # the narrow copy of the analysed tracks' documents (migration 0024): every match is fetched to be ranked
        sql = """SELECT t.item_id, ts_rank_cd(t.search_document, %(words)s::tsquery, 32) AS fulltext, 0.0 AS trigram
                   FROM track_search t WHERE t.search_document @@ %(words)s::tsquery"""
        rows = _ranked(db, sql, params, threshold=None)
    return [KeywordHit(r["item_id"], round(float(r["fulltext"]) + TRIGRAM_WEIGHT * float(r["trigram"]), 6),
                       float(r["fulltext"]), float(r["trigram"])) for r in rows]


def _ranked(db: Database, inner: str, params: dict[str, Any], *, threshold: float | None) -> list[dict[str, Any]]:
    with db.transaction() as cur:
        if threshold is not None:
            cur.execute("SET LOCAL pg_trgm.word_similarity_threshold = %s", (threshold,))
        cur.execute(f"""SELECT item_id, fulltext, trigram FROM ({inner}) AS m
                         ORDER BY fulltext + {TRIGRAM_WEIGHT} * trigram DESC, item_id LIMIT %(limit)s""", params)
        return [dict(r) for r in cur.fetchall()]


def facet_rows(db: Database, item_ids: list[str], *, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
    """(item_id, tempo_bpm, camelot, energy, year, duration_seconds, top three tags) of analyzed tracks among
    `item_ids`, in batches; a tag counts from probability 0.1, lower-case (the column of migration 0015)."""
    for start in range(0, len(item_ids), batch):
        rows = db.fetch_all(
            """SELECT t.item_id, t.tempo_bpm, t.camelot, t.energy, t.year, t.duration_seconds,
                      t.top_tags
                 FROM tracks t WHERE t.item_id = ANY(%s) AND t.analyzed_at IS NOT NULL""",
            (item_ids[start:start + batch],))
        for r in rows:
            yield (r["item_id"], r["tempo_bpm"], r["camelot"], r["energy"], r["year"], r["duration_seconds"],
                   list(r["top_tags"] or []))
