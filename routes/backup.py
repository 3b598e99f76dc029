"""Backups: start one (POST /api/backup, or the Settings page's button), list them, download one. Restoring is the
CLI's (`python -m services.backup restore FILE`): it replaces the database under the running processes."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, send_file, url_for
from werkzeug.wrappers import Response

from db.task_status import TaskAlreadyRunning
from routes.context import runtime
from routes.errors import ApiError
from routes.task_start import start_response
from services.backup import backup_path, list_backups
from tasks.catalog import BACKUP

bp = Blueprint("backup", __name__)


@bp.post("/api/backup")
def start_backup() -> tuple[Response, int]:
    """202 {task_id, task_type: "backup", status}: the backup is written by a worker to DATA_DIR/backups."""
    return start_response(BACKUP, {})


@bp.get("/api/backups")
def backups() -> Response:
    """The backups kept, newest first: [{name, bytes, created_at}]."""
    return jsonify([b.as_dict() for b in list_backups(runtime().config)])


@bp.get("/api/backups/<name>")
def download(name: str) -> Response:
    path = backup_path(runtime().config, name)
    if path is None:
        raise ApiError(404, f"no backup named {name!r}", parameter="name")
    return send_file(path, mimetype="application/x-tar", as_attachment=True, download_name=name, max_age=0)


@bp.post("/settings/backup")
def settings_backup() -> Response:
    """The Settings page's button: start a backup, back to the page (its task panel shows the progress; one
    already running is shown there too)."""
    try:
        start_response(BACKUP, {})
    except TaskAlreadyRunning:
        pass
    return redirect(url_for("pages.settings") + "#backups")
