"""What a schedule may start and with which parameters: the task types of the Schedules page, each with its
parameters validated like the matching API's body (clustering's through clustering.request, so a scheduled run
takes exactly what POST /api/clustering/start takes, `preset: true` included)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clustering.request import ClusteringRequest, RequestError
from config import NumberError, parse_bool, parse_int

__all__ = ["TASK_TYPES", "ParamsError", "validate_params"]

# task type → what the Schedules page calls it
TASK_TYPES = {
    "analysis": "Analysis",
    "clustering": "Clustering",
    "cleaning": "Database cleaning",
    "map_projection": "Music map",
    "sonic_fingerprint": "Sonic fingerprint playlist",
}
MAX_PLAYLIST_NAME = 100


class ParamsError(ValueError):
    """A parameter that cannot be used; `field` is its name as the API reports it (`params.<name>`)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.field = f"params.{name}" if name else "params"


def _int(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    try:
        number = parse_int(value)
    except NumberError:
        raise ParamsError(name, f"{name} must be a whole number from {low} to {high}, not {value!r}") from None
    if not low <= number <= high:
        raise ParamsError(name, f"{name} must be from {low} to {high}, not {number}")
    return number


def _bool(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    flag = value if isinstance(value, bool) else parse_bool(value) if isinstance(value, str) else None
    if flag is None:
        raise ParamsError(name, f"{name} must be true or false, not {value!r}")
    return flag


def _only(params: Mapping[str, Any], names: set[str]) -> None:
    unknown = sorted(set(params) - names)
    if unknown:
        allowed = ", ".join(sorted(names)) or "none"
        raise ParamsError(unknown[0], f"unknown parameter {unknown[0]!r} (known: {allowed})")


def validate_params(task_type: str, params: Any, *, clustering_defaults: ClusteringRequest, top_n_moods: int,
                    fingerprint_n: int, max_n: int) -> dict[str, Any]:
    """The parameters as stored, with defaults filled in; ParamsError naming the field otherwise."""
    if task_type not in TASK_TYPES:
        raise ParamsError("", f"unknown task type {task_type!r}")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ParamsError("", "params must be a JSON object")
    if task_type == "analysis":
        _only(params, {"num_recent_albums", "top_n_moods"})
        return {"num_recent_albums": _int(params, "num_recent_albums", 0, 0, 1_000_000),
                "top_n_moods": _int(params, "top_n_moods", top_n_moods, 1, 50)}
    if task_type == "clustering":
        if _bool(params, "preset", False):
            _only(params, {"preset", "ai_model_provider", "seed"})
        values = {k: v for k, v in params.items() if k != "preset"}
        try:
            clustering_defaults.with_values(values)
        except RequestError as exc:
            raise ParamsError(exc.parameter, str(exc)) from None
        return dict(params)
    if task_type == "cleaning":
        _only(params, {"dry_run"})
        return {"dry_run": _bool(params, "dry_run", False)}
    if task_type == "map_projection":
        _only(params, {"full"})
        return {"full": _bool(params, "full", False)}
    _only(params, {"n", "playlist_name"})
    name = str(params.get("playlist_name", "Sonic Fingerprint")).strip()
    if not name or len(name) > MAX_PLAYLIST_NAME or any(ord(c) < 32 for c in name):
        raise ParamsError("playlist_name", f"playlist_name must be 1-{MAX_PLAYLIST_NAME} characters without line "
                                           "breaks")
    return {"n": _int(params, "n", fingerprint_n, 1, max_n), "playlist_name": name}
