"""Voyager recall and query latency against exact search, to choose VOYAGER_QUERY_EF.

    .venv/bin/python bench/index_recall.py [--items 100000] [--queries 200] [--k 100]

Vectors: clustered 200-d vectors shaped like musicnn embeddings (a mixture of Gaussians), cosine space,
M=16, ef_construction=200 (the defaults). Prints recall@k and median query time per query ef.
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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from voyager_manager import build_index  # noqa: E402


def clustered_vectors(n: int, dims: int, *, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dims)) * 3.0
    labels = rng.integers(0, clusters, size=n)
    return (centres[labels] + rng.normal(size=(n, dims))).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()

    vectors = clustered_vectors(args.items, 200, clusters=400, seed=1)
    ids = [str(i) for i in range(args.items)]
    started = time.perf_counter()
    index = build_index(ids, vectors)
    build_seconds = time.perf_counter() - started
    rng = np.random.default_rng(2)
    queries = vectors[rng.choice(args.items, size=args.queries, replace=False)]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = [set(np.argsort(-(unit @ (q / np.linalg.norm(q))))[: args.k].tolist()) for q in queries]

    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}. {args.items} items × 200 dims, build {build_seconds:.1f} s "
          f"(M=16, ef_construction=200).\n")
    print(f"| query ef | recall@{args.k} | median ms per query |")
    print("| --- | --- | --- |")
    for ef in (10, 100, 200, 300, 400, 600, 800):
        if ef < args.k and ef != 10:
            continue
        recalls, times = [], []
        for q, truth in zip(queries, exact, strict=True):
            t = time.perf_counter()
            found, _ = index.query(q, k=min(args.k, ef) if ef < args.k else args.k, query_ef=max(ef, 1))
            times.append((time.perf_counter() - t) * 1000)
            recalls.append(len(truth & set(found.tolist())) / args.k)
        print(f"| {ef} | {statistics.mean(recalls):.4f} | {statistics.median(times):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
