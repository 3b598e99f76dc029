"""Which of a user's playlists a song fits, and which songs fit a playlist: playlist profiles built from their
songs' analysis, several rankers scoring every candidate song against a profile, and two ways of fusing them
(weighted z-scores, reciprocal rank fusion). Co-occurrence (PPMI over the user's playlists) is one more ranker,
used only when there are enough playlists for it to mean something.

Pure: arrays in, scores out. Rows of `Library` are the candidate songs; a playlist is a set of rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["COOCCURRENCE_MIN_PLAYLISTS", "PROFILE_CODE_VERSION", "RANKERS", "Library", "PlaylistProfile",
           "EmbeddingFit", "SongCooccurrence", "build_profile", "cooccurrence", "embedding_fit", "fuse_rrf",
           "fuse_weighted", "membership_hash", "rank_all", "song_cooccurrence", "zscores"]

PROFILE_CODE_VERSION = 1  # bump when a profile's definition changes: stored profiles are recomputed
RANKERS = ("centroid", "nearest_member", "tags", "tempo_energy")
RRF_K = 60
# Co-occurrence is used from this many playlists (bench/quality.py --cooccurrence: with fewer it added nothing to the
# fused ranking of playlists that follow the sound, and it needs pairs seen together in two playlists at least).
COOCCURRENCE_MIN_PLAYLISTS = 16
COOCCURRENCE_MAX_SONGS = 4000  # the PPMI matrix is dense over the songs the playlists hold
MIN_BPM_SPREAD = 6.0  # BPM: a playlist of one tempo still accepts a few BPM either side
MIN_ENERGY_SPREAD = 0.04


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
        v = np.asarray(vectors, dtype=np.float32)
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        as_array = np.vectorize(lambda x: np.nan if x is None else float(x), otypes=[np.float32])
        return cls(v, np.asarray(tags, dtype=np.float32), np.asarray(moods, dtype=np.float32),
                   as_array(np.asarray(bpm, dtype=object)) if len(bpm) else np.zeros(0, np.float32),
                   as_array(np.asarray(energy, dtype=object)) if len(energy) else np.zeros(0, np.float32))


@dataclass(frozen=True)
class PlaylistProfile:
    members: np.ndarray  # int64 rows of the library
    centroid: np.ndarray  # (d,) unit
    spread: float  # mean cosine distance of the members to the centroid
    tag_profile: np.ndarray  # (T + M,) mean tag and mood probabilities, unit length
    bpm_centre: float  # median (NaN when no member has a tempo)
    bpm_spread: float  # 1.4826 × median absolute deviation, at least MIN_BPM_SPREAD
    energy_centre: float
    energy_spread: float
    reasons: dict[str, str] = field(default_factory=dict)


def membership_hash(item_ids: Sequence[str]) -> str:
    """A playlist's content hash: its members, order ignored (a profile depends on the set)."""
    return hashlib.sha256("\n".join(sorted(set(item_ids))).encode()).hexdigest()[:16]


def _robust(values: np.ndarray, floor: float) -> tuple[float, float]:
    known = values[np.isfinite(values)]
    if not len(known):
        return float("nan"), float("nan")
    centre = float(np.median(known))
    return centre, max(1.4826 * float(np.median(np.abs(known - centre))), floor)


def build_profile(library: Library, members: Sequence[int]) -> PlaylistProfile:
    """The profile of the playlist whose songs are `members` (rows; at least one)."""
    rows = np.asarray(sorted(set(int(m) for m in members)), dtype=np.int64)
    if not len(rows):
        raise ValueError("a playlist profile needs at least one song")
    vectors = library.vectors[rows]
    centroid = vectors.mean(axis=0)
    centroid = centroid / max(float(np.linalg.norm(centroid)), 1e-12)
    spread = float(np.mean(1.0 - vectors @ centroid))
    tag_profile = np.concatenate([library.tags[rows].mean(axis=0), library.moods[rows].mean(axis=0)])
    tag_profile = tag_profile / max(float(np.linalg.norm(tag_profile)), 1e-12)
    bpm_centre, bpm_spread = _robust(library.bpm[rows], MIN_BPM_SPREAD)
    energy_centre, energy_spread = _robust(library.energy[rows], MIN_ENERGY_SPREAD)
    return PlaylistProfile(rows, centroid.astype(np.float32), spread, tag_profile.astype(np.float32), bpm_centre,
                           bpm_spread, energy_centre, energy_spread)


def _fit(values: np.ndarray, centre: float, spread: float) -> np.ndarray:
    """exp(−½·z²) of each value against the playlist's centre; 0.5 (no evidence either way) when unknown."""
    if not np.isfinite(centre):
        return np.full(len(values), 0.5, dtype=np.float32)
    z = (values - centre) / spread
    return np.where(np.isfinite(values), np.exp(-0.5 * z * z), 0.5).astype(np.float32)


def rank_all(library: Library, profile: PlaylistProfile, *,
             cooccurrence_scores: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each ranker's score (n,) for every row, higher is better:

    - centroid: cosine to the members' mean embedding;
    - nearest_member: cosine to the closest member (a playlist of two styles keeps both);
    - tags: cosine of the song's tags and moods to the playlist's mean tags and moods;
    - tempo_energy: how well its tempo and energy sit in the playlist's range (robust centre and spread);
    - cooccurrence (when given): PPMI with the members over the user's other playlists."""
    members = library.vectors[profile.members]
    scores = {
        "centroid": library.vectors @ profile.centroid,
        "nearest_member": (library.vectors @ members.T).max(axis=1),
        "tags": _tags(library) @ profile.tag_profile,
        "tempo_energy": _fit(library.bpm, profile.bpm_centre, profile.bpm_spread)
        * _fit(library.energy, profile.energy_centre, profile.energy_spread),
    }
    if cooccurrence_scores is not None:
        scores["cooccurrence"] = cooccurrence_scores
    return {name: np.asarray(s, dtype=np.float32) for name, s in scores.items()}


def zscores(values: np.ndarray) -> np.ndarray:
    """Values as z-scores over themselves (0 spread: all 0)."""
    spread = float(values.std()) or 1.0
    return (values - float(values.mean())) / spread


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
    """The fit of `candidates` (m, d) to the playlist whose songs are `members` (k, d); rows are unit vectors."""
    centroid = members.mean(axis=0)
    centroid = centroid / max(float(np.linalg.norm(centroid)), 1e-12)
    to_centroid = candidates @ centroid
    similarity = candidates @ members.T
    return EmbeddingFit(to_centroid, similarity.max(axis=1), similarity.argmax(axis=1))


def _tags(library: Library) -> np.ndarray:
    both = np.concatenate([library.tags, library.moods], axis=1)
    return both / np.maximum(np.linalg.norm(both, axis=1, keepdims=True), 1e-12)


def fuse_weighted(scores: Mapping[str, np.ndarray], weights: Mapping[str, float],
                  candidates: np.ndarray) -> np.ndarray:
    """Σ weight × z-score (over `candidates`, a bool mask) of each ranker; -inf outside the candidates."""
    total = np.zeros(len(candidates), dtype=np.float64)
    for name, weight in weights.items():
        if weight == 0 or name not in scores:
            continue
        values = scores[name].astype(np.float64)
        pool = values[candidates]
        spread = float(pool.std()) or 1.0
        total += weight * (values - float(pool.mean())) / spread
    return np.where(candidates, total, -np.inf)


def _ranks(values: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """1-based rank of each candidate (ties by row), inf outside."""
    order = np.lexsort((np.arange(len(values)), -np.where(candidates, values, -np.inf)))
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    return np.where(candidates, ranks, np.inf)


def fuse_rrf(scores: Mapping[str, np.ndarray], weights: Mapping[str, float], candidates: np.ndarray) -> np.ndarray:
    """Σ weight / (60 + rank) over the rankers with weight (ranks only: no calibration of scores needed)."""
    total = np.zeros(len(candidates), dtype=np.float64)
    for name, weight in weights.items():
        if weight == 0 or name not in scores:
            continue
        total += weight / (RRF_K + _ranks(scores[name], candidates))
    return np.where(candidates, total, -np.inf)


def cooccurrence(playlists: Sequence[Sequence[int]], n: int, *, min_support: int = 2) -> np.ndarray:
    """The PPMI matrix (n, n) of songs over playlists: log(P(a,b) / (P(a)·P(b))) clipped at 0, counting a pair only
    when it shares at least `min_support` playlists (PMI overrates rare pairs). Dense: for the library sizes
    AudioMuse profiles in memory this is what a user's playlists touch."""
    counts = np.zeros((n, n), dtype=np.float64)
    singles = np.zeros(n, dtype=np.float64)
    for playlist in playlists:
        rows = np.asarray(sorted(set(playlist)), dtype=np.int64)
        singles[rows] += 1
        counts[np.ix_(rows, rows)] += 1
    np.fill_diagonal(counts, 0)
    total = max(len(playlists), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log((counts / total) / np.outer(singles / total, singles / total))
    pmi[~np.isfinite(pmi)] = 0.0
    pmi[counts < min_support] = 0.0
    return np.maximum(pmi, 0.0).astype(np.float32)


@dataclass(frozen=True)
class SongCooccurrence:
    """PPMI over the songs a user's playlists hold (by item id)."""

    index: dict[str, int]
    ppmi: np.ndarray

    def scores(self, item_ids: Sequence[str], members: Sequence[str]) -> np.ndarray:
        """Each song's mean PPMI with `members` (0 for a song no playlist holds)."""
        rows = [self.index[m] for m in members if m in self.index]
        if not rows:
            return np.zeros(len(item_ids), dtype=np.float32)
        mean = self.ppmi[:, rows].mean(axis=1)
        return np.array([mean[self.index[i]] if i in self.index else 0.0 for i in item_ids], dtype=np.float32)


def song_cooccurrence(playlists: Sequence[Sequence[str]], *, min_support: int = 2) -> SongCooccurrence | None:
    """The co-occurrence ranker's data, or None when there are fewer than COOCCURRENCE_MIN_PLAYLISTS playlists (it
    must be off then) or they hold more than COOCCURRENCE_MAX_SONGS songs."""
    if len(playlists) < COOCCURRENCE_MIN_PLAYLISTS:
        return None
    index = {song: i for i, song in enumerate(dict.fromkeys(s for p in playlists for s in p))}
    if len(index) > COOCCURRENCE_MAX_SONGS:
        return None
    rows = [[index[s] for s in p] for p in playlists]
    return SongCooccurrence(index, cooccurrence(rows, len(index), min_support=min_support))


def cooccurrence_scores(ppmi: np.ndarray, members: Sequence[int]) -> np.ndarray:
    """A song's mean PPMI with the playlist's members."""
    rows = np.asarray(list(members), dtype=np.int64)
    return ppmi[:, rows].mean(axis=1) if len(rows) else np.zeros(len(ppmi), dtype=np.float32)
