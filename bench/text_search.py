"""Benchmark text search (the default engine, keyword search, and CLAP's ranking) and print the figures (markdown).

    .venv/bin/python bench/text_search.py --corpus-data /tmp/am-dev [--tracks 100000] [--seconds 5] [--latency-only]

1. Quality on the real dev corpus (../shared/data/build-dev-corpus.sh, analyzed by a local AudioMuse whose
   DATA_DIR is `--corpus-data`: its embedded PostgreSQL is opened read-only in spirit — nothing is written).
   Relevance comes from the corpus's source packages, which is what a listener would call them: Battle for
   Wesnoth's music is orchestral film-style score (35 tracks), Extreme Tux Racer's is light electronic game music
   (6), OpenTTD's OpenMSX set is MIDI renderings of jazz, blues, ragtime and easy-going tunes (31). A query written
   for a genre counts a hit when the track comes from that genre's package. Precision@10 per query against the
   expected precision of a random ranking (the share of relevant tracks).
2. Latency and memory at `--tracks` synthetic tracks (50 tag scores each, with cluster structure): the engine's
   server time with a warm model (query embedding, cached query, ranking), and keyword search: in memory (what
   the route uses) and through PostgreSQL (its fallback while the cache is prepared).
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

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from audio.moods import MOODS  # noqa: E402
from bench.index_recall import clustered_vectors  # noqa: E402
from bench.map import tag_json  # noqa: E402
from bench.similarity import load_library  # noqa: E402
from bench.stack import embedded_services  # noqa: E402
from db import tracks as track_store  # noqa: E402
from db.pool import Database  # noqa: E402
from discovery.keyword_index import KeywordIndex  # noqa: E402
from discovery.sentence_encoder import SentenceEncoder  # noqa: E402
from discovery.text_search import TextSearchEngine, concept_scores  # noqa: E402
from infra.embedded import EmbeddedPostgres  # noqa: E402
from services.text_search import (  # noqa: E402
    CONCEPTS,
    ClapLibrary,
    SearchableLibrary,
    TextModel,
    search_clap,
    tag_matches,
    top_concepts,
)

PACKAGES = {"orchestral": "wesnoth", "electronic": "extremetuxracer", "jazz": "openmsx"}
QUERIES = [  # (query, the package whose tracks are relevant)
    ("orchestral", "orchestral"), ("epic orchestral battle music", "orchestral"), ("film score", "orchestral"),
    ("classical symphony with strings", "orchestral"), ("dramatic soundtrack", "orchestral"),
    ("light electronic music", "electronic"), ("synthesizer", "electronic"), ("upbeat electronic dance", "electronic"),
    ("techno", "electronic"), ("jazz", "jazz"), ("blues", "jazz"), ("ragtime piano", "jazz"),
    ("easy listening", "jazz"), ("swing and boogie", "jazz"),
]


def quality(corpus_data: Path) -> list[str]:
    server = EmbeddedPostgres(corpus_data)
    url = server.start()
    try:
        db = Database(url, max_connections=2)
        rows = db.fetch_all("""SELECT item_id, file_path, tags, moods, tempo_bpm, energy, scale FROM tracks
                                WHERE tags IS NOT NULL ORDER BY item_id""")
    finally:
        server.stop()
    package_of = []
    for row in rows:
        path = row["file_path"] or ""
        package_of.append(next((g for g, folder in PACKAGES.items() if f"/{folder}/" in path), None))
    scores = concept_scores(CONCEPTS, tags=[r["tags"] for r in rows], moods=[r["moods"] for r in rows],
                            tempo=[r["tempo_bpm"] for r in rows], energy=[r["energy"] for r in rows],
                            scale=[r["scale"] for r in rows])
    encoder = SentenceEncoder(ROOT / "models" / "minilm")
    engine = TextSearchEngine(encoder.encode, CONCEPTS)
    counts = {g: package_of.count(g) for g in PACKAGES}
    lines = [f"Dev corpus: {len(rows)} analyzed tracks ({', '.join(f'{g} {n}' for g, n in counts.items())}).\n",
             "| query | relevant (package) | P@10 | random P@10 | top concepts |", "| --- | --- | --- | --- | --- |"]
    precisions, randoms = [], []
    for query, genre in QUERIES:
        hits, weights = engine.search(encoder.encode([query])[0], scores, limit=10)
        relevant = sum(1 for h in hits if package_of[h.position] == genre)
        precision = relevant / 10
        chance = counts[genre] / len(rows)
        precisions.append(precision)
        randoms.append(chance)
        top = ", ".join(f"{name} {w:.2f}" for name, w in sorted(weights.items(), key=lambda kv: -kv[1])[:3])
        lines.append(f"| {query} | {genre} ({PACKAGES[genre]}, {counts[genre]}) | {precision:.1f} | {chance:.2f} | "
                     f"{top} |")
    lines.append(f"\nMean P@10 **{statistics.mean(precisions):.2f}** against **{statistics.mean(randoms):.2f}** for "
                 f"a random ranking ({len(QUERIES)} queries; the electronic class has only {counts['electronic']} "
                 f"tracks, so its best possible P@10 is {min(counts['electronic'], 10) / 10:.1f}).")
    return lines


def latency(n: int, seconds: float) -> list[str]:
    rng = random.Random(3)
    draw = np.random.default_rng(1)
    draw.normal(size=(400, 32))
    labels = draw.integers(0, 400, size=n)
    import json

    tags_text = [tag_json(int(labels[i]), rng) for i in range(n)]
    tags = [json.loads(t) for t in tags_text]
    moods = [{m: rng.random() for m in MOODS} for _ in range(n)]
    before = psutil.Process().memory_info().rss
    encoder = SentenceEncoder(ROOT / "models" / "minilm")
    engine = TextSearchEngine(encoder.encode, CONCEPTS)
    model_mb = (psutil.Process().memory_info().rss - before) / 2**20
    started = time.perf_counter()
    scores = concept_scores(CONCEPTS, tags=tags, moods=moods, tempo=[rng.uniform(60, 180) for _ in range(n)],
                            energy=[rng.random() for _ in range(n)],
                            scale=[rng.choice(["major", "minor"]) for _ in range(n)])
    build_seconds = time.perf_counter() - started
    queries = [q for q, _ in QUERIES] + ["calm piano", "dark ambient", "energetic rock guitar", "sad songs"]

    def timed(call: object, rounds: int) -> list[float]:
        out = []
        for i in range(rounds):
            t = time.perf_counter()
            call(queries[i % len(queries)])  # type: ignore[operator]
            out.append((time.perf_counter() - t) * 1000)
        return out

    cached = {q: encoder.encode([q])[0] for q in queries}
    embed = timed(lambda q: encoder.encode([q]), 200)
    rank = timed(lambda q: engine.search(cached[q], scores, limit=100), 200)
    lines = [f"\nAt {n} synthetic tracks:\n",
             "| step (server time, warm model) | p50 ms | p90 ms |", "| --- | --- | --- |",
             f"| embed a new query | {statistics.median(embed):.1f} | {np.percentile(embed, 90):.1f} |",
             f"| rank {n} tracks (limit 100) | {statistics.median(rank):.1f} | {np.percentile(rank, 90):.1f} |",
             f"| a new query in all | {statistics.median(embed) + statistics.median(rank):.1f} | |",
             f"| a repeated query (embedding cached) | {statistics.median(rank):.1f} | |"]
    with embedded_services() as (_, database_url, _redis_url):
        db = Database(database_url, max_connections=2)
        vectors = clustered_vectors(n, 200, clusters=400, seed=1, latent=32)
        load_library(db, vectors, rng, tags=lambda i: tags_text[i])
        words = ["Song 1", "Artist 12", "Album 99", "jazz", "xyz", "Song 4711"]
        keyword = []
        stop = time.monotonic() + seconds
        i = 0
        while time.monotonic() < stop:
            t = time.perf_counter()
            track_store.keyword_search(db, words[i % len(words)], limit=100)
            keyword.append((time.perf_counter() - t) * 1000)
            i += 1
    lines.append(f"| keyword search in PostgreSQL (title/artist/album, limit 100; used only while the cache is "
                 f"prepared) | {statistics.median(keyword):.1f} | {np.percentile(keyword, 90):.1f} |")
    names = [(f"Song {i}", f"Artist {rng.randrange(n // 8)}", f"Album {i // 10}") for i in range(n)]
    started = time.perf_counter()
    keywords = KeywordIndex.build(names)
    keyword_build = time.perf_counter() - started
    top = np.asarray([top_concepts(tags[i], moods[i]) for i in range(n)], dtype=np.int16)
    library = SearchableLibrary(np.arange(n, dtype=np.int64), scores, top, keywords)
    in_memory = []
    stop = time.monotonic() + seconds
    i = 0
    while time.monotonic() < stop:
        word = words[i % len(words)]
        t = time.perf_counter()
        found = keywords.search(word, limit=100)
        if len(found) < 100:
            tag_matches(library, word, limit=100)
        in_memory.append((time.perf_counter() - t) * 1000)
        i += 1
    lines.append(f"| keyword search in memory (title/artist/album, then tags named; limit 100) | "
                 f"{statistics.median(in_memory):.2f} | {np.percentile(in_memory, 90):.2f} |")
    dimension = 512
    clap = ClapLibrary(np.arange(n, dtype=np.int64), unit_rows(draw.normal(size=(n, dimension))), "bench", {})
    query = unit_rows(draw.normal(size=(1, dimension)))[0]
    clap_model = TextModel(lambda: _FixedQuery(query), name="fixed", idle_seconds=600, query_cache=0)
    clap_rank = timed(lambda q: search_clap(clap_model, clap, q, limit=100), 200)
    lines.append(f"| CLAP: rank {n} embeddings (512-d float32 matrix · query, top 100; the CLAP text encoder's own "
                 f"time not included: no CLAP model here) | {statistics.median(clap_rank):.1f} | "
                 f"{np.percentile(clap_rank, 90):.1f} |")
    lines.append(f"\nMemory: the model adds {model_mb:.0f} MB to a process (layer weights copied, the word table "
                 f"mapped from the file); the per-library scores of {n} tracks take {scores.nbytes / 2**20:.1f} MB "
                 f"(built in {build_seconds:.1f} s); the keyword index {keywords.nbytes / 2**20:.1f} MB (built in "
                 f"{keyword_build:.1f} s); with CLAP, the embedding matrix {clap.nbytes / 2**20:.0f} MB.")
    return lines


class _FixedQuery:
    """Stands in for the CLAP text encoder (none can be had here) so that only the ranking is timed."""

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.vector for _ in texts])


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = matrix.astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-data", type=Path, help="the analyzed dev corpus's DATA_DIR (quality part)")
    parser.add_argument("--latency-only", action="store_true", help="skip the quality part (no corpus needed)")
    parser.add_argument("--quality-only", action="store_true", help="skip the latency part")
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}. Engine: concepts over all-MiniLM-L6-v2 (numpy), {len(CONCEPTS)} concepts.\n")
    if not args.latency_only:
        if args.corpus_data is None:
            parser.error("--corpus-data is needed unless --latency-only")
        print("\n".join(quality(args.corpus_data)))
    if not args.quality_only:
        print("\n".join(latency(args.tracks, args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
