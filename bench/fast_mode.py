"""Fast analysis against the full model (issue 31), printed as markdown.

    .venv/bin/python bench/fast_mode.py var/dev-corpus/music [--strides 2,3,4] [--workers 2]

(1) In process, one ONNX thread, per track of the folder: decoded and cut into 3-s patches once; every patch through
the model (the full analysis), then every n-th patch for each n of --strides, chosen as `analyze_samples` chooses
them. Against the full analysis: the embedding's cosine (median, 5th percentile), top-5 tag overlap (mean), the
nearest-neighbour agreement (each track's 10 nearest among the folder's tracks by the fast embeddings, against its
10 nearest by the full ones; mean overlap), and the model's time per track.
(2) End to end, real workers (--workers album workers, an orchestrator, embedded PostgreSQL and Redis, albums of 6
tracks), one run with every patch and one with {"fast": true} at FAST_ANALYSIS_PATCH_STRIDE: tracks per hour.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from audio import melspec, stft  # noqa: E402
from audio.decode import decode_file  # noqa: E402
from audio.musicnn import MusicnnModel  # noqa: E402
from bench.analysis import _one_run as end_to_end_run  # noqa: E402
from bench.analysis import album_layout, audio_files  # noqa: E402
from bench.stack import embedded_services  # noqa: E402
from config import PROJECT_ROOT, Config  # noqa: E402
from db.pool import Database  # noqa: E402


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def nearest(vectors: np.ndarray, k: int = 10) -> list[set[int]]:
    similarity = unit(vectors) @ unit(vectors).T
    np.fill_diagonal(similarity, -np.inf)
    return [set(np.argsort(-row)[:k].tolist()) for row in similarity]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--strides", default="2,3,4")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    strides = [int(s) for s in args.strides.split(",")]
    files = audio_files(args.folder, None)
    model = MusicnnModel(PROJECT_ROOT / "models" / "msd_musicnn.onnx", intra_op_threads=1)
    full_embeddings, full_tags, model_seconds = [], [], []
    fast: dict[int, dict[str, list]] = {s: {"embeddings": [], "tags": [], "seconds": []} for s in strides}
    for path in files:
        samples = decode_file(path)
        (mel_power,) = stft.band_power(samples, n_fft=melspec.N_FFT, hop=melspec.HOP, bases=[melspec.mel_bands()],
                                       centre=True)
        patches = melspec.patches(melspec.compress(mel_power), max_patches=200 if len(samples) > 1200 * 16000
                                  else None)
        started = time.perf_counter()
        output = model.predict(patches)
        model_seconds.append(time.perf_counter() - started)
        full_embeddings.append(output.embeddings.mean(axis=0))
        full_tags.append(output.tags.mean(axis=0))
        for stride in strides:
            keep = melspec.every_nth(len(patches), stride)
            started = time.perf_counter()
            part = model.predict(np.ascontiguousarray(patches[keep]))
            fast[stride]["seconds"].append(time.perf_counter() - started)
            fast[stride]["embeddings"].append(part.embeddings.mean(axis=0))
            fast[stride]["tags"].append(part.tags.mean(axis=0))
    full = np.array(full_embeddings)
    full_near = nearest(full)
    top = [set(np.argsort(-t)[:5].tolist()) for t in full_tags]
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"load {os.getloadavg()[0]:.1f}. Corpus: {len(files)} tracks from `{args.folder}`.", "",
             "| patches through the model | model s per track (median) | embedding cosine to full: median / 5th pct "
             "| top-5 tag overlap | NN@10 overlap |", "| --- | --- | --- | --- | --- |",
             f"| every patch (full) | {statistics.median(model_seconds):.2f} | 1 / 1 | 1 | 1 |"]
    for stride in strides:
        emb = np.array(fast[stride]["embeddings"])
        cosine = np.sum(unit(emb) * unit(full), axis=1)
        tags = [len(set(np.argsort(-t)[:5].tolist()) & top[i]) / 5 for i, t in enumerate(fast[stride]["tags"])]
        near = [len(a & b) / 10 for a, b in zip(nearest(emb), full_near, strict=True)]
        lines.append(f"| every {ordinal(stride)} | {statistics.median(fast[stride]['seconds']):.2f} | "
                     f"{np.median(cosine):.4f} / {np.percentile(cosine, 5):.4f} | {np.mean(tags):.3f} | "
                     f"{np.mean(near):.3f} |")
    stride = Config().FAST_ANALYSIS_PATCH_STRIDE
    lines += ["", f"End to end, {args.workers} album workers, albums of 6 tracks (tracks per hour in bold):", "",
              "| run | decode | mel | inference | features | db | other | inference share of per-track time "
              "| inference share of busy time | realtime factor per worker | wall s | tracks per hour |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    with embedded_services() as (work, database_url, redis_url):
        album_layout(files, work / "music", 6)
        db = Database(database_url, max_connections=4)
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                   MEDIASERVER_TYPE="local", MUSIC_DIR=str(work / "music"), PLAYLIST_DIR=str(work / "playlists"))
        for name, params in (("full", {"fast": False}), (f"fast (every {ordinal(stride)})", {"fast": True})):
            db.execute("TRUNCATE tracks, embeddings, analysis_failures, task_status CASCADE")
            row = end_to_end_run(db, env, args.workers, params)
            lines.append(row.replace(f"| {args.workers} |", f"| {name} |", 1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
