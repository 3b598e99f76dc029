"""The keyword side of library search, three ways on the same PostgreSQL, taken in turn, and whether all give the
same hits and scores: `ts_rank_cd` of the whole OR-query (how db/search.py ranked until 2026-12-07), the sum of
each word's `ts_rank_cd` over the matching documents (until 2026-12-08), and the rank-ordered word table of
migration 0035 (how it ranks now).

    .venv/bin/python bench/keyword_rank.py [--tracks 1000000] [--rounds 7]
    .venv/bin/python bench/keyword_rank.py --data-dir /tmp/w1m   # an embedded PostgreSQL already loaded by it

Without `--data-dir`: a private PostgreSQL in a temporary folder with N synthetic tracks (the library of
bench/scale.py: 50 tag scores each, the search document made by the trigger), deleted afterwards; with it, the
embedded PostgreSQL in that folder is used as it is (and loaded first if it has no tracks), and kept.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale import load  # noqa: E402
from bench.stack import vacuum  # noqa: E402
from db.migrate import apply_migrations  # noqa: E402
from db.pool import Database  # noqa: E402
from db.search import KeywordHit, keyword_hits  # noqa: E402
from infra.embedded import EmbeddedPostgres  # noqa: E402

QUERIES = ["jazz", "metal", "female vocalists", "upbeat electronic dance", "calm piano", "song 4711"]
LIMIT = 500  # services.search.KEYWORD_CANDIDATES


def whole_query_hits(db: Database, text: str, *, limit: int) -> list[KeywordHit]:
    """The hits as ranked before: ts_rank_cd of the OR-query over each matching document."""
    row = db.fetch_one("SELECT replace(plainto_tsquery('english', %s)::text, '&', '|') AS words", (text,))
    words = str(row["words"]) if row else ""
    if not words:
        return []
    rows = db.fetch_all("""SELECT item_id, fulltext FROM (
                               SELECT t.item_id, ts_rank_cd(t.search_document, %(w)s::tsquery, 32) AS fulltext
                                 FROM track_search t WHERE t.search_document @@ %(w)s::tsquery) AS m
                            ORDER BY fulltext DESC, item_id LIMIT %(limit)s""", {"w": words, "limit": limit})
    return [KeywordHit(r["item_id"], round(float(r["fulltext"]), 6), float(r["fulltext"]), 0.0) for r in rows]


def summed_word_hits(db: Database, text: str, *, limit: int) -> list[KeywordHit]:
    """The hits as ranked before the word table: each word's ts_rank_cd summed over each matching document."""
    row = db.fetch_one("SELECT plainto_tsquery('english', %s)::text AS words", (text,))
    operands = list(dict.fromkeys(w for w in (str(row["words"]) if row else "").split(" & ") if w))
    if not operands:
        return []
    params: dict[str, Any] = {"words": " | ".join(operands), "limit": limit}
    params.update({f"w{i}": word for i, word in enumerate(operands)})
    summed = " + ".join(f"CASE WHEN t.search_document @@ %(w{i})s::tsquery "
                        f"THEN ts_rank_cd(t.search_document, %(w{i})s::tsquery, 0) ELSE 0 END"
                        for i in range(len(operands)))
    rows = db.fetch_all(f"""SELECT item_id, (rank / (rank + 1))::real AS fulltext FROM (
                                SELECT t.item_id, (round(({summed})::float8 * 10000) / 10000)::float8 AS rank
                                  FROM track_search t WHERE t.search_document @@ %(words)s::tsquery
                                 ORDER BY rank DESC, t.item_id LIMIT %(limit)s) AS best
                             ORDER BY rank DESC, item_id""", params)
    return [KeywordHit(r["item_id"], round(float(r["fulltext"]), 6), float(r["fulltext"]), 0.0) for r in rows]


def table_hits(db: Database, text: str, *, limit: int) -> list[KeywordHit]:
    return keyword_hits(db, text, limit=limit, trigram=False)


def measure(db: Database, rounds: int) -> list[str]:
    lines = ["| query | matching documents | whole OR-query p50 | sum of words p50 | word table p50 | "
             "ratio to the sum | same hits and scores |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for query in QUERIES:
        times: dict[str, list[float]] = {"whole": [], "words": [], "table": []}
        answers: dict[str, Any] = {}
        for _ in range(rounds):
            for name, run in (("whole", whole_query_hits), ("words", summed_word_hits), ("table", table_hits)):
                started = time.perf_counter()
                hits = run(db, query, limit=LIMIT)
                times[name].append((time.perf_counter() - started) * 1000)
                answers[name] = [(h.item_id, h.score) for h in hits]
        words = db.fetch_one("SELECT replace(plainto_tsquery('english', %s)::text, '&', '|') AS w", (query,))
        matching = db.fetch_one("SELECT count(*) AS n FROM track_search WHERE search_document @@ %s::tsquery",
                                (words["w"] if words else "",))
        whole, summed, table = (statistics.median(times[k]) for k in ("whole", "words", "table"))
        same = answers["whole"] == answers["words"] == answers["table"]
        lines.append(f"| {query} | {matching['n'] if matching else 0:,} | {whole:.0f} ms | {summed:.0f} ms | "
                     f"{table:.1f} ms | {summed / table:.0f}× | {'yes' if same else '**no**'} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, help="keep the embedded PostgreSQL in this folder")
    args = parser.parse_args()
    folder = args.data_dir or Path(tempfile.mkdtemp(prefix="audiomuse-keyword-"))
    postgres = EmbeddedPostgres(folder)
    url = postgres.start()
    try:
        started = time.perf_counter()
        applied = apply_migrations(url)
        migrated = time.perf_counter() - started
        db = Database(url, max_connections=2)
        counted = db.fetch_one("SELECT count(*) AS n FROM track_search")
        if not counted or not counted["n"]:
            load(db, args.tracks)  # vacuumed and analysed, as a library this size long has been
            counted = db.fetch_one("SELECT count(*) AS n FROM track_search")
        elif applied:
            print(f"Migrations {applied} applied to the loaded library in {migrated:.0f} s.\n")
            vacuum(db, "track_search, track_search_terms")
        row = db.fetch_one("SHOW shared_buffers")
        buffers = row["shared_buffers"] if row else "?"
        print(f"## Keyword ranking ({time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
              f"{counted['n'] if counted else 0:,} documents, shared_buffers {buffers}, "
              f"the median of {args.rounds}, taken in turn)\n")
        print("\n".join(measure(db, args.rounds)))
    finally:
        postgres.stop()
        if args.data_dir is None:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
