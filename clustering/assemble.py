"""From the best run to finished playlists: place the whole library into its clusters, clean each playlist up,
keep the most different ones, name and shuffle them.

A run clusters only a sample; every analyzed track then joins the cluster whose centre is nearest in the run's
model space, if it lies within that cluster's radius (the 95th percentile of its sample members' distances) and
within MAX_DISTANCE when set. Inside a playlist songs are ranked by closeness to the centre before duplicates, the
per-artist cap and the size cap are applied, so the caps keep the most typical songs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clustering.naming import distinct_names, feature_name, profile_words
from clustering.postprocess import (
    cap_per_artist,
    fisher_yates,
    limit_size,
    order_by_centrality,
    remove_duplicates,
    select_most_different,
)
from clustering.search import PreparedLibrary, RunResult, refit

RADIUS_PERCENTILE = 95
SMALL_CLUSTER = 20
CHUNK_ROWS = 8192


@dataclass(frozen=True)
class AssemblySettings:
    max_distance: float = 0.0          # 0: no limit beyond the cluster's radius
    max_songs: int = 40                # 0: unlimited
    max_per_artist: int = 3
    min_size: int = 8
    top_n: int = 8                     # 0: every playlist that qualifies
    duplicate_cosine: float = 0.01
    duplicate_lookback: int = 0
    genres: tuple[str, ...] = ()


@dataclass
class PlaylistDraft:
    """A finished playlist before publishing; `name` has no _automatic suffix yet."""

    cluster: int
    name: str
    feature_name: str
    item_ids: list[str]
    top_tags: list[str]
    top_moods: list[str]
    tempo_range: tuple[float, float]
    sample_songs: list[tuple[str, str]] = field(default_factory=list)


def nearest_centres(points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest centre, Euclidean distance to it) for every row of `points`, in chunks."""
    nearest = np.empty(len(points), dtype=np.int64)
    distance = np.empty(len(points), dtype=np.float64)
    centre_sq = (centres ** 2).sum(axis=1)
    for start in range(0, len(points), CHUNK_ROWS):
        block = points[start:start + CHUNK_ROWS]
        sq = (block ** 2).sum(axis=1)[:, None] - 2 * block @ centres.T + centre_sq[None, :]
        best = sq.argmin(axis=1)
        nearest[start:start + len(block)] = best
        distance[start:start + len(block)] = np.sqrt(np.maximum(sq[np.arange(len(block)), best], 0))
    return nearest, distance


def _clean_members(ordered: list[int], library: PreparedLibrary, settings: AssemblySettings) -> list[int]:
    """Duplicates out, then the artist and size caps, over the members ordered by centrality. All three keep
    songs in order, so the first max_songs survivors depend only on a prefix: work on growing prefixes instead of
    comparing every pair of a 50,000-song cluster."""
    data = library.data
    prefix = max(4 * settings.max_songs, 200) if settings.max_songs else len(ordered)
    song_titles = data.song_titles()
    while True:
        kept = remove_duplicates(ordered[:prefix], embeddings=data.embeddings, titles=song_titles,
                                 artists=data.artists, cosine_threshold=settings.duplicate_cosine,
                                 lookback=settings.duplicate_lookback)
        kept = limit_size(cap_per_artist(kept, data.artists, settings.max_per_artist), settings.max_songs)
        if prefix >= len(ordered) or (settings.max_songs and len(kept) >= settings.max_songs):
            return kept
        prefix *= 4


def assemble_playlists(library: PreparedLibrary, best: RunResult, settings: AssemblySettings, *,
                       seed: int) -> list[PlaylistDraft]:
    data = library.data
    sample = best.sample_rows()
    fitted = refit(library, params=best.params, seed=best.seed, sample=sample, init_centroids=best.init_array())
    if not len(fitted.centres):
        return []
    points = fitted.project(library.features)
    nearest, distance = nearest_centres(points, fitted.centres)
    radius = np.zeros(len(fitted.centres))
    for c in range(len(fitted.centres)):
        members = sample[fitted.labels == c]
        # small clusters keep every member: the percentile of a handful of distances would drop one of them
        if members.size >= SMALL_CLUSTER:
            radius[c] = np.percentile(distance[members], RADIUS_PERCENTILE)
        else:
            radius[c] = distance[members].max() if members.size else 0.0
    keep = distance <= radius[nearest] + 1e-9
    if settings.max_distance > 0:
        keep &= distance <= settings.max_distance
    candidates: list[tuple[int, list[int]]] = []
    for c in range(len(fitted.centres)):
        members = np.flatnonzero((nearest == c) & keep)
        kept = _clean_members(list(order_by_centrality(members, points, fitted.centres[c])), library, settings)
        if len(kept) >= settings.min_size:
            candidates.append((c, kept))
    if not candidates:
        return []
    profiles = np.vstack([np.concatenate([data.tags[idx].mean(axis=0), data.moods[idx].mean(axis=0)])
                          for _, idx in candidates])
    chosen = select_most_different(profiles, [len(idx) for _, idx in candidates], settings.top_n)
    rng = np.random.default_rng(seed)
    drafts = []
    words: list[list[str]] = []  # each draft's profile words, to tell apart playlists of the same name
    genre_set = set(settings.genres) or set(data.tag_names)
    for position in chosen:
        cluster, idx = candidates[position]
        rows = np.asarray(idx, dtype=np.int64)
        tag_profile = data.tags[rows].mean(axis=0)
        mood_profile = data.moods[rows].mean(axis=0)
        tempos = data.tempo[rows][np.isfinite(data.tempo[rows])]
        median_tempo = float(np.median(tempos)) if tempos.size else float("nan")
        name = feature_name(tag_profile=tag_profile, tag_names=data.tag_names, tempo_bpm=median_tempo,
                            mood_profile=mood_profile, mood_names=data.mood_names, genre_tags=genre_set)
        ordered_ids = [data.item_ids[i] for i in fisher_yates(list(idx), rng)]
        words.append(profile_words(tag_profile=tag_profile, tag_names=data.tag_names, mood_profile=mood_profile,
                                   mood_names=data.mood_names))
        drafts.append(PlaylistDraft(
            cluster=cluster, name=name, feature_name=name, item_ids=ordered_ids,
            top_tags=[data.tag_names[i] for i in np.argsort(-tag_profile, kind="stable")[:5]],
            top_moods=[data.mood_names[i] for i in np.argsort(-mood_profile, kind="stable")[:3]],
            tempo_range=(round(float(tempos.min()), 1), round(float(tempos.max()), 1)) if tempos.size else (0.0, 0.0),
            sample_songs=[(data.titles[i], data.artists[i]) for i in idx[:8]]))
    for draft, unique in zip(drafts, distinct_names([d.name for d in drafts], words), strict=True):
        draft.name = draft.feature_name = unique
    return drafts
