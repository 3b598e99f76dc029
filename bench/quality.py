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
from discovery.analysis_eval import tempo_hits, weighted_key_score  # noqa: E402
from discovery.playlist_matching import library_of  # noqa: E402
from discovery.ranking import RANKERS, Library  # noqa: E402
from discovery.ranking_eval import Metrics, Split, evaluate, split_playlists  # noqa: E402
from infra.embedded import EmbeddedPostgres  # noqa: E402

WEIGHT_SETS = {  # candidates for the default; the one with the best fused NDCG@10 across both truths is chosen
    "equal": {name: 1.0 for name in RANKERS},
    "sound-led": {"centroid": 1.0, "nearest_member": 1.0, "tags": 0.5, "tempo_energy": 0.25},
    "embedding-only": {"centroid": 1.0, "nearest_member": 1.0, "tags": 0.0, "tempo_energy": 0.0},
}


USER_PLAYLISTS_NEEDED = 5  # the user's own playlists (4 analyzed songs or more) are the ground truth from this many


def read_library(corpus_data: Path) -> tuple[Library, list[dict[str, object]], dict[str, list[str]],
                                             dict[str, set[str]]]:
    """The analyzed songs, the user's own playlists (name → item ids) and the songs rejected for each."""
    server = EmbeddedPostgres(corpus_data)
    url = server.start()
    try:
        db = Database(url, max_connections=2)
        from db.migrate import apply_migrations
        from db.playlist_matching import rejected_pairs, user_playlists

        apply_migrations(url)  # an instance analyzed before playlist matching existed
        own = {p["name"]: list(p["item_ids"]) for p in user_playlists(db)}
        names = {p["playlist_id"]: p["name"] for p in user_playlists(db)}
        rejected: dict[str, set[str]] = {}
        for item_id, playlist_id in rejected_pairs(db):
            if playlist_id in names:
                rejected.setdefault(names[playlist_id], set()).add(item_id)
        rows = db.fetch_all(
            """SELECT t.item_id, t.album, t.album_id, t.file_path, t.tags, t.moods, t.tempo_bpm, t.energy, e.vector,
                      t.musical_key, t.scale
                 FROM tracks t JOIN embeddings e ON e.item_id = t.item_id AND e.model = %s
                ORDER BY t.item_id""", (MODEL_NAME,))
    finally:
        server.stop()
    library = library_of(rows, tag_names=MSD_TAGS, mood_names=MOODS)
    return library, rows, own, rejected


def truths(rows: list[dict[str, object]], own: dict[str, list[str]]) -> dict[str, dict[str, list[int]]]:
    row_of = {str(r["item_id"]): i for i, r in enumerate(rows)}
    mine = {name: [row_of[i] for i in ids if i in row_of] for name, ids in own.items()}
    mine = {name: members for name, members in mine.items() if len(members) >= 4}
    albums: dict[str, list[int]] = {}
    packages: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        albums.setdefault(str(r["album_id"] or r["album"]), []).append(i)
        path = str(r["file_path"] or "")
        package = next((g for g, folder in PACKAGES.items() if f"/{folder}/" in path or path.startswith(folder)),
                       None)
        if package:
            packages.setdefault(package, []).append(i)
    found = {"albums (≥ 4 songs)": {k: v for k, v in albums.items() if len(v) >= 4}, "source packages": packages}
    if len(mine) >= USER_PLAYLISTS_NEEDED:
        return {"your playlists": mine, **found}
    return found


def averaged(library: Library, seeds: range, splits_by_seed: list[list[Split]],
             weights: dict[str, float]) -> dict[str, Metrics]:
    """The metrics of each ranking, averaged over the seeded splits."""
    results = [evaluate(library, splits, weights=weights, seed=s)
               for s, splits in zip(seeds, splits_by_seed, strict=True)]
    return {name: Metrics(*(float(np.mean([getattr(r[name], f) for r in results]))
                            for f in ("ndcg", "recall", "r_precision", "mrr"))) for name in results[0]}


def cooccurrence_threshold(library: Library, seed: int, repeats: int) -> None:
    """How many playlists co-occurrence needs before it helps: synthetic users whose playlists follow a hidden
    grouping of the library (8 groups, not aligned with the sound), 6 songs each; fused NDCG@10 of the embedding
    rankers with and without PPMI as the number of playlists grows."""
    rng = np.random.default_rng(seed)
    n = len(library)
    hidden = rng.permutation(n) % 8
    # the sound's own grouping: 8 k-means-like groups by the nearest of 8 spread-out songs
    anchors = [int(rng.integers(n))]
    for _ in range(7):
        anchors.append(int(np.argmin((library.vectors @ library.vectors[anchors].T).max(axis=1))))
    by_sound = (library.vectors @ library.vectors[anchors].T).argmax(axis=1)
    for title, groups in (("a hidden grouping the sound does not show", hidden),
                          ("the sound's own grouping", by_sound)):
        _cooccurrence_table(library, groups, title, seed, repeats)


def _cooccurrence_table(library: Library, groups: np.ndarray, title: str, seed: int, repeats: int) -> None:
    print(f"\n### Co-occurrence with playlists that follow {title}\n")
    print("Synthetic playlists of 6 songs, each from one of 8 groups of the library; 2 held out per playlist; mean "
          f"over {repeats} users.\n")
    print("| playlists | fused without PPMI | fused with PPMI (support ≥ 2) | PPMI alone |\n| --- | --- | --- | --- |")
    weights = {"centroid": 1.0, "nearest_member": 1.0}
    for count in (4, 8, 16, 32, 64, 128):
        without, with_ppmi, alone = [], [], []
        for r in range(repeats):
            user = np.random.default_rng(seed * 1000 + r * 31 + count)
            playlists = {}
            for p in range(count):
                members = np.flatnonzero(groups == user.integers(int(groups.max()) + 1))
                if len(members) < 4:
                    members = np.flatnonzero(groups == np.bincount(groups).argmax())
                playlists[f"p{p:03d}"] = sorted(user.choice(members, size=min(6, len(members)), replace=False).tolist())
            splits = split_playlists(playlists, seed=seed + r, hold_out=2)
            base = evaluate(library, splits, weights=weights, seed=seed + r)
            both = evaluate(library, splits, weights={**weights, "cooccurrence": 1.0}, seed=seed + r,
                            use_cooccurrence=True)
            without.append(base["weighted"].ndcg)
            with_ppmi.append(both["weighted"].ndcg)
            alone.append(both["cooccurrence"].ndcg)
        print(f"| {count} | {np.mean(without):.3f} | {np.mean(with_ppmi):.3f} | {np.mean(alone):.3f} |")


def analysis_quality(rows: list[dict[str, object]], corpus_data: Path) -> None:
    """Tempo (MIREX accuracy 1: within 4 %; accuracy 2: also at ×2, ×3, ×½, ×⅓) and key (weighted score) against the
    corpus's MIDI-rendered ground truth, re-encode and excerpt retrieval with the committed model, and the model's
    conformance to the reference outputs."""
    import csv

    truth_file = ROOT / "var" / "dev-corpus" / "ground_truth.csv"
    print("\n### Analysis quality\n")
    if truth_file.exists():
        music = ROOT / "var" / "dev-corpus" / "music"
        by_path = {}
        for r in rows:
            path = Path(str(r["file_path"]))
            by_path[path.relative_to(music).as_posix() if path.is_relative_to(music) else path.as_posix()] = r
        acc1 = acc2 = tempo_n = 0
        key_scores = []
        for truth in csv.DictReader(truth_file.open()):
            row = by_path.get(truth["path"])
            if row is None:
                continue
            if truth["tempo_bpm"]:
                tempo_n += 1
                first, second = tempo_hits(row["tempo_bpm"], float(truth["tempo_bpm"]))  # type: ignore[arg-type]
                acc1 += first
                acc2 += second
            if truth["key"]:
                key = f"{row['musical_key']} {row['scale']}" if row["musical_key"] else None
                key_scores.append(weighted_key_score(key, truth["key"]))
        print(f"Rendered pieces with known tempo and key ({truth_file.relative_to(ROOT)}): tempo accuracy 1 "
              f"**{acc1}/{tempo_n}** ({100 * acc1 / max(tempo_n, 1):.0f} %), accuracy 2 **{acc2}/{tempo_n}** "
              f"({100 * acc2 / max(tempo_n, 1):.0f} %); weighted key score **{np.mean(key_scores):.2f}** over "
              f"{len(key_scores)} pieces ({sum(1 for k in key_scores if k == 1.0)} exact).\n")
    retrieval(rows)
    conformance()


def retrieval(rows: list[dict[str, object]], count: int = 12) -> None:
    """The same recording re-encoded (MP3 at 96 kbit/s) and cut (its middle 30 s) must find the original as its
    nearest neighbour among every analyzed track."""
    import subprocess
    import tempfile

    from audio.analyze import analyze_samples
    from audio.decode import decode_file
    from audio.musicnn import MusicnnModel

    model = MusicnnModel(ROOT / "models" / "msd_musicnn.onnx", intra_op_threads=1)
    vectors = np.stack([np.frombuffer(bytes(r["vector"]), dtype="<f4") for r in rows])  # type: ignore[arg-type]
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    music = ROOT / "var" / "dev-corpus" / "music"
    picks = [i for i in range(0, len(rows), max(1, len(rows) // count))][:count]
    hits = {"re-encoded (MP3 96 kbit/s)": 0, "excerpt (middle 30 s)": 0}
    with tempfile.TemporaryDirectory() as work:
        for i in picks:
            source = music / str(rows[i]["file_path"])
            mp3 = Path(work) / "copy.mp3"
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-b:a", "96k", str(mp3)],
                           check=True)
            samples = decode_file(source)
            middle = len(samples) // 2
            variants = {"re-encoded (MP3 96 kbit/s)": decode_file(mp3),
                        "excerpt (middle 30 s)": samples[max(0, middle - 240_000):middle + 240_000]}
            for name, signal in variants.items():
                vector = analyze_samples(signal, model=model).embedding
                vector = vector / np.linalg.norm(vector)
                hits[name] += int(np.argmax(vectors @ vector)) == i
    print("Retrieval with the committed model: " + "; ".join(f"{name}: the original is the nearest neighbour for "
                                                              f"**{n}/{len(picks)}**" for name, n in hits.items())
          + ".\n")


def conformance() -> None:
    from audio.musicnn import MusicnnModel

    reference = np.load(ROOT / "models" / "msd_musicnn_reference.npz")
    output = MusicnnModel(ROOT / "models" / "msd_musicnn.onnx", intra_op_threads=1).predict(reference["input"])
    print(f"Conformance of models/msd_musicnn.onnx to the reference outputs (models/msd_musicnn_reference.npz): "
          f"largest embedding difference {np.abs(output.embeddings - reference['embedding']).max():.2e}, largest tag "
          f"difference {np.abs(output.tags - reference['tags']).max():.2e}.\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-data", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hold-out", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10, help="seeded splits to average (seed, seed+1, …)")
    parser.add_argument("--cooccurrence", action="store_true", help="also measure when co-occurrence helps")
    parser.add_argument("--analysis", action="store_true",
                        help="also tempo/key accuracy, re-encode and excerpt retrieval, model conformance")
    args = parser.parse_args()
    library, rows, own, rejected = read_library(args.corpus_data)
    print(f"## Playlist matching quality ({time.strftime('%Y-%m-%d')}, {platform.machine()}, seeds {args.seed}–"
          f"{args.seed + args.repeats - 1}, "
          f"{len(library)} analyzed tracks)\n")
    chosen: dict[str, float] = {}
    seen: list[set[tuple[int, ...]]] = []
    row_of = {str(r["item_id"]): i for i, r in enumerate(rows)}
    negatives = {name: {row_of[i] for i in ids if i in row_of} for name, ids in rejected.items()}
    if len(own) < USER_PLAYLISTS_NEEDED:
        print(f"The library holds {len(own)} playlists of the user's own (at least {USER_PLAYLISTS_NEEDED} with 4 "
              "analyzed songs are needed to be the ground truth): albums and packages stand in.\n")
    for truth, playlists in truths(rows, own).items():
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
        if truth == "your playlists" and negatives:
            shares: dict[str, float] = {}
            evaluate(library, splits_by_seed[0], weights=WEIGHT_SETS["embedding-only"], seed=args.seed,
                     negatives=negatives, negative_share=shares)
            print("Share of songs you rejected in the top 10: " + ", ".join(
                f"{k} {v:.3f}" for k, v in sorted(shares.items())) + "\n")

    if args.cooccurrence:
        cooccurrence_threshold(library, args.seed, args.repeats)
    if args.analysis:
        analysis_quality(rows, args.corpus_data)
    winner = max(chosen, key=lambda k: chosen[k])
    print(f"Best fusion over the ground truths (sum of NDCG@10): **{winner}** ({chosen[winner]:.3f}); "
          + ", ".join(f"{k} {v:.3f}" for k, v in sorted(chosen.items(), key=lambda kv: -kv[1])[1:]) + ".")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
