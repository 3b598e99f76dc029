"""The web process at library scale: memory, start-up, searches and reloads under load, at several sizes in one run,
printed as one table with the ratio between the sizes (issue 29).

    .venv/bin/python bench/scale.py [--sizes 100000,1000000] [--clients 8] [--probes 15] [--requests-only]

Per size: a private PostgreSQL and Redis; N synthetic tracks (clustered 200-d vectors, 50 tag scores, six moods,
loaded with COPY through the search-document and name triggers, in chunks); the Voyager index built (`--storage`:
e4m3 by default, as INDEX_STORAGE; M 16, ef_construction 100) and stored; then the real web server (gunicorn, one
process, 8 threads, as supervisord runs it) with a sampler reading the web process's resident memory every 0.25 s:
- start-up: seconds until the index is served, until every cache on it (map, text search, search facets, artists)
  is built; the peak and the settled memory (after the caches, a warm-up of each search and 5 s idle);
- server time per request of each search, one client, the median of `--probes` (the track picker on the name table
  and the keyword fallback in-process, as the route runs them; hybrid search with facets, text search, the chat's
  fallback, similar songs and song path over HTTP), and the web process's CPU per song path;
- two reloads while `--clients` clients ask for similar songs, track-picker and hybrid searches, each timed until
  every cache is built again: first a new index (built beforehand over the same tracks in the reverse order, so every
  position means another track: the new catalogue is loaded beside the one in use, each cache moved onto the new
  positions, the new index served, then each cache built again one at a time),
  then the same index announced again (served as it is, each cache rebuilt alone); failed requests, the longest
  answer, the peak memory of each;
- a restart, with the index file and the catalogue file the first start kept in DATA_DIR/index.
No media server, worker or LLM: what is measured is AudioMuse's web process and PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import redis as redis_lib  # noqa: E402
import requests  # noqa: E402

from audio.musicnn import MODEL_NAME  # noqa: E402
from bench.index_recall import clustered_vectors  # noqa: E402
from bench.map import tag_json  # noqa: E402
from bench.similarity import cpu_seconds, free_port, load_library  # noqa: E402
from bench.stack import (  # noqa: E402
    embedded_services,
    start_web_server,
    stop_web_server,
    vacuum,
    wait_for_caches,
    wait_for_index,
)
from db import tracks as track_store  # noqa: E402
from db.pool import Database  # noqa: E402
from voyager_manager import build_index, publish_reload, store_index  # noqa: E402

CHUNK = 50_000
PICKER = ["song 47", "4711", "artist 12", "zzqx"]  # a title start, digits inside titles, an artist, no match
KEYWORDS = ["song 99", "album 123", "artist 7", "zzqx"]
SEARCHES = ["jazz", "upbeat electronic dance", "calm piano", "metal", "female vocalists"]
TEXTS = ["calm piano for reading", "fast aggressive metal", "happy summer pop", "dark ambient drones"]
CHATS = ["calm piano music for a rainy evening", "energetic rock for running", "jazz with saxophone"]


class Sampler:
    """The resident memory of one process every `every` seconds, in a thread; `peak(since)` and `now()` read it."""

    def __init__(self, process: psutil.Process, every: float = 0.25) -> None:
        self.process = process
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.samples.append((time.monotonic(), self.process.memory_info().rss / 2**20))
            except psutil.Error:
                return

    def peak(self, since: float = 0.0) -> float:
        return max((mb for t, mb in self.samples if t >= since), default=float("nan"))

    def now(self) -> float:
        return float(self.process.memory_info().rss / 2**20)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class _Logged(dict[str, Any]):
    """Figures written to stderr as they are taken: a run stopped before its table still leaves them."""

    def __setitem__(self, key: str, value: Any) -> None:
        print(f"figure {key} = {value}", file=sys.stderr, flush=True)
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


@dataclass
class Figures:
    size: int
    values: dict[str, float] = field(default_factory=_Logged)
    notes: list[str] = field(default_factory=list)


def median_ms(call: Callable[[], Any], probes: int) -> float:
    call()  # warm
    times = []
    for _ in range(probes):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def load(db: Database, n: int) -> tuple[list[str], np.ndarray, float]:
    rng = random.Random(3)
    vectors = clustered_vectors(n, 200, clusters=400, seed=1, latent=32)
    labels = np.random.default_rng(1).integers(0, 400, size=n)
    started = time.perf_counter()
    ids: list[str] = []
    for start in range(0, n, CHUNK):
        part = vectors[start:start + CHUNK]
        ids += load_library(db, part, rng, start=start, tags=lambda i, s=start: tag_json(int(labels[s + i]), rng))
    # A library this size has long been vacuumed: without this, autovacuum works through the million new rows during
    # the measurements that follow (a run on 2026-12-07 measured its searches beside it).
    vacuum(db, "tracks, track_names, track_search, track_search_terms, embeddings")
    return ids, vectors, time.perf_counter() - started


def reload_under_load(base: str, connection: redis_lib.Redis, sampler: Sampler, ids: list[str], clients: int,
                      store_new_index: Callable[[], None]) -> dict[str, float]:
    stop = threading.Event()
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        session = requests.Session()
        rng = random.Random(number)
        while not stop.is_set():
            kind = number % 3
            started = time.perf_counter()
            try:
                if kind == 0:
                    answer = session.get(f"{base}/api/similar_tracks", params={"item_id": rng.choice(ids), "n": 50},
                                         timeout=120)
                elif kind == 1:
                    answer = session.get(f"{base}/api/search_tracks", params={"q": rng.choice(PICKER)}, timeout=120)
                else:
                    answer = session.get(f"{base}/api/v1/search", params={"q": rng.choice(SEARCHES)}, timeout=120)
                ok = answer.status_code == 200
                what = f"{answer.status_code}"
            except requests.RequestException as exc:
                ok, what = False, type(exc).__name__
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if not ok:
                    failures.append(what)

    def loads() -> int:
        return int(requests.get(base + "/api/health", timeout=60).json()["index"]["loads"])

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    figures: dict[str, float] = {}
    try:
        for kind in ("new", "same"):
            if kind == "new":
                store_new_index()
            before = loads()
            began = started = time.monotonic()
            publish_reload(connection, "index-updates", "music_library")
            while loads() <= before:
                time.sleep(0.25)
            figures[f"reload_{kind}_served_s"] = time.monotonic() - started
            wait_for_caches(base, timeout=7200)
            figures[f"reload_{kind}_caches_s"] = time.monotonic() - started
            figures[f"reload_{kind}_peak_mb"] = sampler.peak(began)
            print(f"figure reload_{kind}: {figures} ({len(latencies)} requests, {len(failures)} failed so far: "
                  f"{sorted(set(failures))})", file=sys.stderr, flush=True)
            time.sleep(3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(150)
    return {"reload_requests": len(latencies), "reload_failed": len(failures),
            "reload_longest_ms": max(latencies, default=float("nan")),
            "reload_p50_ms": statistics.median(latencies) if latencies else float("nan"), **figures}


def start_sampled(env: dict[str, str], port: int) -> tuple[Any, psutil.Process, Sampler]:
    """The web server started on `port`, its gunicorn worker (the process that serves) and a sampler of its memory."""
    web = start_web_server(env, port)
    while not psutil.Process(web.pid).children():
        time.sleep(0.05)
    (worker,) = psutil.Process(web.pid).children()
    return web, worker, Sampler(worker)


def measure(n: int, clients: int, probes: int, storage: str = "e4m3", *, requests_only: bool = False) -> Figures:
    figures = Figures(n)
    v = figures.values
    web = None
    sampler = None
    with embedded_services() as (work, database_url, redis_url):
        try:
            db = Database(database_url, max_connections=4)
            ids, vectors, v["load_rows_s"] = load(db, n)
            started = time.perf_counter()
            index = build_index(ids, vectors, m=16, ef_construction=100, storage=storage)
            v["index_build_s"] = time.perf_counter() - started
            started = time.perf_counter()
            store_index(db, "music_library", index, ids, model=MODEL_NAME)
            v["index_store_s"] = time.perf_counter() - started
            del index
            # the index of the first reload: the same tracks, every position another one's
            reversed_ids = ids[::-1]
            new_index = None if requests_only else \
                build_index(reversed_ids, vectors[::-1], m=16, ef_construction=100, storage=storage)
            del vectors

            port = free_port()
            env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                       PORT=str(port), DATA_DIR=str(work / "data"), CHAT_MAX_REQUESTS_PER_MINUTE="100000",
                       INDEX_NAME="music_library")
            started = time.monotonic()
            web, worker, sampler = start_sampled(env, port)
            base = f"http://127.0.0.1:{port}"
            wait_for_index(base, n, timeout=1800)
            v["start_index_s"] = time.monotonic() - started
            caches = wait_for_caches(base)[1]
            v["start_caches_s"] = time.monotonic() - started
            failed = [name for name, state in caches.items() if state != "ready"]
            if failed:
                figures.notes.append(f"caches that failed to build at {n}: {', '.join(failed)}")
            v["rss_startup_peak_mb"] = sampler.peak()

            session = requests.Session()
            rng = random.Random(5)
            v["picker_ms"] = statistics.median(
                median_ms(lambda q=q: track_store.search_tracks(db, text=q, limit=20), probes) for q in PICKER)
            v["keyword_fallback_ms"] = statistics.median(
                median_ms(lambda q=q: track_store.keyword_search(db, q, limit=50), probes) for q in KEYWORDS)
            v["hybrid_search_ms"] = statistics.median(
                median_ms(lambda q=q: session.get(f"{base}/api/v1/search", params={"q": q}, timeout=120).json(),
                          probes) for q in SEARCHES)
            v["text_search_ms"] = statistics.median(
                median_ms(lambda q=q: session.post(f"{base}/api/clap/search", json={"query": q, "limit": 50},
                                                   timeout=120).json(), probes) for q in TEXTS)
            v["chat_fallback_ms"] = statistics.median(
                median_ms(lambda q=q: session.post(f"{base}/chat/api/chatPlaylist",
                                                   json={"userInput": q, "ai_provider": "none"}, timeout=120).json(),
                          max(3, probes // 3)) for q in CHATS)
            v["similar_ms"] = median_ms(lambda: session.get(
                f"{base}/api/similar_tracks", params={"item_id": rng.choice(ids), "n": 50}, timeout=60).json(), probes)
            before = cpu_seconds(worker)
            v["path_ms"] = median_ms(lambda: session.get(
                f"{base}/api/find_path", params={"start_song_id": rng.choice(ids), "end_song_id": rng.choice(ids),
                                                 "max_steps": 25}, timeout=120).json(), probes)
            v["path_server_cpu_ms"] = 1000 * (cpu_seconds(worker) - before) / (probes + 1)
            time.sleep(5)
            v["rss_settled_mb"] = sampler.now()
            if requests_only:
                return figures
            v.update(reload_under_load(
                base, redis_lib.Redis.from_url(redis_url), sampler, ids, clients,
                partial(store_index, db, "music_library", new_index, reversed_ids, model=MODEL_NAME)))
            del new_index
            time.sleep(5)
            v["rss_after_reloads_mb"] = sampler.now()

            # a restart: the index file and the catalogue file in DATA_DIR/index are current now
            sampler.stop()
            stop_web_server(web)
            started = time.monotonic()
            web, worker, sampler = start_sampled(env, port)
            wait_for_index(base, n, timeout=1800)
            v["restart_index_s"] = time.monotonic() - started
            wait_for_caches(base)
            v["restart_caches_s"] = time.monotonic() - started
            v["rss_restart_peak_mb"] = sampler.peak()
        finally:
            if sampler is not None:
                sampler.stop()
            stop_web_server(web)
    return figures


ROWS = [("load_rows_s", "rows loaded with COPY (triggers on)", "s"), ("index_build_s", "index build (M 16, ef_c 100)",
         "s"), ("index_store_s", "index stored in PostgreSQL", "s"),
        ("start_index_s", "web start until the index is served", "s"),
        ("start_caches_s", "web start until every cache is built", "s"),
        ("rss_startup_peak_mb", "web memory, peak during start-up", "MB"),
        ("rss_settled_mb", "web memory, settled (caches built, searches warm)", "MB"),
        ("picker_ms", "track picker (`search_tracks`), PostgreSQL", "ms"),
        ("keyword_fallback_ms", "keyword fallback (`keyword_search`), PostgreSQL", "ms"),
        ("hybrid_search_ms", "hybrid search with facets (`/api/v1/search`)", "ms"),
        ("text_search_ms", "text search (`/api/clap/search`)", "ms"),
        ("chat_fallback_ms", "chat without an LLM (`/chat/api/chatPlaylist`)", "ms"),
        ("similar_ms", "similar songs (n 50)", "ms"), ("path_ms", "song path (25 steps)", "ms"),
        ("path_server_cpu_ms", "song path, web process CPU per request", "ms"),
        ("reload_new_served_s", "reload of a new index: message to served", "s"),
        ("reload_new_caches_s", "… to every cache built", "s"),
        ("reload_new_peak_mb", "… web memory, peak", "MB"),
        ("reload_same_served_s", "reload of the same index: message to served", "s"),
        ("reload_same_caches_s", "… to every cache built again", "s"),
        ("reload_same_peak_mb", "… web memory, peak", "MB"),
        ("reload_requests", "both reloads under load: requests answered", ""),
        ("reload_failed", "both reloads under load: failed requests", ""),
        ("reload_p50_ms", "both reloads under load: p50", "ms"),
        ("reload_longest_ms", "both reloads under load: longest answer", "ms"),
        ("rss_after_reloads_mb", "web memory after the reloads", "MB"),
        ("restart_index_s", "restart (index and catalogue files kept) until the index is served", "s"),
        ("restart_caches_s", "restart until every cache is built", "s"),
        ("rss_restart_peak_mb", "web memory, peak during the restart", "MB")]


def table(results: list[Figures]) -> list[str]:
    head = "| measure | " + " | ".join(f"{r.size:,}" for r in results) + \
        (f" | ratio {results[-1].size // results[0].size}× tracks |" if len(results) > 1 else " |")
    lines = [head, "| --- |" + " --- |" * (len(results) + (1 if len(results) > 1 else 0))]
    for key, label, unit in ROWS:
        cells = []
        for r in results:
            value = r.values.get(key, float("nan"))
            if value != value:  # not measured (--requests-only)
                cells.append("—")
                continue
            cells.append(f"{value:,.0f} {unit}".strip() if value >= 100 or unit in ("", "MB") else
                         f"{value:.1f} {unit}".strip())
        ratio = ""
        if len(results) > 1:
            first, last = results[0].values.get(key), results[-1].values.get(key)
            ratio = f" | {last / first:.1f}×" if first and last and first > 0 else " | —"
        lines.append(f"| {label} | " + " | ".join(cells) + ratio + (" |" if ratio else " |"))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--probes", type=int, default=15)
    parser.add_argument("--storage", default="e4m3", choices=("e4m3", "float32"),
                        help="how the index stores its vectors (INDEX_STORAGE)")
    parser.add_argument("--requests-only", action="store_true",
                        help="stop after start-up and the requests: no reloads, no restart")
    args = parser.parse_args()
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        started = time.monotonic()
        results.append(measure(n, args.clients, args.probes, args.storage, requests_only=args.requests_only))
        print(f"{n}: measured in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        print("\n".join(table(results)), file=sys.stderr, flush=True)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GB, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}; clients and server on the same machine.\n")
    print("\n".join(table(results)))
    for r in results:
        for note in r.notes:
            print(f"\n- {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
