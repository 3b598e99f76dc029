"""Artist similarity: each artist as a small Gaussian mixture over its songs' embeddings, compared by a divergence.

Model. An artist's songs (their embeddings made unit length, so the geometry is the cosine one of the track index)
are fitted with one diagonal Gaussian when the artist has fewer than `min_tracks_for_mixture` songs (most artists:
1–10 songs), else with a diagonal mixture of up to `max_components` components (about one per
`tracks_per_component` songs; scikit-learn's EM with a fixed seed). Variances are shrunk towards the library's
pooled within-artist variance with `prior_strength` pseudo-songs, so a one-song artist is a Gaussian of the
library's typical spread around its song rather than a spike, and a two-song artist is not "narrower" than a
fifty-song one only because it has fewer samples.

Divergence. Between two mixtures A and B, the weighted matching of components (Goldberger's matching-based
approximation, made symmetric):

    D(A, B) = ½ [ Σ_i w_i min_j DB(a_i, b_j) + Σ_j w_j min_i DB(a_i, b_j) ] / d

where DB is the closed-form Bhattacharyya distance between two diagonal Gaussians and d the dimension (so figures
do not depend on the embedding size). Why Bhattacharyya rather than KL: it is symmetric, and it grows with the log
of a variance ratio rather than with the ratio itself, so a shrunk one-song component next to a broad fifty-song
one does not dominate the score; and why matching rather than a KL approximation by sampling: it is exact, cheap
(k_a × k_b pairs of closed forms, k ≤ 3) and deterministic. D(A, A) = 0, D ≥ 0, D(A, B) = D(B, A).

Search. A Voyager index (Euclidean) holds every component mean; a query takes the artists owning the nearest
components of each of its own components, then ranks those candidates exactly by D. An explanation is the closest
component pairs, each with the 2–3 songs nearest each component's mean.

Everything is in flat arrays (components and songs in artist order, addressed by offsets), so 100k artists stay a
few arrays rather than 100k objects.
"""

from __future__ import annotations

import io
import json
import math
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import voyager

from discovery.dedup import normalise_artist
from discovery.textfold import fold
from discovery.types import DiscoveryError, Lookup, TrackInfo
from discovery.vectors import NearDuplicates, cosine_distance

__all__ = ["ArtistMatch", "ArtistModel", "ArtistOptions", "ComponentMatch", "RadioTrack", "UnknownArtist",
           "artist_radio", "artist_vector", "divergence", "explain", "fallback_artist_id", "fit_artists",
           "similar_artists"]

# uuid5 namespace of the ids made up for artists whose media server has none (MPD, a music folder)
ARTIST_ID_NAMESPACE = uuid.UUID("6f0b7c2e-3a51-4d0c-9a57-8e7f5b1d2c40")
_GUID = "0123456789abcdef"


class UnknownArtist(DiscoveryError):
    """No artist of the model has that name or id."""

    def __init__(self, parameter: str | None, artist: str) -> None:
        super().__init__(parameter, f"artist '{artist}' is not in the analyzed library")
        self.artist = artist


def fallback_artist_id(name: str) -> str:
    """A stable id (32 hex digits, GUID-like) from the folded artist name, for servers that have no artist ids."""
    return uuid.uuid5(ARTIST_ID_NAMESPACE, normalise_artist(name)).hex


def _id_key(value: str) -> str:
    """An artist id as compared: GUIDs with or without dashes, in either case, are one id."""
    text = value.strip()
    bare = text.replace("-", "").lower()
    return bare if len(bare) == 32 and all(c in _GUID for c in bare) else text


@dataclass(frozen=True)
class ArtistOptions:
    """How artists are fitted. Defaults are the ones the worker uses."""

    max_components: int = 3
    tracks_per_component: int = 8  # a mixture gets about one component per this many songs
    min_tracks_for_mixture: int = 16  # fewer songs: one Gaussian
    prior_strength: float = 4.0  # pseudo-songs of the pooled within-artist variance
    variance_floor: float = 1e-4
    representatives: int = 3  # songs kept per component to explain a match
    seed: int = 0
    index_m: int = 16
    index_ef_construction: int = 100


@dataclass(frozen=True)
class ArtistMatch:
    artist: int  # row in the model
    divergence: float


@dataclass(frozen=True)
class ComponentMatch:
    """A pair of components of the query artist (1) and a similar artist (2), their distance (DB / d), their
    weights, and their representative songs as (item_id, title, distance to the component mean)."""

    component1_index: int
    component2_index: int
    distance: float
    component1_weight: float
    component2_weight: float
    artist1_songs: list[tuple[str, str, float]]
    artist2_songs: list[tuple[str, str, float]]


@dataclass(frozen=True)
class RadioTrack:
    track: TrackInfo
    distance: float  # cosine distance to the seed artist's centroid
    artist: int  # row of the artist it comes from


class ArtistModel:
    """Every artist of a library as a mixture; rows 0..A-1. Build with `fit_artists`, store with `to_bytes`."""

    def __init__(self, *, names: list[str], keys: list[str], artist_ids: list[str], track_offsets: np.ndarray,
                 track_item_ids: list[str], track_titles: list[str], track_artists: list[str],
                 component_offsets: np.ndarray, weights: np.ndarray, means: np.ndarray, variances: np.ndarray,
                 representatives: np.ndarray, representative_distances: np.ndarray,
                 index: voyager.Index | None = None) -> None:
        self.names = names
        self.keys = keys
        self.artist_ids = artist_ids
        self.track_offsets = track_offsets  # (A+1,) int64: artist a's songs are rows offsets[a]:offsets[a+1]
        self.track_item_ids = track_item_ids
        self.track_titles = track_titles
        self.track_artists = track_artists  # the song's own artist tag (may carry "feat. X")
        self.component_offsets = component_offsets  # (A+1,) int64
        self.weights = weights  # (C,) float32, summing to 1 per artist
        self.means = means  # (C, d) float32
        self.variances = variances  # (C, d) float32, floored
        self.log_det = np.log(variances.astype(np.float64)).sum(axis=1) if len(variances) else np.zeros(0)
        self.representatives = representatives  # (C, R) int32 song rows, -1 for none
        self.representative_distances = representative_distances  # (C, R) float32 Euclidean distances
        self.index = index if index is not None else _component_index(means, ArtistOptions())
        self._by_id: dict[str, int] = {}
        self._by_key: dict[str, int] = {}
        self._by_fold: dict[str, int] = {}
        counts = self.track_counts
        # When two artists share an id or a fold, the one with more songs answers to it.
        for row in sorted(range(len(names)), key=lambda r: (-int(counts[r]), r)):
            self._by_id.setdefault(_id_key(artist_ids[row]), row)
            self._by_key.setdefault(keys[row], row)
            self._by_fold.setdefault(fold(names[row]).strip(), row)
        self.folded_names = [fold(name) for name in names]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def dimensions(self) -> int:
        return int(self.means.shape[1]) if self.means.ndim == 2 else 0

    @property
    def track_counts(self) -> np.ndarray:
        return np.diff(self.track_offsets)

    def components(self, artist: int) -> range:
        return range(int(self.component_offsets[artist]), int(self.component_offsets[artist + 1]))

    def songs(self, artist: int) -> range:
        return range(int(self.track_offsets[artist]), int(self.track_offsets[artist + 1]))

    def find(self, value: str) -> int | None:
        """The artist row for a media-server artist id, a name, or a name as typed (case, accents, "feat. X")."""
        text = value.strip()
        if not text:
            return None
        for found in (self._by_id.get(_id_key(text)), self._by_fold.get(fold(text).strip()),
                      self._by_key.get(normalise_artist(text))):
            if found is not None:
                return found
        return None

    def resolve(self, value: str, *, parameter: str | None = None) -> int:
        found = self.find(value)
        if found is None:
            raise UnknownArtist(parameter, value)
        return found

    def search(self, text: str, *, limit: int, offset: int = 0) -> list[int]:
        """Artists whose folded name contains the folded `text`, most songs first (then by name)."""
        needle = fold(text).strip()
        if not needle:
            return []
        counts = self.track_counts
        hits = [row for row, name in enumerate(self.folded_names) if needle in name]
        hits.sort(key=lambda r: (not self.folded_names[r].startswith(needle), -int(counts[r]), self.folded_names[r]))
        return hits[offset:offset + limit]

    # --- storage -------------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The model without its index (`index_bytes`), as one .npz document."""
        strings = json.dumps({"names": self.names, "keys": self.keys, "artist_ids": self.artist_ids,
                              "track_item_ids": self.track_item_ids, "track_titles": self.track_titles,
                              "track_artists": self.track_artists}, ensure_ascii=False).encode()
        out = io.BytesIO()
        np.savez(out, strings=np.frombuffer(strings, dtype=np.uint8), track_offsets=self.track_offsets,
                 component_offsets=self.component_offsets, weights=self.weights, means=self.means,
                 variances=self.variances, representatives=self.representatives,
                 representative_distances=self.representative_distances)
        return out.getvalue()

    def index_bytes(self) -> bytes:
        return bytes(self.index.as_bytes())

    @classmethod
    def from_bytes(cls, data: bytes, index_data: bytes | None = None) -> ArtistModel:
        with np.load(io.BytesIO(data)) as arrays:
            strings = json.loads(arrays["strings"].tobytes().decode())
            fields = {name: arrays[name] for name in ("track_offsets", "component_offsets", "weights", "means",
                                                      "variances", "representatives", "representative_distances")}
        index = voyager.Index.load(io.BytesIO(index_data)) if index_data else None
        return cls(**strings, **fields, index=index)


# --- fitting ----------------------------------------------------------------------------------------------------
def fit_artists(item_ids: Sequence[str], titles: Sequence[str], artists: Sequence[str],
                server_artist_ids: Sequence[str | None], vectors: np.ndarray, *,
                options: ArtistOptions | None = None) -> ArtistModel:
    """Fit every artist of a library.

    Args:
        item_ids, titles, artists, server_artist_ids: one per song; the artist is the song's artist tag, the id the
            media server's artist id (None when it has none: an id is derived from the folded name).
        vectors: (n, d) embeddings of the songs, in the same order (any length; they are made unit length).
        options: see ArtistOptions.

    Returns:
        The ArtistModel with its component index. Songs are grouped by `dedup.normalise_artist` of their artist
        (case, accents and "feat. X" ignored).
    """
    options = options or ArtistOptions()
    n = len(item_ids)
    if not (len(titles) == len(artists) == len(server_artist_ids) == n) or vectors.ndim != 2 \
            or vectors.shape[0] != n:
        raise DiscoveryError(None, f"{n} songs but {len(titles)} titles, {len(artists)} artists, "
                                   f"{len(server_artist_ids)} ids and vectors of shape {vectors.shape}")
    d = int(vectors.shape[1]) if n else 0
    unit = np.asarray(vectors, dtype=np.float32).copy()
    if n:
        lengths = np.linalg.norm(unit, axis=1, keepdims=True)
        unit /= np.where(lengths > 0, lengths, 1.0)
    groups: dict[str, list[int]] = {}
    for i, artist in enumerate(artists):
        groups.setdefault(normalise_artist(artist or ""), []).append(i)
    keys = sorted(groups)
    members = [sorted(groups[k], key=lambda i: (fold(titles[i]), item_ids[i])) for k in keys]
    prior = _pooled_variance(unit, members, floor=options.variance_floor)

    names: list[str] = []
    artist_ids: list[str] = []
    order: list[int] = []
    track_offsets, component_offsets = [0], [0]
    weights: list[np.ndarray] = []
    means: list[np.ndarray] = []
    variances: list[np.ndarray] = []
    reps: list[np.ndarray] = []
    rep_distances: list[np.ndarray] = []
    for key, rows in zip(keys, members, strict=True):
        names.append(Counter(artists[i] for i in rows).most_common(1)[0][0] or "Unknown artist")
        known = Counter(str(server_artist_ids[i]) for i in rows if server_artist_ids[i])
        artist_ids.append(known.most_common(1)[0][0] if known else fallback_artist_id(key))
        start = len(order)
        order.extend(rows)
        track_offsets.append(len(order))
        w, mu, var, assigned = _fit_one(unit[rows], prior, options)
        r, rd = _representatives(unit[rows], mu, assigned, count=options.representatives)
        weights.append(w)
        means.append(mu)
        variances.append(var)
        reps.append(np.where(r >= 0, r + start, -1))
        rep_distances.append(rd)
        component_offsets.append(component_offsets[-1] + len(w))
    shape = (0, d)
    all_means = np.concatenate(means).astype(np.float32) if means else np.zeros(shape, np.float32)
    return ArtistModel(
        names=names, keys=keys, artist_ids=artist_ids, track_offsets=np.asarray(track_offsets, dtype=np.int64),
        track_item_ids=[item_ids[i] for i in order], track_titles=[titles[i] for i in order],
        track_artists=[artists[i] for i in order], component_offsets=np.asarray(component_offsets, dtype=np.int64),
        weights=np.concatenate(weights).astype(np.float32) if weights else np.zeros(0, np.float32),
        means=all_means,
        variances=np.concatenate(variances).astype(np.float32) if variances else np.zeros(shape, np.float32),
        representatives=np.concatenate(reps).astype(np.int32) if reps
        else np.zeros((0, options.representatives), np.int32),
        representative_distances=np.concatenate(rep_distances).astype(np.float32) if rep_distances
        else np.zeros((0, options.representatives), np.float32),
        index=_component_index(all_means, options))


def _pooled_variance(unit: np.ndarray, members: list[list[int]], *, floor: float) -> np.ndarray:
    """The per-dimension variance of songs around their artist's mean, pooled over artists with 2+ songs (the
    variance of all songs when there is none)."""
    if not len(unit):
        return np.zeros(0)
    total = np.zeros(unit.shape[1])
    dof = 0
    for rows in members:
        if len(rows) > 1:
            x = unit[rows].astype(np.float64)
            total += ((x - x.mean(axis=0)) ** 2).sum(axis=0)
            dof += len(rows) - 1
    pooled = total / dof if dof else unit.astype(np.float64).var(axis=0)
    return np.maximum(pooled, floor)


def _fit_one(x: np.ndarray, prior: np.ndarray, options: ArtistOptions
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(weights (k,), means (k, d), variances (k, d), component of each song (n,)) for one artist's songs (n, d),
    components by weight, heaviest first."""
    n = len(x)
    k = 1 if n < options.min_tracks_for_mixture else \
        max(1, min(options.max_components, n // options.tracks_per_component))
    x64 = x.astype(np.float64)
    if k == 1:
        resp = np.ones((n, 1))
        mu = x64.mean(axis=0, keepdims=True)
    else:
        from sklearn.mixture import GaussianMixture  # only the few large artists need it

        mixture = GaussianMixture(n_components=k, covariance_type="diag", random_state=options.seed,
                                  reg_covar=options.variance_floor, max_iter=100, n_init=1).fit(x64)
        resp = mixture.predict_proba(x64)
        mu = mixture.means_
    counts = resp.sum(axis=0)
    keep = counts > 1e-9
    resp, mu, counts = resp[:, keep], mu[keep], counts[keep]
    scatter = np.stack([(resp[:, j:j + 1] * (x64 - mu[j]) ** 2).sum(axis=0) for j in range(len(counts))])
    tau = options.prior_strength
    # n − 1 degrees of freedom of a sample's scatter plus tau of the prior: one song alone has exactly the prior
    var = np.maximum((scatter + tau * prior) / (np.maximum(counts - 1, 0)[:, None] + tau), options.variance_floor)
    weights = counts / counts.sum()
    by_weight = np.argsort(-weights, kind="stable")
    assigned = np.argsort(by_weight)[resp.argmax(axis=1)]
    return weights[by_weight], mu[by_weight], var[by_weight], assigned


def _representatives(x: np.ndarray, means: np.ndarray, assigned: np.ndarray, *, count: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """For each component: the `count` songs nearest its mean, its own songs first (song rows within the artist,
    -1 when the artist has fewer songs), and their Euclidean distances to the mean."""
    rows = np.full((len(means), count), -1, dtype=np.int32)
    distances = np.full((len(means), count), np.nan, dtype=np.float32)
    for j, mean in enumerate(means):
        dist = np.linalg.norm(x - mean, axis=1)
        ranked = sorted(range(len(x)), key=lambda i: (assigned[i] != j, float(dist[i]), i))[:count]
        rows[j, :len(ranked)] = ranked
        distances[j, :len(ranked)] = dist[ranked]
    return rows, distances


def _component_index(means: np.ndarray, options: ArtistOptions) -> voyager.Index:
    d = int(means.shape[1]) if means.ndim == 2 and means.shape[1] else 1
    index = voyager.Index(voyager.Space.Euclidean, num_dimensions=d, M=options.index_m,
                          ef_construction=options.index_ef_construction)
    if len(means):
        index.add_items(np.ascontiguousarray(means, dtype=np.float32), ids=list(range(len(means))))
    return index


# --- divergence and search ----------------------------------------------------------------------------------------
def _pair_distances(model: ArtistModel, query: range, others: np.ndarray) -> np.ndarray:
    """Bhattacharyya distances / d between the components `query` and the component rows `others`: (kq, m)."""
    q = slice(query.start, query.stop)
    mq = model.means[q].astype(np.float64)[:, None, :]
    vq = model.variances[q].astype(np.float64)[:, None, :]
    mo = model.means[others].astype(np.float64)[None, :, :]
    vo = model.variances[others].astype(np.float64)[None, :, :]
    average = (vq + vo) / 2
    bhattacharyya = ((mq - mo) ** 2 / average).sum(axis=2) / 8 + np.log(average).sum(axis=2) / 2 \
        - (model.log_det[q][:, None] + model.log_det[others][None, :]) / 4
    return np.maximum(bhattacharyya, 0.0) / max(model.dimensions, 1)


def _divergences(model: ArtistModel, artist: int, candidates: Sequence[int]) -> np.ndarray:
    """D(artist, c) for each candidate row, in one vectorised pass."""
    if not len(candidates):
        return np.zeros(0)
    offsets = model.component_offsets
    spans = [range(int(offsets[c]), int(offsets[c + 1])) for c in candidates]
    others = np.fromiter((row for span in spans for row in span), dtype=np.int64)
    starts = np.cumsum([0] + [len(s) for s in spans[:-1]])
    query = model.components(artist)
    pairs = _pair_distances(model, query, others)
    wq = model.weights[query.start:query.stop].astype(np.float64)
    wo = model.weights[others].astype(np.float64)
    forward = wq @ np.minimum.reduceat(pairs, starts, axis=1)
    backward = np.add.reduceat(wo * pairs.min(axis=0), starts)
    return (forward + backward) / 2


def divergence(model: ArtistModel, a: int, b: int) -> float:
    """D(a, b) of the module docstring (0 for identical mixtures; symmetric)."""
    return float(_divergences(model, a, [b])[0])


def similar_artists(model: ArtistModel, artist: int, *, n: int, query_ef: int = 200,
                    candidates_per_component: int = 64) -> list[ArtistMatch]:
    """The `n` artists nearest `artist` by divergence, nearest first (ties by name), never `artist` itself.

    Candidates are the owners of the component means nearest each of the artist's own (Voyager); the search widens
    until it has 2n candidates or the index has no more; they are then ranked exactly."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DiscoveryError("n", f"n must be an integer ≥ 1, got {n!r}")
    if not 0 <= artist < len(model):
        raise DiscoveryError(None, f"artist row {artist} is not in the model of {len(model)} artists")
    total = len(model.weights)
    k = min(total, max(candidates_per_component, 4 * n))
    components = model.components(artist)
    queries = model.means[components.start:components.stop]
    while True:
        try:
            positions, _ = model.index.query(queries, k=k, query_ef=max(query_ef, k))
        except voyager.RecallError:  # asked for (nearly) every component: rank every artist exactly instead
            candidates = [other for other in range(len(model)) if other != artist]
            break
        owners = np.searchsorted(model.component_offsets, np.asarray(positions, dtype=np.int64).ravel(),
                                 side="right") - 1
        candidates = sorted(set(owners.tolist()) - {artist})
        if len(candidates) >= 2 * n or k >= total:
            break
        k = min(total, 4 * k)
    scores = _divergences(model, artist, candidates)
    ranked = sorted(zip(candidates, scores.tolist(), strict=True), key=lambda p: (p[1], model.keys[p[0]]))
    return [ArtistMatch(row, score) for row, score in ranked[:n]]


def explain(model: ArtistModel, a: int, b: int, *, pairs: int = 3) -> list[ComponentMatch]:
    """The `pairs` closest component pairs of `a` and `b`, closest first, with their representative songs."""
    others = np.arange(model.component_offsets[b], model.component_offsets[b + 1])
    distances = _pair_distances(model, model.components(a), others)
    ranked = sorted(np.ndindex(distances.shape), key=lambda ij: (float(distances[ij]), ij))[:pairs]
    first_a, first_b = int(model.component_offsets[a]), int(model.component_offsets[b])
    return [ComponentMatch(component1_index=i, component2_index=j, distance=float(distances[i, j]),
                           component1_weight=float(model.weights[first_a + i]),
                           component2_weight=float(model.weights[first_b + j]),
                           artist1_songs=_songs(model, first_a + i), artist2_songs=_songs(model, first_b + j))
            for i, j in ranked]


def _songs(model: ArtistModel, component: int) -> list[tuple[str, str, float]]:
    return [(model.track_item_ids[row], model.track_titles[row], float(dist))
            for row, dist in zip(model.representatives[component].tolist(),
                                 model.representative_distances[component].tolist(), strict=True) if row >= 0]


def artist_vector(model: ArtistModel, artist: str) -> np.ndarray:
    """The centroid of an artist (its name or media-server id): the weighted mean of its component means, (d,)
    float32 in the space of unit-length song embeddings (compare it by cosine, as the track index does).
    UnknownArtist (a DiscoveryError) when the model has no such artist."""
    return _centroid(model, model.resolve(artist))


def artist_radio(model: ArtistModel, artist: int, *, n: int, lookup: Lookup, max_per_artist: int,
                 duplicate_distance: float) -> list[RadioTrack]:
    """A playlist seeded by `artist`: its songs and those of its nearest artists, up to `n`.

    Artists take turns, the seed first and then by divergence; each turn gives the artist's next song nearest the
    seed's centroid (cosine) that is not a version of a kept song (`song_key`) nor a near-duplicate of one (the
    rule of `vectors.NearDuplicates`, `duplicate_distance`), until `max_per_artist` songs of each artist or `n`
    songs are kept. Songs `lookup` does not know (not in the track index, or left out by the blocklists and scope)
    are left out; when that leaves fewer than `n`, twice as many nearest artists take turns, until `n` or every
    artist."""
    for name, value in (("n", n), ("max_per_artist", max_per_artist)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DiscoveryError(name, f"{name} must be an integer ≥ 1, got {value!r}")
    if not duplicate_distance >= 0.0:
        raise DiscoveryError("duplicate_distance", f"duplicate_distance must be ≥ 0, got {duplicate_distance!r}")
    centroid = _centroid(model, artist)
    wanted = math.ceil(n / max_per_artist)
    artists = min(max(2 * wanted + 2, 5), max(len(model) - 1, 1))
    while True:
        neighbours = similar_artists(model, artist, n=artists) if len(model) > 1 else []
        turns: list[tuple[int, list[tuple[TrackInfo, float]]]] = []
        unknown = False
        for row in [artist] + [m.artist for m in neighbours]:
            ids = [model.track_item_ids[i] for i in model.songs(row)]
            found = lookup(ids)
            unknown = unknown or len(found) < len(set(ids))
            songs = sorted(((t, cosine_distance(centroid, t.vector)) for i in ids if (t := found.get(i)) is not None),
                           key=lambda pair: (pair[1], pair[0].item_id))
            turns.append((row, songs))
        kept = _radio_turns(turns, n=n, max_per_artist=max_per_artist, duplicate_distance=duplicate_distance)
        if len(kept) >= n or not unknown or len(model) <= 1 or artists >= len(model) - 1:
            return kept
        artists = min(2 * artists, len(model) - 1)


def _radio_turns(turns: list[tuple[int, list[tuple[TrackInfo, float]]]], *, n: int, max_per_artist: int,
                 duplicate_distance: float) -> list[RadioTrack]:
    """Artists take turns over their songs (nearest the seed's centroid first), versions and near-duplicates of
    kept songs left out, up to `max_per_artist` each and `n` in all."""
    kept: list[RadioTrack] = []
    near = NearDuplicates(duplicate_distance)
    keys: set[tuple[str, str]] = set()
    taken = dict.fromkeys(range(len(turns)), 0)
    cursor = dict.fromkeys(range(len(turns)), 0)
    progress = True
    while len(kept) < n and progress:
        progress = False
        for turn, (row, songs) in enumerate(turns):
            if len(kept) >= n or taken[turn] >= max_per_artist:
                continue
            while cursor[turn] < len(songs):
                track, distance = songs[cursor[turn]]
                cursor[turn] += 1
                if track.song in keys or near.is_near(track.vector):
                    continue
                kept.append(RadioTrack(track, distance, row))
                keys.add(track.song)
                near.add(track.vector)
                taken[turn] += 1
                progress = True
                break
    return kept


def _centroid(model: ArtistModel, artist: int) -> np.ndarray:
    span = model.components(artist)
    weights = model.weights[span.start:span.stop].astype(np.float64)
    return np.asarray(weights @ model.means[span.start:span.stop].astype(np.float64), dtype=np.float32)
