"""Clustering that always gives an answer: the success rate of every algorithm with the reference's client
settings (the default ranges, clustering_runs=20) on synthetic libraries, and print it as a markdown table.

    .venv/bin/python bench/clustering_success.py [--sizes 60,233,10000] [--seeds 20] [--algorithms kmeans,...]
                                                [--no-discovery]

A cell runs the whole use case in one process (clustering.orchestration.run_in_process: fitting the ranges,
parameter discovery, calibration, 20 runs, assembly with relaxation) for seeds 1..N. A seed succeeds when it gives a
playlist of the requested min_playlist_size (8); "relaxed" counts the seeds that needed the relaxation ladder, "any
playlist" the seeds with a playlist at all (the task's success). The libraries are bench/clustering.py's synthetic
one, scaled as a personal library is: about one artist per 12 songs and one style per 20 (4 to 40 styles).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.clustering import machine, synthetic_library  # noqa: E402
from clustering.orchestration import run_in_process  # noqa: E402
from clustering.request import defaults_from  # noqa: E402
from config import Config  # noqa: E402


def cell(size: int, algorithm: str, seeds: int, *, discovery: bool) -> str:
    data = synthetic_library(size, styles=min(40, max(4, size // 20)), artists=max(3, size // 12))
    defaults = defaults_from(Config.from_env({}))
    wanted = relaxed = anything = 0
    started = time.perf_counter()
    for seed in range(1, seeds + 1):
        request = defaults.with_values({"clustering_method": algorithm, "clustering_runs": 20, "seed": seed,
                                        "auto_parameter_discovery": discovery})
        result = run_in_process(data, request, seed=seed)
        sizes = [len(d.item_ids) for d in result.drafts]
        anything += bool(sizes)
        wanted += bool(sizes) and max(sizes) >= request.min_playlist_size
        relaxed += bool(result.relaxed)
    seconds = (time.perf_counter() - started) / seeds
    return (f"| {size} | {algorithm} | {'on' if discovery else 'off'} | {seeds} | {100 * wanted / seeds:.0f} % | "
            f"{relaxed} | {100 * anything / seeds:.0f} % | {seconds:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="60,233,10000")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--algorithms", default="kmeans,gmm,dbscan,spectral")
    parser.add_argument("--no-discovery", action="store_true", help="auto_parameter_discovery off (relaxation only)")
    args = parser.parse_args()
    print(machine() + ". The reference's client settings: default ranges, clustering_runs=20.\n", flush=True)
    print("| tracks | algorithm | discovery | seeds | playlist of the requested size | relaxed | any playlist | "
          "s/seed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for size in (int(s) for s in args.sizes.split(",")):
        for algorithm in args.algorithms.split(","):
            print(cell(size, algorithm, args.seeds, discovery=not args.no_discovery), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
