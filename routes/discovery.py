"""Discovery APIs: track search, similar songs, mixable tracks, song path, alchemy, sonic fingerprint, playlists.

Views read and check parameters, take the request's lookups from the in-memory index (voyager_manager.IndexQueries:
neighbours, and tracks by id from its catalogue, no database trip), call one domain function, and shape the JSON.
"""

from __future__ import annotations

import time
from pathlib import PurePosixPath
from typing import Any, cast
from urllib.parse import quote

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from db import tracks as track_store
from discovery.alchemy import AlchemyResult, artist_centroid, project_alchemy, song_alchemy
from discovery.mixable import TOLERANCE_MEANING, Mode, mixable_tracks
from discovery.path import song_path
from discovery.similar import DEFAULT_MOOD_WEIGHT, farthest, similar_songs
from discovery.sonic_fingerprint import sonic_fingerprint
from discovery.types import Lookup, TrackInfo, cosine_distance
from mediaserver import MediaServerError
from mediaservers.m3u import UNWRITABLE_PATH_CHARACTERS, M3uEntry, render_m3u8
from routes.common import (
    ITEM_ID_MAX,
    discovery_errors,
    history_user,
    index_queries,
    left_out_note,
    playlist_request,
    publish,
    queries_exclusions,
    track_json,
    track_or_404,
    with_exclusion_headers,
)
from routes.context import Runtime, runtime
from routes.errors import ApiError, bad_parameter
from routes.params import bool_param, float_param, int_param, json_body, str_param
from services.artists import artist_name

bp = Blueprint("discovery_api", __name__)

MAX_ALCHEMY_ITEMS = 50
ALCHEMY_ITEM_TYPES = ("song", "artist")
# Parameters that start with "mood_" but are not a mood tolerance of the mood filter.
MOOD_OPTIONS = ("mood_similarity", "mood_weight")
# What made a playlist: the pages that create them (and the API's default, "instant").
PLAYLIST_SOURCES = ("instant", "similar", "mixable", "path", "alchemy", "fingerprint", "map", "text_search", "chat",
                    "artist_radio")


# --- search -----------------------------------------------------------------------------------------------------
@bp.get("/api/search_tracks")
def search_tracks() -> Response:
    """Analyzed tracks by `title` and/or `artist` (or `q` for either), case- and accent-insensitive."""
    title, artist = str_param("title", max_length=200), str_param("artist", max_length=200)
    text = str_param("q", max_length=200)
    if not (title or artist or text):
        raise ApiError(400, "give 'q', 'title' or 'artist'", parameter="q")
    limit = int_param("limit", 20, minimum=1, maximum=100)
    rows = track_store.search_tracks(runtime().db, title=title, artist=artist, text=text, limit=limit)
    return jsonify([{"item_id": r["item_id"], "title": r["title"], "author": r["artist"], "album": r["album"],
                     "duration_seconds": r["duration_seconds"], "year": r["year"],
                     "format": _file_format(r["file_path"])} for r in rows])


def _file_format(path: str | None) -> str | None:
    """'FLAC' for '/music/a.flac': what tells two copies of one song apart in the pickers."""
    suffix = PurePosixPath(path).suffix if path else ""
    return suffix[1:].upper() if 1 < len(suffix) <= 6 else None


# --- similar songs and mixable tracks -----------------------------------------------------------------------------
def _range(low_name: str, high_name: str) -> tuple[float | None, float | None] | None:
    low, high = float_param(low_name, None, minimum=0), float_param(high_name, None, minimum=0)
    if low is not None and high is not None and low > high:
        raise bad_parameter(low_name, low, f"at most {high_name}={high}")
    return (low, high) if low is not None or high is not None else None


def _seed_by_name(rt: Runtime, lookup: Lookup) -> TrackInfo:
    """The seed named by `item_id`, or (as the reference's clients send it) by `title` and/or `artist`: the best
    match of the track search (case- and accent-insensitive, titles that start with the text first)."""
    item_id = str_param("item_id", max_length=ITEM_ID_MAX)
    title, artist = str_param("title", max_length=200), str_param("artist", max_length=200)
    if item_id or not (title or artist):
        return track_or_404(lookup, item_id, "item_id")
    for row in track_store.search_tracks(rt.db, title=title, artist=artist, limit=20):
        found = lookup([row["item_id"]]).get(row["item_id"])
        if found is not None:
            return found
    named = " by ".join(f"'{part}'" for part in (title, artist) if part)
    raise ApiError(404, f"no analyzed track matches {named}", parameter="title" if title else "artist")


@bp.get("/api/similar_tracks")
def similar_tracks() -> Response:
    """The seed's nearest songs; `mood_similarity=true` (or `mood_weight`, 0..1) ranks by sound and mood together.
    `server` is accepted and ignored: AudioMuse serves one media server."""
    rt = runtime()
    library = index_queries(rt)
    neighbours, lookup = library.neighbours, library.lookup
    seed = _seed_by_name(rt, lookup)
    n = int_param("n", 10, minimum=1, maximum=rt.config.SIMILAR_MAX_N)
    moods = {name[5:]: value for name in request.args if name.startswith("mood_") and name not in MOOD_OPTIONS
             if (value := float_param(name, None, minimum=0, maximum=1)) is not None}
    mood_weight = float_param("mood_weight", DEFAULT_MOOD_WEIGHT if bool_param("mood_similarity", False) else 0.0,
                              minimum=0, maximum=1)
    excluded = [a.strip() for a in str_param("exclude_artists", max_length=2000).split(",") if a.strip()]
    results = discovery_errors(lambda: similar_songs(
        seed, n=n, neighbours=neighbours, lookup=lookup,
        max_per_artist=int_param("max_per_artist", rt.config.MAX_SONGS_PER_ARTIST, minimum=1, maximum=1000),
        duplicate_distance=rt.config.DUPLICATE_DISTANCE,
        eliminate_duplicates=bool_param("eliminate_duplicates", True),
        radius_walk=bool_param("radius_similarity", False),
        mood_filter=moods or None,
        mood_weight=mood_weight,
        duration_range=_range("min_duration", "max_duration"),
        bpm_range=_range("min_bpm", "max_bpm"),
        exclude_artists=excluded))
    return with_exclusion_headers(jsonify([track_json(
        r.track, distance=r.distance, **({"audio_distance": r.audio_distance} if r.audio_distance is not None else {}))
        for r in results]), queries_exclusions(library))


@bp.get("/api/max_distance")
def max_distance() -> Response:
    """The cosine distance from `item_id` to the library's farthest track, and that track (clients scale similar
    songs' distances by it into a 0-1 similarity)."""
    rt = runtime()
    library = index_queries(rt, apply_exclusions=False)  # a measure of the library, not a list
    seed = track_or_404(library.lookup, str_param("item_id", max_length=ITEM_ID_MAX), "item_id")
    far_id, distance = farthest(seed, neighbours=library.neighbours)
    return jsonify({"max_distance": round(distance, 6), "farthest_item_id": far_id, "item_id": seed.item_id})


@bp.get("/api/mixable_tracks")
def mixable() -> Response:
    rt = runtime()
    library = index_queries(rt)
    neighbours, lookup = library.neighbours, library.lookup
    seed = track_or_404(lookup, str_param("item_id", max_length=ITEM_ID_MAX), "item_id")
    n = int_param("n", 20, minimum=1, maximum=rt.config.SIMILAR_MAX_N)
    mode = str_param("mode", "harmonic", max_length=20) or "harmonic"
    tolerance = float_param("bpm_tolerance", 3.0, minimum=0.1, maximum=40)
    cap = int_param("max_per_artist", rt.config.MAX_SONGS_PER_ARTIST, minimum=1, maximum=1000)
    results = discovery_errors(lambda: mixable_tracks(
        seed, n=n, neighbours=neighbours, lookup=lookup, bpm_tolerance=tolerance, mode=cast(Mode, mode),
        max_per_artist=cap, duplicate_distance=rt.config.DUPLICATE_DISTANCE))
    kind, meaning = TOLERANCE_MEANING.get(mode, ("", ""))
    return jsonify({"seed": track_json(seed), "mode": mode, "max_per_artist": cap,
                    "bpm_tolerance": {"value": tolerance, "kind": kind, "meaning": meaning},
                    "results": [track_json(r.track, distance=r.distance, reasons=r.reasons, detail=r.detail,
                                           score=r.score) for r in results], **queries_exclusions(library)})


# --- song path -----------------------------------------------------------------------------------------------------
@bp.get("/api/find_path")
def find_path() -> Response:
    rt = runtime()
    library = index_queries(rt)
    neighbours, lookup = library.neighbours, library.lookup
    start = track_or_404(lookup, str_param("start_song_id", max_length=ITEM_ID_MAX), "start_song_id")
    end = track_or_404(lookup, str_param("end_song_id", max_length=ITEM_ID_MAX), "end_song_id")
    if start.item_id == end.item_id:
        raise ApiError(400, "start_song_id and end_song_id must differ", parameter="end_song_id")
    steps = int_param("max_steps", rt.config.PATH_DEFAULT_LENGTH, minimum=2, maximum=rt.config.PATH_MAX_LENGTH)
    # Checked and ignored: `mood_pct` weighs a mood end of the path, and both ends are songs here; `count` and
    # `server` are the Navidrome plugin's, which the reference ignores too.
    int_param("mood_pct", 100, minimum=0, maximum=100)
    result = discovery_errors(lambda: song_path(
        start, end, steps=steps, neighbours=neighbours, lookup=lookup,
        max_per_artist=rt.config.MAX_SONGS_PER_ARTIST, duplicate_distance=rt.config.DUPLICATE_DISTANCE,
        exact_length=bool_param("path_fix_size", False), neighbours_batch=library.neighbours_batch))
    return jsonify({
        "path": [track_json(t) for t in result.tracks],
        "step_distances": [round(d, 6) for d in result.step_distances],
        "hop_distances": [round(d, 6) for d in result.hop_distances],
        "total_distance": round(sum(result.hop_distances), 6),
        "targets_missed": result.targets_missed,
        # why the path is shorter than asked, in words, and the refused candidates behind it by reason
        "shortfall": result.shortfall,
        "missed_reasons": result.missed_reasons,
        **queries_exclusions(library),
    })


# --- song alchemy -----------------------------------------------------------------------------------------------
@bp.post("/api/alchemy")
def alchemy() -> Response:
    rt = runtime()
    library = index_queries(rt)
    neighbours, lookup = library.neighbours, library.lookup
    items = _alchemy_items(json_body())
    if len(items) > MAX_ALCHEMY_ITEMS:
        raise bad_parameter("items", f"{len(items)} items", f"at most {MAX_ALCHEMY_ITEMS}")
    add: list[TrackInfo] = []
    subtract: list[TrackInfo] = []
    for number, item in enumerate(items):
        op = str(item.get("op", "")).upper() if isinstance(item, dict) else ""
        if op not in ("ADD", "SUBTRACT"):
            raise ApiError(400, f"items[{number}].op must be ADD or SUBTRACT", parameter="items")
        kind = str(item.get("type") or "song").lower()
        if kind not in ALCHEMY_ITEM_TYPES:
            raise bad_parameter(f"items[{number}].type", item.get("type"), "one of " + ", ".join(ALCHEMY_ITEM_TYPES))
        item_id = str(item.get("id", ""))
        if kind == "artist":
            tracks = library.artist_tracks(artist_name(rt.index, item_id))
            if not tracks:
                raise ApiError(404, f"no analyzed tracks by the artist '{item_id}'", parameter="items")
            entry = artist_centroid(item_id, tracks)
        else:
            entry = track_or_404(lookup, item_id, "items")
        (add if op == "ADD" else subtract).append(entry)
    n = int_param("n", rt.config.ALCHEMY_DEFAULT_N_RESULTS, minimum=1, maximum=rt.config.ALCHEMY_MAX_N_RESULTS)
    temperature = float_param("temperature", rt.config.ALCHEMY_TEMPERATURE, minimum=0, maximum=100)
    threshold = float_param("subtract_distance", rt.config.ALCHEMY_SUBTRACT_DISTANCE, minimum=0.0001, maximum=2)
    seed = int_param("seed", int(time.time()) % 1_000_000, minimum=0)
    result = discovery_errors(lambda: song_alchemy(
        add, subtract, n=n, neighbours=neighbours, lookup=lookup, temperature=temperature,
        subtract_distance=threshold, seed=seed, max_per_artist=rt.config.MAX_SONGS_PER_ARTIST,
        duplicate_distance=rt.config.DUPLICATE_DISTANCE, pool=max(300, 4 * n)))
    projection = discovery_errors(lambda: _projection(add, subtract, result))
    return jsonify({
        # distance: the cosine distance to the add centroid, the metric of /api/similar_tracks
        "results": [track_json(t, score=score, distance=max(0.0, 1.0 - score)) for t, score in result.kept],
        "filtered_out": [track_json(t) for t in result.removed],
        "seed": seed,
        "projection": projection,
        **queries_exclusions(library),
    })


def _alchemy_items(body: dict[str, Any]) -> list[Any]:
    """The request's items: `items` ([{id, op, type}]), or the older {"add": [ids], "sub"/"subtract": [ids]} some
    players still send."""
    items = body.get("items")
    if items is None and isinstance(body.get("add"), list):
        subtract = body.get("sub", body.get("subtract")) or []
        if not isinstance(subtract, list):
            raise ApiError(400, "'sub' must be a list of item ids", parameter="sub")
        items = [{"id": i, "op": "ADD"} for i in body["add"]] + [{"id": i, "op": "SUBTRACT"} for i in subtract]
    if not isinstance(items, list) or not items:
        raise ApiError(400, "'items' must be a list of {id, op} with at least one ADD", parameter="items")
    return items


def _projection(add: list[TrackInfo], subtract: list[TrackInfo], result: AlchemyResult) -> list[dict[str, Any]]:
    """Every point of the alchemy in one 2-D projection, labelled by what it is (for the scatter plot)."""
    projected = project_alchemy(result, add, subtract)
    labelled = ([("add", t, p) for t, p in zip(add, projected.add_points, strict=True)]
                + [("subtract", t, p) for t, p in zip(subtract, projected.subtract_points, strict=True)]
                + [("kept", t, p) for (t, _), p in zip(result.kept, projected.kept_points, strict=True)]
                + [("removed", t, p) for t, p in zip(result.removed, projected.removed_points, strict=True)])
    points = [{"kind": kind, "item_id": t.item_id, "title": t.title, "x": round(float(p[0]), 5),
               "y": round(float(p[1]), 5)} for kind, t, p in labelled]
    centroids = [("add centroid", projected.add_centroid), ("subtract centroid", projected.subtract_centroid)]
    points += [{"kind": kind, "item_id": "", "title": kind, "x": round(float(p[0]), 5), "y": round(float(p[1]), 5)}
               for kind, p in centroids if p is not None]
    return points


# --- sonic fingerprint ------------------------------------------------------------------------------------------
@bp.route("/api/sonic_fingerprint/generate", methods=["GET", "POST"])
def generate_fingerprint() -> Response:
    rt = runtime()
    library = index_queries(rt)
    neighbours, lookup = library.neighbours, library.lookup
    n = int_param("n", rt.config.SONIC_FINGERPRINT_NEIGHBORS, minimum=1, maximum=rt.config.SIMILAR_MAX_N)
    user = history_user(rt)
    try:
        server = rt.media_server(user=user)
        played = server.top_played(limit=rt.config.SONIC_FINGERPRINT_TOP_N_SONGS, user=user)
    except MediaServerError as exc:
        raise ApiError(502, f"could not read the play history: {exc}") from None
    known = lookup([p.item_id for p in played])
    # a blocked or out-of-scope song is neither listed nor shapes the fingerprint
    history = [(known[p.item_id], p.last_played) for p in played if p.item_id in known and library.allows(p.item_id)]
    if not history:
        # an empty list, as the reference answers: its clients take anything else for a failure
        return with_exclusion_headers(jsonify([]), queries_exclusions(library))
    result = discovery_errors(lambda: sonic_fingerprint(
        history, n=n, neighbours=neighbours, lookup=lookup, now=time.time(),
        max_per_artist=rt.config.MAX_SONGS_PER_ARTIST, duplicate_distance=rt.config.DUPLICATE_DISTANCE))
    # distance: to the fingerprint (the weighted mean of the played songs), as the reference's clients need a number
    return with_exclusion_headers(jsonify([track_json(t, role=role, distance=cosine_distance(result.vector, t.vector))
                                           for t, role in result.tracks]), queries_exclusions(library))


# --- playlists --------------------------------------------------------------------------------------------------
@bp.post("/api/create_playlist")
def create_playlist() -> tuple[Response, int]:
    """Create the playlist on the media server (as the user whose credentials are passed, if any)."""
    rt = runtime()
    name, ids = playlist_request()
    source = str_param("source", "instant", max_length=40) or "instant"
    if source not in PLAYLIST_SOURCES:
        raise bad_parameter("source", source, "one of " + ", ".join(PLAYLIST_SOURCES))
    published = publish(rt, name, ids, source=source)
    return jsonify({"message": f"Playlist '{published.name}' created successfully!{left_out_note(published)}",
                    "playlist_id": published.playlist_id, "name": published.name,
                    "track_count": published.track_count,
                    "left_out": [s.as_dict() for s in published.left_out]}), 201


@bp.post("/api/playlist.m3u8")
def export_m3u() -> Response:
    """The tracks as an .m3u8 download, with file paths as the media server reports them."""
    rt = runtime()
    name, ids = playlist_request()
    rows = track_store.track_rows(rt.db, ids)
    entries = [M3uEntry(path=row["file_path"], artist=row["artist"], title=row["title"],
                        duration_seconds=row["duration_seconds"])
               for item_id in ids if (row := rows.get(item_id)) is not None and row["file_path"]]
    written = [e for e in entries if not any(c in e.path for c in UNWRITABLE_PATH_CHARACTERS)]
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in " -_") else "_" for c in name).strip()
    response = Response(render_m3u8(name, written), mimetype="audio/x-mpegurl")
    # what the file holds, and how many of the songs asked for it could not (no path, or a line break in it)
    response.headers["X-Track-Count"] = str(len(written))
    response.headers["X-Left-Out-Count"] = str(len(ids) - len(written))
    response.headers["Content-Disposition"] = (f'attachment; filename="{ascii_name or "playlist"}.m3u8"; '
                                               f"filename*=UTF-8''{quote(name + '.m3u8')}")
    return response
