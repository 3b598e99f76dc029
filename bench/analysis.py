"""Benchmark the analysis pipeline on a folder of music and print the figures (markdown).

    .venv/bin/python bench/analysis.py var/dev-corpus/music [--workers 1,2] [--album-size 6] [--limit N]
                                       [--ground-truth var/dev-corpus/ground_truth.csv] [--write bench/RESULTS.md]
                                       [--memory]

(1) In process, one ONNX thread (the production setting): per track, time split into decode (+ resample), mel,
inference, features; realtime factor; the share of time in the model. With --ground-truth, tempo (within 4 %, and
up to octave errors) and key accuracy against MIDI-rendered tracks.
(2) End to end, the real thing, for each W in --workers: an embedded PostgreSQL and redis-server, one orchestrator
worker and W album workers (`python -m tasks.worker`), the folder served by the local media source as albums of
--album-size tracks, one analysis task started as the web page starts it. Figures from the album jobs' own records:
per-stage time including the database writes and the decode in the helper process, the rest of each job's busy
time (file hashing, progress reports, ...), the share of busy time in the model, and tracks per hour.
(3) With --memory, each album worker's resident memory (the worker and its analysis process and decoders) over a
run that includes a 20- and a 60-minute track joined from the corpus: its peak, and what is left once the idle
period has passed (bench/worker_memory.py, which can also measure another checkout's code first).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# One thread for every numeric library, as in a worker (set before numpy is imported).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audio.analyze import analyze_samples  # noqa: E402
from audio.decode import decode_file  # noqa: E402
from audio.musicnn import MusicnnModel  # noqa: E402
from bench.stack import config_for, embedded_services, run_main_task, task_workers  # noqa: E402
from config import PROJECT_ROOT  # noqa: E402
from db.pool import Database  # noqa: E402
from mediaservers.local import AUDIO_EXTENSIONS  # noqa: E402
from tasks.catalog import ANALYSIS  # noqa: E402

MODEL = PROJECT_ROOT / "models" / "msd_musicnn.onnx"


def audio_files(folder: Path, limit: int | None) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    return files[:limit] if limit else files


def analyze_file(model: MusicnnModel, path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    samples = decode_file(path)
    decode = time.perf_counter() - started
    result = analyze_samples(samples, model=model)
    total = time.perf_counter() - started
    return {"path": str(path), "audio": result.duration_seconds, "decode": decode, **result.timings, "total": total,
            "tempo": result.tempo_bpm, "key": f"{result.key} {result.scale}" if result.key else None}


STAGES = ("decode", "mel", "inference", "features", "db")


def album_layout(files: list[Path], target: Path, album_size: int) -> None:
    """Symlink the files into album folders of `album_size` tracks, as a library of many albums looks."""
    for i, path in enumerate(files):
        album = target / f"album-{i // album_size:03d}"
        album.mkdir(parents=True, exist_ok=True)
        (album / f"{i % album_size:02d}-{path.name}").symlink_to(path.resolve())


def end_to_end(files: list[Path], *, workers: list[int], album_size: int) -> list[str]:
    lines = ["", f"## End to end: real workers, embedded PostgreSQL and Redis, albums of {album_size} tracks", "",
             "Per-stage figures are seconds per 3 min of audio summed over all album jobs; *other* is the rest of the",
             "jobs' busy time (file hashing, progress reports, status rows). Per-track time is the sum of the five",
             "stages; busy time adds *other*. The database stage is the upsert of the",
             "track row and its embedding; decode runs in the worker's decoder helper process and includes the",
             "transfer of the samples. Wall time runs from the start request to the rebuilt index.", "",
             "| album workers | decode | mel | inference | features | db | other | inference share of per-track time "
             "| inference share of busy time | realtime factor per worker | wall s | tracks per hour |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    with embedded_services() as (work, database_url, redis_url):
        album_layout(files, work / "music", album_size)
        db = Database(database_url, max_connections=4)
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                   MEDIASERVER_TYPE="local", MUSIC_DIR=str(work / "music"), PLAYLIST_DIR=str(work / "playlists"))
        for count in workers:
            db.execute("TRUNCATE tracks, embeddings, analysis_failures, task_status CASCADE")
            lines.append(_one_run(db, env, count))
    return lines


def _one_run(db: Database, env: dict[str, str], workers: int, params: dict[str, Any] | None = None) -> str:
    with task_workers(env, child_workers=workers):
        row, wall = run_main_task(db, ANALYSIS, {"num_recent_albums": 0, **(params or {})}, config_for(env))
    task_id = row["task_id"]
    jobs = db.fetch_all("""SELECT result, EXTRACT(EPOCH FROM finished_at - started_at) AS busy FROM task_status
                            WHERE parent_task_id = %s AND status = 'SUCCESS'""", (task_id,))
    stage = {name: sum(float(j["result"]["timings"][name]) for j in jobs) for name in STAGES}
    busy = sum(float(j["busy"]) for j in jobs)
    audio = sum(float(j["result"]["audio_seconds"]) for j in jobs)
    analyzed = sum(int(j["result"]["analyzed"]) for j in jobs)
    failed = sum(int(j["result"]["failed"]) for j in jobs)
    if failed:
        reasons = [f["reason"] for j in jobs for f in j["result"]["failures"]]
        raise RuntimeError(f"{failed} tracks failed: {reasons}")
    per_track = sum(stage.values())
    other = busy - per_track
    per_3min = {name: seconds / audio * 180 for name, seconds in {**stage, "other": other}.items()}
    return (f"| {workers} | " + " | ".join(f"{per_3min[n]:.3f}" for n in (*STAGES, "other")) +
            f" | **{100 * stage['inference'] / per_track:.1f} %** | {100 * stage['inference'] / busy:.1f} % | "
            f"{audio / busy:.1f}× | {wall:.0f} | "
            f"**{analyzed / wall * 3600:.0f}** |")


def tempo_key_accuracy(rows: list[dict], ground_truth: Path, music_root: Path) -> list[str]:
    by_path = {str(Path(r["path"]).resolve()): r for r in rows}
    tempo_hits = tempo_octave_hits = tempo_n = key_hits = key_relative_hits = key_n = 0
    for truth in csv.DictReader(ground_truth.open()):
        row = by_path.get(str((music_root / truth["path"]).resolve()))
        if row is None:
            continue
        if truth["tempo_bpm"] and row["tempo"]:
            tempo_n += 1
            true_bpm, bpm = float(truth["tempo_bpm"]), float(row["tempo"])
            tempo_hits += abs(bpm - true_bpm) / true_bpm <= 0.04
            tempo_octave_hits += any(abs(bpm * f - true_bpm) / true_bpm <= 0.04 for f in (0.5, 1, 2, 1 / 3, 3))
        elif truth["tempo_bpm"]:
            tempo_n += 1
        if truth["key"]:
            key_n += 1
            key_hits += row["key"] == truth["key"]
            key_relative_hits += row["key"] == truth["key"] or _relative(row["key"]) == truth["key"]
    return [
        f"| tempo within 4 % | {tempo_hits}/{tempo_n} ({100 * tempo_hits / max(tempo_n, 1):.0f} %) |",
        f"| tempo within 4 % allowing octave (×½, ×2, ×⅓, ×3) errors | {tempo_octave_hits}/{tempo_n} "
        f"({100 * tempo_octave_hits / max(tempo_n, 1):.0f} %) |",
        f"| key exact | {key_hits}/{key_n} ({100 * key_hits / max(key_n, 1):.0f} %) |",
        f"| key exact or relative major/minor | {key_relative_hits}/{key_n} "
        f"({100 * key_relative_hits / max(key_n, 1):.0f} %) |",
    ]


_PCS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _relative(key: str | None) -> str | None:
    if not key:
        return None
    name, scale = key.split()
    index = _PCS.index(name)
    return f"{_PCS[(index + 9) % 12]} minor" if scale == "major" else f"{_PCS[(index + 3) % 12]} major"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--workers", default=f"1,{os.cpu_count() or 1}",
                        help="comma-separated album worker counts for the end-to-end runs")
    parser.add_argument("--album-size", type=int, default=6)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--ground-truth", type=Path)
    parser.add_argument("--write", type=Path, help="also write the report to this file")
    parser.add_argument("--memory", action="store_true",
                        help="also each album worker's peak and idle memory over a run of 24 of the files and a 20- "
                             "and a 60-minute track joined from them (bench/worker_memory.py)")
    args = parser.parse_args()

    files = audio_files(args.folder, args.limit)
    if not files:
        parser.error(f"no audio files under {args.folder}")
    model = MusicnnModel(MODEL, intra_op_threads=1)
    analyze_file(model, files[0])  # warm-up: first-call costs are not part of steady state
    rows = [analyze_file(model, p) for p in files]
    stages = ("decode", "mel", "inference", "features", "total")
    totals = {s: sum(float(r[s]) for r in rows) for s in stages}
    audio_seconds = sum(float(r["audio"]) for r in rows)
    per_3min = {s: statistics.median(float(r[s]) / float(r["audio"]) * 180 for r in rows) for s in stages}
    single_rate = len(rows) / totals["total"] * 3600

    lines = [
        "# Analysis benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores ({platform.processor() or 'cpu'}), "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}.",
        f"Corpus: {len(rows)} tracks, {audio_seconds / 60:.1f} min of audio, from `{args.folder}`.",
        "",
        "## In process, one ONNX thread (no database, decode in the same process)",
        "",
        "| stage | median s per 3 min of audio | share of total time |",
        "| --- | --- | --- |",
    ]
    for stage in stages[:-1]:
        lines.append(f"| {stage} | {per_3min[stage]:.3f} | {100 * totals[stage] / totals['total']:.1f} % |")
    lines += [
        f"| **total** | **{per_3min['total']:.3f}** | 100 % |",
        "",
        f"- realtime factor: **{audio_seconds / totals['total']:.1f}×** (audio seconds per processing second)",
        f"- share of time in the model (inference): **{100 * totals['inference'] / totals['total']:.1f} %**",
        f"- tracks per hour, one process: {single_rate:.0f}",
    ]
    if args.ground_truth:
        lines += ["", "## Tempo and key accuracy (MIDI-rendered tracks with known tempo/key)", "",
                  "| measure | result |", "| --- | --- |"]
        lines += tempo_key_accuracy(rows, args.ground_truth, args.folder)
    lines += end_to_end(files, workers=[int(w) for w in args.workers.split(",")], album_size=args.album_size)
    if args.memory:
        from bench.worker_memory import memory_rows  # here: worker_memory imports this module

        lines += ["", "## An album worker's memory: 24 tracks and a 20- and a 60-minute one, 2 album workers", "",
                  "| measure | figure |", "| --- | --- |"]
        lines += [f"| {name} | {figure} |" for name, figure in memory_rows(files[:24])]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write:
        args.write.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
