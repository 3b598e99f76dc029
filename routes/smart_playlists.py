"""The smart playlists API: list, create, change, delete, a live preview of a rule, and a refresh."""

from __future__ import annotations

from typing import Any

import psycopg2
from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from audio.musicnn import MODEL_NAME
from db import smart_playlists as smart_store
from db import task_status as task_store
from db import tracks as track_store
from discovery.smart_rules import Condition, RuleError, format_rule, parse_rule, rule_from_json
from mediaserver import MediaServerError
from routes.common import exclusions_json, request_exclusions
from routes.context import Runtime, runtime
from routes.errors import ApiError, bad_parameter
from routes.params import has_control_characters, json_body
from routes.task_start import start_response
from tasks.catalog import SMART_PLAYLISTS, start_task

bp = Blueprint("smart_playlists_api", __name__)

ORDERS = ("bpm", "energy", "similarity", "random")
PREVIEW_TRACKS = 25


def _conditions(body: dict[str, Any]) -> tuple[Condition, ...]:
    """The rule from `rule` (text) or `conditions` (the builder's JSON); 400 naming the field, with the position.
    Given both, both must parse and say the same rule: what is saved is never other than what the user saw."""
    rule = body.get("rule")
    given = body.get("conditions")
    parameter = "conditions" if given is not None and rule is None else "rule"
    try:
        from_rows = rule_from_json(given) if given is not None else None
    except RuleError as exc:
        raise ApiError(400, f"rule: {exc}", parameter="conditions", position=exc.position) from None
    try:
        if from_rows is not None and rule is None:
            return from_rows
        if not isinstance(rule, str):
            raise RuleError("give the rule as text (rule) or as conditions")
        from_text = parse_rule(rule)
    except RuleError as exc:
        raise ApiError(400, f"rule: {exc}", parameter=parameter, position=exc.position) from None
    if from_rows is not None and format_rule(from_rows) != format_rule(from_text):
        raise ApiError(400, f"rule: the rule text ({format_rule(from_text)}) and the conditions "
                            f"({format_rule(from_rows)}) differ", parameter="rule")
    return from_text


def _settings(body: dict[str, Any], base: dict[str, Any] | None = None) -> tuple[str, int, int]:
    base = base or {}
    order_by = body.get("order_by", base.get("order_by", "bpm"))
    if order_by not in ORDERS:
        raise bad_parameter("order_by", order_by, "one of " + ", ".join(ORDERS))
    seed = body.get("seed", base.get("seed", 1))
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**31 - 1:
        raise bad_parameter("seed", seed, "a whole number ≥ 0")
    size_cap = body.get("size_cap", base.get("size_cap", 100))
    if isinstance(size_cap, bool) or not isinstance(size_cap, int) or not 1 <= size_cap <= 5000:
        raise bad_parameter("size_cap", size_cap, "a whole number from 1 to 5000")
    return str(order_by), seed, size_cap


def _json(rt: Runtime, row: dict[str, Any]) -> dict[str, Any]:
    body = dict(row)
    body["playlist_name"] = row["name"] + smart_store.SUFFIX
    try:
        body["conditions"] = [c.as_json() for c in parse_rule(row["rule"])]
    except RuleError:
        body["conditions"] = []
    for key in ("last_refreshed_at", "created_at", "updated_at"):
        body[key] = row[key].isoformat() if row[key] else None
    return body


@bp.post("/api/smart_playlists/preview")
def preview() -> Response:
    """`{rule | conditions, order_by, seed, size_cap}` → the canonical rule, its conditions, how many tracks match
    and the first of them in the playlist's order."""
    rt = runtime()
    body = json_body()
    conditions = _conditions(body)
    order_by, seed, size_cap = _settings(body)
    exclusions = request_exclusions(rt)  # the saved ones (what a refresh publishes), and the request's own
    matches = smart_store.matching(rt.db, conditions, order_by=order_by, seed=seed, limit=size_cap, model=MODEL_NAME,
                                   exclusions=exclusions)
    rows = track_store.track_rows(rt.db, matches.item_ids[:PREVIEW_TRACKS])
    tracks = [{"item_id": i, "title": r["title"], "artist": r["artist"], "album": r["album"],
               "tempo_bpm": r.get("tempo_bpm"), "camelot": r.get("camelot"), "energy": r.get("energy")}
              for i in matches.item_ids[:PREVIEW_TRACKS] if (r := rows.get(i)) is not None]
    return jsonify({"rule": format_rule(conditions), "conditions": [c.as_json() for c in conditions],
                    "count": matches.count, "playlist_size": len(matches.item_ids), "tracks": tracks,
                    **exclusions_json(exclusions)})


@bp.get("/api/smart_playlists")
def list_view() -> Response:
    rt = runtime()
    return jsonify({"smart_playlists": [_json(rt, r) for r in smart_store.list_smart_playlists(rt.db)]})


def _name(body: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    name = str(body.get("name", (base or {}).get("name", "")) or "").strip()
    if not name or len(name) > 100 or has_control_characters(name) or "/" in name:
        raise bad_parameter("name", name[:40], "1-100 characters, no line breaks or slashes")
    return name


def _save(rt: Runtime, body: dict[str, Any], smart_playlist_id: int | None,
          base: dict[str, Any] | None = None) -> dict[str, Any]:
    name = _name(body, base)
    if base is not None and body.get("rule") is None and body.get("conditions") is None:
        conditions = parse_rule(base["rule"])
    else:
        conditions = _conditions(body)
    order_by, seed, size_cap = _settings(body, base)
    try:
        row = smart_store.save_smart_playlist(rt.db, smart_playlist_id=smart_playlist_id, name=name,
                                              rule=format_rule(conditions), order_by=order_by, seed=seed,
                                              size_cap=size_cap)
    except psycopg2.errors.UniqueViolation:
        raise ApiError(409, f"a smart playlist is already named {name!r}", parameter="name") from None
    if row is None:
        raise ApiError(404, f"no smart playlist with id {smart_playlist_id}", parameter="smart_playlist_id")
    return row


def _refresh(rt: Runtime, smart_playlist_id: int | None) -> str | None:
    try:
        return start_task(SMART_PLAYLISTS, {"smart_playlist_id": smart_playlist_id}, db=rt.db, redis=rt.redis,
                          config=rt.config).task_id
    except task_store.TaskAlreadyRunning:
        return None


@bp.post("/api/smart_playlists")
def create() -> tuple[Response, int]:
    """Create a smart playlist and start publishing it (`refresh_task_id`; null when a refresh is running, which
    then includes it)."""
    rt = runtime()
    row = _save(rt, json_body(), None)
    body = _json(rt, row)
    body["refresh_task_id"] = _refresh(rt, row["smart_playlist_id"])
    return jsonify(body), 201


@bp.put("/api/smart_playlists/<int:smart_playlist_id>")
def update(smart_playlist_id: int) -> Response:
    rt = runtime()
    base = smart_store.get_smart_playlist(rt.db, smart_playlist_id)
    if base is None:
        raise ApiError(404, f"no smart playlist with id {smart_playlist_id}", parameter="smart_playlist_id")
    row = _save(rt, json_body(), smart_playlist_id, base)
    body = _json(rt, row)
    body["warning"] = None
    if row["name"] != base["name"] and base["mediaserver_playlist"]:
        try:  # renamed: the playlist of the old name goes; the refresh publishes the new one
            rt.media_server().delete_playlist(base["mediaserver_playlist"])
        except MediaServerError as exc:
            body["warning"] = f"the media server kept {base['name'] + smart_store.SUFFIX}: {exc}"
    body["refresh_task_id"] = _refresh(rt, smart_playlist_id)
    return jsonify(body)


@bp.delete("/api/smart_playlists/<int:smart_playlist_id>")
def delete(smart_playlist_id: int) -> Response:
    """Delete it here and its playlist on the media server (a server that fails is reported; the rule is gone)."""
    rt = runtime()
    row = smart_store.delete_smart_playlist(rt.db, smart_playlist_id)
    if row is None:
        raise ApiError(404, f"no smart playlist with id {smart_playlist_id}", parameter="smart_playlist_id")
    warning = None
    if row["mediaserver_playlist"]:
        try:
            rt.media_server().delete_playlist(row["mediaserver_playlist"])
        except MediaServerError as exc:
            warning = f"the media server kept the playlist: {exc}"
    return jsonify({"deleted": smart_playlist_id, "warning": warning})


@bp.post("/api/smart_playlists/refresh")
def refresh() -> tuple[Response, int]:
    """Refresh every smart playlist (or `smart_playlist_id`) now: 202 with the task; 409 while one runs."""
    return start_response(SMART_PLAYLISTS, json_body())
