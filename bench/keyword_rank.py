"""The keyword side of library search: `ts_rank_cd` of the whole OR-query (how db/search.py ranked until
2026-12-07) against the sum of each word's `ts_rank_cd` (how it ranks now), on the same PostgreSQL, taken in turn,
and whether both give the same hits and scores.

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


def measure(db: Database, rounds: int) -> list[str]:
    lines = ["| query | matching documents | whole OR-query p50 | sum of words p50 | ratio | same hits and scores |",
             "| --- | --- | --- | --- | --- | --- |"]
    for query in QUERIES:
        times: dict[str, list[float]] = {"whole": [], "words": []}
        answers: dict[str, Any] = {}
        for _ in range(rounds):
            for name, run in (("whole", whole_query_hits), ("words", keyword_hits)):
                started = time.perf_counter()
                if name == "whole":
                    hits = run(db, query, limit=LIMIT)
                else:
                    hits = run(db, query, limit=LIMIT, trigram=False)
                times[name].append((time.perf_counter() - started) * 1000)
                answers[name] = [(h.item_id, h.score) for h in hits]
        words = db.fetch_one("SELECT replace(plainto_tsquery('english', %s)::text, '&', '|') AS w", (query,))
        matching = db.fetch_one("SELECT count(*) AS n FROM track_search WHERE search_document @@ %s::tsquery",
                                (words["w"] if words else "",))
        whole, summed = statistics.median(times["whole"]), statistics.median(times["words"])
        lines.append(f"| {query} | {matching['n'] if matching else 0:,} | {whole:.0f} ms | {summed:.0f} ms | "
                     f"{whole / summed:.1f}× | {'yes' if answers['whole'] == answers['words'] else '**no**'} |")
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
        apply_migrations(url)
        db = Database(url, max_connections=2)
        counted = db.fetch_one("SELECT count(*) AS n FROM track_search")
        if not counted or not counted["n"]:
            load(db, args.tracks)
            db.execute("ANALYZE track_search")
            counted = db.fetch_one("SELECT count(*) AS n FROM track_search")
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
