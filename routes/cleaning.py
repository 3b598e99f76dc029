"""The cleaning API: start a dry run or a confirmed run, and the last run's summary."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from db import task_status as task_store
from discovery.cleaning import previewed_ids
from routes.context import runtime
from routes.errors import ApiError, bad_parameter
from routes.params import bool_param, raw_param
from routes.task_start import start_response
from tasks.catalog import CLEANING

bp = Blueprint("cleaning_api", __name__)


@bp.post("/api/cleaning/start")
def start() -> tuple[Response, int]:
    """Start cleaning. `dry_run: true` lists what would be removed and deletes nothing; `preview_task_id` (a
    finished dry run) makes the run delete only what that preview showed. Without either, the run deletes the
    orphans it finds, as the reference's cleaning does — within the same safety checks."""
    rt = runtime()
    dry_run = bool_param("dry_run", False)
    preview = raw_param("preview_task_id")
    if preview is not None and (not isinstance(preview, str) or not preview.strip()):
        raise bad_parameter("preview_task_id", preview, "the task id of a cleaning dry run")
    if preview and dry_run:
        raise bad_parameter("preview_task_id", preview, "only with dry_run false: it confirms a dry run")
    if preview and previewed_ids(task_store.get_task(rt.db, preview), task_type=CLEANING.task_type) is None:
        raise ApiError(409, f"task '{preview}' is not a finished cleaning dry run: preview again",
                       parameter="preview_task_id")
    return start_response(CLEANING, {"dry_run": dry_run}, extra={"preview_task_id": preview or None},
                          dry_run=dry_run, preview_task_id=preview or None)


@bp.get("/api/cleaning/last")
def last_run() -> Response:
    """The most recent cleaning task: status, message and summary (its result)."""
    rt = runtime()
    return jsonify({"last_run": task_store.last_main_task_of_type(rt.db, CLEANING.task_type),
                    "safety_limit": rt.config.CLEANING_SAFETY_LIMIT,
                    "min_remaining_fraction": rt.config.CLEANING_MIN_REMAINING_FRACTION})
