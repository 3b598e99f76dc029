"""Mark the tasks of dead workers as failed, so nothing stays "running" forever after a crash or kill.

RQ's own abandoned-job handling (StartedJobRegistry.cleanup) is run first; it catches jobs whose heartbeat
expired, which for long jobs can take hours. So we also look at each running task_status row: its worker is dead
when it ran on this host and its process (pid + start time, so a reused pid does not fool us) is gone, when RQ no
longer lists the worker, or when the task's own heartbeat (tasks/progress.py) has been silent too long. Such a
task is marked FAILURE with the reason, its unfinished children are revoked, and its RQ job is moved to the failed
registry.
"""

from __future__ import annotations

import logging
from typing import Any

import psutil
from redis import Redis
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.job_lifecycle import record_job_failure
from rq.registry import StartedJobRegistry

from db import task_status as store
from db.pool import Database
from tasks.hostid import host_identity
from tasks.queues import get_queues

log = logging.getLogger(__name__)


def reconcile_dead_workers(db: Database, connection: Redis, *, dead_after_seconds: float,
                           this_host: str | None = None, pending_after_seconds: float = 300.0) -> list[str]:
    """Fail the running tasks whose worker is gone (and PENDING ones whose job was lost); return their ids."""
    host = this_host or host_identity()
    for queue in get_queues(connection):
        StartedJobRegistry(queue=queue).cleanup()
    live_workers = {w.name for w in Worker.all(connection=connection)}
    failed = []
    for row in store.running_tasks(db):
        reason = _death_reason(row, live_workers, host, dead_after_seconds) or _ended_job_reason(connection, row)
        if reason is None:
            continue
        if row["status"] == store.REVOKED:
            store.finish_revoked(db, row["task_id"], f"Stopped: {reason}")
        else:
            store.fail_task(db, row["task_id"], reason)
            failed.append(row["task_id"])
        for child_id in store.revoke_tree(db, row["task_id"]):
            log.info("revoked %s: its parent's worker died", child_id)
        _move_job_to_failed(connection, row["task_id"], reason)
        log.warning("task %s (%s): %s", row["task_id"], row["task_type"], reason)
    for row in store.stale_pending_tasks(db, pending_after_seconds):
        reason = _lost_job_reason(connection, row["task_id"])
        if reason:
            store.fail_task(db, row["task_id"], reason)
            log.warning("task %s (%s): %s", row["task_id"], row["task_type"], reason)
            failed.append(row["task_id"])
    return failed


# A job that ended keeps trying to write its end for about 30 s (tasks.progress.durable); after this, a row still
# "running" is one whose end was lost (PostgreSQL was away), and its worker may be alive and serving other jobs.
ENDED_JOB_GRACE_SECONDS = 60.0


def _ended_job_reason(connection: Redis, row: dict[str, Any]) -> str | None:
    """Why a row that looks alive is not: RQ says its job ended long enough ago (its worker lives on)."""
    if row["silent_seconds"] is None or row["silent_seconds"] < ENDED_JOB_GRACE_SECONDS:
        return None
    try:
        status = Job.fetch(row["task_id"], connection=connection).get_status()
    except NoSuchJobError:
        return None  # Redis lost it (restart): the other checks decide
    if status in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        return f"its job ended ({status.value}) but its end was never recorded (was PostgreSQL unreachable?)"
    return None


def _lost_job_reason(connection: Redis, job_id: str) -> str | None:
    try:
        status = Job.fetch(job_id, connection=connection).get_status()
    except NoSuchJobError:
        return "the queued job was lost (Redis restarted without its data?)"
    if status in (JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED):
        return f"the queued job ended as {status.value} before it could start"
    return None


def _death_reason(row: dict[str, Any], live_workers: set[str], host: str, dead_after: float) -> str | None:
    name = row["worker_name"]
    if row["worker_host"] == host and row["worker_pid"]:
        # Same machine, boot and pid namespace: the process table is the truth, whatever the heartbeat says
        # (a suspended laptop or NAS resumes with old heartbeats but live workers).
        if process_alive(row["worker_pid"], row["worker_proc_started"]):
            return None
        return f"worker {name} died while running this task (process {row['worker_pid']} is gone)"
    if name and name not in live_workers:
        return f"worker {name} died while running this task (no longer registered with RQ)"
    if row["silent_seconds"] is not None and row["silent_seconds"] > dead_after:
        return f"worker {name} died while running this task (no heartbeat for {row['silent_seconds']:.0f} s)"
    return None


def process_alive(pid: int, started: float | None) -> bool:
    """Whether the process `pid` that started at `started` (seconds since the epoch) still runs."""
    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > 1.0:
            return False  # the pid was reused by another process
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _move_job_to_failed(connection: Redis, job_id: str, reason: str) -> None:
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return
    if job.get_status() != JobStatus.STARTED:
        return
    with connection.pipeline() as pipe:
        StartedJobRegistry(job.origin, connection=connection).remove_executions(job, pipeline=pipe)
        # RQ's own worker-less failure path (the one its abandoned-job cleanup uses).
        record_job_failure(job, reason, pipe)
        pipe.execute()
