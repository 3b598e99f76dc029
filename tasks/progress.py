"""The one task framework every RQ job uses: status row, progress, bounded log, cancellation, children.

A task is a plain function decorated with `@task("type")`; it receives a `TaskContext` as its first argument
and keyword arguments from the enqueuer. The decorator records the lifecycle in `task_status`
(PENDING → STARTED → PROGRESS → SUCCESS | FAILURE | REVOKED) and mirrors progress into `job.meta`, so
the UI can read either. Cancellation is cooperative: the task calls `ctx.check_cancelled()` between items;
that raises `TaskCancelled` once the task or any ancestor is REVOKED.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import psutil
import psycopg2
from redis import Redis
from rq import get_current_job
from rq.job import Job

import config as config_module
from db import task_status as store
from db.app_settings import effective_config
from db.pool import Database
from infra.connections import get_db
from mediaserver import MediaServer, get_media_server
from tasks.catalog import TaskKind, start_task
from tasks.hostid import host_identity
from tasks.queues import enqueue_task
from tasks.types import TaskFunction

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 4000


# The framework's own status writes ride out a PostgreSQL restart: tried again with backoff (0.5 s … 8 s, ~30 s in
# all) before the error counts. The pool already replaces dead connections; this covers a server still starting.
# (Redis restarts are ridden out by the worker's Redis connection, which retries every command.)
STATUS_WRITE_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0)
UNREACHABLE = (psycopg2.OperationalError, psycopg2.InterfaceError)
T = TypeVar("T")


def durable(write: Callable[[], T], what: str, *, delays: Sequence[float] = STATUS_WRITE_DELAYS) -> T:
    """Run a status write, again after each of `delays` while PostgreSQL is unreachable; the last error counts."""
    for delay in (*delays, None):
        try:
            return write()
        except UNREACHABLE as exc:
            if delay is None:
                raise
            log.warning("%s failed (%s); trying again in %g s", what, str(exc).strip().splitlines()[0], delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


class TaskCancelled(Exception):
    """Raised inside a task when it, or a task above it, was cancelled."""


class TaskContext:
    """What a running task uses to report progress, log, check cancellation and start children."""

    def __init__(self, *, task_id: str, task_type: str, parent_task_id: str | None, db: Database,
                 redis: Redis, job: Job | None, config: config_module.Config) -> None:
        self.task_id = task_id
        self.task_type = task_type
        self.parent_task_id = parent_task_id
        self.db = db
        self.redis = redis
        self.job = job
        self.config = config
        self._log: deque[dict[str, Any]] = deque(maxlen=config.TASK_LOG_LINES)
        self._progress = 0
        self._phase = ""
        self._current: int | None = None
        self._total: int | None = None
        self._message = ""
        self._last_cancel_check = 0.0

    def media_server(self) -> MediaServer:
        """The media server in force (the Settings page's saved values over the environment's)."""
        return get_media_server(effective_config(self.config, self.db))

    # --- reporting --------------------------------------------------------------------------------------
    def report(self, message: str | None = None, *, progress: float | None = None, phase: str | None = None,
               current: int | None = None, total: int | None = None, log: bool = True) -> None:
        """Record progress in one shape; `message` is also appended to the bounded log unless `log` is False
        (a status line that changes every second would push the useful lines out).

        With `current` and `total` and no explicit `progress`, progress is current/total.
        """
        if phase is not None:
            self._phase = phase
        if total is not None:
            self._total = total
        if current is not None:
            self._current = current
        if progress is None and current is not None and self._total:
            progress = 100.0 * current / self._total
        if progress is not None:
            self._progress = max(0, min(100, int(progress)))
        if message is not None:
            self._message = message
            if log:
                self.append_log(message)
        durable(lambda: store.update_progress(
            self.db, self.task_id, progress=self._progress, phase=self._phase, current=self._current,
            total=self._total, message=self._message, log_lines=list(self._log),
        ), f"progress of task {self.task_id}")
        self._save_meta()

    def log(self, message: str) -> None:
        self.report(message)

    def append_log(self, message: str) -> None:
        """Add a line to the bounded log without writing it yet (the next report or the end writes it)."""
        self._log.append({"at": datetime.now(UTC).isoformat(timespec="seconds"), "message": message})

    @property
    def message(self) -> str:
        return self._message

    @property
    def log_lines(self) -> list[dict[str, Any]]:
        return list(self._log)

    def _save_meta(self) -> None:
        if self.job is None:
            return
        self.job.meta.update({
            "task_type": self.task_type, "progress": self._progress, "phase": self._phase,
            "current": self._current, "total": self._total, "message": self._message, "log": list(self._log),
        })
        # a Redis restart is ridden out by the worker's connection itself (infra.connections.OutageRetry)
        self.job.save_meta()

    # --- cancellation -----------------------------------------------------------------------------------
    def is_cancelled(self) -> bool:
        return durable(lambda: store.is_revoked(self.db, self.task_id), f"cancel check of task {self.task_id}")

    def check_cancelled(self, *, force: bool = False) -> None:
        """Raise TaskCancelled if this task or an ancestor was revoked (the DB is asked at most once a second)."""
        now = time.monotonic()
        if not force and now - self._last_cancel_check < self.config.CANCEL_CHECK_INTERVAL_SECONDS:
            return
        self._last_cancel_check = now
        if self.is_cancelled():
            raise TaskCancelled(self.task_id)

    # --- children ---------------------------------------------------------------------------------------
    def spawn_child(self, func: TaskFunction, *, job_timeout: float | None = None, **kwargs: Any) -> str:
        """Enqueue a child task on the default queue; return its task id."""
        return enqueue_task(func, kwargs=kwargs, parent_task_id=self.task_id, db=self.db, connection=self.redis,
                            config=self.config, job_timeout=job_timeout)

    def child_counts(self) -> dict[str, int]:
        return store.child_counts(self.db, self.task_id)

    def start_follow_up(self, kind: TaskKind, params: dict[str, Any] | None = None, *, reason: str, what: str
                        ) -> str | None:
        """Start a main task that follows this one (the map update after an analysis, say) and log it; None when one
        of its type is running already (it then reads the library as it is when it gets there)."""
        try:
            task_id = start_task(kind, params, db=self.db, redis=self.redis, config=self.config, reason=reason).task_id
        except store.TaskAlreadyRunning:
            self.log(f"{what[:1].upper()}{what[1:]}: a job of that kind is running already")
            return None
        self.log(f"Started {what} (task {task_id})")
        return task_id


def task(task_type: str) -> Callable[[Callable[..., Any]], TaskFunction]:
    """Turn `fn(ctx, **kwargs)` into an RQ job function that keeps task_status up to date."""

    def decorate(fn: Callable[..., Any]) -> TaskFunction:
        @functools.wraps(fn)
        def job_entry(**kwargs: Any) -> Any:
            return _run(fn, task_type, kwargs)

        job_entry.task_type = task_type  # type: ignore[attr-defined]
        return job_entry  # type: ignore[return-value]

    return decorate


def _run(fn: Callable[..., Any], task_type: str, kwargs: dict[str, Any]) -> Any:
    cfg = config_module.get_config()
    db = get_db(cfg)
    job = get_current_job()
    if job is None:
        raise RuntimeError(f"{fn.__name__} must run inside an RQ job (enqueue it with tasks.queues)")
    try:
        row = durable(lambda: store.get_task(db, job.id), f"start of task {job.id}")
        if row is None:
            # Enqueued by something that skipped enqueue_task(): record it now so it is still visible.
            store.insert_task(db, task_id=job.id, task_type=task_type, params=kwargs)
        ctx = TaskContext(task_id=job.id, task_type=task_type,
                          parent_task_id=row["parent_task_id"] if row else None, db=db, redis=job.connection,
                          job=job, config=cfg)
        pid = os.getpid()
        durable(lambda: store.heartbeat(db, job.id), f"start of task {job.id}")
        status, started_here = durable(lambda: store.mark_started(
            db, job.id, worker_name=job.worker_name or "", worker_host=host_identity(), worker_pid=pid,
            worker_proc_started=psutil.Process(pid).create_time()), f"start of task {job.id}")
    except Exception as exc:
        # Without this the row would stay PENDING and block new tasks of its type.
        reason = f"could not start: {type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            durable(lambda: store.fail_task(db, job.id, reason), f"failure of task {job.id}")
        raise
    if status in (store.STARTED, store.PROGRESS) and not started_here:
        # a second copy of a job that runs elsewhere (its enqueue was sent again when Redis dropped the connection
        # after running it): the row belongs to the copy that runs
        log.warning("task %s is already running on another worker: this copy of its job is skipped", job.id)
        return {"status": status, "skipped": "already running"}
    if status != store.STARTED or ctx.is_cancelled():
        durable(lambda: store.finish_task(db, job.id, status=store.REVOKED, message="Cancelled before it started",
                                          log_lines=ctx.log_lines), f"end of task {job.id}")
        return {"status": status}
    beating = threading.Event()
    beat = threading.Thread(target=_heartbeat_loop, args=(db, job.id, beating, cfg.TASK_HEARTBEAT_SECONDS),
                            name=f"heartbeat-{job.id[:8]}", daemon=True)
    beat.start()
    try:
        return _run_body(fn, ctx, kwargs)
    finally:
        beating.set()
        beat.join(5)


def _heartbeat_loop(db: Database, task_id: str, stop: threading.Event, every: float) -> None:
    """Proof of life for the reconciler, independent of how busy the task itself is."""
    while not stop.wait(every):
        try:
            store.heartbeat(db, task_id)
        except Exception:  # a missed beat is not worth failing the task; the next one may go through
            log.warning("heartbeat for task %s failed", task_id, exc_info=True)


def _run_body(fn: Callable[..., Any], ctx: TaskContext, kwargs: dict[str, Any]) -> Any:
    db, task_id, task_type = ctx.db, ctx.task_id, ctx.task_type
    try:
        result = fn(ctx, **kwargs)
    except TaskCancelled:
        ctx.append_log("Cancelled")
        durable(lambda: store.finish_task(db, task_id, status=store.REVOKED, message="Cancelled",
                                          log_lines=ctx.log_lines), f"end of task {task_id}")
        return {"status": store.REVOKED}
    except Exception as exc:
        summary = "".join(traceback.format_exception(exc))[-MAX_ERROR_CHARS:]
        message = f"{type(exc).__name__}: {exc}"[:500]
        ctx.append_log(f"Failed: {message}")
        durable(lambda: store.finish_task(db, task_id, status=store.FAILURE, message=message,
                                          log_lines=ctx.log_lines, error=summary), f"end of task {task_id}")
        log.exception("task %s (%s) failed", task_id, task_type)
        raise
    # the task's last status line ("12 playlists created …") says more than a bare "Done"
    durable(lambda: store.finish_task(db, task_id, status=store.SUCCESS, message=ctx.message or "Done",
                                      log_lines=ctx.log_lines, result=result), f"end of task {task_id}")
    return result
