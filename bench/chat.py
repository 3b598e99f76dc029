"""Benchmark the instant-playlist chat's fallback (no LLM) and print the figures (markdown).

    .venv/bin/python bench/chat.py --corpus-data /tmp/am-dev [--tracks 100000] [--rounds 3]

1. Quality on the real dev corpus (its DATA_DIR, analyzed by a local AudioMuse; the web process must be stopped):
   the 30 prompts of bench/chat_prompts.json, each with what it asks for. A playlist matches when it is not empty
   and — for a tag prompt — at least half its songs have one of the asked tags among their three highest, — for a
   mood prompt — at least half have an asked mood among their two strongest, — for a tempo prompt — at least 80 %
   are inside the asked tempo range. A random playlist of the same size is judged the same way for comparison.
2. Latency at --tracks synthetic tracks (fresh embedded PostgreSQL, the chat role set up): the fallback answering
   each prompt in-process (reading the request, building, checking and running its query, post-processing); and
   the cost of the parser check on an LLM-style answer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.index_recall import clustered_vectors  # noqa: E402
from bench.map import tag_json  # noqa: E402
from bench.similarity import load_library  # noqa: E402
from bench.stack import embedded_services  # noqa: E402
from config import Config  # noqa: E402
from db.chat_queries import ensure_chat_role  # noqa: E402
from db.chat_sql import validate_chat_query  # noqa: E402
from db.pool import Database  # noqa: E402
from infra.embedded import EmbeddedPostgres  # noqa: E402
from services import chat as chat_service  # noqa: E402
from services.chat import AiCallLog, ChatContext, ChatRequest, ProviderPacer, chat_playlist  # noqa: E402

PROMPTS = json.loads((ROOT / "bench" / "chat_prompts.json").read_text())
LLM_STYLE = ("SELECT item_id, title, artist, album, tempo_bpm, camelot, energy FROM chat_tracks "
             "WHERE (tags->>'jazz')::float > $1 AND tempo_bpm BETWEEN $2 AND $3 AND lower(artist) NOT IN ($4) "
             "ORDER BY (tags->>'jazz')::float + relaxed DESC LIMIT 25")


def _highest(scores: dict[str, float], count: int) -> list[str]:
    return sorted(scores, key=lambda name: -scores[name])[:count]


def judge(case: dict[str, Any], songs: list[dict[str, Any]]) -> bool:
    if not songs:
        return False
    if "tags" in case or "moods" in case:
        field, asked, top = ("tags", case["tags"], 3) if "tags" in case else ("moods", case["moods"], 2)
        hits = sum(1 for s in songs if set(asked) & set(_highest(s[field] or {}, top)))
        return hits >= len(songs) / 2
    low, high = case.get("min_bpm", 0), case.get("max_bpm", 1000)
    inside = sum(1 for s in songs if s["tempo_bpm"] is not None and low <= s["tempo_bpm"] <= high)
    return inside >= 0.8 * len(songs)


def context(db: Database, config: Config, role: Any = None) -> ChatContext:
    return ChatContext(config=config, db=db, role=role, calls=AiCallLog(), pacer=ProviderPacer())


def quality(corpus_data: Path) -> list[str]:
    server = EmbeddedPostgres(corpus_data)
    url = server.start()
    config = Config.from_mapping({"DATABASE_URL": url})
    lines = ["| prompt | asked | songs | judged | random playlist judged |", "| --- | --- | --- | --- | --- |"]
    matched = random_matched = 0
    rng = random.Random(7)
    try:
        db = Database(url, max_connections=2)
        tracks = {r["item_id"]: r for r in db.fetch_all(
            "SELECT item_id, tags, moods, tempo_bpm FROM tracks WHERE analyzed_at IS NOT NULL")}
        ctx = context(db, config)  # as this user: nothing is written to the corpus's database (no role)
        for case in PROMPTS:
            answer = chat_playlist(ctx, ChatRequest(case["prompt"], "none"))["response"]
            songs = [tracks[r["item_id"]] for r in answer["query_results"]]
            ok = judge(case, songs)
            baseline = judge(case, rng.sample(list(tracks.values()), min(len(songs) or 25, len(tracks))))
            matched += ok
            random_matched += baseline
            asked = ", ".join(case.get("tags", []) + case.get("moods", [])) or \
                f"{case.get('min_bpm', '')}-{case.get('max_bpm', '')} BPM"
            lines.append(f"| {case['prompt']} | {asked} | {len(songs)} | {'yes' if ok else 'no'} | "
                         f"{'yes' if baseline else 'no'} |")
    finally:
        server.stop()
    lines.insert(0, f"Dev corpus: {len(tracks)} analyzed tracks. Fallback playlists judged a match: **{matched} of "
                    f"{len(PROMPTS)}** ({matched / len(PROMPTS):.0%}); random playlists of the same size: "
                    f"{random_matched} of {len(PROMPTS)}.\n")
    return lines


def latency(n: int, rounds: int) -> list[str]:
    rng = random.Random(3)
    draw = np.random.default_rng(1)
    labels = draw.integers(0, 400, size=n)
    with embedded_services() as (_, database_url, _redis_url):
        db = Database(database_url, max_connections=2)
        load_library(db, clustered_vectors(n, 64, clusters=400, seed=1, latent=16), rng,
                     tags=lambda i: tag_json(int(labels[i]), rng))
        db.execute("ANALYZE tracks")
        config = Config.from_mapping({"DATABASE_URL": database_url})
        role = ensure_chat_role(db, config.AI_CHAT_DB_USER_NAME)
        ctx = context(db, config, role)
        timings, sizes, whole_view, same, differ = [], [], [], 0, set()
        narrow = chat_service._best_candidates
        for _ in range(rounds):
            for case in PROMPTS:
                started = time.perf_counter()
                answer = chat_playlist(ctx, ChatRequest(case["prompt"], "none"))["response"]
                timings.append((time.perf_counter() - started) * 1000)
                sizes.append(len(answer["query_results"]))
                # the same request ranking the whole chat view (as before migration 0028), for comparison
                chat_service._best_candidates = lambda *args: None  # type: ignore[assignment]
                try:
                    started = time.perf_counter()
                    before = chat_playlist(ctx, ChatRequest(case["prompt"], "none"))["response"]
                    whole_view.append((time.perf_counter() - started) * 1000)
                finally:
                    chat_service._best_candidates = narrow  # type: ignore[assignment]
                if [r["item_id"] for r in before["query_results"]] == [r["item_id"] for r in answer["query_results"]]:
                    same += 1
                else:
                    order = "random order" if "random()" in answer["executed_query"] else "scored"
                    differ.add(f"{case['prompt']} ({order})")
    check = []
    for _ in range(2000):
        started = time.perf_counter()
        validate_chat_query(LLM_STYLE, [0.5, 90, 120, "abba"], max_limit=100)
        check.append((time.perf_counter() - started) * 1e6)
    return [f"\nAt {n} synthetic tracks (role {role.name} ready: {role.ready}):\n",
            "| step | p50 | p90 |", "| --- | --- | --- |",
            f"| fallback playlist, whole request in-process ({len(timings)} requests, median "
            f"{statistics.median(sizes):.0f} songs) | {statistics.median(timings):.0f} ms | "
            f"{np.percentile(timings, 90):.0f} ms |",
            f"| the same requests ranking the whole chat view (before migration 0028) | "
            f"{statistics.median(whole_view):.0f} ms | {np.percentile(whole_view, 90):.0f} ms |",
            f"| parser check of an LLM-style query | {statistics.median(check):.0f} µs | "
            f"{np.percentile(check, 90):.0f} µs |",
            f"\nThe same playlist both ways: {same} of {len(timings)} requests"
            + (f"; not: {'; '.join(sorted(differ))}." if differ else ".")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-data", type=Path)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quality-only", action="store_true")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}.\n")
    if args.corpus_data:
        print("\n".join(quality(args.corpus_data)))
    if not args.quality_only:
        print("\n".join(latency(args.tracks, args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
