"""Measure the version rule (discovery/versions.py) on real music and print the figures (markdown).

    .venv/bin/python bench/versions.py --corpus /tmp/am-dev-corpus/music [--tracks 24] [--work /tmp/am-versions]

For each of the first N tracks of the dev corpus (../shared/data/build-dev-corpus.sh) it makes, with ffmpeg, what
real libraries hold beside the original: an MP3 re-encode (LAME V2) and a 30-s excerpt (Ogg, from 0:30). Every
file is analyzed by the real musicnn model (audio.analyze), as the workers do. Printed: the cosine distances from
each original to its re-encode and to its excerpt, and to its nearest *other* track (what the thresholds must stay
under); then `group_versions` over all 3·N files with their real titles and artists, scored against the planted
sets (a recording is right when it holds exactly its original and both copies) and the kept copy (the lossless
original when the original is lossless, else the full-length file).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "2")

import mutagen  # noqa: E402
import numpy as np  # noqa: E402

from audio.analyze import analyze_samples  # noqa: E402
from audio.decode import decode_file  # noqa: E402
from audio.musicnn import MusicnnModel  # noqa: E402
from config import PROJECT_ROOT  # noqa: E402
from discovery.versions import COPY_DISTANCE, EXCERPT_DISTANCE, Copy, group_versions  # noqa: E402


def tags_of(path: Path) -> tuple[str, str]:
    found = mutagen.File(path, easy=True)
    tags = dict(found.tags or {}) if found is not None else {}
    title = (tags.get("title") or [path.stem])[0]
    artist = (tags.get("artist") or [path.parent.name])[0]
    return str(title), str(artist)


def make_copies(original: Path, work: Path) -> tuple[Path, Path]:
    work.mkdir(parents=True, exist_ok=True)
    mp3, excerpt = work / (original.stem + ".mp3"), work / (original.stem + "-excerpt.ogg")
    if not mp3.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(original), "-codec:a", "libmp3lame", "-q:a", "2",
                        str(mp3)], check=True)
    if not excerpt.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", "30", "-t", "30", "-i", str(original),
                        "-codec:a", "libvorbis", "-q:a", "4", str(excerpt)], check=True)
    return mp3, excerpt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--tracks", type=int, default=24)
    parser.add_argument("--work", type=Path, default=Path("/tmp/am-versions"))
    args = parser.parse_args()
    originals = sorted(p for p in args.corpus.rglob("*") if p.suffix.lower() in (".ogg", ".flac"))
    originals = [p for p in originals if mutagen.File(p) is not None and mutagen.File(p).info.length >= 75][
        :args.tracks]
    model = MusicnnModel(PROJECT_ROOT / "models" / "msd_musicnn.onnx", intra_op_threads=2)
    files: list[tuple[Copy, np.ndarray, str]] = []  # (copy, embedding, planted set = the original's path)
    started = time.perf_counter()
    for n, original in enumerate(originals):
        title, artist = tags_of(original)
        mp3, excerpt = make_copies(original, args.work / str(n))
        for path in (original, mp3, excerpt):
            analysis = analyze_samples(decode_file(path), model=model)
            files.append((Copy(str(path), title, artist, analysis.duration_seconds, str(path)),
                          analysis.embedding, str(original)))
    seconds = time.perf_counter() - started
    vectors = np.stack([v for _, v, _ in files]).astype(np.float64)
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    distances = 1.0 - units @ units.T
    re_encode, excerpt_d, nearest_other = [], [], []
    for i in range(0, len(files), 3):
        re_encode.append(distances[i, i + 1])
        excerpt_d.append(distances[i, i + 2])
        others = [j for j in range(0, len(files), 3) if j != i]
        nearest_other.append(min(distances[i, j] for j in others))
    grouping = group_versions([c for c, _, _ in files], vectors.astype(np.float32))
    recordings = grouping.recordings()
    planted = {orig for _, _, orig in files}
    right = 0
    kept_right = 0
    for orig in planted:
        members = sorted(c.item_id for c, _, o in files if o == orig)
        group = next((g for g in recordings.values() if orig in g), None)
        if group is not None and sorted(group) == members:
            right += 1
            kept = grouping.recording_of[orig]
            lossless = Path(orig).suffix.lower() == ".flac"
            kept_right += kept == orig if lossless else not kept.endswith("-excerpt.ogg")
    wrong_joins = sum(1 for g in recordings.values() if len({o for c, _, o in files if c.item_id in g}) > 1)

    def stats(values: list[float]) -> str:
        a = np.asarray(values)
        return f"median {np.median(a):.4f}, max {a.max():.4f}, min {a.min():.4f}"

    print("## Versions: copies of one recording on real music (`bench/versions.py`)\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{len(originals)} dev-corpus tracks (ogg and rendered FLAC), each with an MP3 re-encode (LAME V2) and a "
          f"30-s Ogg excerpt; {len(files)} files analyzed by musicnn in {seconds:.0f} s.\n")
    print("| cosine distance from the original to … | figures |\n|---|---|")
    print(f"| its MP3 re-encode | {stats(re_encode)} |")
    print(f"| its 30-s excerpt | {stats(excerpt_d)} |")
    print(f"| the nearest other track | {stats(nearest_other)} |\n")
    print(f"Thresholds: COPY_DISTANCE {COPY_DISTANCE}, EXCERPT_DISTANCE {EXCERPT_DISTANCE} (and titles, artists, "
          f"durations must agree). Grouping: **{right} of {len(planted)}** planted recordings found exactly; "
          f"{wrong_joins} groups joined files of different recordings; kept copy right in {kept_right} of {right}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
