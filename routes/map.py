"""The music map API: the map in 25/50/75/100 % samples (from the web process's cache; JSON, or the binary form the
page draws), who the points of the binary form are, where songs are on it, the state of its projection job, and
starting a full rebuild."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from db import task_status as task_store
from discovery.map_cache import PERCENTS, MapCache
from routes.context import runtime
from routes.errors import ApiError, bad_parameter
from routes.params import json_body, raw_param
from routes.task_start import start_response
from services.map import CACHE_NAME, StaleMap, describe_points
from tasks.catalog import MAP

bp = Blueprint("map_api", __name__)

MAX_POINTS = 1000
MAX_ITEMS = 1000


def _percent() -> int:
    raw = raw_param("percent")
    if raw is None or raw == "":
        return 25
    text = str(raw).strip().rstrip("%")
    if text.isdigit() and int(text) in PERCENTS:
        return int(text)
    raise bad_parameter("percent", raw, "one of 25, 50, 75, 100")


def _cache() -> MapCache:
    holder = runtime().index
    cache = holder.cache(CACHE_NAME)
    if cache is None:
        error = holder.cache_errors.get(CACHE_NAME)
        if error:
            raise ApiError(503, f"the map could not be built: {error}", retry_after=10)
        raise ApiError(503, "the map is being prepared; try again in a moment", retry_after=2)
    return cache


def _format() -> str:
    raw = raw_param("format")
    if raw is None or raw in ("", "json"):
        return "json"
    if raw == "binary":
        return "binary"
    raise bad_parameter("format", raw, "json or binary")


@bp.get("/api/map")
def map_view() -> Response:
    """The `percent` sample of the map (25 by default): items with title, artist, album, embedding_2d, top_mood and
    mood_vector (gzip-compressed when the client accepts it); or with `format=binary` the compact form the page
    draws (discovery/map_cache.py: coordinates as uint16, a tag code per point, no names); never cached by browsers
    or proxies."""
    percent = _percent()
    binary = _format() == "binary"
    cache = _cache()
    if binary:
        response = Response(cache.binary_chunks(percent), mimetype="application/octet-stream")
        response.headers["Content-Length"] = str(cache.binary_length(percent))
    elif "gzip" in request.accept_encodings:
        response = Response(cache.gzip_chunks(percent), mimetype="application/json")
        response.headers["Content-Encoding"] = "gzip"
        response.headers["Content-Length"] = str(cache.gzip_length(percent))
        response.headers["Vary"] = "Accept-Encoding"
    else:
        response = Response(cache.json_chunks(percent), mimetype="application/json")
        response.headers["Content-Length"] = str(cache.json_length(percent))
        response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "no-store"
    return response


def _indices() -> list[int]:
    raw = raw_param("indices")
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise bad_parameter("indices", raw, "a list of point indices")
    if len(items) > MAX_ITEMS:
        raise bad_parameter("indices", f"{len(items)} indices", f"at most {MAX_ITEMS}")
    out = []
    for item in items:
        text = item.strip() if isinstance(item, str) else item
        if isinstance(text, str) and text.isdigit():
            text = int(text)
        if not isinstance(text, int) or isinstance(text, bool) or text < 0:
            raise bad_parameter("indices", item, "point indices: whole numbers from 0")
        out.append(text)
    return out


@bp.route("/api/map/items", methods=["GET", "POST"])
def items() -> Response:
    """Who points of the binary map are: `indices` (at most 1000 point indices, a list or comma-separated) of the
    map `version` the client loaded → {version, items: [{index, item_id, title, artist, album, top_mood,
    embedding_2d}]}; 409 naming the current version when the map has changed since."""
    indices = _indices()
    version = raw_param("version")
    if not isinstance(version, str) or not version:
        raise bad_parameter("version", version, "the version of the map the indices are from")
    state = runtime().index.state  # the index and the cache built against it, read together
    cache, loaded = state.caches.get(CACHE_NAME), state.index
    if cache is None:
        raise ApiError(503, "the map is being prepared; try again in a moment", retry_after=2)
    if version != cache.version:
        raise ApiError(409, "the map has changed since it was loaded; load it again", parameter="version",
                       version=cache.version)
    beyond = [i for i in indices if i >= cache.total]
    if beyond:
        raise bad_parameter("indices", beyond[0], f"the map has {cache.total} points")
    try:
        described = describe_points(cache, loaded, indices)
    except StaleMap as exc:
        raise ApiError(503, f"{exc}; it is being rebuilt", retry_after=10) from exc
    return jsonify({"version": cache.version, "items": described})


@bp.post("/api/map/points")
def points() -> Response:
    """Where songs are on the map: {"points": {item_id: [x, y]}} for those of `item_ids` on it (at most 1000),
    with the ones that are not under "missing"."""
    item_ids = json_body().get("item_ids")
    if not isinstance(item_ids, list) or not all(isinstance(i, str) for i in item_ids):
        raise bad_parameter("item_ids", item_ids, "a list of item ids")
    if len(item_ids) > MAX_POINTS:
        raise bad_parameter("item_ids", f"{len(item_ids)} ids", f"at most {MAX_POINTS}")
    state = runtime().index.state  # the index and the cache built against it, read together
    cache, loaded = state.caches.get(CACHE_NAME), state.index
    if cache is None:
        raise ApiError(503, "the map is being prepared; try again in a moment", retry_after=2)
    if loaded is not None and cache.total and not loaded.has_positions_of(cache.index_id):
        raise ApiError(503, "the map in memory is of another index than the one loaded; it is being rebuilt",
                       retry_after=10)
    found: dict[str, list[float]] = {}
    missing = []
    for item_id in item_ids:
        position = loaded.position(item_id) if loaded is not None else None
        point = cache.point(position) if position is not None else None
        if point is None:
            missing.append(item_id)
        else:
            found[item_id] = list(point)
    return jsonify({"points": found, "missing": missing})


@bp.get("/api/map/status")
def status() -> Response:
    """How the map being served was made, and the last projection job (status, message, error)."""
    rt = runtime()
    cache = rt.index.cache(CACHE_NAME)
    last = task_store.last_main_task_of_type(rt.db, MAP.task_type)
    served: dict[str, Any] | None = None
    if cache is not None:
        served = {"projection": cache.projection, "total": cache.total, **cache.meta}
    return jsonify({"served": served, "cache_error": rt.index.cache_errors.get(CACHE_NAME),
                    "last_job": None if last is None else {
                        "task_id": last["task_id"], "status": last["status"], "message": last["message"],
                        "created_at": last["created_at"].isoformat(timespec="seconds"),
                        "finished_at": last["finished_at"] and last["finished_at"].isoformat(timespec="seconds")}})


@bp.post("/api/map/rebuild")
def rebuild() -> tuple[Response, int]:
    """Start a full build of the map (UMAP of every analyzed track) in a worker."""
    return start_response(MAP, {"full": True})
