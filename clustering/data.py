"""The library as matrices for clustering, and the stratified song samples each run clusters.

`LibraryData` holds one row per analyzed track: the 50 tag probabilities, the six mood scores, tempo, energy and
the musicnn embedding. Runs cluster either the *score vector* (tempo, energy, tags, moods) or the embedding,
standardised over the whole library. Each run clusters a sample balanced over the tracks' primary genres, so a
library that is 70 % rock still yields playlists for its jazz; successive runs swap a share of the sample.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clustering.errors import ClusteringError
from discovery.versions import SONG_ID_PREFIX

__all__ = ["ClusteringError", "LibraryData", "StratifiedSampler", "genre_target", "library_from_rows", "primary_genres"]


@dataclass(frozen=True)
class LibraryData:
    """Per-track arrays, all in the same row order (item-id order from the database).

    tags: (n, T) tag probabilities; moods: (n, M) scores 0..1; tempo: (n,) bpm, NaN when unknown;
    energy: (n,) 0..1; embeddings: (n, D) float32.
    """

    item_ids: list[str]
    titles: list[str]
    artists: list[str]
    tag_names: tuple[str, ...]
    tags: np.ndarray
    mood_names: tuple[str, ...]
    moods: np.ndarray
    tempo: np.ndarray
    energy: np.ndarray
    embeddings: np.ndarray
    # the stored song id of each track that has one (discovery/versions.py), "" for the others
    songs: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tempo)

    def score_vectors(self) -> np.ndarray:
        """(n, 2 + T + M): tempo (unknown → the library median), energy, tags, moods; not yet scaled."""
        tempo = self.tempo.astype(np.float64)
        known = tempo[np.isfinite(tempo)]
        tempo = np.where(np.isfinite(tempo), tempo, float(np.median(known)) if known.size else 120.0)
        return np.column_stack([tempo, self.energy, self.tags, self.moods]).astype(np.float64)

    def features(self, *, use_embeddings: bool) -> np.ndarray:
        """The matrix runs cluster, standardised per column over the whole library (constant columns stay 0)."""
        raw = self.embeddings.astype(np.float64) if use_embeddings else self.score_vectors()
        mean = raw.mean(axis=0)
        std = raw.std(axis=0)
        raw -= mean  # in place: at a million tracks each temporary of the embeddings is 1.6 GB
        raw /= np.where(std > 1e-12, std, 1.0)
        return raw

    def to_bytes(self, *, numbers_only: bool = False, embeddings: bool = True) -> bytes:
        """A compact snapshot (npz) that batch jobs load, so every batch of one task sees the same library. With
        `numbers_only` it holds what a run needs (tags, moods, tempo, energy and, with `embeddings`, the
        embeddings) and not the names: a batch never reads them, and at a million tracks they are ~150 MB."""
        arrays: dict[str, Any] = {"tag_names": np.array(self.tag_names, dtype=object),
                                  "mood_names": np.array(self.mood_names, dtype=object), "tags": self.tags,
                                  "moods": self.moods, "tempo": self.tempo, "energy": self.energy}
        if embeddings:
            arrays["embeddings"] = self.embeddings
        if not numbers_only:
            arrays.update(item_ids=np.array(self.item_ids, dtype=object), titles=np.array(self.titles, dtype=object),
                          artists=np.array(self.artists, dtype=object), songs=np.array(self.songs, dtype=object))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> LibraryData:
        with np.load(io.BytesIO(blob), allow_pickle=True) as z:
            names = {key: list(z[key]) if key in z else [] for key in ("item_ids", "titles", "artists", "songs")}
            return cls(item_ids=names["item_ids"], titles=names["titles"], artists=names["artists"],
                       tag_names=tuple(z["tag_names"]), tags=z["tags"], mood_names=tuple(z["mood_names"]),
                       moods=z["moods"], tempo=z["tempo"], energy=z["energy"],
                       embeddings=z["embeddings"] if "embeddings" in z else np.zeros((len(z["tempo"]), 0),
                                                                                     dtype=np.float32),
                       songs=names["songs"])

    @functools.cached_property
    def _song_titles(self) -> list[str]:
        if not self.songs:
            return self.titles
        return [SONG_ID_PREFIX + song if song else title for title, song in zip(self.titles, self.songs, strict=True)]

    def song_titles(self) -> list[str]:
        """What tells songs apart for the duplicate rule: the title, or the stored song id where the title alone
        would merge two songs or miss a version (discovery/versions.py). Made once (every playlist asks)."""
        return self._song_titles


def primary_genres(tags: np.ndarray, tag_names: tuple[str, ...], genres: list[str]) -> np.ndarray:
    """(n,) index into `genres` of each track's most probable genre tag; -1 when none of them is above 0."""
    columns = [tag_names.index(g) for g in genres if g in tag_names]
    if not columns:
        raise ClusteringError(f"none of the stratification genres {genres[:5]}… is a tag of this library")
    names = [g for g in genres if g in tag_names]
    sub = tags[:, columns]
    best = sub.argmax(axis=1)
    genre_of = np.array([genres.index(names[b]) for b in best], dtype=np.int64)
    genre_of[sub.max(axis=1) <= 0] = -1
    return genre_of


def genre_target(genre_of: np.ndarray, *, percentile: float, minimum: int) -> int:
    """Songs per genre a sample aims for: the percentile of the genre counts, at least `minimum`."""
    counts = np.bincount(genre_of[genre_of >= 0]) if (genre_of >= 0).any() else np.array([0])
    counts = counts[counts > 0]
    at_percentile = float(np.percentile(counts, percentile)) if counts.size else 0.0
    return max(minimum, int(round(at_percentile)))


class StratifiedSampler:
    """Samples of at most `target` songs per primary genre (tracks with no genre form one more group)."""

    def __init__(self, genre_of: np.ndarray, *, target: int) -> None:
        self.target = target
        self.size = len(genre_of)
        self.groups = [np.flatnonzero(genre_of == g) for g in np.unique(genre_of)]

    def initial(self, rng: np.random.Generator) -> np.ndarray:
        """A fresh sample: sorted row indices."""
        chosen = [group if len(group) <= self.target else rng.choice(group, self.target, replace=False)
                  for group in self.groups]
        return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)

    def perturb(self, sample: np.ndarray, rng: np.random.Generator, *, fraction: float) -> np.ndarray:
        """The sample with `fraction` of each genre's songs swapped for unsampled songs of the same genre."""
        in_sample = np.zeros(self.size, dtype=bool)
        in_sample[sample] = True
        result = []
        for group in self.groups:
            taken = group[in_sample[group]]
            free = group[~in_sample[group]]
            swap = min(int(round(fraction * len(taken))), len(free))
            if swap:
                out = rng.choice(len(taken), swap, replace=False)
                taken = np.concatenate([np.delete(taken, out), rng.choice(free, swap, replace=False)])
            result.append(taken)
        return np.sort(np.concatenate(result)) if result else sample


def library_from_rows(rows: Iterable[Mapping[str, Any]], *, count: int, tag_names: tuple[str, ...],
                      mood_names: tuple[str, ...]) -> LibraryData:
    """LibraryData from database rows (item_id, title, artist, tempo_bpm, energy, tags {name: p}, moods
    {name: score}, song_id, `vector`: float32 bytes), `count` of them expected (the arrays grow if more come). Each
    row is read once and let go: a million-track library costs its arrays, not its rows."""
    width = len(tag_names) + len(mood_names)
    numbers = np.zeros((max(count, 0), width + 2), dtype=np.float32)  # tags, moods, tempo, energy
    embeddings: np.ndarray | None = None
    item_ids: list[str] = []
    titles: list[str] = []
    artists: list[str] = []
    songs: list[str] = []
    n = 0
    for row in rows:
        vector = np.frombuffer(bytes(row["vector"]), dtype="<f4")
        if embeddings is None:
            embeddings = np.zeros((len(numbers), len(vector)), dtype=np.float32)
        if n == len(numbers):  # rows stored since they were counted
            grow = max(n // 8, 1_000)
            numbers = np.concatenate([numbers, np.zeros((grow, numbers.shape[1]), np.float32)])
            embeddings = np.concatenate([embeddings, np.zeros((grow, embeddings.shape[1]), np.float32)])
        tags, moods = row["tags"], row["moods"]
        numbers[n, :len(tag_names)] = [float(tags.get(t, 0.0)) for t in tag_names]
        numbers[n, len(tag_names):width] = [float(moods.get(m, 0.0)) for m in mood_names]
        numbers[n, width] = np.nan if row["tempo_bpm"] is None else row["tempo_bpm"]
        numbers[n, width + 1] = row["energy"] or 0.0
        embeddings[n] = vector
        item_ids.append(row["item_id"])
        titles.append(row["title"] or "")
        artists.append(row["artist"] or "")
        songs.append(row.get("song_id") or "")
        n += 1
    numbers = numbers[:n] if n < len(numbers) else numbers
    return LibraryData(
        item_ids=item_ids, titles=titles, artists=artists, tag_names=tag_names,
        tags=np.ascontiguousarray(numbers[:, :len(tag_names)]), mood_names=mood_names,
        moods=np.ascontiguousarray(numbers[:, len(tag_names):width]), tempo=numbers[:, width].copy(),
        energy=numbers[:, width + 1].copy(),
        embeddings=embeddings[:n] if embeddings is not None else np.zeros((0, 0), dtype=np.float32), songs=songs)
