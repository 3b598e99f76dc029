"""Benchmark the analysis pipeline on a folder of music and print the figures (markdown).

    .venv/bin/python bench/analysis.py var/dev-corpus/music [--workers 2] [--limit N]
                                       [--ground-truth var/dev-corpus/ground_truth.csv] [--write bench/RESULTS.md]

Per track, single process, one ONNX thread (the production setting): time split into decode (+ resample),
mel, inference, features; realtime factor (audio seconds / processing seconds); the share of time in the model.
Then end to end with W worker processes in parallel: tracks per hour and the speed-up over one process.
With --ground-truth, tempo (within 4 %, and up to octave errors) and key accuracy against MIDI-rendered tracks.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# One thread for every numeric library, as in a worker (set before numpy is imported).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio.analyze import analyze_samples  # noqa: E402
from audio.decode import decode_file  # noqa: E402
from audio.musicnn import MusicnnModel  # noqa: E402
from config import PROJECT_ROOT  # noqa: E402
from mediaservers.local import AUDIO_EXTENSIONS  # noqa: E402

MODEL = PROJECT_ROOT / "models" / "msd_musicnn.onnx"


def audio_files(folder: Path, limit: int | None) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    return files[:limit] if limit else files


def analyze_file(model: MusicnnModel, path: Path) -> dict[str, float | str | None]:
    started = time.perf_counter()
    samples = decode_file(path)
    decode = time.perf_counter() - started
    result = analyze_samples(samples, model=model)
    total = time.perf_counter() - started
    return {"path": str(path), "audio": result.duration_seconds, "decode": decode, **result.timings, "total": total,
            "tempo": result.tempo_bpm, "key": f"{result.key} {result.scale}" if result.key else None}


def _worker(paths: list[str], queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    model = MusicnnModel(MODEL, intra_op_threads=1)
    for path in paths:
        analyze_file(model, Path(path))
    queue.put(len(paths))


def parallel_tracks_per_hour(files: list[Path], workers: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    shares = [[str(p) for p in files[i::workers]] for i in range(workers)]
    procs = [ctx.Process(target=_worker, args=(share, queue)) for share in shares]
    started = time.perf_counter()
    for p in procs:
        p.start()
    done = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return done / (time.perf_counter() - started) * 3600


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
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--ground-truth", type=Path)
    parser.add_argument("--write", type=Path, help="also write the report to this file")
    args = parser.parse_args()

    files = audio_files(args.folder, args.limit)
    if not files:
        parser.error(f"no audio files under {args.folder}")
    model = MusicnnModel(MODEL, intra_op_threads=1)
    analyze_file(model, files[0])  # warm-up: first-call costs are not part of steady state
    rows = [analyze_file(model, p) for p in files]
    stages = ("decode", "mel", "inference", "features", "total")
    totals = {s: sum(float(r[s]) for r in rows) for s in stages}  # type: ignore[arg-type]
    audio_seconds = sum(float(r["audio"]) for r in rows)  # type: ignore[arg-type]
    per_3min = {s: statistics.median(float(r[s]) / float(r["audio"]) * 180 for r in rows) for s in stages}  # type: ignore[arg-type]
    single_rate = len(rows) / totals["total"] * 3600
    parallel_rate = parallel_tracks_per_hour(files, args.workers)

    lines = [
        "# Analysis benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores ({platform.processor() or 'cpu'}), "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}.",
        f"Corpus: {len(rows)} tracks, {audio_seconds / 60:.1f} min of audio, from `{args.folder}`.",
        "",
        "## One process, one ONNX thread",
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
        "",
        f"## End to end with {args.workers} worker processes",
        "",
        f"- tracks per hour: **{parallel_rate:.0f}** ({parallel_rate / single_rate:.2f}× one process)",
        "",
        "Database writes are not in these figures (one upsert per track, measured at a few ms in the test suite's",
        "PostgreSQL); the decode runs here in-process, in production in the decoder helper process.",
    ]
    if args.ground_truth:
        lines += ["", "## Tempo and key accuracy (MIDI-rendered tracks with known tempo/key)", "",
                  "| measure | result |", "| --- | --- |"]
        lines += tempo_key_accuracy(rows, args.ground_truth, args.folder)
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write:
        args.write.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
