"""Benchmark the discovery API at library scale and print the figures (markdown).

    .venv/bin/python bench/similarity.py [--tracks 100000] [--clients 8] [--seconds 15] [--rounds 3]

Starts a private PostgreSQL and Redis (embedded, as the launcher does), loads N tracks with 200-d vectors of
realistic structure (400 clusters in a 32-dimensional subspace plus noise, as in bench/index_recall.py) and their
metadata (six mood scores each, as the analysis stores them), builds and stores the Voyager index, starts the real
web server (gunicorn, one process, 8 threads), and drives its HTTP API with C concurrent clients: similar songs
(n=50), song path (25 steps), alchemy (3 songs), and an unknown route (the cost of HTTP + Flask alone).
Reports p50/p99 latency and requests/s per endpoint (the median of R runs), the CPU time per request spent by the
web process, by the client threads and by everything else on the machine (a busy machine makes the figures noisy),
recall@10 of the index against brute force, index build and load times, and the web process's resident memory.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

from audio.moods import MOODS  # noqa: E402
from audio.musicnn import MODEL_NAME  # noqa: E402
from bench.index_recall import clustered_vectors  # noqa: E402
from bench.stack import embedded_services, start_web_server, stop_web_server, wait_for_index  # noqa: E402
from db.pool import Database  # noqa: E402
from voyager_manager import build_index, load_index, store_index  # noqa: E402


def load_library(db: Database, vectors: np.ndarray, rng: random.Random, *,
                 tags: Callable[[int], str] = lambda i: "{}", start: int = 0) -> list[str]:
    """Insert tracks and embeddings with COPY (`tags(i)`: track i's tags as JSON); return the item ids. `start`
    numbers them from there (a library that grows: t<start>, …)."""
    ids = [f"t{start + i:06d}" for i in range(len(vectors))]
    tracks, embeddings = io.StringIO(), io.StringIO()
    keys = [f"{n}{s}" for n in range(1, 13) for s in "AB"]
    for i, item_id in enumerate(ids):
        artist = f"Artist {rng.randrange(max(len(ids) // 8, 1))}"
        # Six mood scores per track, as the analysis stores them: the catalogue holds them for the mood filter.
        moods = json.dumps({mood: round(rng.random(), 4) for mood in MOODS})
        number = start + i
        tracks.write("\t".join([item_id, f"Song {number}", artist, f"Album {number // 10}", f"/music/{number}.flac",
                                f"{rng.uniform(120, 400):.1f}", f"{rng.uniform(70, 170):.1f}", rng.choice(keys),
                                f"{rng.random():.3f}", moods, tags(i), MODEL_NAME, "1", "2026-01-01"]) + "\n")
        vector_hex = vectors[i].astype("<f4").tobytes().hex()
        embeddings.write(f"{item_id}\t{MODEL_NAME}\t{vectors.shape[1]}\t\\\\x{vector_hex}\n")
    tracks.seek(0)
    embeddings.seek(0)
    with db.transaction() as cur:
        cur.copy_from(tracks, "tracks", columns=("item_id", "title", "artist", "album", "file_path", "duration_seconds",
                                                 "tempo_bpm", "camelot", "energy", "moods", "tags", "analysis_model",
                                                 "analysis_version", "analyzed_at"))
        cur.copy_from(embeddings, "embeddings", columns=("item_id", "model", "dimensions", "vector"))
    return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def drive(url_for: callable, clients: int, seconds: float,  # type: ignore[valid-type]
          ok: int = 200) -> tuple[list[float], int]:
    """Run `clients` threads calling url_for(session, rng) for `seconds`; return latencies (ms) of the answers with
    status `ok`, and the number of other answers."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(number: int) -> None:
        session = requests.Session()
        rng = random.Random(number)
        while time.monotonic() < stop:
            started = time.perf_counter()
            response = url_for(session, rng)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                if response.status_code == ok:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def measure(call: callable, *, clients: int, seconds: float, server: psutil.Process,  # type: ignore[valid-type]
            ok: int = 200) -> dict[str, float]:
    """One timed run: latency percentiles, throughput, and where the CPU went (server, these clients, the rest of
    the machine), each per answered request."""
    me = psutil.Process()
    server_before, client_before, busy_before = cpu_seconds(server), cpu_seconds(me), machine_busy_seconds()
    latencies, errors = drive(call, clients, seconds, ok)
    server_cpu = cpu_seconds(server) - server_before
    client_cpu = cpu_seconds(me) - client_before
    other_cpu = max(0.0, machine_busy_seconds() - busy_before - server_cpu - client_cpu)
    latencies.sort()
    count = max(1, len(latencies))
    return {
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan"),
        "rps": len(latencies) / seconds,
        "errors": errors,
        "server_ms": 1000 * server_cpu / count,
        "client_ms": 1000 * client_cpu / count,
        "other_pct": 100 * other_cpu / seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per endpoint; the median run is shown")
    args = parser.parse_args()
    rng = random.Random(7)
    web = None
    with embedded_services() as (_, database_url, redis_url):
        try:
            db = Database(database_url, max_connections=4)
            vectors = clustered_vectors(args.tracks, 200, clusters=400, seed=1, latent=32)
            started = time.perf_counter()
            ids = load_library(db, vectors, rng)
            load_seconds = time.perf_counter() - started

            started = time.perf_counter()
            index = build_index(ids, vectors)
            build_seconds = time.perf_counter() - started
            started = time.perf_counter()
            store_index(db, "music_library", index, ids, model=MODEL_NAME)
            store_seconds = time.perf_counter() - started
            started = time.perf_counter()
            loaded = load_index(db, "music_library")
            reload_seconds = time.perf_counter() - started
            assert loaded is not None

            queries = rng.sample(range(args.tracks), 200)
            unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
            position = {item_id: i for i, item_id in enumerate(ids)}
            recall = []
            for q in queries:
                exact = set(np.argsort(-(unit @ unit[q]))[:11].tolist()) - {q}
                found = {position[i] for i, _ in loaded.query(vectors[q], 11, query_ef=400)} - {q}
                recall.append(len(exact & found) / 10)

            port = free_port()
            env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING", PORT=str(port))
            web = start_web_server(env, port)
            base = f"http://127.0.0.1:{port}"
            startup_seconds = wait_for_index(base, args.tracks)

            def similar(session: requests.Session, r: random.Random) -> requests.Response:
                return session.get(f"{base}/api/similar_tracks", params={"item_id": r.choice(ids), "n": 50}, timeout=30)

            def path(session: requests.Session, r: random.Random) -> requests.Response:
                return session.get(f"{base}/api/find_path", params={"start_song_id": r.choice(ids),
                                                                    "end_song_id": r.choice(ids), "max_steps": 25},
                                   timeout=60)

            def alchemy(session: requests.Session, r: random.Random) -> requests.Response:
                items = [{"id": i, "op": "ADD"} for i in r.sample(ids, 3)]
                return session.post(f"{base}/api/alchemy", json={"items": items, "n": 50}, timeout=60)

            def floor(session: requests.Session, r: random.Random) -> requests.Response:
                return session.get(f"{base}/api/no_such_route", params={"n": 50}, timeout=30)

            (worker,) = psutil.Process(web.pid).children()  # gunicorn's one worker: the web process proper
            rss_loaded_mb = worker.memory_info().rss / 2**20
            rows = []
            for name, call, ok in (("similar songs (n=50)", similar, 200), ("song path (25 steps)", path, 200),
                                   ("alchemy (3 songs, n=50)", alchemy, 200),
                                   ("HTTP floor (unknown route, 404)", floor, 404)):
                drive(call, 2, 2.0, ok)  # warm-up
                runs = sorted((measure(call, clients=args.clients, seconds=args.seconds, server=worker, ok=ok)
                               for _ in range(args.rounds)), key=lambda run: run["p50"])
                m = runs[len(runs) // 2]
                rows.append(f"| {name} | {m['p50']:.1f} | {m['p99']:.1f} | {m['rps']:.0f} | {m['server_ms']:.2f} | "
                            f"{m['client_ms']:.2f} | {m['other_pct']:.0f} % | {int(m['errors'])} |")
            rss_mb = worker.memory_info().rss / 2**20

            print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                  f"{time.strftime('%Y-%m-%d')}. {args.tracks} tracks × 200 dims, {args.clients} concurrent clients, "
                  f"{args.seconds:g} s per run, median of {args.rounds} runs, web server and clients on the same "
                  "machine.\n")
            print("| endpoint | p50 ms | p99 ms | requests/s | server CPU ms/request | client CPU ms/request "
                  "| other load | errors |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            print("\n".join(rows))
            print()
            print(f"- recall@10 of the index (query ef 400) against brute force: **{statistics.mean(recall):.4f}**")
            print(f"- index build {build_seconds:.1f} s, store in PostgreSQL {store_seconds:.1f} s, "
                  f"load from PostgreSQL {reload_seconds:.1f} s; web server start with the index loaded "
                  f"{startup_seconds:.1f} s")
            print(f"- web process resident memory after the load: **{rss_loaded_mb:.0f} MB**, after the runs above: "
                  f"**{rss_mb:.0f} MB**")
            print(f"- loading {args.tracks} rows with COPY: {load_seconds:.1f} s")
            return 0
        finally:
            stop_web_server(web)


if __name__ == "__main__":
    raise SystemExit(main())
