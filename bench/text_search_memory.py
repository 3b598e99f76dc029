"""Peak memory of building the text-search concept scores, as the web process does at start-up and after each
reload, and print the figures (markdown).

    .venv/bin/python bench/text_search_memory.py [--tracks 300000]

Each way runs in its own process (peak RSS from getrusage), over the same synthetic rows streamed as
db.tracks.text_search_rows streams them (50 tag probabilities and 6 moods a track, as dicts): the former build
kept every row's dicts in lists and made the matrix at the end; the present one (discovery.text_search.
ConceptColumns) writes each row into one float64 array as it comes.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from audio.moods import MOODS  # noqa: E402
from audio.musicnn import MSD_TAGS  # noqa: E402
from services.text_search import CONCEPTS  # noqa: E402


def rows(n: int) -> Iterator[tuple[dict[str, float], dict[str, float], float, float, str]]:
    rng = np.random.default_rng(7)
    for _ in range(n):
        tags = dict(zip(MSD_TAGS, rng.random(len(MSD_TAGS)).round(4).tolist(), strict=True))
        moods = dict(zip(MOODS, rng.random(len(MOODS)).round(4).tolist(), strict=True))
        yield tags, moods, float(rng.uniform(60, 180)), float(rng.random()), "major" if rng.random() < 0.5 else "minor"


def run(way: str, n: int) -> None:
    from discovery.text_search import ConceptColumns, concept_scores

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if way == "lists":
        columns: list[list] = [[], [], [], [], []]
        for row in rows(n):
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        scores = concept_scores(CONCEPTS, tags=columns[0], moods=columns[1], tempo=columns[2], energy=columns[3],
                                scale=columns[4])
    else:
        streamed = ConceptColumns(CONCEPTS, n)
        for row in rows(n):
            streamed.add(*row)
        scores = streamed.scores()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{way} {seconds:.1f} {(peak - before) / 1024:.0f} {scores.matrix.nbytes / 1e6:.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=300_000)
    parser.add_argument("--way", choices=("lists", "streamed"))
    args = parser.parse_args()
    if args.way:
        run(args.way, args.tracks)
        return 0
    results = {}
    for way in ("lists", "streamed"):
        out = subprocess.run([sys.executable, __file__, "--tracks", str(args.tracks), "--way", way], check=True,
                             capture_output=True, text=True).stdout.split()
        results[way] = out
    load = os.getloadavg()[0]
    print(f"## Text-search cache build: peak memory (`bench/text_search_memory.py --tracks {args.tracks}`)\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load "
          f"{load:.1f} (other runs shared the machine). {args.tracks:,} tracks, {len(CONCEPTS)} concepts.\n")
    print("| build | seconds | peak RSS growth (MB) | scores kept (MB) |\n|---|---|---|---|")
    for way, label in (("lists", "a dict per track, matrix at the end (before)"),
                       ("streamed", "streamed into one array (ConceptColumns)")):
        _, seconds, peak, kept = results[way]
        print(f"| {label} | {seconds} | {peak} | {kept} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
