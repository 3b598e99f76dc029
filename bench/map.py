"""Benchmark the music map at library scale and print the figures (markdown).

    .venv/bin/python bench/map.py [--tracks 100000] [--new 1000] [--seconds 10] [--no-browser]

Starts a private PostgreSQL and Redis, loads N tracks with 200-d vectors of realistic structure (400 clusters in a
32-dimensional subspace plus noise, as bench/similarity.py) and 50 tag scores each (the top one follows the
cluster), builds and stores the Voyager index, and then measures:

- the full map build (the map_projection job, UMAP) in a fresh RQ worker process on this machine, by phase;
- the incremental placement of `--new` tracks added afterwards (the job run after an analysis);
- the web server (gunicorn, `app:serve()`): time until the map cache is served, `/api/map` response sizes and p50
  latency with 1 and 8 clients, and its resident memory with the index, catalogue and map cache loaded;
- headless Chromium (Debian's /usr/bin/chromium): time from navigation to the first plotted frame of the map page
  with 100 % of the tracks.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

from audio.musicnn import MODEL_NAME, MSD_TAGS  # noqa: E402
from bench.index_recall import clustered_vectors  # noqa: E402
from bench.similarity import free_port, load_library, measure  # noqa: E402
from bench.stack import config_for, embedded_services, start_web_server, stop_web_server, task_workers  # noqa: E402
from db import task_status as store  # noqa: E402
from db.pool import Database  # noqa: E402
from infra.connections import get_db, get_redis  # noqa: E402
from tasks.catalog import MAP  # noqa: E402
from tasks.queues import start_main_task  # noqa: E402
from voyager_manager import build_index, store_index  # noqa: E402

CLUSTERS = 400


def tag_json(cluster: int, rng: random.Random) -> str:
    """50 tag scores; the cluster decides the top tag (about 20 distinct top tags over the library)."""
    scores = {tag: round(rng.random() * 0.3, 4) for tag in MSD_TAGS}
    scores[MSD_TAGS[cluster % 20]] = round(0.5 + rng.random() * 0.4, 4)
    return json.dumps(scores)


def run_watched(db: Database, config: Any, kwargs: dict[str, Any]) -> tuple[dict[str, Any], float,
                                                                              list[tuple[float, str]]]:
    """Run the map job as the page does: (its status row, wall seconds, [(seconds, status message)] as each new
    message appeared, polled every 0.2 s — the task's own log keeps only its last lines)."""
    started = time.perf_counter()
    task_id = start_main_task(MAP, kwargs=kwargs, db=get_db(config), connection=get_redis(config),
                              config=config, job_timeout=config.MAP_TASK_TIMEOUT_SECONDS)
    seen: list[tuple[float, str]] = []
    while (row := store.get_task(db, task_id)) is None or row["finished_at"] is None:
        if row and row["message"] and (not seen or seen[-1][1] != row["message"]):
            seen.append((time.perf_counter() - started, row["message"]))
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    if row["status"] != "SUCCESS":
        raise RuntimeError(f"map_projection ended {row['status']}: {row['message']}")
    return row, seconds, seen


def first_frame_seconds(url: str, total: int) -> tuple[float, float]:
    """(seconds from navigation to the first frame with every point plotted, seconds to the page's load event)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="commit")
            page.wait_for_function(
                f"document.getElementById('map-plot') && document.getElementById('map-plot').dataset.points"
                f" === '{total}'", timeout=120_000, polling=50)
            # the frame after the plot call: what the user sees
            plotted = page.evaluate("() => new Promise((done) => requestAnimationFrame(() => "
                                    "requestAnimationFrame(() => done(performance.now()))))")
            loaded = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
            return plotted / 1000, loaded / 1000
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    rng = random.Random(11)
    web = None
    with embedded_services() as (work, database_url, redis_url):
        try:
            db = Database(database_url, max_connections=4)
            total = args.tracks + args.new
            vectors = clustered_vectors(total, 200, clusters=CLUSTERS, seed=1, latent=32)
            # the cluster of each vector, drawn as clustered_vectors draws it (centres first, then labels)
            draw = np.random.default_rng(1)
            draw.normal(size=(CLUSTERS, 32))
            labels = draw.integers(0, CLUSTERS, size=total)
            ids = load_library(db, vectors[:args.tracks], rng, tags=lambda i: tag_json(int(labels[i]), rng))
            store_index(db, "music_library", build_index(ids, vectors[:args.tracks]), ids, model=MODEL_NAME)

            env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                       DATA_DIR=str(work))
            config = config_for(env)
            with task_workers(env, child_workers=0):
                full_row, full_seconds, full_steps = run_watched(db, config, {"full": True, "reason": "bench"})
                worker_rss = [p.memory_info().rss for p in psutil.Process().children(recursive=True)
                              if "tasks.worker" in " ".join(p.cmdline())]
                # then new tracks arrive (an analysis run): stored, indexed, and the job places them
                new_ids = [f"t{i:06d}" for i in range(args.tracks, total)]
                tracks, embeddings = io.StringIO(), io.StringIO()
                for i, item_id in zip(range(args.tracks, total), new_ids, strict=True):
                    tracks.write("\t".join([item_id, f"Song {i}", f"Artist {i % 997}", f"Album {i // 10}",
                                            f"/music/{i}.flac", tag_json(int(labels[i]), rng), MODEL_NAME, "1",
                                            "2026-01-01"]) + "\n")
                    embeddings.write(f"{item_id}\t{MODEL_NAME}\t200\t\\\\x{vectors[i].astype('<f4').tobytes().hex()}\n")
                tracks.seek(0)
                embeddings.seek(0)
                with db.transaction() as cur:
                    cur.copy_from(tracks, "tracks", columns=("item_id", "title", "artist", "album", "file_path",
                                                             "tags", "analysis_model", "analysis_version",
                                                             "analyzed_at"))
                    cur.copy_from(embeddings, "embeddings", columns=("item_id", "model", "dimensions", "vector"))
                all_ids = ids + new_ids
                store_index(db, "music_library", build_index(all_ids, vectors), all_ids, model=MODEL_NAME)
                inc_row, inc_seconds, _ = run_watched(db, config, {"full": False, "reason": "bench"})
            inc_task = (inc_row["finished_at"] - (inc_row["started_at"] or inc_row["created_at"])).total_seconds()
            full_task = (full_row["finished_at"] - (full_row["started_at"] or full_row["created_at"])).total_seconds()

            port = free_port()
            web_env = dict(env, PORT=str(port))
            started = time.perf_counter()
            web = start_web_server(web_env, port)
            base = f"http://127.0.0.1:{port}"
            index_at = None
            while True:
                try:
                    if index_at is None and requests.get(base + "/api/health", timeout=2).json()[
                            "index"]["size"] == total:
                        index_at = time.perf_counter() - started
                    response = requests.get(base + "/api/map?percent=25", timeout=5)
                    if response.status_code == 200 and response.json()["total"] == total:
                        break
                except (requests.RequestException, ValueError, KeyError):
                    pass
                if time.perf_counter() - started > 600:
                    raise RuntimeError("the web server did not serve the map")
                time.sleep(0.2)
            map_at = time.perf_counter() - started
            (worker,) = psutil.Process(web.pid).children()
            rss_mb = worker.memory_info().rss / 2**20

            sizes = {}
            for percent in (25, 100):
                raw = requests.get(f"{base}/api/map?percent={percent}", headers={"Accept-Encoding": "identity"},
                                   timeout=30)
                packed = requests.get(f"{base}/api/map?percent={percent}", headers={"Accept-Encoding": "gzip"},
                                      timeout=30, stream=True)
                body = packed.raw.read()
                assert gzip.decompress(body) == raw.content
                sizes[percent] = (len(raw.content), len(body))

            def whole_map(session: requests.Session, r: random.Random) -> requests.Response:
                response = session.get(f"{base}/api/map?percent=100", headers={"Accept-Encoding": "gzip"},
                                       timeout=60, stream=True)
                response.raw.read()  # the bytes on the wire; a browser inflates them itself
                return response

            def quarter(session: requests.Session, r: random.Random) -> requests.Response:
                response = session.get(f"{base}/api/map?percent=25", headers={"Accept-Encoding": "gzip"},
                                       timeout=60, stream=True)
                response.raw.read()
                return response

            rows = []
            for name, call in (("/api/map?percent=100 (gzip)", whole_map), ("/api/map?percent=25 (gzip)", quarter)):
                for clients in (1, 8):
                    measure(call, clients=clients, seconds=2.0, server=worker)  # warm-up
                    runs = sorted((measure(call, clients=clients, seconds=args.seconds, server=worker)
                                   for _ in range(args.rounds)), key=lambda run: run["p50"])
                    m = runs[len(runs) // 2]
                    rows.append(f"| {name} | {clients} | {m['p50']:.1f} | {m['p99']:.1f} | {m['rps']:.1f} | "
                                f"{m['server_ms']:.2f} | {int(m['errors'])} |")
            rss_after_mb = worker.memory_info().rss / 2**20

            frame = None
            if not args.no_browser:
                frame = first_frame_seconds(f"{base}/map?percent=100", total)

            print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                  f"{time.strftime('%Y-%m-%d')}. {args.tracks} tracks × 200 dims ({CLUSTERS} clusters in a 32-d "
                  f"subspace), then {args.new} new ones; MAP_UMAP_FIT_SAMPLE {config.MAP_UMAP_FIT_SAMPLE}, "
                  f"n_neighbors {config.MAP_UMAP_NEIGHBORS}; clients and server on the same machine, median of "
                  f"{args.rounds} runs of {args.seconds:g} s.\n")
            print("### Projection job (one RQ worker process, started fresh)\n")
            print("| job | wall s (start request → done) | in the worker s |")
            print("| --- | --- | --- |")
            print(f"| full build, {args.tracks} tracks (UMAP) | {full_seconds:.1f} | {full_task:.1f} |")
            print(f"| incremental, {args.new} new tracks placed | {inc_seconds:.1f} | {inc_task:.1f} |")
            print()
            print("Full build, by phase (seconds since the start request, when each status message appeared):\n")
            for at, message in full_steps:
                print(f"- {at:7.1f} s  {message}")
            print(f"\nWorker resident memory after the full build: {max(worker_rss) / 2**20:.0f} MB\n")
            print("### Web server\n")
            print(f"- index loaded {index_at:.1f} s after start; map cache served {map_at:.1f} s after start")
            print(f"- map response bytes: 25 % {sizes[25][0] / 1e6:.1f} MB JSON, {sizes[25][1] / 1e6:.2f} MB gzip; "
                  f"100 % {sizes[100][0] / 1e6:.1f} MB JSON, **{sizes[100][1] / 1e6:.2f} MB gzip**")
            print(f"- web process resident memory with the index, catalogue and map cache: **{rss_mb:.0f} MB**; "
                  f"after the runs below: **{rss_after_mb:.0f} MB**\n")
            print("| endpoint | clients | p50 ms | p99 ms | requests/s | server CPU ms/request | errors |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            print("\n".join(rows))
            if frame is not None:
                print(f"\n- Chromium, navigation to the first frame with all {total} points plotted: "
                      f"**{frame[0]:.2f} s** (page load event at {frame[1]:.2f} s)")
            return 0
        finally:
            stop_web_server(web)


if __name__ == "__main__":
    raise SystemExit(main())
