"""Benchmark the evolutionary clustering on a synthetic library and print the figures (markdown).

    .venv/bin/python bench/clustering.py [--tracks 10000] [--runs 1000] [--workers 2]
    .venv/bin/python bench/clustering.py --calibrate [--tracks 10000] [--runs 200]

The library imitates analyzed music: 40 styles, each a few strongly present MSD tags (a genre, a decade, a vocal
tag, an instrument...) over a faint background; 600 artists, each with one style and its own offset; moods derived
from the tags with audio/moods.py; tempo and energy per style; embeddings = style centre + artist offset + noise,
so tags and embeddings agree as they do for musicnn.

Default mode: (1) single-process runs per second of each algorithm on the 10k library (in process, no database);
(2) the real thing: an embedded PostgreSQL and redis-server, the library written to the database, one orchestrator
worker and W batch workers (real `python -m tasks.worker` processes), one clustering task of R K-Means runs started
as the web process starts it; wall time, runs per second per worker, best fitness over time, playlist sizes.
--calibrate: the mean and std of log1p(raw purity / diversity) over random runs (default ranges) — how the
LN_*_STATS defaults in config.py were obtained.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import soundfile as sf  # noqa: E402
from psycopg2.extras import Json  # noqa: E402

from audio.moods import MOODS, mood_scores  # noqa: E402
from audio.musicnn import MODEL_NAME, MSD_TAGS  # noqa: E402
from bench.stack import config_for, embedded_services, run_main_task, task_workers  # noqa: E402
from clustering.data import LibraryData  # noqa: E402
from clustering.fitness import diversity_raw, purity_raw  # noqa: E402
from clustering.models import fit_run  # noqa: E402
from clustering.orchestration import search_settings  # noqa: E402
from clustering.params import random_params  # noqa: E402
from clustering.request import ClusteringRequest, defaults_from, fit_to_library, preset  # noqa: E402
from clustering.search import PreparedLibrary, run_batch  # noqa: E402
from config import Config  # noqa: E402
from db.pool import Database  # noqa: E402
from mediaservers.local import item_id_for  # noqa: E402
from tasks.catalog import CLUSTERING  # noqa: E402
from tasks.clustering import load_library  # noqa: E402

GENRES = ["rock", "pop", "alternative", "indie", "electronic", "dance", "jazz", "metal", "soul", "folk", "Hip-Hop",
          "classic rock", "blues", "country", "punk", "ambient", "hard rock", "rnb", "electro", "House", "funk"]
FLAVOURS = ["female vocalists", "male vocalists", "guitar", "instrumental", "Mellow", "chill", "beautiful", "sexy",
            "catchy", "party", "happy", "sad", "experimental", "acoustic", "easy listening", "chillout"]
DECADES = ["60s", "70s", "80s", "90s", "00s", "oldies"]


def synthetic_library(n: int, *, seed: int = 1, styles: int = 40, artists: int = 600) -> LibraryData:
    rng = np.random.default_rng(seed)
    tag_index = {t: i for i, t in enumerate(MSD_TAGS)}
    style_tags = np.full((styles, len(MSD_TAGS)), 0.02)
    for s in range(styles):
        style_tags[s, tag_index[GENRES[s % len(GENRES)]]] = rng.uniform(0.5, 0.8)
        for tag in rng.choice(FLAVOURS, 2, replace=False):
            style_tags[s, tag_index[tag]] = rng.uniform(0.2, 0.5)
        style_tags[s, tag_index[rng.choice(DECADES)]] = rng.uniform(0.1, 0.4)
    style_bpm = rng.uniform(70, 160, styles)
    style_energy = rng.uniform(0.2, 0.9, styles)
    style_centre = rng.normal(size=(styles, 200))
    # Style sizes follow a long tail, as genres do in real libraries.
    weights = 1 / np.arange(1, styles + 1) ** 0.8
    artist_style = rng.choice(styles, artists, p=weights / weights.sum())
    artist_offset = rng.normal(0, 0.4, size=(artists, 200))
    artist_of = rng.integers(0, artists, n)
    style_of = artist_style[artist_of]
    tags = np.clip(style_tags[style_of] + rng.normal(0, 0.07, size=(n, len(MSD_TAGS))), 0, 1).astype(np.float32)
    energy = np.clip(style_energy[style_of] + rng.normal(0, 0.08, n), 0, 1).astype(np.float32)
    tempo = (style_bpm[style_of] + rng.normal(0, 6, n)).astype(np.float32)
    moods = np.array([[mood_scores(dict(zip(MSD_TAGS, row.tolist(), strict=True)), energy=float(e),
                                   tempo_confidence=0.7)[m] for m in MOODS]
                      for row, e in zip(tags, energy, strict=True)], dtype=np.float32)
    embeddings = (style_centre[style_of] + artist_offset[artist_of] + rng.normal(0, 0.6, size=(n, 200))) \
        .astype(np.float32)
    return LibraryData(item_ids=[f"t{i:06d}" for i in range(n)], titles=[f"Track {i}" for i in range(n)],
                       artists=[f"Artist {a}" for a in artist_of], tag_names=MSD_TAGS, tags=tags, mood_names=MOODS,
                       moods=moods, tempo=tempo, energy=energy, embeddings=embeddings)


def machine() -> str:
    return (f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d')}")


def calibrate(data: LibraryData, runs: int) -> None:
    """log1p statistics of raw purity/diversity over random runs with the default search ranges, fitted to the
    library's size as a real run fits them (clustering.request.fit_to_library)."""
    config = Config.from_env({})
    rng = np.random.default_rng(3)
    for use_embeddings in (False, True):
        request, _ = fit_to_library(defaults_from(config).with_values(
            {"enable_clustering_embeddings": use_embeddings}), len(data))
        settings = search_settings(request)
        library = PreparedLibrary(data, settings)
        values: dict[str, list[float]] = {"purity": [], "diversity": [], "other_purity": [], "other_diversity": []}
        sample = library.sampler.initial(rng)
        for _ in range(runs):
            sample = library.sampler.perturb(sample, rng, fraction=settings.sample_change_fraction)
            params = random_params(settings.space, rng)
            fitted = fit_run(params, library.features[sample], seed=int(rng.integers(1 << 30)))
            tags, moods = data.tags[sample], data.moods[sample]
            values["purity"].append(purity_raw(fitted.labels, tags, top_k=settings.top_k_moods))
            values["diversity"].append(diversity_raw(fitted.labels, tags))
            values["other_purity"].append(purity_raw(fitted.labels, moods, top_k=settings.top_k_moods,
                                                     threshold=settings.other_feature_threshold))
            values["other_diversity"].append(diversity_raw(fitted.labels, moods))
        print(f"{'embeddings' if use_embeddings else 'score vectors'} ({runs} random runs, sample {len(sample)}):")
        for name, raw in values.items():
            logs = np.log1p(np.asarray(raw))
            print(f"  {name:16} mean,std of log1p = {logs.mean():.3f},{logs.std():.3f}")


def algorithm_speed(data: LibraryData, runs: int) -> list[str]:
    config = Config.from_env({})
    rows = []
    for algorithm in ("kmeans", "dbscan", "gmm", "spectral"):
        request = defaults_from(config).with_values({"clustering_method": algorithm, "clustering_runs": runs})
        settings = search_settings(request)
        library = PreparedLibrary(data, settings)
        started = time.perf_counter()
        outcome = run_batch(library, settings, batch_seed=1, n_runs=runs, first_run=0, elites=[])
        seconds = time.perf_counter() - started
        best = outcome.best.score if outcome.best else float("nan")
        rows.append(f"| {algorithm} | {runs} | {runs / seconds:.2f} | {1000 * seconds / runs:.0f} | "
                    f"{outcome.invalid_runs} | {best:.3f} |")
    return rows


def write_files(music: Path, data: LibraryData) -> LibraryData:
    """One tiny WAV per track (the local media source publishes playlists of real files); the data with the local
    source's item ids."""
    silence = np.zeros(400, dtype=np.int16)
    ids = []
    for i, artist in enumerate(data.artists):
        relative = f"{artist}/Album/{data.item_ids[i]}.wav"
        (music / artist / "Album").mkdir(parents=True, exist_ok=True)
        sf.write(str(music / relative), silence, 8000)
        ids.append(item_id_for(relative))
    return replace(data, item_ids=ids)


def write_library(db: Database, data: LibraryData) -> None:
    with db.transaction() as cur:
        for i, item_id in enumerate(data.item_ids):
            cur.execute(
                """INSERT INTO tracks (item_id, title, artist, tempo_bpm, energy, tags, moods, analysis_model,
                                       analysis_version, analyzed_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1, now())""",
                (item_id, data.titles[i], data.artists[i], float(data.tempo[i]), float(data.energy[i]),
                 Json(dict(zip(MSD_TAGS, np.round(data.tags[i], 4).tolist(), strict=True))),
                 Json(dict(zip(MOODS, np.round(data.moods[i], 4).tolist(), strict=True))), MODEL_NAME))
            cur.execute("INSERT INTO embeddings (item_id, model, dimensions, vector) VALUES (%s, %s, 200, %s)",
                        (item_id, MODEL_NAME, data.embeddings[i].astype("<f4").tobytes()))


def end_to_end(data: LibraryData, *, runs: int, workers: int) -> None:
    with embedded_services() as (work, database_url, redis_url):
        db = Database(database_url, max_connections=4)
        data = write_files(work / "music", data)
        write_library(db, data)
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                   MUSIC_DIR=str(work / "music"), PLAYLIST_DIR=str(work / "playlists"),
                   MAX_CONCURRENT_BATCH_JOBS=str(2 * workers), ITERATIONS_PER_BATCH_JOB="20")
        config = config_for(env)
        with task_workers(env, child_workers=workers):
            request = ClusteringRequest().with_values(dict(defaults_from(config).as_dict(), clustering_runs=runs,
                                                           seed=7, top_n_playlists=20))
            row, wall = run_main_task(db, CLUSTERING, request.as_dict(), config)
            result = row["result"]
            busy = db.fetch_all(
                """SELECT worker_pid, sum(EXTRACT(EPOCH FROM finished_at - started_at)) AS seconds,
                          sum((result->>'invalid_runs')::int) AS invalid, count(*) AS batches
                     FROM task_status WHERE parent_task_id = %s AND status = 'SUCCESS' GROUP BY worker_pid""",
                (row["task_id"],))
            per_worker = [int(b["batches"]) * 20 / float(b["seconds"]) for b in busy]
            print(f"\nEnd to end: {len(data)} tracks, {runs} K-Means runs (default ranges: {request.num_clusters_min}-"
                  f"{request.num_clusters_max} clusters, PCA {request.pca_components_min}-"
                  f"{request.pca_components_max}), {workers} batch workers + 1 orchestrator worker, batches of 20, "
                  "seed 7.\n")
            print(f"- wall time from start request to published playlists: **{wall:.0f} s** ({runs / wall:.2f} runs/s)")
            print(f"- runs per second per worker while busy: {', '.join(f'{r:.2f}' for r in per_worker)}")
            print(f"- best score {result['best_score']} with {result['best_params']}")
            print("- best fitness over time (runs done → score @ seconds): " + ", ".join(
                f"{h['runs_done']} → {h['score']} @ {h['seconds']} s" for h in result["best_history"]))
            sizes = [p["size"] for p in result["playlists"]]
            print(f"- {len(sizes)} playlists, sizes {sorted(sizes, reverse=True)} (median {statistics.median(sizes)})")
            print(f"- failed batches: {result['failed_batches']}")

            quick = preset(len(data), len(set(data.artists)), defaults_from(config)).with_values({"seed": 7})
            row, wall = run_main_task(db, CLUSTERING, quick.as_dict(), config)
            sizes = [p["size"] for p in row["result"]["playlists"]]
            print(f"\nPreset for this library ({quick.clustering_runs} K-Means runs, {quick.num_clusters_min}-"
                  f"{quick.num_clusters_max} clusters, PCA {quick.pca_components_min}-{quick.pca_components_max}): "
                  f"**{wall:.0f} s** to published playlists; {len(sizes)} playlists, sizes "
                  f"{sorted(sizes, reverse=True)}; best {row['result']['best_description']}")


def copy_library(db: Database, data: LibraryData, *, chunk: int = 50_000) -> None:
    """The library into PostgreSQL with COPY, a chunk at a time (row INSERTs take hours at a million tracks)."""
    for start in range(0, len(data), chunk):
        tracks, embeddings = io.StringIO(), io.StringIO()
        for i in range(start, min(start + chunk, len(data))):
            tags = json.dumps(dict(zip(MSD_TAGS, np.round(data.tags[i], 4).tolist(), strict=True)))
            moods = json.dumps(dict(zip(MOODS, np.round(data.moods[i], 4).tolist(), strict=True)))
            tracks.write("\t".join([data.item_ids[i], data.titles[i], data.artists[i], f"{data.tempo[i]:.2f}",
                                    f"{data.energy[i]:.4f}", tags, moods, MODEL_NAME, "1",
                                    "2026-01-01"]) + "\n")
            embeddings.write(f"{data.item_ids[i]}\t{MODEL_NAME}\t200\t\\\\x"
                             f"{data.embeddings[i].astype('<f4').tobytes().hex()}\n")
        tracks.seek(0)
        embeddings.seek(0)
        with db.transaction() as cur:
            cur.copy_from(tracks, "tracks", columns=("item_id", "title", "artist", "tempo_bpm", "energy", "tags",
                                                     "moods", "analysis_model", "analysis_version", "analyzed_at"))
            cur.copy_from(embeddings, "embeddings", columns=("item_id", "model", "dimensions", "vector"))


def link_files(music: Path, data: LibraryData) -> LibraryData:
    """As write_files, with every file a hard link to one of a few tiny WAVs (a million files cost no space; a
    file takes at most 65,000 links on ext4)."""
    music.mkdir(parents=True, exist_ok=True)
    ids = []
    source = music / "silence-0.wav"
    for i, artist in enumerate(data.artists):
        if i % 60_000 == 0:
            source = music / f"silence-{i // 60_000}.wav"
            sf.write(str(source), np.zeros(400, dtype=np.int16), 8000)
        relative = f"{artist}/Album/{data.item_ids[i]}.wav"
        (music / artist / "Album").mkdir(parents=True, exist_ok=True)
        os.link(source, music / relative)
        ids.append(item_id_for(relative))
    for spare in music.glob("silence-*.wav"):
        spare.unlink()
    return replace(data, item_ids=ids)


class ProcessPeaks:
    """The highest resident memory of each worker process and of redis-server (this process's children) while the
    block runs."""

    def __init__(self) -> None:
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for process in psutil.Process().children(recursive=True):
                try:
                    line = " ".join(process.cmdline())
                    if "tasks.worker" in line or "redis-server" in line:
                        name = ("redis-server" if "redis-server" in line else "worker") + f" {process.pid}"
                        self.peaks[name] = max(self.peaks.get(name, 0), process.memory_info().rss)
                except psutil.Error:
                    pass

    def __enter__(self) -> ProcessPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def preset_at_scale(n: int, workers: int) -> None:
    """Issue 29: the preset end to end on n tracks (the library in PostgreSQL, files in a local music folder, the
    playlists published there), with the peak memory of every worker and of Redis."""
    started = time.perf_counter()
    data = synthetic_library(n, artists=max(600, n // 500))
    made = time.perf_counter() - started
    with embedded_services() as (work, database_url, redis_url):
        db = Database(database_url, max_connections=4)
        started = time.perf_counter()
        data = link_files(work / "music", data)
        copy_library(db, data)
        stored = time.perf_counter() - started
        artists = len(set(data.artists))
        del data
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                   MUSIC_DIR=str(work / "music"), PLAYLIST_DIR=str(work / "playlists"))
        config = config_for(env)
        with task_workers(env, child_workers=workers), ProcessPeaks() as peaks:
            quick = preset(n, artists, defaults_from(config)).with_values({"seed": 7})
            row, wall = run_main_task(db, CLUSTERING, quick.as_dict(), config)
        result = row["result"]
        steps = [(entry["at"], entry["message"]) for entry in row["log"] or []]
        first = row["started_at"] or row["created_at"]
        print(f"{machine()}; load average {os.getloadavg()[0]:.1f} at the end. Synthetic library of {n:,} tracks "
              f"({artists:,} artists; made in {made:.0f} s, stored with COPY and linked as files in {stored:.0f} s), "
              f"{workers} batch workers + 1 orchestrator worker.\n")
        print(f"- preset ({quick.clustering_runs} K-Means runs, {quick.num_clusters_min}-{quick.num_clusters_max} "
              f"clusters, PCA {quick.pca_components_min}-{quick.pca_components_max}, score vectors): **{wall:.0f} s** "
              f"from the start request to published playlists")
        print(f"- {len(result['playlists'])} playlists of {result['songs_covered']:,} songs; best "
              f"{result['best_description']}; quality {result['quality']}/100; failed batches "
              f"{result['failed_batches']}")
        for at, message in steps:
            print(f"  - {(datetime.fromisoformat(str(at)) - first).total_seconds():7.1f} s  {message}")
        for name, peak in sorted(peaks.peaks.items()):
            print(f"- peak resident memory, {name}: {peak / 2**20:,.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--speed-runs", type=int, default=10, help="runs per algorithm in the in-process table")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--library-database", metavar="URL",
                        help="with --calibrate: the analyzed library of this PostgreSQL database instead of the "
                             "synthetic one (real music, e.g. the dev corpus)")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--preset-at", type=int, metavar="N",
                        help="issue 29: only the preset, end to end, on a library of N tracks")
    args = parser.parse_args()
    if args.preset_at:
        preset_at_scale(args.preset_at, args.workers)
        return 0
    if args.calibrate and args.library_database:
        real = load_library(Database(args.library_database))
        print(machine() + f". Analyzed library of {len(real)} tracks.\n")
        calibrate(real, args.runs)
        return 0
    data = synthetic_library(args.tracks)
    print(machine() + f". Synthetic library of {args.tracks} tracks.\n")
    if args.calibrate:
        calibrate(data, args.runs)
        return 0
    print("| algorithm (default ranges) | runs | runs/s (1 process) | ms/run | invalid runs | best score |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(algorithm_speed(data, args.speed_runs)))
    if not args.skip_end_to_end:
        end_to_end(data, runs=args.runs, workers=args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
