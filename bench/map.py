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

    .venv/bin/python bench/map.py --scale 100000 1000000 [--umap-max 300000] [--before-root DIR --before-max N]

Issue 29 (a million tracks on one box), for each size: the UMAP job's domain code (fit on MAP_UMAP_FIT_SAMPLE,
transform the rest in chunks; up to --umap-max tracks), the placement of 1,000 new tracks (time and peak resident
memory above the process's before), the web process's map cache (build time, peak and retained memory, its size;
also the PCA fallback before any projection), the /api/map sizes (binary, JSON, gzip), the web process's memory,
and Chromium's first frame of the map page with every point, its full-frame time and an interactive frame. The
library is synthetic (400 clusters in a 32-d subspace plus noise, made a chunk at a time) with a synthetic UMAP-like
layout stored as the projection, so the web side does not wait for UMAP. With --before-root (a checkout of the code
before issue 29, e.g. `git archive 90e2435 | tar -x -C DIR`) the placement and the web map cache are measured with
that code too, up to --before-max tracks. Each measurement runs in a fresh process.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import gzip
import io
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# a measuring child may run another checkout's code (--code-root): it must come first, before anything is imported
CODE_ROOT = next((sys.argv[i + 1] for i, arg in enumerate(sys.argv[:-1]) if arg == "--code-root"), None)
if CODE_ROOT:
    sys.path.insert(0, CODE_ROOT)

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

from audio.musicnn import MODEL_NAME, MSD_TAGS  # noqa: E402
from bench.index_recall import clustered_vectors  # noqa: E402
from bench.similarity import free_port, load_library, measure  # noqa: E402
from bench.stack import config_for, embedded_services, start_web_server, stop_web_server, task_workers  # noqa: E402
from db import map_projections as projection_store  # noqa: E402
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
    parser.add_argument("--scale", type=int, nargs="+", help="issue 29: measure at these library sizes")
    parser.add_argument("--umap-max", type=int, default=300_000, help="largest size the UMAP job is run at")
    parser.add_argument("--fit-sample", type=int, default=20_000)
    parser.add_argument("--before-root", help="a checkout of the code before issue 29, measured beside it")
    parser.add_argument("--before-max", type=int, default=100_000)
    parser.add_argument("--child", choices=("place", "umap", "webmap"), help=argparse.SUPPRESS)
    parser.add_argument("--code-root", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(args)
    if args.scale:
        return scale_main(args)
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

            binary_size = len(requests.get(f"{base}/api/map?percent=100&format=binary", timeout=30).content)
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
                  f"100 % {sizes[100][0] / 1e6:.1f} MB JSON, **{sizes[100][1] / 1e6:.2f} MB gzip**, "
                  f"**{binary_size / 1e6:.2f} MB binary** (what the page loads)")
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


# --- issue 29: the map at a million tracks ---------------------------------------------------------------------
LATENT = 32
INDEX = "music_library"


def library_chunks(n: int, *, seed: int = 1, chunk: int = 100_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(float32 vectors (c, 200), cluster labels (c,)) of n synthetic tracks, a chunk at a time: 400 clusters in a
    32-d subspace plus 5 % noise, as bench.index_recall.clustered_vectors makes them, without its n × 200 float64
    temporaries (4.8 GB at 1M)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, LATENT))
    projection = rng.normal(size=(LATENT, 200)) / np.sqrt(LATENT)
    for start in range(0, n, chunk):
        draw = np.random.default_rng([seed, start])
        size = min(chunk, n - start)
        labels = draw.integers(0, CLUSTERS, size=size)
        low = centres[labels] + draw.normal(size=(size, LATENT))
        yield (low @ projection + 0.05 * draw.normal(size=(size, 200))).astype(np.float32), labels


def library(n: int) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.empty((n, 200), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    at = 0
    for part, part_labels in library_chunks(n):
        vectors[at:at + len(part)], labels[at:at + len(part)] = part, part_labels
        at += len(part)
    return vectors, labels


def layout(labels: np.ndarray) -> np.ndarray:
    """A UMAP-like picture of the library: a clump per cluster (seeded), float32 (n, 2)."""
    spots = np.random.default_rng(7).normal(size=(CLUSTERS, 2)) * 4
    return (spots[labels] + 0.35 * np.random.default_rng(8).normal(size=(len(labels), 2))).astype(np.float32)


def rss_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


def trim() -> None:
    """Hand freed heap back to the system (glibc), so resident memory says what is still held."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


class PeakRss:
    """The highest resident memory of this process while the block runs (sampled every 2 ms), above its start."""

    def __enter__(self) -> PeakRss:
        trim()
        self.before = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self.peak = max(self.peak, rss_bytes())
        self._stop.set()
        self._thread.join()

    @property
    def above_mb(self) -> float:
        return (self.peak - self.before) / 2**20


def run_child(args: argparse.Namespace) -> int:
    """One measurement in this fresh process; prints one JSON line."""
    n = args.tracks
    out: dict[str, Any] = {"code": "before" if args.code_root else "after", "tracks": n}
    if args.child == "place":
        from discovery.map_projection import place_new_tracks

        vectors, labels = library(n + args.new)
        coords = layout(labels)
        known, new = vectors[:n], vectors[n:]  # views: the library is not copied for the call
        with PeakRss() as peak:
            started = time.perf_counter()
            place_new_tracks(known, coords[:n], new)
            out["seconds"] = time.perf_counter() - started
        out["peak_mb"] = peak.above_mb
    elif args.child == "umap":
        from discovery.map_projection import project_library

        vectors, _ = library(n)
        ids = [f"t{i:07d}" for i in range(n)]
        marks: dict[str, float] = {}

        def progress(message: str, share: float) -> None:
            key = "fit" if message.startswith("Fitting") else "transform" if message.startswith("Placing") else None
            if key and key not in marks:
                marks[key] = time.perf_counter()

        with PeakRss() as peak:
            started = time.perf_counter()
            projection = project_library(ids, vectors, seed=42, fit_sample=args.fit_sample, progress=progress)
            ended = time.perf_counter()
        out.update(method=projection.method, seconds=ended - started, peak_mb=peak.above_mb,
                   fit_seconds=marks.get("transform", ended) - marks.get("fit", started),
                   transform_seconds=ended - marks["transform"] if "transform" in marks else 0.0)
    else:
        from services.map import build_web_map
        from voyager_manager import load_index

        db = Database(args.database_url, max_connections=2)
        loaded = load_index(db, INDEX)
        assert loaded is not None and len(loaded) == n
        trim()
        base = rss_bytes()
        with PeakRss() as peak:
            started = time.perf_counter()
            cache = build_web_map(db, loaded, name=INDEX)
            out["seconds"] = time.perf_counter() - started
        trim()
        out.update(projection=cache.projection, peak_mb=peak.above_mb, retained_mb=(rss_bytes() - base) / 2**20,
                   cache_mb=cache.nbytes / 2**20, json_bytes=cache.json_length(100),
                   gzip_bytes=cache.gzip_length(100) if hasattr(cache, "gzip_length") else len(cache.gzip_bytes(100)),
                   binary_bytes=cache.binary_length(100) if hasattr(cache, "binary_length") else None)
    print(json.dumps(out))
    return 0


def child(kind: str, n: int, *, code_root: str | None = None, **options: Any) -> dict[str, Any]:
    """Run one measurement in a fresh process (this script, --child); its JSON answer."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--tracks", str(n)]
    if code_root:
        command += ["--code-root", code_root]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1][:200], "tracks": n}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def browser_figures(url: str, total: int) -> dict[str, float]:
    """Chromium on the map page with every point: the first frame, the page's own full-frame time, and one
    interactive frame (a wheel zoom, the points drawn while the view moves)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    first, loaded = first_frame_seconds(url, total)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_function(f"document.getElementById('map-plot').dataset.points === '{total}'",
                                   timeout=180_000, polling=50)
            page.wait_for_timeout(500)
            moving = page.evaluate("""() => new Promise((done) => {
                const plot = document.getElementById("map-plot");
                const box = plot.getBoundingClientRect();
                const started = performance.now();
                plot.dispatchEvent(new WheelEvent("wheel", { deltaY: -120, clientX: box.left + box.width / 2,
                    clientY: box.top + box.height / 2, bubbles: true, cancelable: true }));
                requestAnimationFrame(() => requestAnimationFrame(() =>
                    done([performance.now() - started, Number(plot.dataset.drawn)])));
            })""")
            full = float(page.locator("#map-plot").get_attribute("data-frame-ms") or "nan")
            renderer = page.locator("#map-plot").get_attribute("data-renderer") or ""
            return {"first_frame": first, "load_event": loaded, "full_frame_ms": full,
                    "moving_frame_ms": moving[0], "moving_points": moving[1], "renderer": renderer}
        finally:
            browser.close()


def scale_main(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    started_all = time.perf_counter()
    for n in args.scale:
        rows.append(measure_size(n, args))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print_scale(rows, args, time.perf_counter() - started_all)
    return 0


def save_layout(db: Database, ids: list[str], coords: np.ndarray) -> None:
    projection_store.save_projection(db, name=INDEX, model=MODEL_NAME, method="umap", params={"synthetic": True},
                                     fallback_reason=None, item_ids=ids, coords=coords, full_build=True,
                                     placed_count=0)


def measure_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every issue-29 figure at `n` tracks (see the module docstring)."""
    row: dict[str, Any] = {"tracks": n, "load": os.getloadavg()[0]}
    print(f"== {n} tracks (load {row['load']:.2f})", file=sys.stderr, flush=True)
    with embedded_services() as (work, database_url, redis_url):
        db = Database(database_url, max_connections=4)
        rng = random.Random(11)
        vectors, labels = library(n)
        ids: list[str] = []
        t = time.perf_counter()
        for start in range(0, n, 100_000):
            part = labels[start:start + 100_000]
            ids += load_library(db, vectors[start:start + 100_000], rng, start=start,
                                tags=lambda i, part=part: tag_json(int(part[i]), rng))
        row["db_load_s"] = time.perf_counter() - t
        t = time.perf_counter()
        store_index(db, INDEX, build_index(ids, vectors, m=16, ef_construction=40), ids, model=MODEL_NAME)
        row["index_s"] = time.perf_counter() - t
        coords = layout(labels)
        del vectors
        trim()

        print("   web map cache", file=sys.stderr, flush=True)
        save_layout(db, ids, coords)
        row["webmap"] = child("webmap", n, database_url=database_url)
        projection_store.delete_projection(db, INDEX)
        row["fallback"] = child("webmap", n, database_url=database_url)
        if args.before_root and n <= args.before_max:
            row["fallback_before"] = child("webmap", n, code_root=args.before_root, database_url=database_url)
            save_layout(db, ids, coords)
            row["webmap_before"] = child("webmap", n, code_root=args.before_root, database_url=database_url)
        save_layout(db, ids, coords)

        print("   web server and Chromium", file=sys.stderr, flush=True)
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                   DATA_DIR=str(work))
        port = free_port()
        web = start_web_server(dict(env, PORT=str(port)), port)
        base = f"http://127.0.0.1:{port}"
        try:
            row.update(web_figures(base, web, n, browser=not args.no_browser))
        finally:
            stop_web_server(web)
    print("   placement", file=sys.stderr, flush=True)
    row["place"] = child("place", n, new=args.new)
    if args.before_root and n <= args.before_max:
        row["place_before"] = child("place", n, new=args.new, code_root=args.before_root)
    if n <= args.umap_max:
        print("   UMAP", file=sys.stderr, flush=True)
        row["umap"] = child("umap", n, fit_sample=args.fit_sample)
    row["load_after"] = os.getloadavg()[0]
    return row


def web_figures(base: str, web: Any, n: int, *, browser: bool) -> dict[str, Any]:
    """The running web server's map: time until served, response sizes, resident memory, Chromium."""
    out: dict[str, Any] = {}
    t = time.perf_counter()
    while True:
        try:
            answer = requests.get(base + "/api/map?percent=100&format=binary", timeout=30)
            if answer.status_code == 200 and answer.content[:4] == b"AMAP":
                break
        except requests.RequestException:
            pass
        if time.perf_counter() - t > 900:
            raise RuntimeError("the web server did not serve the map")
        time.sleep(0.5)
    out["web_ready_s"] = time.perf_counter() - t
    out["binary_bytes"] = len(answer.content)
    plain = requests.get(base + "/api/map?percent=100", headers={"Accept-Encoding": "identity"}, timeout=120,
                         stream=True)
    out["json_bytes"] = sum(len(c) for c in plain.iter_content(1 << 20))
    packed = requests.get(base + "/api/map?percent=100", headers={"Accept-Encoding": "gzip"}, timeout=120,
                          stream=True)
    out["gzip_bytes"] = len(packed.raw.read())
    (worker,) = psutil.Process(web.pid).children()
    out["web_rss_mb"] = worker.memory_info().rss / 2**20
    if browser:
        out["browser"] = browser_figures(f"{base}/map?percent=100", n)
        if out["browser"]["renderer"] != "webgl2":  # the page chose the pixels (no GPU): WebGL's figures too
            out["browser_webgl"] = browser_figures(f"{base}/map?percent=100&renderer=webgl2", n)
    out["web_rss_after_mb"] = worker.memory_info().rss / 2**20
    return out


def print_scale(rows: list[dict[str, Any]], args: argparse.Namespace, seconds: float) -> None:
    mb = lambda b: f"{b / 1e6:.1f} MB" if b else "—"  # noqa: E731

    def get(row: dict[str, Any], *keys: str) -> Any:
        value: Any = row
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def num(value: Any, form: str = ".1f", unit: str = "") -> str:
        return "—" if value is None else f"{value:{form}}{unit}"

    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}; load average (1 min) at the start of each size: "
          + ", ".join(f"{r['tracks']:,}: {r['load']:.1f}" for r in rows)
          + f". Synthetic library (400 clusters in a 32-d subspace + noise); MAP_UMAP_FIT_SAMPLE "
          f"{args.fit_sample}; "
          f"run took {seconds / 60:.0f} min.\n")
    sizes = " | ".join(f"{r['tracks']:,}" for r in rows)
    print(f"| measure | {sizes} |")
    print("| --- |" + " --- |" * len(rows))
    lines = [
        ("UMAP job: fit on the sample, s", lambda r: num(get(r, "umap", "fit_seconds"))),
        ("UMAP job: transform of the rest (chunks of 5,000), s", lambda r: num(get(r, "umap", "transform_seconds"))),
        ("UMAP job: total, s (peak memory above the vectors)",
         lambda r: f"{num(get(r, 'umap', 'seconds'))} ({num(get(r, 'umap', 'peak_mb'), '.0f', ' MB')})"),
        ("placing 1,000 new tracks: s (peak memory above the library's vectors)",
         lambda r: f"{num(get(r, 'place', 'seconds'), '.2f')} ({num(get(r, 'place', 'peak_mb'), '.0f', ' MB')})"),
        ("… before issue 29", lambda r: f"{num(get(r, 'place_before', 'seconds'), '.2f')} "
                                        f"({num(get(r, 'place_before', 'peak_mb'), '.0f', ' MB')})"
         if "place_before" in r else "—"),
        ("`/api/map?percent=100&format=binary`", lambda r: f"**{mb(r.get('binary_bytes'))}**"),
        ("`/api/map?percent=100` JSON / gzip", lambda r: f"{mb(r.get('json_bytes'))} / {mb(r.get('gzip_bytes'))}"),
        ("web map cache: held (`nbytes`) / resident after the build",
         lambda r: f"{num(get(r, 'webmap', 'cache_mb'), '.1f', ' MB')} / "
                   f"{num(get(r, 'webmap', 'retained_mb'), '.0f', ' MB')}"),
        ("… before issue 29", lambda r: f"{num(get(r, 'webmap_before', 'cache_mb'), '.1f', ' MB')} / "
                                        f"{num(get(r, 'webmap_before', 'retained_mb'), '.0f', ' MB')}"
         if "webmap_before" in r else "—"),
        ("web map cache build: s (peak above the loaded index)",
         lambda r: f"{num(get(r, 'webmap', 'seconds'))} ({num(get(r, 'webmap', 'peak_mb'), '.0f', ' MB')})"),
        ("… before issue 29", lambda r: f"{num(get(r, 'webmap_before', 'seconds'))} "
                                        f"({num(get(r, 'webmap_before', 'peak_mb'), '.0f', ' MB')})"
         if "webmap_before" in r else "—"),
        ("no projection yet (PCA fallback) build: s (peak above the loaded index)",
         lambda r: f"{num(get(r, 'fallback', 'seconds'))} ({num(get(r, 'fallback', 'peak_mb'), '.0f', ' MB')})"),
        ("… before issue 29", lambda r: f"{num(get(r, 'fallback_before', 'seconds'))} "
                                        f"({num(get(r, 'fallback_before', 'peak_mb'), '.0f', ' MB')})"
         if "fallback_before" in r else "—"),
        ("web process resident memory (index, catalogue, map cache)",
         lambda r: num(r.get("web_rss_mb"), ".0f", " MB")),
        ("web server start → map served, s", lambda r: num(r.get("web_ready_s"))),
        ("Chromium: navigation → first frame with every point, s (renderer the page chose)",
         lambda r: f"**{num(get(r, 'browser', 'first_frame'), '.2f')}** ({get(r, 'browser', 'renderer')})"),
        ("Chromium: a whole frame / a frame while zooming (points drawn)",
         lambda r: f"{num(get(r, 'browser', 'full_frame_ms'), '.0f', ' ms')} / "
                   f"{num(get(r, 'browser', 'moving_frame_ms'), '.0f', ' ms')} "
                   f"({num(get(r, 'browser', 'moving_points'), ',.0f')})"),
        ("… with WebGL forced (software here): first frame, s; whole frame / while zooming",
         lambda r: f"{num(get(r, 'browser_webgl', 'first_frame'), '.2f')}; "
                   f"{num(get(r, 'browser_webgl', 'full_frame_ms'), '.0f', ' ms')} / "
                   f"{num(get(r, 'browser_webgl', 'moving_frame_ms'), '.0f', ' ms')} "
                   f"({num(get(r, 'browser_webgl', 'moving_points'), ',.0f')})" if "browser_webgl" in r else "—"),
        ("setting up: COPY of the library, index build (ef 40) + store, s",
         lambda r: f"{num(r.get('db_load_s'), '.0f')}, {num(r.get('index_s'), '.0f')}"),
    ]
    for name, cell in lines:
        print(f"| {name} | " + " | ".join(cell(r) for r in rows) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
