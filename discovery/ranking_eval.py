"""Offline evaluation of playlist continuation: hold out K songs of each ground-truth playlist (seeded), rank every
other song of the library against the rest of the playlist, and score the ranking — NDCG@10, Recall@10,
R-precision and MRR — for each ranker, the fused rankings, a random ranking and a nearest-neighbour baseline (the
songs closest to one member). The same seed gives the same numbers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from discovery.playlist_matching import build_profile, cooccurrence, cooccurrence_scores
from discovery.ranking import Library, fuse_rrf, fuse_weighted, ordered, rank_all

__all__ = ["Metrics", "Split", "evaluate", "metrics_of", "split_playlists"]

K = 10


@dataclass(frozen=True)
class Split:
    name: str
    kept: tuple[int, ...]  # the playlist's songs the profile is built from
    held_out: tuple[int, ...]  # the songs it should rank high


@dataclass(frozen=True)
class Metrics:
    ndcg: float
    recall: float
    r_precision: float
    mrr: float

    def as_dict(self) -> dict[str, float]:
        return {"ndcg@10": round(self.ndcg, 4), "recall@10": round(self.recall, 4),
                "r_precision": round(self.r_precision, 4), "mrr": round(self.mrr, 4)}


def split_playlists(playlists: Mapping[str, Sequence[int]], *, seed: int, hold_out: int = 3,
                    min_kept: int = 2) -> list[Split]:
    """Hold out `hold_out` songs of each playlist (fewer for a small one, keeping at least `min_kept`); playlists
    that cannot keep `min_kept` and hold out one are left out. Sorted by name, so the same seed splits alike."""
    rng = random.Random(seed)
    splits = []
    for name in sorted(playlists):
        songs = sorted(set(playlists[name]))
        k = min(hold_out, len(songs) - min_kept)
        if k < 1:
            continue
        held = sorted(rng.sample(songs, k))
        splits.append(Split(name, tuple(s for s in songs if s not in held), tuple(held)))
    return splits


def metrics_of(ranking: Sequence[int], relevant: Sequence[int]) -> Metrics:
    """Binary-relevance metrics of a ranking (best first) against the relevant rows."""
    wanted = set(relevant)
    r = len(wanted)
    gains = [1.0 if row in wanted else 0.0 for row in ranking[:K]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(r, K)))
    first = next((i for i, row in enumerate(ranking) if row in wanted), None)
    return Metrics(ndcg=dcg / ideal if ideal else 0.0, recall=sum(gains) / r if r else 0.0,
                   r_precision=sum(1 for row in ranking[:r] if row in wanted) / r if r else 0.0,
                   mrr=1.0 / (first + 1) if first is not None else 0.0)


def _mean(items: Sequence[Metrics]) -> Metrics:
    if not items:
        return Metrics(0.0, 0.0, 0.0, 0.0)
    return Metrics(*(float(np.mean([getattr(m, f) for m in items])) for f in ("ndcg", "recall", "r_precision", "mrr")))


def _order(scores: np.ndarray, candidates: np.ndarray) -> list[int]:
    rows = np.flatnonzero(candidates)
    return rows[ordered(scores[rows])].tolist()


def negatives_in_top(ranking: Sequence[int], negatives: set[int], k: int = K) -> float:
    """The share of the top `k` that are songs the user rejected for this playlist (lower is better)."""
    top = ranking[:k]
    return sum(1 for row in top if row in negatives) / len(top) if top else 0.0


def evaluate(library: Library, splits: Sequence[Split], *, weights: Mapping[str, float], seed: int,
             use_cooccurrence: bool = False, min_support: int = 2,
             extra: Mapping[str, Callable[[np.ndarray, Split], np.ndarray]] | None = None,
             negatives: Mapping[str, set[int]] | None = None,
             negative_share: dict[str, float] | None = None) -> dict[str, Metrics]:
    """Mean metrics over `splits` of each ranker, `weighted` and `rrf` fusions (by `weights`), `random` and
    `nearest_neighbour`. With `use_cooccurrence`, PPMI over the *kept* songs of every playlist is a ranker too.
    With `negatives` (the songs the user rejected, by playlist name), `negative_share` is filled with each
    ranking's mean share of rejected songs in its top 10."""
    rng = np.random.default_rng(seed)
    n = len(library)
    ppmi = cooccurrence([s.kept for s in splits], n, min_support=min_support) if use_cooccurrence else None
    results: dict[str, list[Metrics]] = {}

    shares: dict[str, list[float]] = {}

    def add(name: str, ranking: list[int], split: Split) -> None:
        results.setdefault(name, []).append(metrics_of(ranking, split.held_out))
        if negatives and split.name in negatives:
            shares.setdefault(name, []).append(negatives_in_top(ranking, negatives[split.name]))

    for split in splits:
        candidates = np.ones(n, dtype=bool)
        candidates[list(split.kept)] = False
        profile = build_profile(library, split.kept)
        scores = rank_all(library, profile,
                          cooccurrence_scores=cooccurrence_scores(ppmi, split.kept) if ppmi is not None else None)
        for name, values in scores.items():
            add(name, _order(values, candidates), split)
        active = {k: v for k, v in weights.items() if k in scores}
        add("weighted", _order(fuse_weighted(scores, active, candidates), candidates), split)
        add("rrf", _order(fuse_rrf(scores, active, candidates), candidates), split)
        add("random", _order(rng.random(n), candidates), split)
        seed_song = split.kept[int(rng.integers(len(split.kept)))]
        add("nearest_neighbour", _order(library.vectors @ library.vectors[seed_song], candidates), split)
        for name, ranker in (extra or {}).items():
            add(name, _order(ranker(candidates, split), candidates), split)
    if negative_share is not None:
        negative_share.update({name: float(np.mean(values)) for name, values in shares.items()})
    return {name: _mean(items) for name, items in results.items()}
