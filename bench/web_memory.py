"""Where the web process's memory goes, cache by cache, at one library size (issue 29).

    .venv/bin/python bench/web_memory.py [--tracks 100000]

Loads N synthetic tracks (as bench/scale.py: clustered 200-d vectors, 50 tag scores, moods) and their index into a
private PostgreSQL, then in this one process, as the web process does at start-up: loads the index with its
catalogue, builds each cache registered on it in the web process's order (map, text search, search facets, artists),
and loads the text model with one query. After each step: the resident memory it added and kept (after a garbage
collection and malloc_trim, as the web process does after a reload) and the peak while it ran (sampled every 10 ms).

The index is stored as INDEX_STORAGE stores it (`--storage`, default e4m3) and loaded with DATA_DIR/index as the web
process does: a first load writes the index, catalogue and (e4m3) float32 vectors files there (timed apart), the
measured load is a restart's, from those files. Then a full reload as IndexHolder.reload does one after a rebuild
(index, catalogue and every cache built beside the ones in use, then the old ones released): its peak is the web
process's largest. Last, similar songs through the loaded index: recall@10 against brute force and the median time
of 200 queries (query ef 400).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from audio.musicnn import MODEL_NAME  # noqa: E402
from bench.scale import load  # noqa: E402
from bench.stack import embedded_services  # noqa: E402
from config import Config  # noqa: E402
from db.pool import Database  # noqa: E402
from voyager_manager import _release_freed_memory, build_index, load_index, store_index  # noqa: E402


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss / 2**20)


def step(name: str, run: Callable[[], Any], rows: list[str]) -> Any:
    peak = [rss_mb()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    before = rss_mb()
    sampler.start()
    started = time.perf_counter()
    value = run()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    gc.collect()
    _release_freed_memory()
    after = rss_mb()
    rows.append(f"| {name} | {after - before:+.0f} MB | {max(peak[0], after) - before:+.0f} MB | {seconds:.1f} s | "
                f"{after:.0f} MB | {max(peak[0], after):.0f} MB |")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--storage", default="e4m3", choices=("e4m3", "float32"))
    args = parser.parse_args()
    with embedded_services() as (work, database_url, redis_url):
        db = Database(database_url, max_connections=2)
        ids, vectors, _ = load(db, args.tracks)
        started = time.perf_counter()
        store_index(db, "music_library", build_index(ids, vectors, m=16, ef_construction=100, storage=args.storage),
                    ids, model=MODEL_NAME)
        built = time.perf_counter() - started
        queries = np.random.default_rng(11).choice(len(ids), size=200, replace=False)
        unit = vectors[queries] / np.linalg.norm(vectors[queries], axis=1, keepdims=True)
        scores = np.concatenate([(vectors[s:s + 100_000] / np.linalg.norm(vectors[s:s + 100_000], axis=1,
                                                                            keepdims=True)) @ unit.T
                                 for s in range(0, len(ids), 100_000)])
        exact = [{ids[i] for i in np.argsort(-scores[:, j])[:10]} for j in range(len(queries))]
        query_vectors = vectors[queries].copy()
        del vectors, scores
        gc.collect()
        _release_freed_memory()
        folder = work / "data" / "index"
        started = time.perf_counter()
        first = load_index(db, "music_library", folder=folder)
        first_load = time.perf_counter() - started
        del first
        gc.collect()
        _release_freed_memory()

        from app import create_app  # what the web process imports, before anything is loaded
        from services.artists import build_artist_model
        from services.map import map_cache_builder
        from services.search import build_search_facets
        from services.text_search import build_searchable_library

        config = Config.from_mapping({"DATABASE_URL": database_url, "REDIS_URL": redis_url,
                                      "DATA_DIR": str(work / "data")})
        rows: list[str] = []
        base = rss_mb()
        flask_app = step("the web app created (imports, connections)", lambda: create_app(config), rows)
        runtime = flask_app.extensions["audiomuse"]
        loaded = step(f"index ({args.storage}) + catalogue loaded from DATA_DIR (a restart)",
                      lambda: load_index(db, "music_library", folder=folder), rows)
        caches: dict[str, Any] = {}
        builders = (("map cache", map_cache_builder(config)), ("text-search cache", build_searchable_library),
                    ("search facets", build_search_facets), ("artist model", build_artist_model))
        for name, builder in builders:
            caches[name] = step(name, lambda b=builder: b(db, loaded), rows)
        step("text model loaded (first text query)", lambda: runtime.text_model.embed("calm piano for reading"), rows)
        # a full reload (IndexHolder.reload after a rebuild): the index, its catalogue and every cache built beside
        # the ones in use, then swapped in and the old ones released
        def full_reload() -> tuple[Any, list[Any]]:
            new = load_index(db, "music_library", folder=folder)
            return new, [b(db, new) for _, b in builders]

        reloaded = step("a full reload: index, catalogue and every cache built beside the live ones", full_reload,
                        rows)
        loaded, caches = reloaded[0], dict(zip([n for n, _ in builders], reloaded[1], strict=True))
        del reloaded
        step("… swapped in, the old ones released", gc.collect, rows)
        lookups = loaded.queries(query_ef=400)
        found, times = [], []
        for vector in query_vectors:
            started = time.perf_counter()
            found.append({i for i, _ in lookups.neighbours(vector, 10)})
            times.append(time.perf_counter() - started)
        recall = float(np.mean([len(e & f) / 10 for e, f in zip(exact, found, strict=True)]))
        files = {p.name: p.stat().st_size / 2**20 for p in sorted(folder.iterdir()) if not p.name.startswith(".")}
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}; {args.tracks:,} synthetic tracks; the process before the app: "
          f"{base:.0f} MB.\n")
    print("| step (in the web process's start-up order) | kept | peak while it ran | time | resident after | "
          "peak resident |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print(f"\nIndex ({args.storage}) built in {built:.0f} s; first load (files written to DATA_DIR) "
          f"{first_load:.1f} s. Files in DATA_DIR/index: "
          + ", ".join(f"{name} {size:.0f} MB" for name, size in files.items())
          + f". Similar songs through the loaded index: recall@10 {recall:.4f}, p50 "
          f"{1000 * float(np.median(times)):.2f} ms (200 queries, one client).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
