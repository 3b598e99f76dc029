"""Starting and cancelling tasks: the only code that enqueues RQ jobs (tasks.catalog says which main tasks exist
and parses their parameters; it starts them through here).

Orchestrators (main tasks) go to the `high` queue so a worker always picks them before album/batch children on
`default`. A task's status row is written *before* the job is enqueued, so the UI sees it at once and the
database's one-active-main-task-per-type index can refuse a duplicate before anything runs.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from redis import Redis
from rq import Queue, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from config import Config
from db import task_status as store
from db.pool import Database
from tasks.types import TaskFunction, TaskRef

__all__ = ["DEFAULT_QUEUE", "HIGH_QUEUE", "QUEUE_NAMES", "TaskFunction", "TaskRef", "cancel_task", "enqueue_task",
           "get_queues", "start_main_task"]

log = logging.getLogger(__name__)

HIGH_QUEUE = "high"
DEFAULT_QUEUE = "default"
QUEUE_NAMES = (HIGH_QUEUE, DEFAULT_QUEUE)


def get_queues(connection: Redis) -> list[Queue]:
    return [Queue(name, connection=connection) for name in QUEUE_NAMES]


def registered_workers(connection: Redis) -> int:
    """How many RQ workers are registered on this Redis (any host)."""
    return len(Worker.all(connection=connection))


def start_main_task(func: TaskFunction | TaskRef, *, kwargs: dict[str, Any], db: Database, connection: Redis,
                    config: Config, job_timeout: float | None = None) -> str:
    """Record and enqueue a main task; raise TaskAlreadyRunning if one of its type is active."""
    return enqueue_task(func, kwargs=kwargs, parent_task_id=None, db=db, connection=connection, config=config,
                        job_timeout=job_timeout)


def enqueue_task(func: TaskFunction | TaskRef, *, kwargs: dict[str, Any], parent_task_id: str | None,
                 db: Database, connection: Redis, config: Config, job_timeout: float | None = None) -> str:
    """Record (in `db`) and enqueue (on `connection`) a task; `config` gives the job timeouts and result TTLs, and
    `job_timeout` (seconds) overrides the main/child default: RQ stops the job when it runs longer."""
    task_id = str(uuid.uuid4())
    target: Any = func.path if isinstance(func, TaskRef) else func
    store.insert_task(db, task_id=task_id, task_type=func.task_type, parent_task_id=parent_task_id,
                      params=_json_safe(kwargs))
    is_main = parent_task_id is None
    queue = Queue(HIGH_QUEUE if is_main else DEFAULT_QUEUE, connection=connection)
    try:
        queue.enqueue(
            target, kwargs=kwargs, job_id=task_id,
            job_timeout=int(job_timeout) if job_timeout else (
                config.MAIN_TASK_TIMEOUT_SECONDS if is_main else config.CHILD_TASK_TIMEOUT_SECONDS),
            result_ttl=config.TASK_RESULT_TTL_SECONDS, failure_ttl=config.TASK_RESULT_TTL_SECONDS,
            description=f"{func.task_type} {task_id}",
        )
    except Exception as exc:
        # Without this the guard would block new tasks of this type forever.
        store.fail_task(db, task_id, f"could not enqueue: {type(exc).__name__}: {exc}")
        raise
    return task_id


def cancel_task(task_id: str, *, db: Database, connection: Redis) -> list[str]:
    """Revoke a task and its unfinished descendants; return the ids that were still active.

    Queued jobs are removed from their queue; running ones notice at their next `check_cancelled()`.
    """
    revoked = store.revoke_tree(db, task_id)
    for job_id in revoked:
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            continue
        if job.get_status() in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
            try:
                job.cancel()
            except InvalidJobOperation:
                pass  # it started meanwhile; it will see REVOKED itself
    return revoked


def _json_safe(kwargs: dict[str, Any]) -> dict[str, Any]:
    safe: dict[str, Any] = {}
    for key, value in kwargs.items():
        safe[key] = value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else repr(value)
    return safe
