"""A compressed Voyager index with exact re-ranking, against the float32 index (issue 29's memory question).

    .venv/bin/python bench/compressed_index.py [--tracks 100000] [--queries 300]

Same vectors as the other scale benchmarks (clustered 200-d, 400 clusters in a 32-d subspace plus noise). For each
storage type (Float32, E4M3, Float8) it builds an index (M 16, ef_construction 100) and measures its size, and for
each query the top 10 by brute force against: the index's own top 10, and the index's top C candidates re-ranked
by exact cosine on float32 vectors read from a memory-mapped file (outside the Python heap; the OS pages them in and
can drop them). Recall@10 and the median time per query (one thread, query ef 400).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import voyager  # noqa: E402

from bench.index_recall import clustered_vectors  # noqa: E402

QUERY_EF = 400


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--candidates", default="10,30,60")
    args = parser.parse_args()
    n = args.tracks
    vectors = clustered_vectors(n, 200, clusters=400, seed=1, latent=32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    rng = np.random.default_rng(11)
    queries = rng.choice(n, size=args.queries, replace=False)
    exact = [set(np.argsort(-(unit @ unit[q]))[:10].tolist()) for q in queries]
    folder = Path(tempfile.mkdtemp(prefix="audiomuse-compressed-"))
    mapped_path = folder / "vectors.f32"
    unit.astype(np.float32).tofile(mapped_path)
    mapped = np.memmap(mapped_path, dtype=np.float32, mode="r", shape=(n, 200))
    candidates = [int(c) for c in args.candidates.split(",")]
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"{time.strftime('%Y-%m-%d')}; {n:,} vectors × 200, {args.queries} queries, query ef {QUERY_EF}, "
             "one thread.\n",
             "| index storage | size | re-ranked from | recall@10 | p50 per query |", "| --- | --- | --- | --- | --- |"]
    for storage in (voyager.StorageDataType.Float32, voyager.StorageDataType.E4M3, voyager.StorageDataType.Float8):
        index = voyager.Index(voyager.Space.Cosine, num_dimensions=200, M=16, ef_construction=100,
                              storage_data_type=storage)
        started = time.perf_counter()
        index.add_items(unit.astype(np.float32), ids=list(range(n)))
        build = time.perf_counter() - started
        size_mb = len(index.as_bytes()) / 2**20
        name = str(storage).split(".")[-1]
        for c in [10] + [c for c in candidates if c != 10]:
            found, times = [], []
            for q in queries:
                started = time.perf_counter()
                ids, _ = index.query(unit[q], k=c, query_ef=max(QUERY_EF, c))
                if c > 10:
                    rows = np.sort(ids.astype(np.int64))
                    scores = np.asarray(mapped[rows]) @ unit[q]
                    top = rows[np.argsort(-scores)[:10]]
                else:
                    top = ids[:10]
                times.append((time.perf_counter() - started) * 1000)
                found.append(set(int(i) for i in top))
            recall = statistics.mean(len(e & f) / 10 for e, f in zip(exact, found, strict=True))
            source = "— (the index's own order)" if c == 10 else f"top {c}, float32 memory-mapped"
            lines.append(f"| {name} (built in {build:.0f} s) | {size_mb:.0f} MB | {source} | {recall:.4f} | "
                         f"{statistics.median(times):.2f} ms |")
        del index
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
