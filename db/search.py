"""Keyword search ranked by PostgreSQL (migration 0012): full-text `ts_rank_cd` over each track's search document
(title, artist, album, top tags, genres), plus pg_trgm word similarity of title and artist where the extension is
installed; and the per-track values the search facets and filters are computed on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from db.pool import Database
from db.search_terms import best_by_words

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
    score: float  # 0..1.5: full text (0..1) plus TRIGRAM_WEIGHT × name similarity (0 below TRIGRAM_THRESHOLD)
    fulltext: float
    trigram: float


def keyword_hits(db: Database, text: str, *, limit: int, trigram: bool) -> list[KeywordHit]:
    """The `limit` tracks that best match `text`, best first (ties by item id). The words are OR-ed, so a track
    matching more of them (and in its title rather than its tags) ranks higher; English stemming and stop words.

    The full-text score is `ts_rank_cd(document, w1 | w2 | ..., 32)`: for an OR of single words every occurrence is
    a cover of its own, so the rank is the sum of each word's own rank, the sum of its occurrences' weights (the
    same order and scores; test_keyword_rank). Each word's rank in each document is kept in a table ordered by it
    (migration 0035), so the best documents are read from an index instead of ranking every match (~126k documents
    for a tag word at 1M tracks). With `trigram`, a track whose title and artist are like the query (pg_trgm's
    word similarity at least TRIGRAM_THRESHOLD) is a match too and adds TRIGRAM_WEIGHT × that similarity."""
    query = " ".join(text.split())[:200]
    if not query:
        return []
    row = db.fetch_one("""SELECT plainto_tsquery('english', %(q)s)::text AS words,
                                 tsvector_to_array(to_tsvector('english', %(q)s)) AS lexemes""", {"q": query})
    # a query's text form quotes each word (a word holds no space), joined by " & "; `lexemes` are the same words
    # unquoted (the same parser and dictionaries)
    lexemes = list(row["lexemes"] or []) if row else []
    if trigram:
        operands = list(dict.fromkeys(w for w in (str(row["words"]) if row else "").split(" & ") if w))
        params: dict[str, Any] = {"words": " | ".join(operands), "raw": query.lower(), "limit": limit}
        params.update({f"w{i}": word for i, word in enumerate(operands)})
        # The rank of a candidate of the name search, from its document: each word's rank is a real (float4); their sum
        # is rounded to the 0.1 steps of the default weights (0.1, 0.2, 0.4, 1.0), so that documents of the same rank
        # tie (and are ordered by item id) as ts_rank_cd's own do (the word table's sums are rounded alike). Past
        # SUMMED_WORDS words it is the whole query's (the same value; a long query is rare).
        summed = " + ".join(f"CASE WHEN t.search_document @@ %(w{i})s::tsquery "
                            f"THEN ts_rank_cd(t.search_document, %(w{i})s::tsquery, 0) ELSE 0 END"
                            for i in range(len(operands))) if len(operands) <= SUMMED_WORDS else \
            "ts_rank_cd(t.search_document, %(words)s::tsquery, 0)"
        rank = f"round(({summed})::float8 * 10000) / 10000" if operands else "0"
        # The candidates: the best `limit` documents by their words (the word table) and every track whose name is
        # like the query. A name similarity below the threshold is no match and adds nothing, so a document outside
        # both sets scores at most the words' rank of the last of the first set: these are the best `limit` of all.
        name = "lower(t.title || ' ' || t.artist)"
        sql = f"""WITH by_words AS (SELECT unnest(%(best)s::text[]) AS item_id),
                       by_name AS (SELECT t.item_id FROM tracks t
                                    WHERE t.analyzed_at IS NOT NULL AND %(raw)s <%% {name}),
                       candidates AS (SELECT item_id FROM by_words UNION SELECT item_id FROM by_name)
                  SELECT item_id, (rank / (rank + 1))::real AS fulltext, trigram FROM (
                      SELECT t.item_id, x.rank, x.trigram FROM candidates c JOIN tracks t USING (item_id)
                       CROSS JOIN LATERAL (
                          SELECT ({rank})::float8 AS rank,
                                 CASE WHEN %(raw)s <%% {name} THEN word_similarity(%(raw)s, {name}) ELSE 0 END
                                     AS trigram OFFSET 0) AS x
                       ORDER BY x.rank / (x.rank + 1) + {TRIGRAM_WEIGHT} * x.trigram DESC, t.item_id
                       LIMIT %(limit)s) AS best
                  ORDER BY rank / (rank + 1) + {TRIGRAM_WEIGHT} * trigram DESC, item_id"""
        params["best"] = [item_id for item_id, _ in best_by_words(db, lexemes, limit)]
        with db.transaction() as cur:
            cur.execute("SET LOCAL pg_trgm.word_similarity_threshold = %s", (TRIGRAM_THRESHOLD,))
            cur.execute(sql, params)
            rows = [dict(r) for r in cur.fetchall()]
    else:
        rows = [{"item_id": item_id, "fulltext": as_read_from_real(rank / (rank + 1)), "trigram": 0.0}
                for item_id, rank in best_by_words(db, lexemes, limit)]
    return [KeywordHit(r["item_id"], round(float(r["fulltext"]) + TRIGRAM_WEIGHT * float(r["trigram"]), 6),
                       float(r["fulltext"]), float(r["trigram"])) for r in rows]


def as_read_from_real(value: float) -> float:
    """`value` as it reads back from a PostgreSQL real: rounded to float4, then its shortest decimal form (what the
    server sends), so the scores equal those of the trigram path, which PostgreSQL computes."""
    return float(str(np.float32(value)))


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

