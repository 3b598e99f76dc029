"""Voyager recall and query latency against exact search, to choose VOYAGER_QUERY_EF.

    .venv/bin/python bench/index_recall.py [--items 100000] [--queries 200] [--k 100]

Vectors: 200-d vectors from 400 overlapping Gaussian clusters (a stand-in for musicnn embeddings), cosine space,
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


def clustered_vectors(n: int, dims: int, *, clusters: int, seed: int, latent: int = 0) -> np.ndarray:
    """A mixture of Gaussians; with `latent` > 0 it lives in a random `latent`-dim subspace plus 5 % noise,
    as learned embeddings do (their intrinsic dimension is far below 200)."""
    rng = np.random.default_rng(seed)
    if latent:
        low = clustered_vectors(n, latent, clusters=clusters, seed=seed)
        projection = rng.normal(size=(latent, dims)) / np.sqrt(latent)
        return (low @ projection + 0.05 * rng.normal(size=(n, dims))).astype(np.float32)
    # Overlapping clusters (centre spread ≈ within-cluster spread): harder than well-separated genres.
    centres = rng.normal(size=(clusters, dims)) * 1.0
    labels = rng.integers(0, clusters, size=n)
    return (centres[labels] + rng.normal(size=(n, dims))).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--clusters", type=int, default=400, help="1 = one isotropic Gaussian, the hardest case")
    parser.add_argument("--latent", type=int, default=0, help="intrinsic dimension (0: full 200)")
    args = parser.parse_args()

    vectors = clustered_vectors(args.items, 200, clusters=args.clusters, seed=1, latent=args.latent)
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
          f"(M=16, ef_construction=200), {args.clusters} clusters, intrinsic dimension "
          f"{args.latent or 200}.\n")
    print(f"| query ef | recall@{args.k} | median ms per query |")
    print("| --- | --- | --- |")
    for ef in (100, 150, 200, 300, 400, 600, 800):  # Voyager refuses ef < k
        if ef < args.k:
            continue
        recalls, times = [], []
        for q, truth in zip(queries, exact, strict=True):
            t = time.perf_counter()
            found, _ = index.query(q, k=args.k, query_ef=ef)
            times.append((time.perf_counter() - t) * 1000)
            recalls.append(len(truth & set(found.tolist())) / args.k)
        print(f"| {ef} | {statistics.mean(recalls):.4f} | {statistics.median(times):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
