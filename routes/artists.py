"""Artist APIs: similar artists (with the component pairs that explain each match), artist search, an artist's
songs, and artist radio. Artists are named by name or by media-server artist id in either `artist` or `artist_id`
(the Navidrome plugin sends its artist id in `artist`, the Jellyfin plugin a GUID in `artist_id`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from discovery.artist_similarity import ArtistModel, artist_radio, explain, similar_artists
from routes.common import discovery_errors, index_queries, queries_exclusions, track_json, with_exclusion_headers
from routes.context import runtime
from routes.errors import ApiError
from routes.params import bool_param, int_param, str_param
from services.artists import current_artists

bp = Blueprint("artists_api", __name__)

MAX_SIMILAR = 500  # larger n is answered with this many (the Jellyfin plugin asks for its page size)
MAX_SEARCH = 100


def _model() -> ArtistModel:
    model = current_artists(runtime().index)
    if model is None:
        raise ApiError(503, "the artist similarity index is not built yet: run an analysis first")
    return model


def _asked() -> tuple[str, str]:
    """(the artist as given, the parameter it came in); 400 when neither `artist` nor `artist_id` is given."""
    for name in ("artist", "artist_id"):
        value = str_param(name, max_length=500).strip()
        if value:
            return value, name
    raise ApiError(400, "Missing 'artist' or 'artist_id' parameter", parameter="artist")


def _find(model: ArtistModel) -> tuple[int | None, str, str]:
    """The artist row for `artist` or `artist_id` (each may hold a name or an id), the value and its parameter."""
    value, parameter = _asked()
    for name in ("artist", "artist_id"):
        other = str_param(name, max_length=500).strip()
        if other and (found := model.find(other)) is not None:
            return found, other, name
    return None, value, parameter


def _song(item_id: str, title: str, distance: float) -> dict[str, Any]:
    return {"item_id": item_id, "title": title, "distance_to_component": round(distance, 6)}


@bp.get("/api/similar_artists")
def similar() -> Response:
    """Bare array of {artist, artist_id, divergence, track_count[, component_matches, query_artist_components,
    candidate_artist_components]}, most similar first; 404 naming an unknown artist."""
    rt = runtime()
    model = _model()
    row, value, parameter = _find(model)
    if row is None:
        raise ApiError(404, f"Artist '{value}' not found in the analyzed library", parameter=parameter)
    n = min(int_param("n", 10, minimum=1), MAX_SIMILAR)
    query_ef = min(int_param("ef_search", rt.config.VOYAGER_QUERY_EF, minimum=1), 10_000)
    with_matches = bool_param("include_component_matches", False)
    matches = discovery_errors(lambda: similar_artists(model, row, n=n, query_ef=query_ef))
    counts = model.track_counts
    body = []
    for match in matches:
        entry: dict[str, Any] = {"artist": model.names[match.artist], "artist_id": model.artist_ids[match.artist],
                                 "divergence": round(match.divergence, 6), "track_count": int(counts[match.artist])}
        if with_matches:
            entry["component_matches"] = [{
                "component1_index": pair.component1_index, "component2_index": pair.component2_index,
                "distance": round(pair.distance, 6), "component1_weight": round(pair.component1_weight, 6),
                "component2_weight": round(pair.component2_weight, 6),
                "artist1_representative_songs": [_song(*song) for song in pair.artist1_songs],
                "artist2_representative_songs": [_song(*song) for song in pair.artist2_songs],
            } for pair in explain(model, row, match.artist)]
            entry["query_artist_components"] = len(model.components(row))
            entry["candidate_artist_components"] = len(model.components(match.artist))
        body.append(entry)
    return jsonify(body)


@bp.get("/api/search_artists")
def search() -> Response:
    """Bare array of {artist, artist_id, track_count} whose name contains `query` (case and accents ignored),
    names that start with it first, then by songs; [] under 2 characters; `start`/`end` page it (at most 100)."""
    text = (str_param("query", max_length=200) or str_param("q", max_length=200)).strip()
    start = int_param("start", 0, minimum=0)
    end = int_param("end", start + 20, minimum=0)
    model = current_artists(runtime().index)
    if len(text) < 2 or end <= start or model is None:
        return jsonify([])
    counts = model.track_counts
    rows = model.search(text, limit=min(end - start, MAX_SEARCH), offset=start)
    return jsonify([{"artist": model.names[r], "artist_id": model.artist_ids[r], "track_count": int(counts[r])}
                    for r in rows])


@bp.get("/api/artist_tracks")
def tracks() -> Response:
    """Bare array of an artist's analyzed songs {item_id, title, author, artist_id}, by title; [] when unknown."""
    model = _model()
    row, _, _ = _find(model)
    if row is None:
        return jsonify([])
    return jsonify([{"item_id": model.track_item_ids[i], "title": model.track_titles[i],
                     "author": model.track_artists[i], "artist_id": model.artist_ids[row]} for i in model.songs(row)])


@bp.get("/api/artist_radio")
def radio() -> Response:
    """A playlist seeded by an artist: its songs and its nearest artists', taking turns, MAX_SONGS_PER_ARTIST each,
    versions and near-duplicates left out; the tracks' JSON of the other discovery lists, with `distance` (cosine,
    to the seed artist's centroid) and `artist_id`. Publish it with POST /api/create_playlist (source
    'artist_radio')."""
    rt = runtime()
    model = _model()
    library = index_queries(rt)
    row, value, parameter = _find(model)
    if row is None:
        raise ApiError(404, f"Artist '{value}' not found in the analyzed library", parameter=parameter)
    n = int_param("n", 30, minimum=1, maximum=rt.config.SIMILAR_MAX_N)
    cap = int_param("max_per_artist", rt.config.MAX_SONGS_PER_ARTIST, minimum=1, maximum=1000)
    # the seed artist's own songs are suggestions too: what the blocklists and scope leave out is not looked up,
    # and each song comes as the file lists show for it
    picked = discovery_errors(lambda: artist_radio(model, row, n=n, lookup=library.lookup_shown, max_per_artist=cap,
                                                   duplicate_distance=rt.config.DUPLICATE_DISTANCE))
    return with_exclusion_headers(jsonify([track_json(p.track, distance=p.distance,
                                                      artist_id=model.artist_ids[p.artist]) for p in picked]),
                                  queries_exclusions(library))
