"""The best documents for an OR of words, read from the rank-ordered word table of migration 0035 without adding up
every document that holds a word.

A document's rank for the query is the sum of its words' ranks (db/search.py), and a word's rank in a document takes
one of a few values (the sums of its occurrences' weights: 0.2 for a tag, 0.4 for a tag and a genre, 1.0 for a
title word, ...). So the documents fall into classes by which value each word has in them, and a class's rank is
known before any document is read. Classes are taken in falling rank; within a rank the documents come in item id
order, which the index (lexeme, rank DESC, item_id) gives for each (word, value) range, so a class is an
intersection of ranges read in step, less the documents that hold one of the other words, and reading stops once
the page is full. Ties are ordered by item id, as the whole ranking's are.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Any

from db.pool import Database

# Past this many classes (several words, each with many values) the lists are added up instead.
MAX_CLASSES = 256

_ONE_WORD = """SELECT t.item_id, round(t.rank::float8 * 10000) / 10000 AS rank FROM track_search_terms t
                WHERE t.lexeme = %s ORDER BY t.rank DESC, t.item_id LIMIT %s"""
_ADDED_UP = """SELECT item_id, round(sum(rank)::float8 * 10000) / 10000 AS rank FROM track_search_terms
                WHERE lexeme = ANY(%s) GROUP BY item_id ORDER BY 2 DESC, item_id LIMIT %s"""
# each word's distinct ranks, best first, one index probe a value (a loose index scan)
_VALUES = """WITH RECURSIVE v AS (
                 SELECT w.lexeme, (SELECT max(t.rank) FROM track_search_terms t WHERE t.lexeme = w.lexeme) AS rank
                   FROM unnest(%s::text[]) AS w (lexeme)
                 UNION ALL
                 SELECT v.lexeme, (SELECT max(t.rank) FROM track_search_terms t
                                    WHERE t.lexeme = v.lexeme AND t.rank < v.rank)
                   FROM v WHERE v.rank IS NOT NULL)
             SELECT lexeme, rank FROM v WHERE rank IS NOT NULL ORDER BY lexeme, rank DESC"""


def best_by_words(db: Database, lexemes: list[str], limit: int) -> list[tuple[str, float]]:
    """(item_id, rank) of the best `limit` analysed tracks for the OR of `lexemes`, best first, ties by item id;
    the rank is rounded to 4 decimals as db/search.py's. The values and the classes are read in one snapshot."""
    lexemes = list(dict.fromkeys(lexemes))
    if not lexemes or limit <= 0:
        return []
    with db.rolled_back() as cur:  # read only
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if len(lexemes) == 1:
            cur.execute(_ONE_WORD, (lexemes[0], limit))
            return [(r["item_id"], float(r["rank"])) for r in cur.fetchall()]
        cur.execute(_VALUES, (lexemes,))
        values: dict[str, list[float]] = defaultdict(list)
        for row in cur.fetchall():
            values[row["lexeme"]].append(float(row["rank"]))
        words = sorted(values)
        if math.prod(len(values[w]) + 1 for w in words) - 1 > MAX_CLASSES:
            cur.execute(_ADDED_UP, (words, limit))
            return [(r["item_id"], float(r["rank"])) for r in cur.fetchall()]
        classes = _classes_by_rank(words, values)
        found: list[tuple[str, float]] = []
        for rank in sorted(classes, reverse=True):
            cur.execute(*_class_query(words, values, classes[rank], limit - len(found)))
            found += [(r["item_id"], rank) for r in cur.fetchall()]
            if len(found) >= limit:
                break
        return found


def _classes_by_rank(words: list[str], values: dict[str, list[float]]) -> dict[float, list[tuple[float, ...]]]:
    """Every class (a value or 0, "absent", per word; not all absent) under its rank."""
    classes: dict[float, list[tuple[float, ...]]] = defaultdict(list)
    for combination in itertools.product(*[[*values[w], 0.0] for w in words]):
        if any(combination):
            classes[round(sum(combination) * 10000) / 10000].append(combination)
    return classes


def _class_query(words: list[str], values: dict[str, list[float]], combinations: list[tuple[float, ...]],
                 limit: int) -> tuple[str, list[Any]]:
    """The first `limit` item ids, in order, of the documents of these classes (all of one rank)."""
    branches: list[str] = []
    params: list[Any] = []
    for combination in combinations:
        present = [(w, v) for w, v in zip(words, combination, strict=True) if v]
        absent = [w for w, v in zip(words, combination, strict=True) if not v]
        joins = "".join(f" JOIN track_search_terms t{i} ON t{i}.lexeme = %s AND t{i}.rank = %s::real "
                        f"AND t{i}.item_id = t0.item_id" for i in range(1, len(present)))
        misses = "".join(" AND NOT EXISTS (SELECT 1 FROM track_search_terms x WHERE x.lexeme = %s "
                         "AND x.rank = ANY(%s::real[]) AND x.item_id = t0.item_id)" for _ in absent)
        branches.append(f"(SELECT t0.item_id FROM track_search_terms t0{joins}"
                        f" WHERE t0.lexeme = %s AND t0.rank = %s::real{misses} ORDER BY t0.item_id LIMIT %s)")
        for word, value in present[1:]:
            params += [word, value]
        params += [present[0][0], present[0][1]]
        for word in absent:
            params += [word, values[word]]
        params.append(limit)
    return (f"SELECT item_id FROM ({' UNION ALL '.join(branches)}) AS c ORDER BY item_id LIMIT %s",
            [*params, limit])
