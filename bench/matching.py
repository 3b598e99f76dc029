"""Benchmark the playlist matching job at library scale and print the figures (markdown).

    .venv/bin/python bench/matching.py [--tracks 100000] [--new 1000] [--playlists 20] [--members 30]
                                       [--before-root DIR]

Issue 29's target: the songs of an analysis run (1,000 new songs) matched against the user's playlists in at most
60 s at a million tracks. Starts a private PostgreSQL and Redis, loads N analyzed tracks a 100k chunk at a time
(200-d vectors of realistic structure, 400 clusters in a 32-d subspace plus noise — bench/map.py's library_chunks —
with 50 tag and six mood scores each, bench/similarity.py's load_library), stores `--playlists` user playlists of
`--members` songs each (one cluster each: a playlist follows a sound) with save_user_playlist, then `--new` tracks
of the same clusters analyzed a day later. The job then runs end to end as an analysis run starts it — enqueued
for the songs analyzed since the cutoff, done by a real RQ worker process (`python -m tasks.worker`, as supervisord
runs it) — and the figures are: seconds from enqueue to done (and by phase, from the job's status messages), the
worker's resident memory before the job and its peak during it (psutil, sampled every 20 ms), songs scored,
suggestions, profiles computed.

The media server is the default local music folder, empty here: it lists no playlists, so the job keeps and
profiles the stored ones, as when a playlist folder is unmounted (reading 20 playlists from a server does not grow
with the library). With --before-root (a checkout of the code before a change, e.g. `git archive main | tar -x -C
DIR`) the same job runs again with that code's worker on the same database (profiles and suggestions cleared
first), and the two runs' stored suggestions and profiles are compared.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from rq import Worker  # noqa: E402

from bench.map import library_chunks, tag_json  # noqa: E402
from bench.similarity import load_library  # noqa: E402
from bench.stack import config_for, embedded_services, task_workers, vacuum  # noqa: E402
from db import playlist_matching as match_store  # noqa: E402
from db import task_status as store  # noqa: E402
from db.pool import Database  # noqa: E402
from discovery.playlist_matching import membership_hash  # noqa: E402
from infra.connections import get_db, get_redis  # noqa: E402
from tasks.catalog import PLAYLIST_MATCHING  # noqa: E402
from tasks.queues import start_main_task  # noqa: E402

CHUNK = 100_000
ANALYZED = "2026-01-01T00:00:00+00:00"  # load_library's analyzed_at
CUTOFF = "2026-01-01T12:00:00+00:00"
NEW_ANALYZED = "2026-01-02T00:00:00+00:00"


def seed(db: Database, n: int, new: int, *, playlists: int, members: int) -> tuple[float, list[list[str]]]:
    """Load n old and `new` new tracks and store the playlists: (seconds, the playlists' item ids)."""
    started = time.perf_counter()
    rng = random.Random(11)
    labels = np.empty(n + new, dtype=np.int64)
    for start, (vectors, part) in zip(range(0, n + new, CHUNK), library_chunks(n + new, chunk=CHUNK), strict=True):
        labels[start:start + len(part)] = part
        load_library(db, vectors, rng, start=start, tags=lambda i, part=part: tag_json(int(part[i]), rng))
    new_ids = [f"t{i:06d}" for i in range(n, n + new)]
    db.execute("UPDATE tracks SET analyzed_at = %s WHERE item_id = ANY(%s)", (NEW_ANALYZED, new_ids))
    draw = np.random.default_rng(5)
    chosen = []
    for number, cluster in enumerate(draw.choice(np.unique(labels[:n]), playlists, replace=False).tolist()):
        pool = np.flatnonzero(labels[:n] == cluster)
        ids = [f"t{i:06d}" for i in draw.choice(pool, min(members, len(pool)), replace=False).tolist()]
        match_store.save_user_playlist(db, playlist_id=f"bench-{number:02d}", name=f"Bench {number:02d}",
                                       item_ids=ids, content_hash=membership_hash(ids), generated=False)
        chosen.append(ids)
    vacuum(db, "tracks, embeddings")
    return time.perf_counter() - started, chosen


class WorkerMemory:
    """The RQ worker process (a child of this one) and its highest resident memory while watched (every 20 ms)."""

    def __init__(self, redis: Any, timeout: float = 120.0) -> None:
        (self.process,) = [p for p in psutil.Process().children(recursive=True)
                           if "tasks.worker" in " ".join(p.cmdline())]
        waited = time.monotonic() + timeout
        while self.process.pid not in {w.pid for w in Worker.all(connection=redis)}:  # migrated, ready for jobs
            if time.monotonic() > waited:
                raise RuntimeError(f"the RQ worker did not start in {timeout:.0f} s")
            time.sleep(0.2)
        self.idle = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_job(db: Database, config: Any) -> tuple[dict[str, Any], float, dict[str, float]]:
    """Enqueue the job for the songs analyzed since CUTOFF and wait for it: (its status row, seconds from enqueue to
    done, the seconds at which each kind of status message first appeared)."""
    started = time.perf_counter()
    task_id = start_main_task(PLAYLIST_MATCHING, kwargs={"full": False, "since": CUTOFF}, db=get_db(config),
                              connection=get_redis(config), config=config)
    seen: dict[str, float] = {}
    while (row := store.get_task(db, task_id)) is None or row["finished_at"] is None:
        if row and row["message"]:
            seen.setdefault(re.sub(r"\d+/\d+", "N", row["message"]), time.perf_counter() - started)
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if row["status"] != "SUCCESS":
        raise RuntimeError(f"playlist_matching ended {row['status']}: {row['message']}")
    return row, seconds, seen


def phases(seen: dict[str, float], total: float) -> str:
    """Reading (until the first playlist is profiled), profiling (until the first is matched), matching + saving."""
    profiled = next((at for message, at in seen.items() if message.startswith("Profiled")), float("nan"))
    matched = next((at for message, at in seen.items() if message.startswith("Matched")), float("nan"))
    return f"{profiled:.1f} | {matched - profiled:.1f} | {total - matched:.1f}"


def stored(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    suggestions = [tuple(r.values()) for r in db.fetch_all(
        "SELECT item_id, playlist_id, score, reasons::text FROM playlist_suggestions ORDER BY 1, 2")]
    profiles = [tuple(r.values()) for r in db.fetch_all(
        """SELECT playlist_id, members, profile::text, centroid, tag_profile FROM playlist_profiles
            ORDER BY playlist_id""")]
    return suggestions, [tuple(bytes(v) if isinstance(v, memoryview) else v for v in p) for p in profiles]


def measure(db: Database, env: dict[str, str], code_root: Path) -> tuple[dict[str, Any], Any]:
    db.execute("DELETE FROM playlist_suggestions")
    db.execute("DELETE FROM playlist_profiles")
    config = config_for(env)
    with task_workers(env, child_workers=0, code_root=code_root):
        with WorkerMemory(get_redis(config)) as memory:
            row, seconds, seen = run_job(db, config)
    return {"seconds": seconds, "phases": phases(seen, seconds), "idle_mb": memory.idle / 2**20,
            "peak_mb": memory.peak / 2**20, **row["result"]}, stored(db)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000, help="analyzed tracks before the new ones")
    parser.add_argument("--new", type=int, default=1000, help="tracks analyzed after the cutoff")
    parser.add_argument("--playlists", type=int, default=20)
    parser.add_argument("--members", type=int, default=30, help="songs per playlist")
    parser.add_argument("--before-root", type=Path, help="a checkout of the code before: measured too")
    args = parser.parse_args()
    with embedded_services() as (work, database_url, redis_url):
        db = Database(database_url, max_connections=4)
        print(f"loading {args.tracks} + {args.new} tracks", file=sys.stderr, flush=True)
        load_seconds, _ = seed(db, args.tracks, args.new, playlists=args.playlists, members=args.members)
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                   DATA_DIR=str(work), MUSIC_DIR=str(work / "music"))
        runs = {"after": measure(db, env, ROOT)}
        if args.before_root:
            runs["before"] = measure(db, env, args.before_root.resolve())

    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}. {args.tracks} tracks × 200 dims (400 clusters in a 32-d subspace) loaded in "
          f"{load_seconds:.0f} s, then {args.new} new ones; {args.playlists} playlists × {args.members} songs; one RQ "
          f"worker process (one BLAS thread), the job run for the songs analyzed since the cutoff.\n")
    print("| code | job s (enqueue → done) | reading s | profiling s | matching + saving s | worker before MB | "
          "worker peak MB | songs scored | suggestions | profiles computed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for code, (r, _) in runs.items():
        print(f"| {code} | {r['seconds']:.1f} | {r['phases']} | {r['idle_mb']:.0f} | {r['peak_mb']:.0f} | "
              f"{r['songs_scored']} | {r['suggestions']} | {r['profiles_computed']} |")
    if "before" in runs:
        same = runs["before"][1] == runs["after"][1]
        print(f"\nStored suggestions and profiles of the two runs identical: {'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
