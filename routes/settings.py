"""Media-server settings: read (secrets masked), save, and test a connection before saving; the blocklists and
scope every list applies (read, save); the configuration snapshot clients read (/api/config)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from config import Config, ConfigError
from db import app_settings
from discovery.exclusions import join_names, split_names
from mediaserver import ADAPTERS, MediaServerError, get_media_server
from routes.context import runtime
from routes.errors import ApiError
from routes.params import MAX_DURATION_LIMIT, float_param, json_body, names_param
from routes.ratelimit import over_limit
from services.config_snapshot import config_snapshot

bp = Blueprint("settings_api", __name__)
log = logging.getLogger(__name__)
CONNECTION_TESTS_PER_MINUTE = 10

def _fields(kind: str) -> dict[str, str]:
    """The form's fields for a server type, as the settings they stand for (declared by the adapter)."""
    return {f.field: f.setting for f in ADAPTERS[kind].settings}


def _mask(secret: str) -> str:
    return "••••••••" if secret else ""


def _describe(config: Config) -> dict[str, Any]:
    kind = config.MEDIASERVER_TYPE
    body: dict[str, Any] = {"type": kind, "types": list(ADAPTERS)}
    for field, name in _fields(kind).items():
        value = getattr(config, name)
        if field == "secret":
            body["secret_set"] = bool(value)
            body["secret_hint"] = _mask(str(value))
        else:
            body[field] = value
    return body


def _candidate(rt_config: Config, saved: dict[str, Any], form: dict[str, Any]) -> tuple[Config, dict[str, Any]]:
    """The configuration the submitted form describes, and the settings to save. A blank secret keeps the old."""
    kind = str(form.get("type", "")).strip().lower()
    if kind not in ADAPTERS:
        raise ApiError(400, f"invalid value for 'type': {kind!r} (one of {', '.join(ADAPTERS)})", parameter="type")
    values: dict[str, Any] = {"MEDIASERVER_TYPE": kind}
    fields = _fields(kind)
    for field, name in fields.items():
        raw = form.get(field)
        if field == "secret" and not raw:
            # Keep the saved secret only for the server it was saved for: never send it to a new address.
            target = {f: str(form.get(f, "")).strip() for f in ("url", "host", "port") if f in fields}
            saved_target = {f: str(saved.get(fields[f], getattr(rt_config, fields[f]))) for f in target}
            if target != saved_target:
                values[name] = ""
            elif name in saved:
                values[name] = saved[name]
            continue
        if raw is not None:
            values[name] = str(raw).strip()
    try:
        candidate = rt_config.with_overrides(**{**saved, **values})
    except ConfigError as exc:
        raise ApiError(400, str(exc), parameter=_field_of(str(exc))) from None
    return candidate, {**saved, **values}


def _field_of(message: str) -> str | None:
    for adapter in ADAPTERS.values():
        for setting in adapter.settings:
            if message.startswith(setting.setting):
                return setting.field
    return None


@bp.get("/api/config")
def config_view() -> Response:
    """The configuration in force that clients use (clustering ranges, AI provider and models, moods, alchemy
    defaults), under the reference's key names; no key, password or token."""
    rt = runtime()
    return jsonify(config_snapshot(app_settings.effective_config(rt.config, rt.db)))


@bp.get("/api/settings/mediaserver")
def read() -> Response:
    rt = runtime()
    config = app_settings.effective_config(rt.config, rt.db)
    body = _describe(config)
    body["saved"] = bool(app_settings.media_settings(rt.db, rt.config))
    return jsonify(body)


@bp.post("/api/settings/mediaserver")
def save() -> Response:
    rt = runtime()
    saved = app_settings.media_settings(rt.db, rt.config)
    candidate, values = _candidate(rt.config, saved, json_body())
    app_settings.save_media_settings(rt.db, rt.config, values)
    return jsonify(_describe(candidate) | {"saved": True})


@bp.post("/api/settings/mediaserver/test")
def test_connection() -> Response:
    """Connect with the submitted settings (without saving them): libraries and album count, or the cause."""
    rt = runtime()
    wait = over_limit(rt.redis, "connection-test", limit=CONNECTION_TESTS_PER_MINUTE, window_seconds=60)
    if wait is not None:
        raise ApiError(429, f"too many connection tests; try again in {wait} s", retry_after=wait)
    candidate, _ = _candidate(rt.config, app_settings.media_settings(rt.db, rt.config), json_body())
    try:
        server = get_media_server(candidate)
        libraries = [lib.name for lib in server.list_libraries()]
        albums = len(server.list_albums(limit=None))
    except MediaServerError as exc:
        # The test can be pointed at any address: answer with the cause, never with what the other end sent.
        log.info("connection test to %s failed: %s", candidate.MEDIASERVER_TYPE, exc)
        return jsonify({"ok": False, "error": exc.public_cause})
    except Exception as exc:  # an answer the adapter did not expect: say so in one line, not a stack trace
        log.info("connection test to %s: unexpected answer", candidate.MEDIASERVER_TYPE, exc_info=True)
        return jsonify({"ok": False, "error": f"unexpected answer from the server ({type(exc).__name__})"})
    return jsonify({"ok": True, "type": candidate.MEDIASERVER_TYPE, "libraries": libraries, "album_count": albums})


# The blocklist form's fields → the settings they stand for (config.EXCLUSION_SETTINGS).
EXCLUSION_FIELDS = {"artists": "EXCLUDE_ARTISTS", "albums": "EXCLUDE_ALBUMS", "genres": "EXCLUDE_GENRES",
                    "folders": "EXCLUDE_FOLDERS", "libraries": "SCOPE_LIBRARIES", "scope_folders": "SCOPE_FOLDERS"}
MAX_DURATION_SETTING = "MAX_SUGGESTED_TRACK_SECONDS"


def _exclusions_body(config: Config) -> dict[str, Any]:
    body: dict[str, Any] = {field: split_names(getattr(config, name)) for field, name in EXCLUSION_FIELDS.items()}
    body["max_duration"] = getattr(config, MAX_DURATION_SETTING) or None
    return body


@bp.get("/api/settings/exclusions")
def read_exclusions() -> Response:
    """The blocklists and scope in force: {artists, albums, genres, folders, libraries, scope_folders (lists of
    names), max_duration (seconds, null: none), saved (whether the Settings page saved them)}."""
    rt = runtime()
    body = _exclusions_body(app_settings.effective_config(rt.config, rt.db))
    body["saved"] = bool(app_settings.exclusion_settings(rt.db))
    return jsonify(body)


@bp.post("/api/settings/exclusions")
def save_exclusions() -> Response:
    """Save the blocklists and scope (the fields of the GET; each a list of names or comma-separated text; a field
    left out keeps its value); 400 naming the field that is wrong. Every list applies them from the next request."""
    rt = runtime()
    json_body()  # a body that is not a JSON object is a 400 naming it
    saved = app_settings.exclusion_settings(rt.db)
    values = dict(saved)
    for field, name in EXCLUSION_FIELDS.items():
        names = names_param(field)
        if names is not None:
            values[name] = join_names(names)
    if "max_duration" in json_body():
        values[MAX_DURATION_SETTING] = float_param("max_duration", None, minimum=0, maximum=MAX_DURATION_LIMIT) or 0.0
    try:
        candidate = rt.config.with_overrides(**{**app_settings.media_settings(rt.db, rt.config), **values})
    except ConfigError as exc:
        name = str(exc).split("=", 1)[0]
        field = next((f for f, n in EXCLUSION_FIELDS.items() if n == name), "max_duration")
        raise ApiError(400, str(exc), parameter=field) from None
    app_settings.save_exclusion_settings(rt.db, values)
    rt.forget_auth()  # this process reads them again on its next request
    return jsonify(_exclusions_body(candidate) | {"saved": True})
