"""Benchmark the similarity index updated in place and started from its file, and print the figures (markdown).

    .venv/bin/python bench/incremental_index.py [--tracks 100000] [--added 1000]

Starts a private PostgreSQL and Redis (embedded, as the launcher does), loads N tracks with 200-d vectors (musicnn's
size; clustered in a 32-d subspace plus noise as in bench/index_recall.py, generated a chunk at a time) and builds
the index whole as the analysis does (`update_index(full=True)`: build, store in PostgreSQL and DATA_DIR, version
groups, artist model). Then it measures: hashing the index file; loading the index in-process from PostgreSQL and
from the file; the real web server's start-up (gunicorn, `app:serve()`) until /api/health reports the index, with
no file in DATA_DIR (from PostgreSQL) and with it; adding `--added` new tracks with `update_index` (in place) and
the time from its start until the running web server serves them (its reload, caches included); recall@10 of
the updated index against brute force over every vector; and the CPU of a 25-step song path with a query per step
and with one batch query.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from audio.musicnn import MODEL_NAME  # noqa: E402
from bench.index_recall import clustered_vectors  # noqa: E402
from bench.similarity import free_port, load_library  # noqa: E402
from bench.stack import (  # noqa: E402
    embedded_services,
    print_figures,
    start_web_server,
    stop_web_server,
    wait_for_caches,
    wait_for_health,
    wait_for_index,
)
from db.pool import Database  # noqa: E402
from db.tracks import all_embeddings  # noqa: E402
from discovery.path import song_path  # noqa: E402
from version_groups import store_version_groups  # noqa: E402
from voyager_manager import (  # noqa: E402
    IndexUpdate,
    index_file,
    load_index,
    store_artist_model,
    update_index,
)

T = TypeVar("T")
NAME = "music_library"
CHANNEL = "index-updates"


def vectors_in_chunks(n: int, *, seed: int, chunk: int = 100_000) -> np.ndarray:
    """n × 200 float32 vectors, made `chunk` at a time (each chunk its own seed: the generator's temporaries stay
    a chunk's size)."""
    out = np.empty((n, 200), dtype=np.float32)
    for number, start in enumerate(range(0, n, chunk)):
        part = min(chunk, n - start)
        out[start:start + part] = clustered_vectors(part, 200, clusters=400, seed=seed * 1000 + number, latent=32)
    return out


def timed(call: Callable[[], T]) -> tuple[T, float]:
    """What `call()` returns and the seconds it took."""
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--added", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)

    class Rows(list[tuple[str, str]]):
        def append(self, row: tuple[str, str]) -> None:  # each figure as soon as it is known, on stderr
            print(f"{row[0]}: {row[1]}", file=sys.stderr, flush=True)
            super().append(row)

    rows = Rows()
    web = None
    with embedded_services() as (work, database_url, redis_url):
        import redis as redis_lib

        connection = redis_lib.Redis.from_url(redis_url)
        folder = work / "data" / "index"
        try:
            db = Database(database_url, max_connections=4)
            vectors = vectors_in_chunks(args.tracks, seed=1)
            load_library(db, vectors, rng)
            # a library analyzed earlier (an update compares the vectors written shortly before the index with it)
            db.execute("UPDATE embeddings SET created_at = now() - interval '1 day'")

            def update(full: bool) -> IndexUpdate:
                return update_index(db, connection, name=NAME, model=MODEL_NAME, channel=CHANNEL, m=16,
                                    ef_construction=200, rebuild_share=0.1, folder=folder, full=full)

            _, build_seconds = timed(lambda: update(True))
            rows.append(("full rebuild (read embeddings, build, store, version groups, artist model)",
                         f"{build_seconds:.1f} s"))
            (item_ids, stored), read_seconds = timed(lambda: all_embeddings(db, MODEL_NAME))
            _, groups_seconds = timed(lambda: store_version_groups(db, item_ids, stored))
            _, artists_seconds = timed(lambda: store_artist_model(db, name=NAME, model=MODEL_NAME, item_ids=item_ids,
                                                                  vectors=stored))
            rows.append(("… of which reading the embeddings / version groups / artist model",
                         f"{read_seconds:.1f} s / {groups_seconds:.1f} s / {artists_seconds:.1f} s"))
            path = index_file(folder, NAME)
            with path.open("rb") as handle:
                _, hash_seconds = timed(lambda: hashlib.file_digest(handle, "sha256"))
            rows.append(("sha256 of the index file", f"{hash_seconds:.2f} s ({path.stat().st_size / 1e6:.0f} MB)"))
            _, pg_seconds = timed(lambda: load_index(db, NAME))
            _, file_seconds = timed(lambda: load_index(db, NAME, folder=folder))
            rows.append(("load_index in-process: from PostgreSQL / from the file (catalogue included)",
                         f"{pg_seconds:.1f} s / {file_seconds:.1f} s"))

            port = free_port()
            env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                       PORT=str(port), DATA_DIR=str(work / "data"), INDEX_RELOAD_CHANNEL=CHANNEL)
            base = f"http://127.0.0.1:{port}"
            shutil.move(path, path.with_suffix(".kept"))
            web = start_web_server(env, port)
            start_pg = wait_for_index(base, args.tracks)
            stop_web_server(web)
            web = start_web_server(env, port)
            start_file = wait_for_index(base, args.tracks)
            rows.append(("web start-up until the index is served: from PostgreSQL / from the file",
                         f"{start_pg:.1f} s / {start_file:.1f} s"))
            wait_for_caches(base)  # the start-up caches build in the background: the update starts after them

            added = vectors_in_chunks(args.added, seed=2)
            load_library(db, added, rng, start=args.tracks)
            started = time.perf_counter()
            result = update(False)
            update_seconds = time.perf_counter() - started
            waited, block = wait_for_health(base, lambda b: b["size"] == args.tracks + args.added,
                                            what="serve the new tracks", timeout=300.0)
            served = waited + update_seconds
            rebuilt = wait_for_caches(base)[0] + served
            rows.append((f"{args.added} new tracks: update_index in place (load, add, store, version groups, "
                         f"announce) / until the web server serves them / until its caches are built again",
                         f"{update_seconds:.1f} s / {served:.1f} s / {rebuilt:.1f} s"))
            rows.append(("… the web server's part: announce to served (the index file, the catalogue's changed rows)",
                         f"{served - update_seconds:.1f} s"))
            rows.append(("… of which compare and apply / store / version groups",
                         " / ".join(f"{result.seconds.get(k, 0):.1f} s" for k in ("apply", "store", "groups"))
                         + ("" if not result.full else f" (rebuilt whole: {result.reason})")))
            rows.append(("… the worker's steps", ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())))
            rows.append(("… the web server's loading steps (/api/health load_seconds)",
                         ", ".join(f"{k} {v:.1f} s" for k, v in (block.get("load_seconds") or {}).items())))

            loaded = load_index(db, NAME, folder=folder)
            assert loaded is not None
            every = np.vstack([vectors, added])
            unit = every / np.linalg.norm(every, axis=1, keepdims=True)
            ids = [f"t{i:06d}" for i in range(len(every))]
            picks = random.Random(3).sample(range(len(every)), args.queries - 20) + \
                list(range(args.tracks, args.tracks + 20))  # a few of the new tracks among the queries
            recall = []
            for q in picks:
                exact = {ids[i] for i in np.argsort(-(unit @ unit[q]))[:11].tolist()} - {ids[q]}
                found = {item_id for item_id, _ in loaded.query(every[q], 11, query_ef=400)} - {ids[q]}
                recall.append(len(exact & found) / 10)
            rows.append(("recall@10 of the updated index vs brute force (query ef 400)", f"{np.mean(recall):.3f}"))
            pairs = [tuple(random.Random(5 + i).sample(ids, 2)) for i in range(30)]
            for batched in (False, True):
                cpu, wall = time.process_time(), time.perf_counter()
                for start_id, end_id in pairs:
                    queries = loaded.queries(query_ef=400)
                    ends = queries.lookup([start_id, end_id])
                    song_path(ends[start_id], ends[end_id], steps=25, neighbours=queries.neighbours,
                              lookup=queries.lookup, max_per_artist=3,
                              neighbours_batch=queries.neighbours_batch if batched else None)
                rows.append((f"song path, 25 steps, in-process ({'one batch query' if batched else 'a query a step'}):"
                             " CPU / wall per path",
                             f"{(time.process_time() - cpu) / len(pairs) * 1000:.0f} ms / "
                             f"{(time.perf_counter() - wall) / len(pairs) * 1000:.0f} ms"))
        finally:
            stop_web_server(web)
    print_figures(f"{args.tracks:,} tracks, {args.added:,} added", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
