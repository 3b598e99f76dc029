"""The playlist-matching evaluation harness: how well each ranker, and the fused rankings, continue a playlist.

    .venv/bin/python bench/quality.py --corpus-data /tmp/am-dev [--seed 7] [--hold-out 3]

Reads an analyzed library (the dev corpus from ../shared/data/build-dev-corpus.sh, analyzed by a local AudioMuse
whose DATA_DIR is `--corpus-data`; nothing is written). Ground truth: the user's playlists when there are enough;
the dev corpus has none, so its albums (4 songs or more) and its three source packages (Wesnoth's orchestral score,
Extreme Tux Racer's electronic game music, OpenTTD's OpenMSX jazz and blues) stand in. K songs of each playlist are
held out (seeded) and every other song of the library is ranked against the rest; the metrics are NDCG@10,
Recall@10, R-precision and MRR (discovery/ranking_eval.py). The same seed prints the same table.

Co-occurrence (PPMI) is not in these tables: on albums and packages a held-out song shares no playlist with any
other song, so its PPMI is zero by construction. It needs a user's overlapping playlists; see RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from audio.moods import MOODS  # noqa: E402
from audio.musicnn import MODEL_NAME, MSD_TAGS  # noqa: E402
from bench.text_search import PACKAGES  # noqa: E402
from db.pool import Database  # noqa: E402
from discovery.playlist_match import RANKERS, Library  # noqa: E402
from discovery.ranking_eval import Metrics, Split, evaluate, split_playlists  # noqa: E402
from infra.embedded import EmbeddedPostgres  # noqa: E402

WEIGHT_SETS = {  # candidates for the default; the one with the best fused NDCG@10 across both truths is chosen
    "equal": {name: 1.0 for name in RANKERS},
    "sound-led": {"centroid": 1.0, "nearest_member": 1.0, "tags": 0.5, "tempo_energy": 0.25},
    "embedding-only": {"centroid": 1.0, "nearest_member": 1.0, "tags": 0.0, "tempo_energy": 0.0},
}


def read_library(corpus_data: Path) -> tuple[Library, list[dict[str, object]]]:
    server = EmbeddedPostgres(corpus_data)
    url = server.start()
    try:
        db = Database(url, max_connections=2)
        rows = db.fetch_all(
            """SELECT t.item_id, t.album, t.album_id, t.file_path, t.tags, t.moods, t.tempo_bpm, t.energy, e.vector
                 FROM tracks t JOIN embeddings e ON e.item_id = t.item_id AND e.model = %s
                ORDER BY t.item_id""", (MODEL_NAME,))
    finally:
        server.stop()
    vectors = np.stack([np.frombuffer(bytes(r["vector"]), dtype="<f4") for r in rows])
    tags = np.array([[float((r["tags"] or {}).get(t, 0.0)) for t in MSD_TAGS] for r in rows])
    moods = np.array([[float((r["moods"] or {}).get(m, 0.0)) for m in MOODS] for r in rows])
    library = Library.build(vectors, tags, moods, bpm=[r["tempo_bpm"] for r in rows],
                            energy=[r["energy"] for r in rows])
    return library, rows


def truths(rows: list[dict[str, object]]) -> dict[str, dict[str, list[int]]]:
    albums: dict[str, list[int]] = {}
    packages: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        albums.setdefault(str(r["album_id"] or r["album"]), []).append(i)
        path = str(r["file_path"] or "")
        package = next((g for g, folder in PACKAGES.items() if f"/{folder}/" in path or path.startswith(folder)),
                       None)
        if package:
            packages.setdefault(package, []).append(i)
    return {"albums (≥ 4 songs)": {k: v for k, v in albums.items() if len(v) >= 4}, "source packages": packages}


def averaged(library: Library, seeds: range, splits_by_seed: list[list[Split]],
             weights: dict[str, float]) -> dict[str, Metrics]:
    """The metrics of each ranking, averaged over the seeded splits."""
    results = [evaluate(library, splits, weights=weights, seed=s)
               for s, splits in zip(seeds, splits_by_seed, strict=True)]
    return {name: Metrics(*(float(np.mean([getattr(r[name], f) for r in results]))
                            for f in ("ndcg", "recall", "r_precision", "mrr"))) for name in results[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-data", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hold-out", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10, help="seeded splits to average (seed, seed+1, …)")
    args = parser.parse_args()
    library, rows = read_library(args.corpus_data)
    print(f"## Playlist matching quality ({time.strftime('%Y-%m-%d')}, {platform.machine()}, seeds {args.seed}–"
          f"{args.seed + args.repeats - 1}, "
          f"{len(library)} analyzed tracks)\n")
    chosen: dict[str, float] = {}
    seen: list[set[tuple[int, ...]]] = []
    for truth, playlists in truths(rows).items():
        members = {tuple(sorted(v)) for v in playlists.values()}
        if members in seen:
            print(f"### Ground truth: {truth} — the same playlists as above on this library (each album is one "
                  "package)\n")
            continue
        seen.append(members)
        seeds = range(args.seed, args.seed + args.repeats)
        splits_by_seed = [split_playlists(playlists, seed=s, hold_out=args.hold_out) for s in seeds]
        print(f"### Ground truth: {truth} — {len(splits_by_seed[0])} playlists, "
              f"{sum(len(s.held_out) for s in splits_by_seed[0])} held-out songs per split, {args.repeats} seeded "
              "splits averaged\n")
        print("| ranking | NDCG@10 | Recall@10 | R-precision | MRR |\n| --- | --- | --- | --- | --- |")

        base = averaged(library, seeds, splits_by_seed, WEIGHT_SETS["equal"])
        rows_out = {name: base[name] for name in (*RANKERS, "nearest_neighbour", "random")}
        for set_name, weights in WEIGHT_SETS.items():
            result = averaged(library, seeds, splits_by_seed, weights)
            rows_out[f"weighted ({set_name})"] = result["weighted"]
            rows_out[f"RRF ({set_name})"] = result["rrf"]
            chosen[f"weighted ({set_name})"] = chosen.get(f"weighted ({set_name})", 0.0) + result["weighted"].ndcg
            chosen[f"RRF ({set_name})"] = chosen.get(f"RRF ({set_name})", 0.0) + result["rrf"].ndcg
        for name, m in rows_out.items():
            d = m.as_dict()
            print(f"| {name} | {d['ndcg@10']:.3f} | {d['recall@10']:.3f} | {d['r_precision']:.3f} | {d['mrr']:.3f} |")
        best_single = max(RANKERS, key=lambda r: base[r].ndcg)
        print(f"\nBest single ranker: {best_single} (NDCG@10 {base[best_single].ndcg:.3f}); random "
              f"{base['random'].ndcg:.3f}.\n")
    winner = max(chosen, key=lambda k: chosen[k])
    print(f"Best fusion over the ground truths (sum of NDCG@10): **{winner}** ({chosen[winner]:.3f}); "
          + ", ".join(f"{k} {v:.3f}" for k, v in sorted(chosen.items(), key=lambda kv: -kv[1])[1:]) + ".")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
