"""The analysis page's summary API and the home page's data at library scale (issue 29: the progress and summary
pages stay ≤ 200 ms at 1M tracks), the Flask test client of the real app.

    .venv/bin/python bench/summary_api.py [--sizes 100000,1000000] [--probes 20]

Starts a private PostgreSQL, loads N analysed tracks with COPY (bench/similarity.py's rows, a 100k chunk at a time),
runs ANALYZE as autovacuum would, and times `/api/analysis/summary`, `/api/home` and `/api/tasks/panel`: median and
longest of --probes requests after one warm-up.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.map import library_chunks  # noqa: E402
from bench.similarity import load_library  # noqa: E402
from bench.stack import config_for, embedded_services  # noqa: E402
from db.pool import Database  # noqa: E402

ROUTES = ("/api/analysis/summary", "/api/home", "/api/tasks/panel")


def measure(n: int, probes: int) -> dict[str, tuple[float, float]]:
    with embedded_services() as (work, database_url, redis_url):
        db = Database(database_url, max_connections=2)
        rng = random.Random(3)
        started = time.perf_counter()
        for start, (vectors, _) in zip(range(0, n, 100_000), library_chunks(n), strict=True):
            load_library(db, vectors, rng, start=start)
        db.execute("ANALYZE")
        print(f"  {n:,} tracks loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        from app import create_app

        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                   DATA_DIR=str(work), MUSIC_DIR=str(work / "music"))
        client = create_app(config_for(env)).test_client()
        out = {}
        for route in ROUTES:
            assert client.get(route).status_code == 200, route
            times = []
            for _ in range(probes):
                begun = time.perf_counter()
                answer = client.get(route)
                times.append((time.perf_counter() - begun) * 1000)
                assert answer.status_code == 200
            out[route] = (statistics.median(times), max(times))
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--probes", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {n: measure(n, args.probes) for n in sizes}
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}; Flask test client of the real app, PostgreSQL in this machine; median / "
          f"longest of {args.probes} requests, ms.\n")
    print("| route | " + " | ".join(f"{n:,} tracks" for n in sizes) + " |")
    print("| --- |" + " --- |" * len(sizes))
    for route in ROUTES:
        print(f"| `{route}` | " + " | ".join(f"{results[n][route][0]:.1f} / {results[n][route][1]:.1f}"
                                            for n in sizes) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
