"""What the home page shows: the library at a glance, what ran last and what runs next, and the problems worth a
person's attention, each with what fixes it."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config import Config
from db import playlists as playlist_store
from db import schedules as schedule_store
from db import task_status as task_store
from db import tracks as track_store
from db.app_settings import effective_config
from discovery.sentence_encoder import missing_model_files
from mediaserver import MediaServerError, get_media_server
from schedules.cron import CronError, next_runs
from tasks.catalog import ANALYSIS, schedulable
from tasks.queues import registered_workers

__all__ = ["Warning", "glance", "warnings"]

log = logging.getLogger(__name__)

MEDIA_SERVER_WAIT_SECONDS = 5.0
MEDIA_SERVER_CHECK_TTL = 60.0  # a Home page reloaded often asks the media server once a minute at most
RECENT_PLAYLISTS = 6
NEXT_RUNS = 3


@dataclass(frozen=True)
class Warning:
    """A problem a person should know about: what is wrong, why it matters, what fixes it, where to fix it."""

    key: str
    title: str
    detail: str
    fix: str
    link: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def glance(db: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """The library at a glance: analysed tracks, the last analysis and what it found, the playlists AudioMuse made
    last, the next scheduled runs."""
    now = now or datetime.now(UTC)
    last = task_store.last_main_task_of_type(db, ANALYSIS.task_type)
    kinds = schedulable()
    upcoming = []
    for schedule in schedule_store.list_schedules(db, enabled_only=True):
        try:
            (at,) = next_runs(schedule["cron_expr"], schedule["timezone"], after=now, count=1)
        except CronError:
            continue
        kind = kinds.get(schedule["task_type"])
        upcoming.append({"name": schedule["name"], "task": kind.title if kind else schedule["task_type"],
                         "at": at.isoformat()})
    upcoming.sort(key=lambda run: datetime.fromisoformat(run["at"]))
    return {
        "analyzed_tracks": track_store.count_analyzed(db),
        "last_analysis": None if last is None else {
            "status": last["status"], "message": last["message"],
            "finished_at": last["finished_at"].isoformat() if last["finished_at"] else None,
            "started_at": last["created_at"].isoformat()},
        "recent_playlists": playlist_store.recent_playlists(db, limit=RECENT_PLAYLISTS),
        "next_runs": upcoming[:NEXT_RUNS],
    }


class _MediaServerCheck:
    """The media server's answer to a cheap request (its libraries), kept for a minute; None when it answered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._result: tuple[float, str, str | None] | None = None  # (when, settings fingerprint, problem)

    def problem(self, config: Config) -> str | None:
        fingerprint = f"{config.MEDIASERVER_TYPE}|{config.MUSIC_DIR}"
        with self._lock:
            if self._result and self._result[1] == fingerprint \
                    and time.monotonic() - self._result[0] < MEDIA_SERVER_CHECK_TTL:
                return self._result[2]
        found: list[str | None] = []

        def ask() -> None:
            try:
                get_media_server(config).list_libraries()
                found.append(None)
            except MediaServerError as exc:
                found.append(exc.public_cause)
            except Exception as exc:  # an adapter's unexpected failure is still "unreachable" to the user
                log.warning("media server check: %s", exc)
                found.append(f"{type(exc).__name__}")

        worker = threading.Thread(target=ask, daemon=True)
        worker.start()
        worker.join(MEDIA_SERVER_WAIT_SECONDS)
        problem = found[0] if found else f"no answer within {MEDIA_SERVER_WAIT_SECONDS:g} s"
        with self._lock:
            self._result = (time.monotonic(), fingerprint, problem)
        return problem


_media_server_check = _MediaServerCheck()


def warnings(*, config: Config, db: Any, redis: Any, index_loaded: bool, index_error: bool) -> list[Warning]:
    """The problems that stop AudioMuse from doing its work, most blocking first."""
    found: list[Warning] = []
    try:
        workers = registered_workers(redis)
    except Exception as exc:
        log.warning("home: Redis: %s", exc)
        found.append(Warning("redis", "Redis is unreachable",
                             "Tasks cannot be started or followed, and no worker can run them.",
                             "Check that Redis runs and that REDIS_URL points at it, then reload this page."))
        workers = -1
    if workers == 0:
        found.append(Warning("workers", "No worker is running",
                             "Analysis, clustering, the map and every other task wait in the queue until one runs.",
                             "Start one with `python -m tasks.worker` (the Docker image's supervisord starts two); "
                             "workers on other hosts need the same REDIS_URL and DATABASE_URL."))
    settings = effective_config(config, db)
    problem = _media_server_check.problem(settings)
    if problem is not None:
        found.append(Warning("media_server", f"The media server ({settings.MEDIASERVER_TYPE}) does not answer",
                             f"It said: {problem}. Analysis cannot list new music and playlists cannot be published.",
                             "Check its address and credentials in Settings, and that it is running.",
                             "/settings"))
    if track_store.count_analyzed(db) == 0:
        found.append(Warning("empty", "Nothing is analysed yet",
                             "Similar songs, the map, playlists and search all need analysed tracks.",
                             "Start an analysis: it reads the library and listens to every track once.",
                             "/analysis"))
    elif index_error:
        found.append(Warning("index", "The similarity index could not be loaded",
                             "Similar songs, paths, the map and mixes answer nothing until it loads.",
                             "Run an analysis to rebuild it; the server log says why the stored one failed.",
                             "/analysis"))
    elif not index_loaded:
        found.append(Warning("index_loading", "The similarity index is still loading",
                             "Discovery pages answer once it is loaded (seconds, minutes for a very large library).",
                             "Nothing to do: this page shows it gone when it is ready."))
    missing = missing_model_files(Path(config.TEXT_MODEL_DIR))
    if missing:
        found.append(Warning("text_model", "The text-search model is missing",
                             f"Text search and the instant playlist's understanding of words need it (missing: "
                             f"{', '.join(missing)}).",
                             "Run `python models/fetch_text_model.py` (the install script does), then restart."))
    return found
