"""Task status and control: /api/active_tasks, /api/status/<id>, /api/cancel/<id>, /api/cancel_all/<type>,
/api/last_task, and /api/tasks/panel (what the pages' task panel shows)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from db import task_status as store
from routes.context import runtime
from routes.errors import ApiError
from tasks.catalog import CATALOG, by_task_type
from tasks.queues import cancel_task

bp = Blueprint("tasks_api", __name__)

FOLLOW_UPS = tuple(kind.task_type for kind in CATALOG if kind.follows_analysis)


# Result fields the reference's clients read at the top of `details` (e.g. a clustering's best score).
DETAIL_FIELDS = ("best_score", "num_playlists_created", "tracks_analyzed", "albums_total", "index_size")


# The page a task kind is started from: where a person goes to see its result or start it again
TASK_PAGES = {"main_analysis": "/analysis", "main_clustering": "/clustering", "cleaning": "/cleaning",
              "map_projection": "/map", "sonic_fingerprint": "/sonic_fingerprint",
              "smart_playlists_refresh": "/smart_playlists", "playlist_matching": "/playlists/match"}
PANEL_RECENT_MINUTES = 30
PANEL_RECENT_TASKS = 6  # an analysis and its follow-ups (map, smart playlists, matching) with room to spare


def task_title(task_type: str) -> str:
    """A task kind as a person calls it ("Music map", not map_projection)."""
    kind = by_task_type(task_type)
    if kind is not None:
        return kind.title
    return task_type.removeprefix("main_").replace("_", " ").capitalize()


def _details(row: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {"log": row["log"], "status_message": row["message"], "result": row["result"]}
    result = row["result"]
    if isinstance(result, dict):
        details.update({name: result[name] for name in DETAIL_FIELDS if name in result})
    return details


def task_json(row: dict[str, Any], *, with_children: bool = True) -> dict[str, Any]:
    """One shape for a task everywhere in the API (the reference field names `state`, `status_message`,
    `details` and `running_time_seconds` are kept beside ours)."""
    now = datetime.now(UTC)
    started = row["started_at"] or row["created_at"]
    ended = row["finished_at"] or now
    body = {
        "task_id": row["task_id"],
        "task_type": row["task_type"],
        "task_type_from_db": row["task_type"],
        "title": task_title(row["task_type"]),
        "page": TASK_PAGES.get(row["task_type"]),
        "parent_task_id": row["parent_task_id"],
        "status": row["status"],
        "state": row["status"],
        "progress": row["progress"],
        "phase": row["phase"],
        "current": row["current_item"],
        "total": row["total_items"],
        "status_message": row["message"],
        "log": row["log"],
        "result": row["result"],
        # the traceback stays in the database and the worker's log; clients get the one-line cause
        "error": row["message"] if row["error"] else None,
        "details": _details(row),
        "running_time_seconds": max(0.0, (ended - started).total_seconds()),
        "created_at": row["created_at"].isoformat(),
        "started_at": row["started_at"].isoformat() if row["started_at"] else None,
        "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
        "server_time": now.isoformat(),
    }
    if with_children:
        body["children"] = store.child_counts(runtime().db, row["task_id"])
    return body


@bp.get("/api/active_tasks")
def active_tasks() -> Response:
    """The newest active main task (or {} when none), plus `all_active` listing every active main task."""
    rows = store.active_main_tasks(runtime().db)
    if not rows:
        return jsonify({})
    tasks = [task_json(r) for r in rows]
    newest = dict(tasks[0])
    newest["all_active"] = tasks
    return jsonify(newest)


@bp.get("/api/last_task")
def last_task() -> Response:
    # The map, smart playlist and playlist matching jobs follow an analysis run: a client of the reference that
    # starts an analysis and polls this route expects the analysis here, as the reference (which does its follow-up
    # work inside its analysis task) answers.
    row = store.last_main_task(runtime().db, excluding=FOLLOW_UPS)
    return jsonify(task_json(row) if row else {"task_id": None, "status": "NO_PREVIOUS_MAIN_TASK"})


@bp.get("/api/tasks/panel")
def panel() -> Response:
    """Every active main task, newest first, and the main tasks of any kind (follow-ups of an analysis too) that
    finished in the last PANEL_RECENT_MINUTES minutes."""
    db = runtime().db
    return jsonify({"active": [task_json(r) for r in store.active_main_tasks(db)],
                    "recent": [task_json(r, with_children=False) for r in store.recently_finished_main_tasks(
                        db, minutes=PANEL_RECENT_MINUTES, limit=PANEL_RECENT_TASKS)],
                    "server_time": datetime.now(UTC).isoformat()})


@bp.get("/api/status/<task_id>")
def status(task_id: str) -> Response:
    row = store.get_task(runtime().db, task_id)
    if row is None:
        # the reference's fields beside the error, so its clients read an unknown task as they read a known one
        raise ApiError(404, f"no task with id '{task_id}'", parameter="task_id", task_id=task_id, state="UNKNOWN",
                       status_message="Task ID not found.", progress=0, details={}, task_type_from_db=None,
                       running_time_seconds=0)
    return jsonify(task_json(row))


@bp.route("/api/cancel/<task_id>", methods=["POST"])
def cancel(task_id: str) -> Response:
    """Cancel a task and its unfinished children. As the reference answers, a task that has ended and an unknown id
    are a 200 with `cancelled_jobs_count: 0` (and `status` saying which): there is nothing left to cancel."""
    rt = runtime()
    row = store.get_task(rt.db, task_id)
    if row is None or row["status"] in store.FINISHED_STATES:
        status = row["status"] if row else "UNKNOWN"
        message = (f"Task {task_id} already ended ({status}): nothing to cancel." if row
                   else f"Task {task_id} is not known: nothing to cancel.")
        return jsonify({"message": message, "task_id": task_id, "status": status, "cancelled_jobs_count": 0,
                        "revoked_task_ids": []})
    revoked = cancel_task(task_id, db=rt.db, connection=rt.redis)
    return jsonify({"message": f"Task {task_id} cancellation requested: {len(revoked)} task(s) cancelled.",
                    "task_id": task_id, "status": store.REVOKED, "cancelled_jobs_count": len(revoked),
                    "revoked_task_ids": revoked})


@bp.route("/api/cancel_all/<task_type>", methods=["POST"])
def cancel_all(task_type: str) -> Response | tuple[Response, int]:
    """Cancel every active main task of `task_type` (exactly that type, as the task panel reports it) and their
    children; 404 when none is active."""
    rt = runtime()
    rows = store.active_main_tasks_of_type(rt.db, task_type)
    if not rows:
        # the API's error shape, with the reference's `message` beside `error`
        said = f"No active tasks of type '{task_type}' found to cancel."
        return jsonify({"error": said, "status": 404, "parameter": "task_type", "message": said}), 404
    revoked = [job for row in rows for job in cancel_task(row["task_id"], db=rt.db, connection=rt.redis)]
    main_ids = [row["task_id"] for row in rows]
    return jsonify({"message": f"Cancellation initiated for {len(main_ids)} main tasks of type '{task_type}' and "
                               f"their children. Total jobs affected: {len(revoked)}.",
                    "cancelled_main_tasks": main_ids, "cancelled_jobs_count": len(revoked)})
