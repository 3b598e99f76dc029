"""The clustering API: start a run (custom or preset), the preset for this library, the generated playlists."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from clustering.request import MIN_TRACKS, ClusteringRequest, RequestError, defaults_from, fit_to_library, preset
from db import playlists as playlist_store
from db import task_status as task_store
from db import tracks as track_store
from db.app_settings import effective_config
from routes.context import runtime
from routes.errors import ApiError, bad_parameter
from routes.params import bool_param, json_body, raw_param
from tasks.queues import MAIN_CLUSTERING, start_main_task

bp = Blueprint("clustering_api", __name__)


def clustering_defaults() -> ClusteringRequest:
    rt = runtime()
    return defaults_from(effective_config(rt.config, rt.db))


def preset_request() -> tuple[ClusteringRequest, int]:
    size, artists = track_store.library_counts(runtime().db)
    return preset(size, artists, clustering_defaults()), size


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
    rt = runtime()
    body: dict[str, Any] = dict(json_body())
    if bool_param("preset", False):
        base, size = preset_request()
        overrides: dict[str, Any] = {k: body[k] for k in ("ai_model_provider", "seed") if k in body}
    else:
        base, size = clustering_defaults(), track_store.library_counts(rt.db)[0]
        overrides = body
    try:
        request = base.with_values(overrides)
    except RequestError as exc:
        raise bad_parameter(exc.parameter, exc.value, exc.expected) from None
    if size < MIN_TRACKS:
        raise ApiError(409, f"only {size} analyzed tracks: run an analysis first (clustering needs at least "
                            f"{MIN_TRACKS})")
    # The task fits the request to the library it loads (and records that); say now what that will change.
    fitted, adjustments = fit_to_library(request, size)
    try:
        task_id = start_main_task(MAIN_CLUSTERING, kwargs=request.as_dict(), db=rt.db, connection=rt.redis,
                                  config=rt.config)
    except task_store.TaskAlreadyRunning as exc:
        raise ApiError(409, "a clustering task is already running", task_id=exc.active_task_id,
                       task_type=MAIN_CLUSTERING.task_type) from None
    return jsonify({"task_id": task_id, "task_type": MAIN_CLUSTERING.task_type, "status": task_store.PENDING,
                    "params": fitted.as_dict(), "adjustments": adjustments}), 202


@bp.get("/api/clustering/last")
def last_run() -> Response:
    """The most recent clustering task: status, message and summary."""
    return jsonify({"last_run": task_store.last_main_task_of_type(runtime().db, MAIN_CLUSTERING.task_type)})


@bp.get("/api/playlists")
def playlists() -> Response:
    """Playlists AudioMuse made, with their tracks; `source=clustering` for the generated ones."""
    source = raw_param("source")
    if source is not None and not isinstance(source, str):
        raise bad_parameter("source", source, "a string")
    return jsonify({"playlists": playlist_store.list_playlists(runtime().db, source=source or None)})
