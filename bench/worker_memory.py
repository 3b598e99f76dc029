"""An analysis worker's memory over a real run (issue 31's flat-memory targets: an idle worker ≤ 150 MB, and a long
track needing little more than a short one), printed as markdown.

    .venv/bin/python bench/worker_memory.py FOLDER [--tracks 24] [--before CHECKOUT]

A library of `--tracks` files of FOLDER (the dev corpus) in albums of 6, plus a 20-minute and a 60-minute track made
by concatenating corpus audio with ffmpeg (44.1 kHz stereo FLAC, as a ripped track), is analysed by the real thing:
embedded PostgreSQL and Redis, one orchestrator and two album workers (`python -m tasks.worker`). Each album worker
and everything it started (its analysis process, decoder helpers) is sampled every 0.2 s: the peak of that tree's
resident memory while the run goes on, and the tree's memory once the run has ended and
ANALYSIS_IDLE_RELEASE_SECONDS (10 here) have passed. With `--before`, the same run on the code of another checkout
(say the commit before the analysis process) first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.analysis import album_layout, audio_files  # noqa: E402
from bench.stack import config_for, embedded_services, print_figures, run_main_task, task_workers  # noqa: E402
from db.pool import Database  # noqa: E402
from tasks.catalog import ANALYSIS  # noqa: E402

IDLE_SECONDS = 10


def long_track(sources: list[Path], target: Path, minutes: int) -> Path:
    """`minutes` of corpus audio joined end to end (the list repeated as needed), as 44.1 kHz stereo FLAC."""
    listing = target.with_suffix(".txt")
    pieces = []
    for number, source in enumerate(sources):  # one codec for the concat demuxer: 44.1 kHz stereo PCM
        piece = target.parent / f".piece-{number:03d}.wav"
        if not piece.exists():
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-ar", "44100", "-ac", "2",
                            "-c:a", "pcm_s16le", str(piece)], check=True)
        pieces.append(piece)
    repeats = pieces * (1 + minutes * 60 // 60)
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in repeats))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-t",
                    str(minutes * 60), "-ar", "44100", "-ac", "2", str(target)], check=True)
    return target


def _tree_mb(process: psutil.Process) -> float:
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 1e6


def measure(library: Path, code_root: Path) -> tuple[float, list[float], list[float], float]:
    """(tracks per hour, peak MB per album worker, idle MB per album worker, wall seconds) of one run."""
    with embedded_services() as (_work, database_url, redis_url):
        db = Database(database_url, max_connections=2)
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                   MEDIASERVER_TYPE="local", MUSIC_DIR=str(library), PLAYLIST_DIR=str(library.parent / "playlists"),
                   ANALYSIS_IDLE_RELEASE_SECONDS=str(IDLE_SECONDS), PYTHONPATH=str(code_root))
        with task_workers(env, child_workers=2, code_root=code_root):
            time.sleep(3)
            me = psutil.Process()
            workers = [p for p in me.children() if "default" in " ".join(p.cmdline())]
            peaks = [0.0] * len(workers)
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    for i, worker in enumerate(workers):
                        peaks[i] = max(peaks[i], _tree_mb(worker))
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                row, wall = run_main_task(db, ANALYSIS, {"num_recent_albums": 0}, config_for(env))
            finally:
                done.set()
                sampler.join()
            analysed = int(row["result"]["tracks_analyzed"])
            failed = int(row["result"]["tracks_failed"])
            if failed:
                raise RuntimeError(f"{failed} tracks failed: {row['result']}")
            time.sleep(IDLE_SECONDS + 5)
            idle = [_tree_mb(worker) for worker in workers]
    return analysed / wall * 3600, peaks, idle, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--tracks", type=int, default=24)
    parser.add_argument("--before", type=Path, help="a checkout of the code to measure first")
    args = parser.parse_args()
    files = audio_files(args.folder, args.tracks)
    rows = memory_rows(files, before=args.before)
    print_figures(f"An album worker's memory over a run: {len(files)} corpus tracks and a 20- and a 60-minute one, "
                  "2 album workers", rows)
    return 0


def memory_rows(files: list[Path], *, before: Path | None = None) -> list[tuple[str, str]]:
    """The figures of one run of `files` plus the two long tracks (and first of `before`'s code, when given)."""
    with tempfile.TemporaryDirectory(prefix="audiomuse-memory-") as scratch:
        library = Path(scratch) / "music"
        album_layout(files, library, 6)
        long_album = library / "long"
        long_album.mkdir()
        pieces = Path(scratch) / "pieces"
        pieces.mkdir()
        for minutes in (20, 60):
            long_track(files, pieces / f"{minutes:02d}-joined-{minutes}-min.flac", minutes)
            (pieces / f"{minutes:02d}-joined-{minutes}-min.flac").rename(long_album / f"{minutes:02d}-joined.flac")
        rows = []
        for label, root in ([("before", before)] if before else []) + [("this code", ROOT)]:
            rate, peaks, idle, wall = measure(library, root.resolve())
            rows += [(f"{label}: peak per album worker while analysing (MB)", " / ".join(f"{p:.0f}" for p in peaks)),
                     (f"{label}: per album worker {IDLE_SECONDS + 5} s after the run (MB)",
                      " / ".join(f"{m:.0f}" for m in idle)),
                     (f"{label}: tracks per hour ({len(files) + 2} tracks, wall {wall:.0f} s)", f"{rate:.0f}")]
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
