"""Benchmark artist similarity and print the figures (markdown).

    .venv/bin/python bench/artists.py [--tracks 100000] [--artists 10000] [--queries 300] [--corpus-data /tmp/am-dev]

Synthetic library (like bench/similarity.py): N tracks of 200-d vectors around 400 styles in a 32-d subspace plus
noise (bench/index_recall.clustered_vectors); A artists with a long-tailed number of songs (most 1–10, a few
hundred at most), each artist's songs a run of alike rows. Measures what the worker does after the track
index (fit every artist, build the component index, serialize), the load the web process does, and the latency of
one /api/similar_artists answer's domain work (candidates, exact divergence, explanation of each match) over
random query artists: p50 and p99.

With `--corpus-data` (an analyzed dev corpus, see bench/quality.py): quality — how often an artist's nearest
artists (n=5) share its source package, against the rate of a random pair of artists; the lift is their ratio.
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

from bench.index_recall import clustered_vectors  # noqa: E402
from discovery.artist_similarity import ArtistModel, explain, fit_artists, similar_artists  # noqa: E402


def synthetic_library(tracks: int, artists: int, *, seed: int = 3) -> tuple[list[str], list[str], np.ndarray]:
    """(item ids, artist names, vectors (tracks, 200)): artist sizes long-tailed, each artist one or two styles."""
    rng = np.random.default_rng(seed)
    sizes = np.clip(np.round(rng.lognormal(mean=1.2, sigma=1.1, size=artists)), 1, 400).astype(int)
    sizes = np.maximum(1, np.round(sizes * tracks / sizes.sum())).astype(int)
    excess = int(sizes.sum()) - tracks  # rounding: take the difference from (or give it to) the largest artists
    largest = np.argsort(-sizes, kind="stable")[:abs(excess)]
    sizes[largest] -= int(np.sign(excess))
    pool = clustered_vectors(tracks * 2, 200, clusters=400, seed=1, latent=32)
    # Each artist takes a run of rows along a random direction: its songs are alike, as one artist's are.
    order = np.argsort(pool @ rng.normal(size=200))
    names: list[str] = []
    picks: list[np.ndarray] = []
    for a, size in enumerate(sizes.tolist()):
        start = int(rng.integers(0, len(pool) - size - 1))
        picks.append(order[start:start + size])
        names.extend([f"Artist {a}"] * size)
    rows = np.concatenate(picks)[:tracks]
    return [f"t{i:06d}" for i in range(tracks)], names[:tracks], pool[rows]


def measure(tracks: int, artists: int, queries: int) -> None:
    ids, names, vectors = synthetic_library(tracks, artists)
    counts = np.bincount(np.unique(names, return_inverse=True)[1])
    started = time.perf_counter()
    model = fit_artists(ids, [f"Song {i}" for i in range(len(ids))], names, [None] * len(ids), vectors)
    fitted = time.perf_counter() - started
    data, index = model.to_bytes(), model.index_bytes()
    built = time.perf_counter() - started
    started = time.perf_counter()
    loaded = ArtistModel.from_bytes(data, index)
    load = time.perf_counter() - started
    rng = np.random.default_rng(11)
    latencies, plain = [], []
    for artist in rng.integers(0, len(loaded), size=queries).tolist():
        t0 = time.perf_counter()
        matches = similar_artists(loaded, artist, n=10)
        t1 = time.perf_counter()
        for match in matches:
            explain(loaded, artist, match.artist)
        t2 = time.perf_counter()
        plain.append(t1 - t0)
        latencies.append(t2 - t0)
    mixtures = int((np.diff(loaded.component_offsets) > 1).sum())
    print(f"## Artist similarity ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()})\n")
    print(f"{len(ids):,} tracks, {len(loaded):,} artists (songs per artist: median {int(np.median(counts))}, "
          f"{(counts <= 10).mean():.0%} with 1–10, max {counts.max()}), {len(loaded.weights):,} components "
          f"({mixtures:,} artists with a mixture).\n")
    print("| step | figure |\n| --- | --- |")
    print(f"| fit every artist + component index | {fitted:.1f} s |")
    print(f"| … + serialize (model {len(data) / 1e6:.1f} MB, index {len(index) / 1e6:.1f} MB) | {built:.1f} s |")
    print(f"| load in the web process | {load:.2f} s |")
    print(f"| similar artists, n=10: p50 / p99 | {1000 * statistics.median(plain):.1f} / "
          f"{1000 * np.percentile(plain, 99):.1f} ms |")
    print(f"| … with component matches (explanations): p50 / p99 | {1000 * statistics.median(latencies):.1f} / "
          f"{1000 * np.percentile(latencies, 99):.1f} ms |")


def corpus_lift(corpus_data: Path) -> None:
    from audio.musicnn import MODEL_NAME
    from bench.text_search import PACKAGES
    from db.pool import Database
    from infra.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(corpus_data)
    url = server.start()
    try:
        rows = Database(url, max_connections=2).fetch_all(
            """SELECT t.item_id, t.title, t.artist, t.file_path, e.vector FROM tracks t
                 JOIN embeddings e ON e.item_id = t.item_id AND e.model = %s ORDER BY t.item_id""", (MODEL_NAME,))
    finally:
        server.stop()
    vectors = np.stack([np.frombuffer(bytes(r["vector"]), dtype="<f4") for r in rows])
    model = fit_artists([r["item_id"] for r in rows], [r["title"] or "" for r in rows],
                        [r["artist"] or "" for r in rows], [None] * len(rows), vectors)
    path_of = {r["item_id"]: str(r["file_path"] or "") for r in rows}

    def package(artist: int) -> str | None:
        found = {next((g for g, folder in PACKAGES.items() if f"/{folder}/" in path_of[model.track_item_ids[i]]),
                      None) for i in model.songs(artist)}
        return found.pop() if len(found) == 1 else None

    packages = [package(a) for a in range(len(model))]
    labelled = [a for a in range(len(model)) if packages[a]]
    shared = total = 0
    for a in labelled:
        for match in similar_artists(model, a, n=5):
            if packages[match.artist]:
                total += 1
                shared += packages[match.artist] == packages[a]
    pairs = [(a, b) for a in labelled for b in labelled if a != b]
    baseline = sum(packages[a] == packages[b] for a, b in pairs) / max(len(pairs), 1)
    rate = shared / max(total, 1)
    print(f"\nDev corpus: {len(rows)} songs, {len(model)} artists ({len(labelled)} within one source package): the "
          f"5 nearest artists share the package {rate:.1%} of the time, a random pair {baseline:.1%}: "
          f"lift **{rate / baseline if baseline else float('nan'):.2f}×**.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--artists", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--corpus-data", type=Path, default=None)
    args = parser.parse_args()
    measure(args.tracks, args.artists, args.queries)
    corpus = args.corpus_data or next((p for p in (Path("/tmp/am-dev"),) if p.exists()), None)
    if corpus is None:
        print("\nDev corpus: not available here (no --corpus-data, no /tmp/am-dev): no quality figure.")
    else:
        corpus_lift(corpus)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
