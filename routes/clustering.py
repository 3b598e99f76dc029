"""The clustering API: start a run (custom or preset), the preset for this library, the generated playlists and
their pins."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from db import playlists as playlist_store
from db import task_status as task_store
from routes.common import clustering_defaults, preset_request
from routes.context import runtime
from routes.errors import ApiError, bad_parameter
from routes.params import json_body, raw_param
from routes.task_start import start_response
from services import automatic_playlists as automatic
from tasks.catalog import CLUSTERING

bp = Blueprint("clustering_api", __name__)


@bp.get("/api/clustering/preset")
def preset_view() -> Response:
    """The settings the preset button would use for this library."""
    request, size = preset_request()
    return jsonify({"library_size": size, "params": request.as_dict()})


@bp.get("/api/clustering/defaults")
def defaults_view() -> Response:
    return jsonify({"params": clustering_defaults().as_dict()})


@bp.post("/api/clustering/start")
def start() -> tuple[Response, int]:
    """Start a clustering task with the request's parameters (missing ones from the configuration), or with the
    preset when `preset` is true (then only `ai_model_provider` and `seed` are taken from the request)."""
    params: dict[str, Any] = dict(json_body())
    if (flag := raw_param("preset")) is not None:
        params["preset"] = flag
    return start_response(CLUSTERING, params)


@bp.get("/api/clustering/last")
def last_run() -> Response:
    """The most recent clustering task: status, message and summary."""
    return jsonify({"last_run": task_store.last_main_task_of_type(runtime().db, CLUSTERING.task_type)})


@bp.get("/api/playlists")
def playlists() -> Response:
    """Playlists AudioMuse made, with their tracks; `source=clustering` for the generated ones."""
    source = raw_param("source")
    if source is not None and not isinstance(source, str):
        raise bad_parameter("source", source, "a string")
    return jsonify({"playlists": playlist_store.list_playlists(runtime().db, source=source or None)})


@bp.get("/api/clustering/playlists")
def automatic_playlists() -> Response:
    """The automatic playlists AudioMuse records, by name, with their track count and whether they are pinned."""
    return jsonify({"playlists": automatic.listed(runtime().db)})


@bp.post("/api/clustering/playlists/<path:name>/pin")
def pin(name: str) -> Response:
    """Pin an automatic playlist: later clustering runs neither update nor delete it, nor reuse its name."""
    return _pinned(name, True)


@bp.delete("/api/clustering/playlists/<path:name>/pin")
def unpin(name: str) -> Response:
    """Unpin it: the next clustering run updates it if it makes a playlist of that name, else deletes it."""
    return _pinned(name, False)


def _pinned(name: str, pinned: bool) -> Response:
    try:
        return jsonify({"playlist": automatic.set_pinned(runtime().db, name, pinned=pinned)})
    except automatic.UnknownPlaylist as exc:
        raise ApiError(404, str(exc), parameter="name") from None
