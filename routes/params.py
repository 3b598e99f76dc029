"""Reading request parameters with errors that name the parameter (JSON body, form or query string)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

from flask import request

from config import NumberError, parse_bool, parse_int, parse_number
from discovery.exclusions import MAX_NAME_LENGTH, MAX_NAMES, Exclusions, split_names
from routes.errors import ApiError, bad_parameter


def raw_param(name: str) -> Any:
    """A parameter from the JSON body, the form or the query string, in that order (None when absent)."""
    body = request.get_json(silent=True) if request.is_json else None
    if isinstance(body, dict) and name in body:
        return body[name]
    if name in request.form:
        return request.form[name]
    return request.args.get(name)


# The largest integer a parameter may be unless the route says otherwise: PostgreSQL's integer, so a huge value is
# a 400 naming the parameter, not an out-of-range error from the database.
MAX_INT = 2**31 - 1


def _number_param(name: str, parse: Callable[[object], Any]) -> Any:
    """The parameter as `parse` reads it (config.parse_int or parse_number, bounds bound), None when absent; a 400
    naming it and what was expected otherwise."""
    raw = raw_param(name)
    if raw is None or raw == "":
        return None
    try:
        return parse(raw)
    except NumberError as exc:
        raise bad_parameter(name, raw, exc.expected) from None


def int_param(name: str, default: int, *, minimum: int | None = None, maximum: int | None = MAX_INT) -> int:
    value = _number_param(name, lambda raw: parse_int(raw, minimum=minimum, maximum=maximum))
    return default if value is None else int(value)


def str_param(name: str, default: str = "", *, max_length: int = 500) -> str:
    raw = raw_param(name)
    if raw is None:
        return default
    if not isinstance(raw, str):
        raise bad_parameter(name, raw, "a string")
    if len(raw) > max_length:
        raise bad_parameter(name, raw[:40] + "…", f"at most {max_length} characters")
    if has_control_characters(raw):
        raise bad_parameter(name, raw[:40], "text without control characters")
    return raw.strip()


def has_control_characters(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def json_body() -> dict[str, Any]:
    """The request's JSON object (an empty one when there is no body); a 400 when it is not an object."""
    if not request.data:
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", parameter="body")
    return body


@overload
def float_param(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float: ...


@overload
def float_param(name: str, default: None, *, minimum: float | None = None,
                maximum: float | None = None) -> float | None: ...


def float_param(name: str, default: float | None, *, minimum: float | None = None,
                maximum: float | None = None) -> float | None:
    value = _number_param(name, lambda raw: parse_number(raw, minimum=minimum, maximum=maximum))
    return default if value is None else float(value)


def bool_param(name: str, default: bool) -> bool:
    raw = raw_param(name)
    if raw is None or raw == "":
        return default
    if (flag := parse_bool(raw)) is None:
        raise bad_parameter(name, raw, "true or false")
    return flag


# The request parameters of the blocklists and scope (discovery.exclusions) → the field of Exclusions they fill.
EXCLUSION_PARAMS = {"exclude_artists": "artists", "exclude_albums": "albums", "exclude_genres": "genres",
                    "exclude_folders": "folders", "libraries": "libraries", "folders": "scope_folders"}
MAX_DURATION_LIMIT = 1e6  # seconds (11 days): anything longer is no song length


def names_param(name: str) -> list[str] | None:
    """A list of names: a JSON list of strings (or one comma-separated string), or comma-separated text in the form
    or query string (repeating the parameter adds to it; `\\,` is a comma inside a name); None when absent. A 400
    naming the parameter for anything else."""
    body = request.get_json(silent=True) if request.is_json else None
    if isinstance(body, dict) and name in body:
        raw: Any = body[name]
        if raw is None:
            return None
        if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            names = [v.strip() for v in raw if v.strip()]  # a list holds whole names: commas are theirs
        elif isinstance(raw, str):
            names = split_names(raw)
        else:
            raise bad_parameter(name, raw, "a list of names or comma-separated text")
    elif name in request.form or name in request.args:
        texts = request.form.getlist(name) if name in request.form else request.args.getlist(name)
        names = [part for text in texts for part in split_names(text)]
    else:
        return None
    if len(names) > MAX_NAMES:
        raise bad_parameter(name, f"{len(names)} names", f"at most {MAX_NAMES}")
    for value in names:
        if len(value) > MAX_NAME_LENGTH or has_control_characters(value):
            raise bad_parameter(name, value[:40], f"names of at most {MAX_NAME_LENGTH} characters without control "
                                                  "characters")
    return names


def exclusion_params() -> Exclusions:
    """The blocklists and scope a request adds (EXCLUSION_PARAMS and `max_duration` in seconds, 0: none); unknown
    keys are not this function's business. A 400 naming the parameter that is wrong."""
    values: dict[str, Any] = {}
    for name, field in EXCLUSION_PARAMS.items():
        names = names_param(name)
        if names is not None and (names or field not in ("libraries", "scope_folders")):
            values[field] = names
    maximum = float_param("max_duration", None, minimum=0, maximum=MAX_DURATION_LIMIT)
    return Exclusions.of(**values, max_duration=maximum or None)


def _nul_in(value: Any, name: str, depth: int = 0) -> str | None:
    """The name of the first string in `value` (a JSON value) that holds a NUL byte, None if none does."""
    if isinstance(value, str):
        return name if "\x00" in value else None
    if depth > 32:  # deeper than any request of ours: werkzeug's own parser refuses far deeper ones
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return str(key).replace("\x00", "\\x00")
        found = _nul_in(item, str(key), depth + 1)
        if found is not None:
            return found
    return None


def refuse_nul_bytes() -> None:
    """A before_request hook: a NUL byte in the path, a query parameter or a JSON body's strings is a 400 naming
    where it is, before any route hands it to PostgreSQL (which cannot store one in text) or a file name."""
    if "\x00" in request.path:
        raise ApiError(400, "the path holds a NUL byte", parameter="path")
    for key, value in request.args.items(multi=True):
        if "\x00" in key or "\x00" in value:
            raise ApiError(400, "a query parameter holds a NUL byte", parameter=key.replace("\x00", "\\x00"))
    if request.is_json and request.content_length and request.content_length <= 4 * 1024 * 1024:
        found = _nul_in(request.get_json(silent=True), "body")
        if found is not None:
            raise ApiError(400, "a value holds a NUL byte", parameter=found)
