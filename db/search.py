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
SUMMED_WORDS = 8  # see keyword_hits


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
    matching more of them (and in its title rather than its tags) ranks higher; English stemming and stop words.

    The full-text score is `ts_rank_cd(document, w1 | w2 | ..., 32)`, computed as the sum of each word's own
    `ts_rank_cd` over the documents that hold it: for an OR of single words every occurrence is a cover of its own,
    so the rank is the sum of the occurrences' weights either way (the same order and scores; test_keyword_rank),
    and the cover search of the whole OR, quadratic in the occurrences, is what made a three-word search cost
    ~3× a one-word one at 1M tracks."""
    query = " ".join(text.split())[:200]
    if not query:
        return []
    # The words are sent as constants: the planner then uses the GIN index, and no row casts them.
    row = db.fetch_one("SELECT plainto_tsquery('english', %s)::text AS words", (query,))
    # a query's text form quotes each word (a word holds no space), joined by " & "
    operands = list(dict.fromkeys(w for w in (str(row["words"]) if row else "").split(" & ") if w))
    params: dict[str, Any] = {"words": " | ".join(operands), "raw": query.lower(), "limit": limit}
    params.update({f"w{i}": word for i, word in enumerate(operands)})
    # Each word's rank is a real (float4); their sum is rounded to the 0.1 steps of the default weights (0.1, 0.2,
    # 0.4, 1.0), so that documents of the same rank tie (and are ordered by item id) as ts_rank_cd's own do.
    # Past SUMMED_WORDS words a row's rank is the whole query's (the same value; a long query is rare, and a test
    # per word on every matching row would then cost more than the cover search).
    summed = " + ".join(f"CASE WHEN t.search_document @@ %(w{i})s::tsquery "
                        f"THEN ts_rank_cd(t.search_document, %(w{i})s::tsquery, 0) ELSE 0 END"
                        for i in range(len(operands))) if len(operands) <= SUMMED_WORDS else \
        "ts_rank_cd(t.search_document, %(words)s::tsquery, 0)"
    rank = f"round(({summed})::float8 * 10000) / 10000" if operands else "0"
    if trigram:
        match = ("t.search_document @@ %(words)s::tsquery OR " if operands else "") + \
            "%(raw)s <%% lower(t.title || ' ' || t.artist)"
        # the rank and the name similarity computed once a row (OFFSET 0 keeps the planner from copying them into
        # the sort key); ordered by the two together
        sql = f"""SELECT item_id, (rank / (rank + 1))::real AS fulltext, trigram FROM (
                      SELECT t.item_id, x.rank, x.trigram FROM tracks t CROSS JOIN LATERAL (
                          SELECT ({rank})::float8 AS rank,
                                 word_similarity(%(raw)s, lower(t.title || ' ' || t.artist)) AS trigram OFFSET 0) AS x
                       WHERE t.analyzed_at IS NOT NULL AND ({match})
                       ORDER BY x.rank / (x.rank + 1) + {TRIGRAM_WEIGHT} * x.trigram DESC, t.item_id
                       LIMIT %(limit)s) AS best
                   ORDER BY rank / (rank + 1) + {TRIGRAM_WEIGHT} * trigram DESC, item_id"""
        with db.transaction() as cur:
            cur.execute("SET LOCAL pg_trgm.word_similarity_threshold = %s", (TRIGRAM_THRESHOLD,))
            cur.execute(sql, params)
            rows = [dict(r) for r in cur.fetchall()]
    else:
        if not operands:
            return []
        # the narrow copy of the analysed tracks' documents (migration 0024): every match is ranked, in parallel
        # workers, the rank computed once a row (the sort key is the selected column)
        rows = db.fetch_all(f"""SELECT item_id, (rank / (rank + 1))::real AS fulltext, 0.0 AS trigram FROM (
                                    SELECT t.item_id, ({rank})::float8 AS rank FROM track_search t
                                     WHERE t.search_document @@ %(words)s::tsquery
                                     ORDER BY rank DESC, t.item_id LIMIT %(limit)s) AS best
                                 ORDER BY rank DESC, item_id""", params)
    return [KeywordHit(r["item_id"], round(float(r["fulltext"]) + TRIGRAM_WEIGHT * float(r["trigram"]), 6),
                       float(r["fulltext"]), float(r["trigram"])) for r in rows]


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
