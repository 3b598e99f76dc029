"""Ranking: the scores candidates are ordered by, and the two ways several scores are fused into one. Hybrid
search (keyword + semantic), text search (the concept engine, CLAP) and playlist matching all rank through here.

- Fusion: each ranking becomes a part — a z-score (playlist matching), a score divided by its best (hybrid search)
  or a reciprocal rank 1 / (RRF_K + rank) (reciprocal rank fusion) — and the fused score is Σ weight × part.
- Order: the k best rows of a score vector (a CLAP or embedding matrix times a query), ties broken by a key, or
  every row in order.
- Playlist rankers: each is one function `(library, profile) -> (n,) scores, higher is better`, registered in
  RANKERS by name; a new ranker is one more function there, and `rank_all`, the evaluation harness
  (discovery/ranking_eval.py, bench/quality.py) and the fusions pick it up by its name.

Pure numpy: arrays in, scores out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

__all__ = ["RANKERS", "RRF_K", "EmbeddingFit", "Library", "PlaylistProfile", "Ranker", "centroid", "embedding_fit",
           "fuse", "fuse_rrf", "fuse_weighted", "nearest_member", "ordered", "rank_all", "ranks", "reciprocal_ranks",
           "row_chunks", "tags", "tempo_energy", "to_unit_rows", "top_cosine", "top_k", "unit_mean", "unit_rows",
           "zscores"]

RRF_K = 60  # reciprocal rank fusion's damping constant (Cormack et al.; 60 throughout)
CHUNK_ROWS = 16_384  # rows of a library handled at a time: a million songs' (n, m) products never sit in memory


# --- parts and fusion ---------------------------------------------------------------------------------------------
def zscores(values: np.ndarray, *, over: np.ndarray | None = None) -> np.ndarray:
    """`values` (n,) as z-scores: mean and standard deviation taken over `values[over]` (a bool mask; all when None),
    applied to every value. A spread of 0 counts as 1 (all equal: all 0). Keeps the dtype of `values`."""
    pool = values if over is None else values[over]
    spread = float(pool.std()) or 1.0
    return (values - float(pool.mean())) / spread


def ranks(values: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """1-based rank (float64, highest value first, ties by row) of each candidate (bool mask (n,)), inf outside."""
    order = ordered(np.where(candidates, values, -np.inf))
    ranked = np.empty(len(values), dtype=np.float64)
    ranked[order] = np.arange(1, len(values) + 1)
    return np.where(candidates, ranked, np.inf)


def reciprocal_ranks(values: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """1 / (RRF_K + rank) of each candidate, 0 outside: a ranking's part in reciprocal rank fusion."""
    return 1.0 / (RRF_K + ranks(values, candidates))


def fuse(parts: Mapping[str, np.ndarray], weights: Mapping[str, float], n: int) -> np.ndarray:
    """Σ weight × part (float64 (n,)), in the order of `weights`, over the parts that have a non-zero weight."""
    total = np.zeros(n, dtype=np.float64)
    for name, weight in weights.items():
        if weight == 0 or name not in parts:
            continue
        total += weight * parts[name]
    return total


def fuse_weighted(scores: Mapping[str, np.ndarray], weights: Mapping[str, float],
                  candidates: np.ndarray) -> np.ndarray:
    """Σ weight × z-score (over `candidates`, a bool mask (n,)) of each ranker's scores (n,); -inf outside."""
    parts = {name: zscores(scores[name].astype(np.float64), over=candidates)
             for name, weight in weights.items() if weight != 0 and name in scores}
    return np.where(candidates, fuse(parts, weights, len(candidates)), -np.inf)


def fuse_rrf(scores: Mapping[str, np.ndarray], weights: Mapping[str, float], candidates: np.ndarray) -> np.ndarray:
    """Σ weight / (RRF_K + rank among the candidates) of each ranker (ranks only: no calibration of scores needed);
    -inf outside the candidates."""
    parts = {name: reciprocal_ranks(scores[name], candidates)
             for name, weight in weights.items() if weight != 0 and name in scores}
    return np.where(candidates, fuse(parts, weights, len(candidates)), -np.inf)


# --- top k --------------------------------------------------------------------------------------------------------
def ordered(scores: np.ndarray) -> np.ndarray:
    """Every row (int64) of `scores` (n,), highest first, ties by row: a full, stable order."""
    return np.lexsort((np.arange(len(scores)), -scores))


def top_k(scores: np.ndarray, k: int, *, tie_key: np.ndarray | None = None) -> np.ndarray:
    """The rows (int64) of the `k` highest `scores` (n,), best first, ties by `tie_key[row]` (default: the row). A
    partial sort, for a k much smaller than n: of rows tied at the k-th score, which make the cut is argpartition's
    choice (the same for the same scores); `ordered` when that must be the tie key's too. k is clipped to n; k ≤ 0
    gives no rows."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    best = np.argpartition(-scores, k - 1)[:k]
    return best[np.lexsort((best if tie_key is None else tie_key[best], -scores[best]))]


def top_cosine(matrix: np.ndarray, vector: np.ndarray, *, k: int,
               tie_key: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The `k` rows of `matrix` (n, d) float32, unit rows, closest to `vector` (d,): their rows, best first (ties by
    `tie_key`), and the cosine similarity (n,) float32 of every row."""
    similarities = matrix @ vector.astype(np.float32)
    return top_k(similarities, k, tie_key=tie_key), similarities


def unit_rows(vectors: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """`vectors` (k, d) as float32 rows of unit length (a zero row stays zero)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def row_chunks(n: int, size: int = CHUNK_ROWS) -> Iterator[slice]:
    """Consecutive slices of `size` rows covering n rows; a remainder under half a chunk joins the last one. A tiny
    product goes to another BLAS kernel whose sums can differ in the last bit from the same rows in a large one:
    with chunks this size the chunked figures are the unchunked ones."""
    starts = list(range(0, n, size))
    if len(starts) > 1 and n - starts[-1] < size // 2:
        starts.pop()
    for start, stop in pairwise([*starts, n]):
        yield slice(start, stop)


def to_unit_rows(matrix: np.ndarray) -> np.ndarray:
    """`matrix` (n, d) float32 scaled in place to rows of unit length, a chunk at a time (a zero row stays zero):
    unit_rows' numbers without a copy of the matrix. Returns `matrix`."""
    for rows in row_chunks(len(matrix)):
        part = matrix[rows]
        part /= np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
    return matrix


def unit_mean(vectors: np.ndarray) -> np.ndarray:
    """The mean of `vectors` (k, d) scaled to unit length (a zero mean stays zero): a playlist's centroid."""
    mean = vectors.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


# --- playlist rankers ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Library:
    """The candidate songs: unit embedding rows, tag and mood probabilities, tempo and energy (NaN unknown)."""

    vectors: np.ndarray  # (n, d) float32, unit rows
    tags: np.ndarray  # (n, T) float32
    moods: np.ndarray  # (n, M) float32
    bpm: np.ndarray  # (n,) float32
    energy: np.ndarray  # (n,) float32

    def __len__(self) -> int:
        return len(self.vectors)

    @classmethod
    def build(cls, vectors: np.ndarray, tags: np.ndarray, moods: np.ndarray, bpm: Sequence[float | None],
              energy: Sequence[float | None]) -> Library:
        as_array = np.vectorize(lambda x: np.nan if x is None else float(x), otypes=[np.float32])
        return cls(unit_rows(vectors), np.asarray(tags, dtype=np.float32), np.asarray(moods, dtype=np.float32),
                   as_array(np.asarray(bpm, dtype=object)) if len(bpm) else np.zeros(0, np.float32),
                   as_array(np.asarray(energy, dtype=object)) if len(energy) else np.zeros(0, np.float32))


@dataclass(frozen=True)
class PlaylistProfile:
    """What the rankers know of a playlist (discovery.playlist_matching.build_profile makes it)."""

    members: np.ndarray  # int64 rows of the library
    centroid: np.ndarray  # (d,) unit
    spread: float  # mean cosine distance of the members to the centroid
    tag_profile: np.ndarray  # (T + M,) mean tag and mood probabilities, unit length
    bpm_centre: float  # median (NaN when no member has a tempo)
    bpm_spread: float  # 1.4826 × median absolute deviation, at least a floor
    energy_centre: float
    energy_spread: float
    reasons: dict[str, str] = field(default_factory=dict)


Ranker = Callable[[Library, PlaylistProfile], np.ndarray]


def centroid(library: Library, profile: PlaylistProfile) -> np.ndarray:
    """Cosine to the members' mean embedding."""
    return library.vectors @ profile.centroid


def nearest_member(library: Library, profile: PlaylistProfile) -> np.ndarray:
    """Cosine to the closest member (a playlist of two styles keeps both)."""
    return (library.vectors @ library.vectors[profile.members].T).max(axis=1)


def tags(library: Library, profile: PlaylistProfile) -> np.ndarray:
    """Cosine of the song's tags and moods to the playlist's mean tags and moods."""
    both = np.concatenate([library.tags, library.moods], axis=1)
    both = both / np.maximum(np.linalg.norm(both, axis=1, keepdims=True), 1e-12)
    return both @ profile.tag_profile


def _fit(values: np.ndarray, centre: float, spread: float) -> np.ndarray:
    """exp(−½·z²) of each value against the playlist's centre; 0.5 (no evidence either way) when unknown."""
    if not np.isfinite(centre):
        return np.full(len(values), 0.5, dtype=np.float32)
    z = (values - centre) / spread
    return np.where(np.isfinite(values), np.exp(-0.5 * z * z), 0.5).astype(np.float32)


def tempo_energy(library: Library, profile: PlaylistProfile) -> np.ndarray:
    """How well the song's tempo and energy sit in the playlist's range (robust centre and spread)."""
    return (_fit(library.bpm, profile.bpm_centre, profile.bpm_spread)
            * _fit(library.energy, profile.energy_centre, profile.energy_spread))


RANKERS: dict[str, Ranker] = {"centroid": centroid, "nearest_member": nearest_member, "tags": tags,
                              "tempo_energy": tempo_energy}


def rank_all(library: Library, profile: PlaylistProfile, *,
             cooccurrence_scores: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each ranker's score (n,) float32 for every row, by name (RANKERS' order), higher is better; with
    `cooccurrence_scores` (PPMI with the members over the user's other playlists) also "cooccurrence"."""
    scores = {name: ranker(library, profile) for name, ranker in RANKERS.items()}
    if cooccurrence_scores is not None:
        scores["cooccurrence"] = cooccurrence_scores
    return {name: np.asarray(s, dtype=np.float32) for name, s in scores.items()}


@dataclass(frozen=True)
class EmbeddingFit:
    """How candidate songs fit a playlist by the two embedding rankers, the default the harness chose."""

    to_centroid: np.ndarray  # cosine to the members' mean
    nearest_cosine: np.ndarray  # cosine to the closest member
    nearest: np.ndarray  # index (into the members) of that member

    @property
    def parts(self) -> list[np.ndarray]:
        """The two rankers as z-scores over the candidates."""
        return [zscores(self.to_centroid), zscores(self.nearest_cosine)]

    @property
    def score(self) -> np.ndarray:
        """Their mean: what suggestions and *extend a playlist* rank by."""
        return np.mean(self.parts, axis=0)


def embedding_fit(candidates: np.ndarray, members: np.ndarray) -> EmbeddingFit:
    """The fit of `candidates` (m, d) to the playlist whose songs are `members` (k, d); rows are unit vectors. The
    same figures as the centroid and nearest_member rankers, for candidates that need not be a Library. The
    candidates' cosines to the members are taken CHUNK_ROWS candidates at a time (all a million songs' would be
    120 MB for a playlist of 30)."""
    nearest_cosine = np.empty(len(candidates), dtype=np.result_type(candidates, members))
    nearest = np.empty(len(candidates), dtype=np.intp)
    for rows in row_chunks(len(candidates)):
        similarity = candidates[rows] @ members.T
        nearest_cosine[rows] = similarity.max(axis=1)
        nearest[rows] = similarity.argmax(axis=1)
    return EmbeddingFit(candidates @ unit_mean(members), nearest_cosine, nearest)
