"""Queries on schedules and schedule_runs: the Schedules page's rows, and claiming a run time exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extras import Json

from db.pool import Database

COLUMNS = """schedule_id, name, task_type, cron_expr, timezone, enabled, params, last_run_at, last_due_at,
             last_outcome, last_task_id, last_message, created_at, updated_at"""


@dataclass(frozen=True)
class ScheduleValues:
    name: str
    task_type: str
    cron_expr: str
    timezone: str
    enabled: bool
    params: dict[str, Any]


def list_schedules(db: Database, *, enabled_only: bool = False) -> list[dict[str, Any]]:
    where = "WHERE enabled" if enabled_only else ""
    return db.fetch_all(f"SELECT {COLUMNS} FROM schedules {where} ORDER BY name")


def get_schedule(db: Database, schedule_id: int) -> dict[str, Any] | None:
    return db.fetch_one(f"SELECT {COLUMNS} FROM schedules WHERE schedule_id = %s", (schedule_id,))


def get_by_name(db: Database, name: str) -> dict[str, Any] | None:
    return db.fetch_one(f"SELECT {COLUMNS} FROM schedules WHERE name = %s", (name,))


def upsert_by_name(db: Database, values: ScheduleValues) -> tuple[dict[str, Any], bool]:
    """Create the schedule `values.name`, or update the one of that name; (its row, whether it was created).
    `updated_at` moves, so run times before the change are not caught up."""
    row = db.fetch_one(
        f"""INSERT INTO schedules (name, task_type, cron_expr, timezone, enabled, params)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (name) DO UPDATE SET task_type = EXCLUDED.task_type, cron_expr = EXCLUDED.cron_expr,
                timezone = EXCLUDED.timezone, enabled = EXCLUDED.enabled, params = EXCLUDED.params,
                updated_at = now()
            RETURNING {COLUMNS}, (xmax = 0) AS created""",
        (values.name, values.task_type, values.cron_expr, values.timezone, values.enabled, Json(values.params)))
    assert row is not None
    created = bool(row.pop("created"))
    return row, created


def update_schedule(db: Database, schedule_id: int, values: ScheduleValues) -> dict[str, Any] | None:
    return db.fetch_one(
        f"""UPDATE schedules SET name = %s, task_type = %s, cron_expr = %s, timezone = %s, enabled = %s, params = %s,
                   updated_at = now()
             WHERE schedule_id = %s RETURNING {COLUMNS}""",
        (values.name, values.task_type, values.cron_expr, values.timezone, values.enabled, Json(values.params),
         schedule_id))


def delete_schedule(db: Database, schedule_id: int) -> bool:
    return db.execute("DELETE FROM schedules WHERE schedule_id = %s", (schedule_id,)) == 1


def claim_run(db: Database, schedule_id: int, *, due_at: datetime, kind: str, missed: int, claimed_by: str,
              outcome: str = "claimed", message: str | None = None) -> bool:
    """Claim the run of `schedule_id` at `due_at`: True for the one caller whose row went in, False for every
    other (another scheduler claimed it first). The schedule's last_due_at moves with it."""
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO schedule_runs (schedule_id, due_at, kind, missed, claimed_by, outcome, message)
               VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
            (schedule_id, due_at, kind, missed, claimed_by, outcome, message))
        if cur.rowcount != 1:
            return False
        if kind != "manual":
            cur.execute("""UPDATE schedules SET last_due_at = GREATEST(coalesce(last_due_at, %s), %s)
                            WHERE schedule_id = %s""", (due_at, due_at, schedule_id))
        if outcome != "claimed":
            _record(cur, schedule_id, outcome, None, message)
    return True


def finish_run(db: Database, schedule_id: int, *, due_at: datetime, outcome: str, task_id: str | None,
               message: str | None) -> None:
    with db.transaction() as cur:
        cur.execute("""UPDATE schedule_runs SET outcome = %s, task_id = %s, message = %s
                        WHERE schedule_id = %s AND due_at = %s""", (outcome, task_id, message, schedule_id, due_at))
        _record(cur, schedule_id, outcome, task_id, message)


def _record(cur: Any, schedule_id: int, outcome: str, task_id: str | None, message: str | None) -> None:
    cur.execute("""UPDATE schedules SET last_run_at = now(), last_outcome = %s, last_task_id = %s, last_message = %s
                    WHERE schedule_id = %s""", (outcome, task_id, message, schedule_id))


def fail_stale_claims(db: Database, *, older_than_seconds: float) -> int:
    """Runs claimed by a scheduler that stopped before starting the task: recorded as failed (never retried: the
    next run time comes as usual)."""
    return db.execute(
        """UPDATE schedule_runs SET outcome = 'failed',
                  message = 'the scheduler stopped between claiming the run and starting its task'
            WHERE outcome = 'claimed' AND claimed_at < now() - make_interval(secs => %s)""", (older_than_seconds,))


def recent_runs(db: Database, schedule_id: int, *, limit: int = 10) -> list[dict[str, Any]]:
    return db.fetch_all(
        """SELECT due_at, kind, missed, outcome, task_id, message, claimed_by, claimed_at FROM schedule_runs
            WHERE schedule_id = %s ORDER BY claimed_at DESC, due_at DESC LIMIT %s""", (schedule_id, limit))
