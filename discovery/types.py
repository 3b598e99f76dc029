"""What discovery code works on: tracks with their vectors, and two lookups the caller provides."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from discovery import dedup


class DiscoveryError(ValueError):
    """A parameter value cannot be used; the message names the parameter and the value."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class TrackInfo:
    item_id: str
    title: str
    artist: str
    vector: np.ndarray  # (d,) float32 embedding, as stored in the index
    album: str = ""
    duration_seconds: float | None = None
    tempo_bpm: float | None = None
    camelot: str | None = None  # e.g. "8A"
    energy: float | None = None  # 0..1
    moods: Mapping[str, float] = field(default_factory=dict)  # danceable, aggressive, happy, party, relaxed, sad
    # dedup.song_key(title, artist) when the caller has it already (the web process's catalogue computes it once per
    # track at load); None: `song` computes it (through dedup's cache) when asked.
    song_key: tuple[str, str] | None = field(default=None, compare=False, repr=False)

    @property
    def song(self) -> tuple[str, str]:
        """Which song this is, versions folded: (normalised title, normalised artist), see `dedup.song_key`."""
        return self.song_key if self.song_key is not None else dedup.song_key(self.title, self.artist)


# query vector (d,), k → [(item_id, cosine distance)], nearest first, at most k
Neighbours = Callable[[np.ndarray, int], list[tuple[str, float]]]
# item ids → {item_id: TrackInfo} for those that exist
Lookup = Callable[[Sequence[str]], dict[str, TrackInfo]]


def _norm(x: np.ndarray) -> Any:
    """np.linalg.norm(x) of a real vector, the same arithmetic in the same dtype, without the general function's
    overhead (cosine_distance runs hundreds of times per request)."""
    if not issubclass(x.dtype.type, np.inexact):
        x = x.astype(float)
    flat = x.ravel(order="K")
    return np.sqrt(flat.dot(flat))


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 − cos(a, b), in [0, 2]; the metric of the index."""
    a, b = np.asarray(a), np.asarray(b)
    denominator = float(_norm(a) * _norm(b))
    if denominator == 0.0:
        return 1.0
    return float(1.0 - np.dot(a, b) / denominator)
