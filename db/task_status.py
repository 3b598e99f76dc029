"""Queries on the task_status table: the durable record of every job we start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2.extras import Json

from db.pool import Database

PENDING, STARTED, PROGRESS = "PENDING", "STARTED", "PROGRESS"
SUCCESS, FAILURE, REVOKED = "SUCCESS", "FAILURE", "REVOKED"
ACTIVE_STATES = (PENDING, STARTED, PROGRESS)
FINISHED_STATES = (SUCCESS, FAILURE, REVOKED)


class TaskAlreadyRunning(RuntimeError):
    """A main task of this type is already pending or running."""

    def __init__(self, task_type: str, active_task_id: str | None) -> None:
        super().__init__(f"a {task_type} task is already running ({active_task_id})")
        self.task_type = task_type
        self.active_task_id = active_task_id


def insert_task(db: Database, *, task_id: str, task_type: str, parent_task_id: str | None = None,
                params: dict[str, Any] | None = None, message: str = "Queued") -> None:
    """Record a new PENDING task. For a main task, raise TaskAlreadyRunning if one of its type is active."""
    try:
        db.execute(
            """INSERT INTO task_status (task_id, parent_task_id, task_type, status, params, message)
               VALUES (%s, %s, %s, 'PENDING', %s, %s)""",
            (task_id, parent_task_id, task_type, Json(params or {}), message),
        )
    except psycopg2.errors.UniqueViolation as exc:
        if getattr(exc.diag, "constraint_name", "") != "task_status_one_active_main_per_type":
            raise
        active = active_main_task_of_type(db, task_type)
        raise TaskAlreadyRunning(task_type, active["task_id"] if active else None) from None


def mark_started(db: Database, task_id: str, *, worker_name: str, worker_host: str, worker_pid: int,
                 worker_proc_started: float) -> tuple[str | None, bool]:
    """PENDING → STARTED and record who runs it; return (the status now in force, whether this process started
    it: this call, or an earlier one whose answer was lost); (None, False) if the row is missing.

    Only PENDING moves: a task revoked or failed (e.g. by the reconciler) while it waited stays as it is, and the
    caller then does not run it; nor does a second copy of a job already started (a queue write sent twice), which
    leaves the row to the copy that runs.
    """
    row = db.fetch_one(
        """UPDATE task_status
              SET status = CASE WHEN status = 'PENDING' THEN 'STARTED' ELSE status END,
                  started_at = CASE WHEN status = 'PENDING' THEN now() ELSE started_at END, updated_at = now(),
                  worker_name = CASE WHEN status = 'PENDING' THEN %(name)s ELSE worker_name END,
                  worker_host = CASE WHEN status = 'PENDING' THEN %(host)s ELSE worker_host END,
                  worker_pid = CASE WHEN status = 'PENDING' THEN %(pid)s ELSE worker_pid END,
                  worker_proc_started = CASE WHEN status = 'PENDING' THEN %(proc_started)s
                                             ELSE worker_proc_started END,
                  message = CASE WHEN status = 'PENDING' THEN 'Started' ELSE message END
            WHERE task_id = %(task_id)s
        RETURNING status, (status = 'STARTED' AND worker_name = %(name)s AND worker_host = %(host)s
                           AND worker_pid = %(pid)s) AS started_now""",
        {"name": worker_name, "host": worker_host, "pid": worker_pid, "proc_started": worker_proc_started,
         "task_id": task_id},
    )
    return (row["status"], bool(row["started_now"])) if row else (None, False)


def update_progress(db: Database, task_id: str, *, progress: int, phase: str, current: int | None,
                    total: int | None, message: str, log_lines: list[dict[str, Any]]) -> None:
    """Write progress; a task that is already finished (e.g. REVOKED meanwhile) keeps its status."""
    db.execute(
        """UPDATE task_status
              SET status = CASE WHEN status IN ('STARTED', 'PROGRESS') THEN 'PROGRESS' ELSE status END,
                  progress = %s, phase = %s, current_item = %s, total_items = %s, message = %s, log = %s,
                  updated_at = now()
            WHERE task_id = %s""",
        (progress, phase, current, total, message, Json(log_lines), task_id),
    )


def finish_task(db: Database, task_id: str, *, status: str, message: str, log_lines: list[dict[str, Any]],
                result: Any = None, error: str | None = None) -> None:
    """Write the terminal state of a running task. A REVOKED task keeps its status (the user asked it to stop)
    but gets its log and finish time; a task already failed from outside (reconciler) is left alone."""
    assert status in FINISHED_STATES
    db.execute(
        """UPDATE task_status
              SET status = CASE WHEN status = 'REVOKED' THEN 'REVOKED' ELSE %s END,
                  progress = CASE WHEN %s = 'SUCCESS' AND status <> 'REVOKED' THEN 100 ELSE progress END,
                  message = %s, log = %s, result = %s, error = %s,
                  finished_at = now(), updated_at = now()
            WHERE task_id = %s AND (status IN ('STARTED', 'PROGRESS')
                                    OR (status = 'REVOKED' AND finished_at IS NULL))""",
        (status, status, message, Json(log_lines), Json(result) if result is not None else None, error, task_id),
    )


def fail_task(db: Database, task_id: str, reason: str) -> bool:
    """Mark a task FAILURE from outside its job (enqueue failed, worker died, timed out); False when it had
    already ended."""
    return 0 < db.execute(
        """UPDATE task_status
              SET status = 'FAILURE', error = %s, message = %s, finished_at = now(), updated_at = now(),
                  log = log || jsonb_build_array(jsonb_build_object('at', now(), 'message', %s::text))
            WHERE task_id = %s AND status IN ('PENDING', 'STARTED', 'PROGRESS')""",
        (reason, reason, reason, task_id),
    )


_TASK_COLUMNS = """task_id, parent_task_id, task_type, status, progress, phase, current_item, total_items, message,
                   log, result, error, params, worker_name, created_at, started_at, updated_at, finished_at"""


def get_task(db: Database, task_id: str) -> dict[str, Any] | None:
    return db.fetch_one(f"SELECT {_TASK_COLUMNS} FROM task_status WHERE task_id = %s", (task_id,))


def active_main_task_of_type(db: Database, task_type: str) -> dict[str, Any] | None:
    return db.fetch_one(
        f"""SELECT {_TASK_COLUMNS} FROM task_status
             WHERE parent_task_id IS NULL AND task_type = %s AND status IN ('PENDING', 'STARTED', 'PROGRESS')""",
        (task_type,),
    )


def active_main_tasks_of_type(db: Database, task_type: str) -> list[dict[str, Any]]:
    """Every active main task of `task_type`, oldest first (one normally; a lost start race can leave two)."""
    return db.fetch_all(
        f"""SELECT {_TASK_COLUMNS} FROM task_status
             WHERE parent_task_id IS NULL AND task_type = %s AND status IN ('PENDING', 'STARTED', 'PROGRESS')
             ORDER BY created_at""",
        (task_type,),
    )


def active_main_tasks(db: Database) -> list[dict[str, Any]]:
    return db.fetch_all(
        f"""SELECT {_TASK_COLUMNS} FROM task_status
             WHERE parent_task_id IS NULL AND status IN ('PENDING', 'STARTED', 'PROGRESS')
             ORDER BY created_at DESC"""
    )


def recently_finished_main_tasks(db: Database, *, minutes: float, limit: int) -> list[dict[str, Any]]:
    """The main tasks that finished in the last `minutes`, newest first, at most `limit`."""
    return db.fetch_all(
        f"""SELECT {_TASK_COLUMNS} FROM task_status
             WHERE parent_task_id IS NULL AND finished_at > now() - make_interval(secs => %s)
             ORDER BY finished_at DESC LIMIT %s""", (minutes * 60, limit))


def last_main_task(db: Database, *, excluding: Sequence[str] = ()) -> dict[str, Any] | None:
    """The most recent main task, not counting those of the `excluding` types."""
    return db.fetch_one(
        f"""SELECT {_TASK_COLUMNS} FROM task_status WHERE parent_task_id IS NULL AND NOT task_type = ANY(%s)
             ORDER BY created_at DESC LIMIT 1""", (list(excluding),)
    )


def child_counts(db: Database, parent_task_id: str) -> dict[str, int]:
    rows = db.fetch_all(
        "SELECT status, count(*) AS n FROM task_status WHERE parent_task_id = %s GROUP BY status",
        (parent_task_id,),
    )
    return {r["status"]: int(r["n"]) for r in rows}


def revoke_tree(db: Database, task_id: str) -> list[str]:
    """Mark the task and all its unfinished descendants REVOKED; return the ids that changed."""
    rows = db.fetch_all(
        """WITH RECURSIVE tree AS (
               SELECT task_id FROM task_status WHERE task_id = %s
               UNION ALL
               SELECT t.task_id FROM task_status t JOIN tree ON t.parent_task_id = tree.task_id
           )
           UPDATE task_status s
              SET status = 'REVOKED', message = 'Cancelled by user', updated_at = now(),
                  -- a running task sets finished_at itself once it has actually stopped
                  finished_at = CASE WHEN s.status = 'PENDING' THEN now() ELSE s.finished_at END
             FROM tree
            WHERE s.task_id = tree.task_id AND s.status IN ('PENDING', 'STARTED', 'PROGRESS')
        RETURNING s.task_id""",
        (task_id,),
    )
    return [r["task_id"] for r in rows]


def heartbeat(db: Database, task_id: str) -> None:
    db.execute("UPDATE task_status SET heartbeat_at = now() WHERE task_id = %s", (task_id,))


def is_revoked(db: Database, task_id: str) -> bool:
    """True when the task must stop: it or an ancestor is REVOKED, or it was already ended from outside
    (the reconciler failed it), so it must not go on as if nothing happened."""
    row = db.fetch_one(
        """WITH RECURSIVE chain AS (
               SELECT task_id, parent_task_id, status FROM task_status WHERE task_id = %s
               UNION ALL
               SELECT p.task_id, p.parent_task_id, p.status
                 FROM task_status p JOIN chain ON p.task_id = chain.parent_task_id
           )
           SELECT bool_or(status = 'REVOKED' OR (task_id = %s AND status IN ('FAILURE', 'SUCCESS'))) AS revoked
             FROM chain""",
        (task_id, task_id),
    )
    return bool(row and row["revoked"])


def running_tasks(db: Database) -> list[dict[str, Any]]:
    """Tasks a worker claimed and has not finished (including revoked ones still winding down): candidates for
    the dead-worker reconciler."""
    return db.fetch_all(
        """SELECT task_id, parent_task_id, task_type, status, worker_name, worker_host, worker_pid,
                  worker_proc_started, started_at,
                  extract(epoch FROM now() - coalesce(heartbeat_at, started_at)) AS silent_seconds
             FROM task_status
            WHERE worker_name IS NOT NULL AND finished_at IS NULL
              AND (status IN ('STARTED', 'PROGRESS') OR (status = 'REVOKED' AND started_at IS NOT NULL))"""
    )


def stale_pending_tasks(db: Database, older_than_seconds: float) -> list[dict[str, Any]]:
    return db.fetch_all(
        """SELECT task_id, task_type FROM task_status
            WHERE status = 'PENDING' AND created_at < now() - make_interval(secs => %s)""",
        (older_than_seconds,),
    )


def finish_revoked(db: Database, task_id: str, note: str) -> None:
    db.execute(
        """UPDATE task_status SET finished_at = now(), updated_at = now(),
                  log = log || jsonb_build_array(jsonb_build_object('at', now(), 'message', %s::text))
            WHERE task_id = %s AND status = 'REVOKED' AND finished_at IS NULL""",
        (note, task_id),
    )


def children_state(db: Database, parent_task_id: str, task_ids: list[str]) -> list[dict[str, Any]]:
    """Status, progress counters, start/finish times, result and message of those children of the parent."""
    if not task_ids:
        return []
    return db.fetch_all(
        """SELECT task_id, status, current_item, total_items, started_at, finished_at, result, message, worker_host,
                  worker_pid,
                  worker_proc_started, EXTRACT(EPOCH FROM (now() - started_at)) AS running_seconds
             FROM task_status WHERE parent_task_id = %s AND task_id = ANY(%s)""",
        (parent_task_id, task_ids),
    )


def last_main_task_of_type(db: Database, task_type: str) -> dict[str, Any] | None:
    """The most recent main task of a type: id, status, message, result and times."""
    return db.fetch_one(
        """SELECT task_id, status, message, result, created_at, finished_at FROM task_status
            WHERE task_type = %s AND parent_task_id IS NULL ORDER BY created_at DESC LIMIT 1""",
        (task_type,))


def outcomes(db: Database) -> list[dict[str, Any]]:
    """Per task type and status: how many tasks, and the seconds the finished ones ran in all (for /metrics)."""
    return db.fetch_all(
        """SELECT task_type, status, count(*) AS tasks,
                  COALESCE(sum(EXTRACT(EPOCH FROM finished_at - started_at))
                           FILTER (WHERE finished_at IS NOT NULL AND started_at IS NOT NULL), 0) AS seconds
             FROM task_status GROUP BY task_type, status""")
