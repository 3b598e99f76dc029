"""The task catalogue: every kind of main task AudioMuse runs, one entry each — its job function, its name, its
title, its parameter parser (shared by its start route and by schedules, so the two cannot accept different
values), whether a schedule may start it, whether it follows an analysis run, its timeout and what a user is told
while one runs.

A new task type is its module in tasks/ plus one entry here: the start routes, the schedules (API, page and
scheduler), the task panel and /api/last_task read this table.

Two names per entry, for compatibility only: `name` is the one the code and the schedules use; `task_type` is what
the task_status table records and the API reports, which for analysis and clustering keeps the reference's
`main_analysis` / `main_clustering` that its clients look for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis import Redis

from clustering.request import MIN_TRACKS, RequestError, defaults_from, fit_to_library, is_parameter, preset
from config import Config, NumberError, parse_bool, parse_int
from db import tracks as track_store
from db.app_settings import effective_config
from db.pool import Database
from tasks.queues import start_main_task
from tasks.types import TaskRef

__all__ = ["ANALYSIS", "CATALOG", "CLEANING", "CLUSTERING", "SONIC_FINGERPRINT", "MAP", "PLAYLIST_MATCHING",
           "SMART_PLAYLISTS", "NotStartable", "ParamError", "Started", "TaskKind", "by_name", "by_task_type",
           "parse_params", "schedulable", "start_task"]

MAX_PLAYLIST_NAME = 100
MAX_INT = 2**31 - 1


class ParamError(ValueError):
    """A task parameter that cannot be used: its name, the value given and what was expected."""

    def __init__(self, name: str, value: Any, expected: str) -> None:
        super().__init__(f"{name} must be {expected}, not {value!r}" if name else expected)
        self.name, self.value, self.expected = name, value, expected


class NotStartable(RuntimeError):
    """The task cannot start now for a reason other than "one is running" (too few analyzed tracks, say)."""


@dataclass(frozen=True)
class Started:
    """A task that was started: its id and status name, the parameters it runs with, and notes on what was
    adjusted to fit the library."""

    task_id: str
    task_type: str
    params: dict[str, Any]
    notes: list[str] = field(default_factory=list)


Parser = Callable[[Mapping[str, Any], Config, bool], dict[str, Any]]
Starter = Callable[["TaskKind", dict[str, Any], Database, Redis, Config], Started]


@dataclass(frozen=True, kw_only=True)
class TaskKind(TaskRef):
    """One kind of main task. `path` names the job function by import path, so the web process enqueues it without
    importing its module (and that module's audio stack)."""

    name: str
    title: str
    busy: str  # the 409's message while one runs
    parse: Parser
    param_names: tuple[str, ...]  # what its start route reads from a request
    hint: str = ""  # the schedules page's example parameters
    schedulable: bool = True
    follows_analysis: bool = False
    timeout_setting: str | None = None  # a Config field in seconds; None: MAIN_TASK_TIMEOUT_SECONDS
    records_reason: bool = False  # its runs record what asked for them (`reason`: user, schedule, analysis, ...)
    fixed: Mapping[str, Any] = field(default_factory=dict)  # arguments of every run unless the caller gives them
    start: Starter | None = None  # a start of its own (clustering resolves the preset at start time)

    def timeout(self, config: Config) -> float | None:
        return float(getattr(config, self.timeout_setting)) if self.timeout_setting else None


# --- parameter parsers (one per kind; values may be JSON values or strings from a form) ----------------------------

def _whole(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse_int(raw, minimum=low, maximum=high)
    except NumberError:
        raise ParamError(name, raw, f"a whole number from {low} to {high}") from None


def _flag(params: Mapping[str, Any], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    flag = parse_bool(raw)  # true/false, and 1/0, yes/no, on/off as JSON values or text
    if flag is None:
        raise ParamError(name, raw, "true or false")
    return flag


def _analysis(params: Mapping[str, Any], config: Config, strict: bool) -> dict[str, Any]:
    # 0 or less: the whole library (as the setting says); the bounds are PostgreSQL's integer's
    return {"num_recent_albums": _whole(params, "num_recent_albums", config.NUM_RECENT_ALBUMS, -MAX_INT, MAX_INT),
            "top_n_moods": _whole(params, "top_n_moods", config.TOP_N_MOODS, 1, 50),
            "rebuild_index": _flag(params, "rebuild_index", False),
            # absent: fast only for a first run over a huge library (FAST_ANALYSIS_FIRST_RUN_TRACKS)
            "fast": None if params.get("fast") is None else _flag(params, "fast", False),
            "upgrade_fast": _flag(params, "upgrade_fast", False)}


def _clustering(params: Mapping[str, Any], config: Config, strict: bool) -> dict[str, Any]:
    """Checked against the defaults; kept as given, since the preset and the defaults are resolved when the run
    starts (the library then decides the preset's settings). With `preset` only PRESET_TAKES count: other names
    are refused in a schedule and ignored in a request. A request's names that are no clustering parameter are
    dropped (the Jellyfin plugin sends its AI keys and model names); a schedule's are refused."""
    if not strict:
        params = {k: v for k, v in params.items() if k == "preset" or is_parameter(k)}
    if _flag(params, "preset", False):
        unknown = sorted(set(params) - {"preset", *PRESET_TAKES})
        if strict and unknown:
            raise ParamError(unknown[0], params[unknown[0]],
                             f"left out with preset (it takes only {', '.join(PRESET_TAKES)})")
        params = {k: v for k, v in params.items() if k == "preset" or k in PRESET_TAKES}
    _request(params, config, library=None)
    return dict(params)


def _cleaning(params: Mapping[str, Any], config: Config, strict: bool) -> dict[str, Any]:
    return {"dry_run": _flag(params, "dry_run", False)}


def _map(params: Mapping[str, Any], config: Config, strict: bool) -> dict[str, Any]:
    return {"full": _flag(params, "full", False)}


def _backup(params: Mapping[str, Any], config: Config, strict: bool) -> dict[str, Any]:
    if strict and params:
        name = sorted(params)[0]
        raise ParamError(name, params[name], "no parameters: a backup takes none")
    return {}


def _fingerprint(params: Mapping[str, Any], config: Config, strict: bool) -> dict[str, Any]:
    name = params.get("playlist_name")
    name = "Sonic Fingerprint" if name is None else str(name).strip()
    if not name or len(name) > MAX_PLAYLIST_NAME or any(ord(c) < 32 for c in name):
        raise ParamError("playlist_name", name, f"1-{MAX_PLAYLIST_NAME} characters without line breaks")
    return {"n": _whole(params, "n", config.SONIC_FINGERPRINT_NEIGHBORS, 1, config.SIMILAR_MAX_N),
            "playlist_name": name}


def _smart_playlists(params: Mapping[str, Any], config: Config, strict: bool) -> dict[str, Any]:
    one = params.get("smart_playlist_id")
    if one is not None and (isinstance(one, bool) or not isinstance(one, int)):
        raise ParamError("smart_playlist_id", one, "a smart playlist id")
    return {"smart_playlist_id": one}


def _matching(params: Mapping[str, Any], config: Config, strict: bool) -> dict[str, Any]:
    full = params.get("full", True)
    if not isinstance(full, bool):
        raise ParamError("full", full, "true or false")
    since = params.get("since")
    if since is not None:
        try:
            datetime.fromisoformat(str(since))
        except ValueError:
            raise ParamError("since", since, "an ISO 8601 time, e.g. 2026-12-01T00:00:00+00:00") from None
    return {"full": full, "since": since}


# --- clustering: one start for its route and its schedules -----------------------------------------------------------

PRESET_TAKES = ("ai_model_provider", "seed")  # what a preset run takes from the request


def _request(params: Mapping[str, Any], config: Config, *, library: tuple[int, int] | None) -> Any:
    """The clustering request `params` describe: the preset for `library` (size, artists) when `preset` is true
    (taking only PRESET_TAKES from `params`), else the configuration's defaults overridden by `params`."""
    defaults = defaults_from(config)
    if _flag(params, "preset", False):
        base = preset(*library, defaults) if library else defaults
        values = {k: params[k] for k in PRESET_TAKES if k in params}
    else:
        base, values = defaults, {k: v for k, v in params.items() if k != "preset"}
    try:
        return base.with_values(values)
    except RequestError as exc:
        raise ParamError(exc.parameter, exc.value, exc.expected) from None


def _start_clustering(kind: TaskKind, params: dict[str, Any], db: Database, redis: Redis, config: Config
                      ) -> Started:
    """Resolve the preset or the defaults against the library, refuse a library too small to cluster, and start;
    the run fits the cluster counts to the library it loads, and `notes` say now what that will change."""
    library = track_store.library_counts(db)
    request = _request(params, config, library=library)
    if library[0] < MIN_TRACKS:
        raise NotStartable(f"only {library[0]} analyzed tracks: run an analysis first (clustering needs at least "
                           f"{MIN_TRACKS})")
    fitted, adjustments = fit_to_library(request, library[0])
    task_id = start_main_task(kind, kwargs=request.as_dict(), db=db, connection=redis, config=config)
    return Started(task_id, kind.task_type, fitted.as_dict(), adjustments)


# --- the catalogue ---------------------------------------------------------------------------------------------------

ANALYSIS = TaskKind(
    path="tasks.analysis.run_analysis_task", task_type="main_analysis", name="analysis", title="Analysis",
    busy="an analysis is already running", parse=_analysis,
    param_names=("num_recent_albums", "top_n_moods", "rebuild_index", "fast", "upgrade_fast"),
    hint='e.g. {"num_recent_albums": 0} (0: the whole library), "top_n_moods", {"rebuild_index": true} to rebuild '
         'the similarity index whole at the end, {"fast": true} for fast analysis, {"upgrade_fast": true} to '
         'analyse the fast ones again in full')
CLUSTERING = TaskKind(
    path="tasks.clustering.run_clustering_task", task_type="main_clustering", name="clustering", title="Clustering",
    busy="a clustering task is already running", parse=_clustering, param_names=(), start=_start_clustering,
    hint='e.g. {"preset": true}, or clustering parameters such as {"clustering_method": "kmeans"}')
CLEANING = TaskKind(
    path="tasks.cleaning.run_cleaning_task", task_type="cleaning", name="cleaning", title="Database cleaning",
    busy="a cleaning task is already running", parse=_cleaning, param_names=("dry_run",),
    fixed={"preview_task_id": None},  # a confirmed run names its preview, which its route checks
    hint='e.g. {"dry_run": true} to only preview; without it the run deletes (within the safety checks)')
MAP = TaskKind(
    path="tasks.map.run_map_projection_task", task_type="map_projection", name="map_projection", title="Music map",
    busy="the map is being built already", parse=_map, param_names=("full",), follows_analysis=True,
    records_reason=True,
    timeout_setting="MAP_TASK_TIMEOUT_SECONDS", hint='e.g. {"full": true} for a full rebuild of the map')
SONIC_FINGERPRINT = TaskKind(
    path="tasks.sonic_fingerprint.run_sonic_fingerprint_playlist_task", task_type="sonic_fingerprint_playlist",
    name="sonic_fingerprint", title="Sonic fingerprint playlist", busy="a sonic fingerprint playlist is being made",
    parse=_fingerprint, param_names=("n", "playlist_name"),
    hint='e.g. {"n": 50, "playlist_name": "Sonic Fingerprint"}')
SMART_PLAYLISTS = TaskKind(
    path="tasks.smart_playlists.run_smart_playlists_task", task_type="smart_playlists_refresh",
    name="smart_playlists_refresh", title="Smart playlists refresh", busy="the smart playlists are being refreshed",
    parse=_smart_playlists, param_names=("smart_playlist_id",), follows_analysis=True, records_reason=True,
    hint='{} refreshes every smart playlist; e.g. {"smart_playlist_id": 3} for one')
PLAYLIST_MATCHING = TaskKind(
    path="tasks.playlist_matching.run_playlist_matching_task", task_type="playlist_matching",
    name="playlist_matching", title="Playlist matching", busy="playlist matching is already running",
    parse=_matching, param_names=("full", "since"), follows_analysis=True,
    hint='{} scores every song for your playlists; e.g. {"full": false, "since": "2026-12-01T00:00:00+00:00"}')

BACKUP = TaskKind(
    path="tasks.backup.run_backup_task", task_type="backup", name="backup", title="Backup",
    busy="a backup is already running", parse=_backup, param_names=(), records_reason=True,
    hint="{} writes a backup of the database and the settings key to DATA_DIR/backups (BACKUP_KEEP are kept)")

CATALOG: tuple[TaskKind, ...] = (ANALYSIS, CLUSTERING, CLEANING, MAP, SONIC_FINGERPRINT, SMART_PLAYLISTS,
                                 PLAYLIST_MATCHING, BACKUP)
_BY_NAME = {kind.name: kind for kind in CATALOG}
_BY_TASK_TYPE = {kind.task_type: kind for kind in CATALOG}


def by_name(name: str) -> TaskKind | None:
    return _BY_NAME.get(name)


def by_task_type(task_type: str) -> TaskKind | None:
    return _BY_TASK_TYPE.get(task_type)


def schedulable() -> dict[str, TaskKind]:
    """The kinds a schedule may start, by name, in the catalogue's order."""
    return {kind.name: kind for kind in CATALOG if kind.schedulable}


def parse_params(kind: TaskKind, params: Any, config: Config, *, strict: bool) -> dict[str, Any]:
    """The parameters a run of `kind` takes, defaults filled in; ParamError naming the bad one. `strict` refuses
    names the kind does not know (a stored schedule); a request's unknown keys are ignored, since players and
    plugins send keys of their own."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ParamError("", params, "params must be a JSON object")
    if strict and kind.param_names:
        unknown = sorted(set(params) - set(kind.param_names))
        if unknown:
            raise ParamError(unknown[0], params[unknown[0]],
                             f"a known parameter ({', '.join(kind.param_names)})")
    elif not strict and kind.param_names:
        params = {k: v for k, v in params.items() if k in kind.param_names}
    return kind.parse(params, config, strict)


def start_task(kind: TaskKind, params: Mapping[str, Any] | None = None, *, db: Database, redis: Redis,
               config: Config, strict: bool = False, reason: str = "user",
               extra: Mapping[str, Any] | None = None) -> Started:
    """Parse `params` and start a run of `kind`; `reason` says what asked for it (kept by the kinds that record
    it), `extra` adds arguments the caller vouches for (the dry run a cleaning confirms). Raises ParamError,
    NotStartable, or TaskAlreadyRunning when one of its kind is active."""
    config = effective_config(config, db)  # the Settings page's saved values: read once, for parsing and starting
    parsed = parse_params(kind, params, config, strict=strict)
    if kind.records_reason:
        parsed["reason"] = reason
    parsed = {**kind.fixed, **parsed, **(extra or {})}
    if kind.start is not None:
        return kind.start(kind, parsed, db, redis, config)
    task_id = start_main_task(kind, kwargs=parsed, db=db, connection=redis, config=config,
                              job_timeout=kind.timeout(config))
    return Started(task_id, kind.task_type, parsed)
