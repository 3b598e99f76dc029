"""Benchmark library search and smart playlists and print the figures (markdown).

    .venv/bin/python bench/search.py [--tracks 100000] [--corpus-data /tmp/am-dev] [--rounds 3]

1. Latency at `--tracks` synthetic tracks (clustered 200-d vectors, 50 tag scores, tempo, key, energy; loaded with
   COPY so the search document trigger runs): the server time of one hybrid search with facets — PostgreSQL's
   keyword ranking, the concepts engine, fusion, filters and facet counts, in-process as the web process runs it —
   for a set of queries with and without filters, and the facet counting alone.
2. Smart playlists: 20 rules refreshed after 1,000 new tracks are added to that library (the refresh job's
   per-playlist work: the rule's query, ordering, the change against what was published). The media server's
   create-playlist call is left out (it is the server's time, not ours): a recording stand-in takes the tracks.
3. With `--corpus-data` (an analyzed dev corpus, see bench/text_search.py): weighted fusion against reciprocal rank
   fusion, and each side alone, by Precision@10 on the text-search issue's queries (relevance: the corpus's source
   packages), the hybrid side asked as the route does.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from audio.musicnn import MODEL_NAME  # noqa: E402
from bench.index_recall import clustered_vectors  # noqa: E402
from bench.map import tag_json  # noqa: E402
from bench.similarity import load_library  # noqa: E402
from bench.stack import embedded_services, vacuum  # noqa: E402
from bench.text_search import PACKAGES, QUERIES  # noqa: E402
from config import Config  # noqa: E402
from db import search as search_store  # noqa: E402
from db import smart_playlists as smart_store  # noqa: E402
from db.pool import Database  # noqa: E402
from discovery.hybrid import Filters, facet_counts, parse_camelot  # noqa: E402
from infra.embedded import EmbeddedPostgres  # noqa: E402
from mediaservers.base import Capability  # noqa: E402
from services.search import (  # noqa: E402
    CACHE_NAME,
    KEYWORD_CANDIDATES,
    SEMANTIC_CANDIDATES,
    SearchRequest,
    build_search_facets,
    run_search,
)
from services.text_search import CACHE_NAME as TEXT_CACHE  # noqa: E402
from services.text_search import build_searchable_library, semantic_search, text_model_for  # noqa: E402
from voyager_manager import IndexHolder, build_index, store_index  # noqa: E402

# Typical searches: a tag or genre word, a description, a title's number (the synthetic titles are "Song <n>", so
# "song" itself is in every title: that pathological case is measured apart).
SEARCHES = [("jazz", Filters()), ("upbeat electronic dance", Filters()), ("4711", Filters()),
            ("dark ambient", Filters()), ("female vocalists", Filters()), ("metal", Filters()),
            ("calm piano", Filters(bpm_min=60, bpm_max=90)), ("rock", Filters(energy="high")),
            ("electronic", Filters(camelot=(parse_camelot("8A") or 0, parse_camelot("9A") or 0))),
            ("ambient chillout", Filters(tag="ambient")), ("", Filters(bpm_min=120, bpm_max=130, energy="high"))]
EVERYWHERE = "Song 4711"  # a word in every title: PostgreSQL ranks all 100k documents
RULES = ["bpm 120-130 AND energy = high", "tag = jazz", "tag = rock AND NOT energy = low", "key = 8A,9A,8B",
         "bpm >= 150", "energy = low AND bpm < 90", "tag = electronic AND bpm 118-132", "year 1990-1999",
         "tag = pop AND key = 1A,2A,3A", "bpm 90-110 AND tag = Hip-Hop", "NOT tag = rock AND bpm 100-120",
         "tag = ambient", "tag = dance AND energy = high", "key = 12B,1B,2B AND bpm 120-128",
         "tag = indie AND NOT bpm > 140", "duration 180-240 AND tag = soul", "energy = medium AND key = 5A",
         "tag = metal", "tag = folk AND bpm < 100", "tag = funk AND energy = high"]


def holder_for(db: Database, config: Config, item_ids: list[str], vectors: np.ndarray) -> IndexHolder:
    index = build_index(item_ids, vectors, m=16, ef_construction=100)
    store_index(db, config.INDEX_NAME, index, item_ids, model=MODEL_NAME)
    holder = IndexHolder(db, config.INDEX_NAME)
    holder.add_cache(TEXT_CACHE, build_searchable_library)
    holder.add_cache(CACHE_NAME, build_search_facets)
    holder.reload()
    return holder


def latency(n: int, rounds: int) -> list[str]:
    rng = random.Random(3)
    labels = np.random.default_rng(1).integers(0, 400, size=n)
    with embedded_services() as (_, database_url, _redis_url):
        db = Database(database_url, max_connections=2)
        vectors = clustered_vectors(n, 200, clusters=400, seed=1, latent=32)
        started = time.perf_counter()
        ids = load_library(db, vectors, rng, tags=lambda i: tag_json(int(labels[i]), rng))
        load_seconds = time.perf_counter() - started
        vacuum(db, "tracks, track_search, track_search_terms")  # as a library this size long has been
        config = Config.from_mapping({"DATABASE_URL": database_url})
        holder = holder_for(db, config, ids, vectors)
        model = text_model_for(config)
        model.warm_up()
        trigram = search_store.trigram_available(db)
        facets = holder.state.caches[CACHE_NAME]
        timings: dict[str, list[float]] = {"hybrid": [], "keyword": [], "filtered": []}
        totals = []
        for _ in range(rounds):
            for query, filters in SEARCHES:
                for mode in ("hybrid", "keyword"):
                    request = SearchRequest(query=query, mode=mode, filters=filters)  # type: ignore[arg-type]
                    t = time.perf_counter()
                    answer = run_search(db, holder.state, model, None, request, trigram=trigram)
                    ms = (time.perf_counter() - t) * 1000
                    timings["filtered" if filters != Filters() else mode].append(ms)
                    totals.append(answer.total)
        everywhere = []
        for _ in range(rounds * 2):
            t = time.perf_counter()
            run_search(db, holder.state, model, None, SearchRequest(query=EVERYWHERE), trigram=trigram)
            everywhere.append((time.perf_counter() - t) * 1000)
        # the two sides apart: PostgreSQL's keyword ranking, and the concept engine over the text-search cache
        keyword_alone, semantic_alone = [], []
        for _ in range(rounds):
            for query, _filters in SEARCHES:
                if not query:
                    continue
                t = time.perf_counter()
                search_store.keyword_hits(db, query, limit=KEYWORD_CANDIDATES, trigram=trigram)
                keyword_alone.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                semantic_search(model, None, holder.state.caches, query, limit=SEMANTIC_CANDIDATES)
                semantic_alone.append((time.perf_counter() - t) * 1000)
        facet_all = []
        for _ in range(20):
            t = time.perf_counter()
            facet_counts(facets.table, np.arange(len(facets.table)), levels=facets.levels)
            facet_all.append((time.perf_counter() - t) * 1000)
        lines = search_table(n, load_seconds, trigram, facets.nbytes, timings, everywhere, keyword_alone,
                             semantic_alone, facet_all, totals)
        print("\n".join(lines), flush=True)  # before the smart playlists, which load more tracks
        return smart_refresh(db, n, vectors.shape[1], rng)


def search_table(n: int, load_seconds: float, trigram: bool, facet_bytes: int, timings: dict[str, list[float]],
                 everywhere: list[float], keyword_alone: list[float], semantic_alone: list[float],
                 facet_all: list[float], totals: list[int]) -> list[str]:
    lines = [f"\nAt {n} synthetic tracks (loaded in {load_seconds:.0f} s with the search-document trigger; "
             f"pg_trgm {'installed' if trigram else 'not installed (embedded PostgreSQL)'}; facet table "
             f"{facet_bytes / 2**20:.1f} MB):\n",
             "| search (server time, in-process, facets included) | p50 | p90 |", "| --- | --- | --- |"]
    for name, label in (("hybrid", "hybrid, no filter"), ("keyword", "keyword only, no filter"),
                        ("filtered", "with filters (hybrid and keyword)")):
        values = timings[name]
        lines.append(f"| {label} ({len(values)} searches) | {statistics.median(values):.0f} ms | "
                     f"{np.percentile(values, 90):.0f} ms |")
    lines.append(f"| hybrid, a word in every title ({EVERYWHERE!r}) | {statistics.median(everywhere):.0f} ms | "
                 f"{np.percentile(everywhere, 90):.0f} ms |")
    lines.append(f"| … its keyword side alone (PostgreSQL: the word table) | "
                 f"{statistics.median(keyword_alone):.0f} ms | {np.percentile(keyword_alone, 90):.0f} ms |")
    lines.append(f"| … its semantic side alone (concept engine) | {statistics.median(semantic_alone):.0f} ms | "
                 f"{np.percentile(semantic_alone, 90):.0f} ms |")
    lines.append(f"| facet counts over the whole library | {statistics.median(facet_all):.1f} ms | "
                 f"{np.percentile(facet_all, 90):.1f} ms |")
    lines.append(f"\nMatches per search: median {statistics.median(totals):.0f}, max {max(totals)}.")
    return lines


class RecordingServer:
    """Takes the playlists instead of a media server (its time is not AudioMuse's); its playlists hold item ids."""

    capabilities: frozenset[Capability] = frozenset()

    def __init__(self) -> None:
        self.created: dict[str, int] = {}

    def create_playlist(self, name: str, item_ids: list[str]) -> str:
        self.created[name] = len(item_ids)
        return name

    def delete_playlist(self, playlist_id: str) -> None:
        self.created.pop(playlist_id, None)


def smart_refresh(db: Database, n: int, dimensions: int, rng: random.Random) -> list[str]:
    from tasks.smart_playlists import refresh_one

    for number, rule in enumerate(RULES):
        smart_store.save_smart_playlist(db, smart_playlist_id=None, name=f"Rule {number}", rule=rule,
                                        order_by=("bpm", "energy", "random", "similarity")[number % 4], seed=number,
                                        size_cap=200)
    ctx = SimpleNamespace(db=db)
    server = RecordingServer()
    for row in smart_store.list_smart_playlists(db):
        refresh_one(ctx, server, row)  # type: ignore[arg-type]  # the first publication
    # an analysis of 1,000 new tracks
    new = clustered_vectors(1000, dimensions, clusters=400, seed=9, latent=32)
    labels = np.random.default_rng(9).integers(0, 400, size=1000)
    load_library(db, new, rng, start=n, tags=lambda i: tag_json(int(labels[i]), rng))
    started = time.perf_counter()
    outcomes = [refresh_one(ctx, server, row) for row in smart_store.list_smart_playlists(db)]  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    changed = sum(1 for o in outcomes if o.get("changed"))
    added = sum(int(o.get("added", 0)) for o in outcomes)
    return [f"\nSmart playlists: {len(RULES)} rules (size cap 200, all four orders) refreshed after 1,000 new tracks: "
            f"**{seconds:.2f} s** in all ({changed} changed, {added} tracks added; target 10 s). The media "
            "server's own create-playlist time is not included."]


def quality(corpus_data: Path) -> list[str]:
    """Precision@10 of keyword only, semantic only, weighted fusion and RRF on the dev corpus."""
    server = EmbeddedPostgres(corpus_data)
    url = server.start()
    try:
        db = Database(url, max_connections=2)
        from db.migrate import apply_migrations

        apply_migrations(url)  # the corpus instance may predate the search document
        config = Config.from_mapping({"DATABASE_URL": url})
        holder = IndexHolder(db, config.INDEX_NAME)
        holder.add_cache(TEXT_CACHE, build_searchable_library)
        holder.add_cache(CACHE_NAME, build_search_facets)
        holder.reload()
        model = text_model_for(config)
        rows = db.fetch_all("SELECT item_id, file_path FROM tracks WHERE analyzed_at IS NOT NULL")
        package = {r["item_id"]: next((g for g, folder in PACKAGES.items() if f"/{folder}/" in (r["file_path"] or "")),
                                      None) for r in rows}
        trigram = search_store.trigram_available(db)
        variants = {"keyword only": ("keyword", 0.0, "weighted"), "semantic only": ("semantic", 1.0, "weighted"),
                    "hybrid, weighted (0.7/0.3)": ("hybrid", 0.3, "weighted"),
                    "hybrid, weighted (0.5/0.5)": ("hybrid", 0.5, "weighted"),
                    "hybrid, RRF (0.7/0.3)": ("hybrid", 0.3, "rrf"), "hybrid, RRF (0.5/0.5)": ("hybrid", 0.5, "rrf")}
        table = {}
        for name, (mode, weight, fusion) in variants.items():
            precisions = []
            for query, genre in QUERIES:
                request = SearchRequest(query=query, mode=mode, semantic_weight=weight,  # type: ignore[arg-type]
                                        fusion=fusion, limit=10)  # type: ignore[arg-type]
                answer = run_search(db, holder.state, model, None, request, trigram=trigram)
                top = [r["track"]["item_id"] for r in answer.results[:10]]
                precisions.append(sum(1 for i in top if package.get(i) == genre) / 10)
            table[name] = statistics.mean(precisions)
        counts = {g: sum(1 for p in package.values() if p == g) for g in PACKAGES}
        random_p = statistics.mean(counts[g] / len(package) for _, g in QUERIES)
    finally:
        server.stop()
    lines = [f"\nDev corpus ({len(package)} tracks; {len(QUERIES)} queries of bench/text_search.py; relevance: "
             "the source package), mean Precision@10:\n", "| ranking | P@10 |", "| --- | --- |"]
    lines += [f"| {name} | {p:.2f} |" for name, p in table.items()]
    lines.append(f"| random ranking (expected) | {random_p:.2f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus-data", type=Path, help="DATA_DIR of an analyzed dev corpus")
    parser.add_argument("--quality-only", action="store_true")
    args = parser.parse_args()
    print(f"## Library search and smart playlists ({time.strftime('%Y-%m-%d')}, {platform.machine()}, "
          f"{os.cpu_count()} cores)")
    lines: list[str] = []
    if args.corpus_data:
        lines += quality(args.corpus_data)
    if not args.quality_only:
        lines += latency(args.tracks, args.rounds)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
