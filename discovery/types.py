"""What discovery code works on: tracks with their vectors, and two lookups the caller provides."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from discovery import dedup
from discovery.vectors import cosine_distance

__all__ = ["BatchNeighbours", "DiscoveryError", "Lookup", "Neighbours", "TrackInfo", "cosine_distance"]


class DiscoveryError(ValueError):
    """The one exception root of discovery: a parameter value or the data cannot be used. `parameter` names the
    request parameter at fault (None when the data is)."""

    def __init__(self, parameter: str | None, message: str) -> None:
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
    file_format: str | None = None  # "FLAC", "MP3"… from the file name
    copies: int = 1  # files of this recording in the library (discovery/versions.py); lists show this one
    copy_note: str = ""  # why this copy is the one shown, when there are several ("lossless FLAC over MP3")

    @property
    def song(self) -> tuple[str, str]:
        """Which song this is, versions folded: (normalised title, normalised artist), see `dedup.song_key`."""
        return self.song_key if self.song_key is not None else dedup.song_key(self.title, self.artist)


# query vector (d,), k → [(item_id, cosine distance)], nearest first, at most k
Neighbours = Callable[[np.ndarray, int], list[tuple[str, float]]]
# vectors (m, d), k → the Neighbours answer of each row, in one call
BatchNeighbours = Callable[[np.ndarray, int], list[list[tuple[str, float]]]]
# item ids → {item_id: TrackInfo} for those that exist
Lookup = Callable[[Sequence[str]], dict[str, TrackInfo]]
