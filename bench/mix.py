"""Benchmark POST /api/mix at library scale and print the figures (markdown).

    .venv/bin/python bench/mix.py [--tracks 100000] [--clients 4] [--seconds 10] [--rounds 3]

The synthetic library of bench/similarity.py (200-d clustered vectors, metadata with tempo and length) in a private
PostgreSQL and Redis, the real web server (gunicorn, one process), and C concurrent clients asking for the next
10 songs after 3 seeds and a previous queue of 50 songs, with an artist window of 5, a tempo step of 10 BPM and a
length range: the request an MPD queue-mode top-up or a bliss-mixer client sends. Reports p50/p99 latency and
requests/s (the median of R runs) and the CPU time per request of the web process.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import requests  # noqa: E402

from audio.musicnn import MODEL_NAME  # noqa: E402
from bench.index_recall import clustered_vectors  # noqa: E402
from bench.similarity import drive, free_port, load_library, measure  # noqa: E402
from bench.stack import embedded_services, start_web_server, stop_web_server, wait_for_index  # noqa: E402
from db.pool import Database  # noqa: E402
from voyager_manager import build_index, store_index  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(7)
    web = None
    with embedded_services() as (_, database_url, redis_url):
        try:
            db = Database(database_url, max_connections=4)
            vectors = clustered_vectors(args.tracks, 200, clusters=400, seed=1, latent=32)
            ids = load_library(db, vectors, rng)
            store_index(db, "music_library", build_index(ids, vectors), ids, model=MODEL_NAME)
            port = free_port()
            env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING", PORT=str(port))
            web = start_web_server(env, port)
            base = f"http://127.0.0.1:{port}"
            wait_for_index(base, args.tracks)

            def next_songs(session: requests.Session, r: random.Random) -> requests.Response:
                start = r.randrange(len(ids) - 53)
                queue = ids[start:start + 53]
                body = {"tracks": queue[-3:], "previous": queue[:50], "count": 10, "no_repeat_artist": 5,
                        "max_bpm_diff": 10, "min_duration": 120, "max_duration": 400}
                return session.post(f"{base}/api/mix", json=body, timeout=30)

            (worker,) = psutil.Process(web.pid).children()
            drive(next_songs, 2, 2.0)  # warm-up
            runs = sorted((measure(next_songs, clients=args.clients, seconds=args.seconds, server=worker)
                           for _ in range(args.rounds)), key=lambda run: run["p50"])
            m = runs[len(runs) // 2]
            print(f"Machine: {platform.machine()}, {os.cpu_count()} cores ({platform.processor() or 'cpu'}), Python "
                  f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}. {args.tracks} tracks × 200 dims, "
                  f"{args.clients} concurrent clients, {args.seconds:g} s per run, median of {args.rounds} runs, "
                  "web server and clients on the same machine.\n")
            print("| endpoint | p50 ms | p99 ms | requests/s | server CPU ms/request | other load | errors |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            print(f"| /api/mix (3 seeds, 50 previous, count 10, artist window 5, BPM step 10, 120–400 s) | "
                  f"{m['p50']:.1f} | {m['p99']:.1f} | {m['rps']:.0f} | {m['server_ms']:.2f} | "
                  f"{m['other_pct']:.0f} % | {int(m['errors'])} |")
            return 0
        finally:
            stop_web_server(web)


if __name__ == "__main__":
    raise SystemExit(main())
