"""The schedules API (/api/cron, the reference's route): list, create or update by name, update, delete, run now,
the recent runs, and a preview of an expression (its description and next run times)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg2
from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from db import schedules as schedule_store
from db import task_status as task_store
from db.app_settings import effective_config
from db.clock import database_now
from routes.context import Runtime, runtime
from routes.errors import ApiError
from routes.params import has_control_characters, str_param
from schedules.cron import CronError, describe, next_runs, normalize, time_zone
from tasks.catalog import schedulable
from tasks.schedules import ScheduleParamsError, run_now, schedule_params, scheduler_identity

bp = Blueprint("cron_api", __name__)

MAX_NAME = 100
FIELDS = ("name", "task_type", "cron_expr", "timezone", "enabled", "params")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def schedule_json(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    body = {key: row[key] for key in ("schedule_id", "name", "task_type", "cron_expr", "timezone", "enabled",
                                      "params", "last_outcome", "last_task_id", "last_message")}
    body["id"] = row["schedule_id"]
    kind = schedulable().get(row["task_type"])
    body["task_label"] = kind.title if kind else row["task_type"]
    body["description"] = describe(row["cron_expr"])
    try:
        body["next_runs"] = [_iso(t) for t in next_runs(row["cron_expr"], row["timezone"], after=now)]
    except CronError:
        body["next_runs"] = []
    body.update(last_run=_iso(row["last_run_at"]), last_due_at=_iso(row["last_due_at"]),
                created_at=_iso(row["created_at"]), updated_at=_iso(row["updated_at"]))
    return body


def _previewed(expression: str, zone: str, now: datetime) -> list[str]:
    """The next three run times of a valid expression and zone, [] otherwise (shown beside any error)."""
    try:
        return [t.isoformat() for t in next_runs(normalize(expression), zone, after=now)]
    except CronError:
        return []


def _values(rt: Runtime, body: Mapping[str, Any], *, base: Mapping[str, Any] | None = None
            ) -> schedule_store.ScheduleValues:
    """The schedule a request describes (missing fields from `base` when updating); a 400 naming the field, with
    the expression's next run times when it is valid."""
    merged = {**(base or {}), **body}
    if base is not None and "task_type" in body and body["task_type"] != base.get("task_type") \
            and "params" not in body:
        merged["params"] = {}  # another task type: the old type's parameters do not apply
    now = database_now(rt.db)
    zone = str(merged.get("timezone") or rt.config.CRON_DEFAULT_TIMEZONE)
    expression = str(merged.get("cron_expr") or "")
    upcoming = _previewed(expression, zone, now)

    def bad(field: str, message: str) -> ApiError:
        return ApiError(400, message, parameter=field, next_runs=upcoming)

    unknown = sorted(set(body) - set(FIELDS) - {"id", "schedule_id"})
    if unknown:
        raise bad(unknown[0], f"unknown field {unknown[0]!r} (known: {', '.join(FIELDS)})")

    name = str(merged.get("name") or "").strip()
    if not name or len(name) > MAX_NAME or has_control_characters(name):
        raise bad("name", f"name must be 1-{MAX_NAME} characters without line breaks")
    task_type = str(merged.get("task_type") or "")
    if task_type not in schedulable():
        raise bad("task_type", f"task_type must be one of {', '.join(schedulable())}, not {task_type!r}")
    try:
        expression = normalize(expression)
        time_zone(zone)
    except CronError as exc:
        raise bad(exc.field, str(exc)) from None
    enabled = merged.get("enabled", True)
    if not isinstance(enabled, bool):
        raise bad("enabled", f"enabled must be true or false, not {enabled!r}")
    try:
        params = schedule_params(task_type, merged.get("params"), effective_config(rt.config, rt.db))
    except ScheduleParamsError as exc:
        raise bad(exc.field, str(exc)) from None
    return schedule_store.ScheduleValues(name=name, task_type=task_type, cron_expr=expression, timezone=zone,
                                         enabled=enabled, params=params)


def _body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "the body must be JSON", parameter=None)
    return body


def _schedule(schedule_id: int) -> dict[str, Any]:
    row = schedule_store.get_schedule(runtime().db, schedule_id)
    if row is None:
        raise ApiError(404, f"no schedule with id {schedule_id}", parameter="schedule_id")
    return row


@bp.get("/api/cron")
def list_view() -> Response:
    """Every schedule with its description, next three run times and last run."""
    rt = runtime()
    now = database_now(rt.db)
    return jsonify([schedule_json(row, now) for row in schedule_store.list_schedules(rt.db)])


@bp.post("/api/cron")
def save() -> tuple[Response, int]:
    """Create or update schedules by name: one object, or a list of them (as the reference's page sends); 201 when
    one was created, else 200."""
    rt = runtime()
    body = _body()
    entries = body if isinstance(body, list) else [body]
    if not entries or not all(isinstance(e, dict) for e in entries):
        raise ApiError(400, "the body must be a schedule object or a list of them", parameter=None)
    values = []
    for entry in entries:
        existing = schedule_store.get_by_name(rt.db, str(entry.get("name") or "").strip())
        values.append(_values(rt, entry, base=_editable(existing) if existing else None))
    saved, any_created = [], False
    now = database_now(rt.db)
    for value in values:
        row, created = schedule_store.upsert_by_name(rt.db, value)
        any_created |= created
        saved.append(schedule_json(row, now))
    return jsonify(saved if isinstance(body, list) else saved[0]), 201 if any_created else 200


def _editable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in FIELDS}


@bp.put("/api/cron/<int:schedule_id>")
def update(schedule_id: int) -> Response:
    """Change a schedule: the fields given replace its values (the name too)."""
    rt = runtime()
    body = _body()
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a schedule object", parameter=None)
    values = _values(rt, body, base=_editable(_schedule(schedule_id)))
    other = schedule_store.get_by_name(rt.db, values.name)
    if other is not None and other["schedule_id"] != schedule_id:
        raise ApiError(409, f"another schedule is named {values.name!r}", parameter="name")
    try:
        row = schedule_store.update_schedule(rt.db, schedule_id, values)
    except psycopg2.errors.UniqueViolation:
        raise ApiError(409, f"another schedule is named {values.name!r}", parameter="name") from None
    if row is None:
        raise ApiError(404, f"no schedule with id {schedule_id}", parameter="schedule_id")
    return jsonify(schedule_json(row, database_now(rt.db)))


@bp.delete("/api/cron/<int:schedule_id>")
def delete(schedule_id: int) -> Response:
    if not schedule_store.delete_schedule(runtime().db, schedule_id):
        raise ApiError(404, f"no schedule with id {schedule_id}", parameter="schedule_id")
    return jsonify({"deleted": schedule_id})


@bp.post("/api/cron/<int:schedule_id>/run")
def run(schedule_id: int) -> tuple[Response, int]:
    """Start the schedule's task now; 202 with the task, 409 when one of its type is running (recorded as
    skipped), 422 when it cannot start (e.g. clustering with too few tracks)."""
    rt = runtime()
    outcome = run_now(_schedule(schedule_id), db=rt.db, redis=rt.redis, config=rt.config,
                      claimed_by=f"web {scheduler_identity()}")
    if outcome["outcome"] == "skipped":
        raise ApiError(409, outcome["message"], task_id=outcome["task_id"])
    if outcome["outcome"] != "started" and outcome.get("unavailable"):
        raise ApiError(503, outcome["message"], retry_after=5)
    if outcome["outcome"] != "started":
        raise ApiError(422, outcome["message"] or "the task could not start")
    row = task_store.get_task(rt.db, outcome["task_id"])
    return jsonify({"task_id": outcome["task_id"], "task_type": row["task_type"] if row else None,
                    "status": row["status"] if row else task_store.PENDING, "outcome": "started"}), 202


@bp.get("/api/cron/<int:schedule_id>/runs")
def runs(schedule_id: int) -> Response:
    """The schedule's recent runs (scheduled, catch-up, manual) and their outcomes."""
    rt = runtime()
    _schedule(schedule_id)
    return jsonify({"runs": [dict(r, due_at=_iso(r["due_at"]), claimed_at=_iso(r["claimed_at"]))
                             for r in schedule_store.recent_runs(rt.db, schedule_id)]})


@bp.get("/api/cron/preview")
def preview() -> Response:
    """`cron_expr` and `timezone` → its description and next three run times (400 naming the field)."""
    rt = runtime()
    zone = str_param("timezone", rt.config.CRON_DEFAULT_TIMEZONE, max_length=64) or rt.config.CRON_DEFAULT_TIMEZONE
    try:
        expression = normalize(str_param("cron_expr", max_length=300))
        upcoming = next_runs(expression, zone, after=database_now(rt.db))
    except CronError as exc:
        raise ApiError(400, str(exc), parameter=exc.field) from None
    return jsonify({"cron_expr": expression, "timezone": zone, "description": describe(expression),
                    "next_runs": [t.isoformat() for t in upcoming]})
