"""The scheduler: starts the schedules' runs when they are due. It runs as a thread in every worker process
(`python -m tasks.worker`), so no extra process is needed, and however many workers and hosts run it, each due run
starts once: a run time is claimed by inserting its schedule_runs row (schedule id + run time is the primary key;
the first insert wins), and only the claimer starts the task.

A due run whose task type is already running is skipped and recorded as skipped. After downtime, the missed run
times are not replayed: with CRON_CATCH_UP one catch-up run starts (recorded with how many times it stands for),
without it the latest is recorded as missed.

`python -m tasks.schedules --once [--now ISO-TIME]` runs one pass and prints what it did (operations, tests).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import psycopg2
from redis import Redis
from redis.exceptions import RedisError

from config import Config
from db import schedules as schedule_store
from db import task_status as task_store
from db.clock import database_now
from db.pool import Database
from schedules.cron import CronError, due_run
from tasks.catalog import NotStartable, ParamError, parse_params, schedulable, start_task

log = logging.getLogger(__name__)


STALE_CLAIM_SECONDS = 600  # starting a task takes milliseconds; a claim this old lost its scheduler


class ScheduleNotStartable(Exception):
    """The schedule's task cannot start now for a reason that is not "already running" (e.g. too few tracks)."""


class ScheduleParamsError(ValueError):
    """A schedule's parameter that cannot be used; `field` is its name as the API reports it (`params.<name>`)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.field = f"params.{name}" if name else "params"


def schedule_params(task_type: str, params: Any, config: Config) -> dict[str, Any]:
    """The parameters a schedule of `task_type` stores, defaults filled in: parsed by the task's own parser (the
    one its start route uses), refusing names it does not know."""
    kind = schedulable().get(task_type)
    if kind is None:
        raise ScheduleParamsError("", f"unknown task type {task_type!r}")
    try:
        return parse_params(kind, params, config, strict=True)
    except ParamError as exc:
        raise ScheduleParamsError(exc.name, str(exc)) from None


def grace_period(config: Config) -> timedelta:
    """How late a run time may be seen and still count as on time (a scheduler polls every CRON_POLL_SECONDS)."""
    return timedelta(seconds=3 * config.CRON_POLL_SECONDS + 60)


def start_schedule_task(schedule: dict[str, Any], *, db: Database, redis: Redis, config: Config) -> str:
    """Start the task of `schedule` with its parameters; its task id. TaskAlreadyRunning when one of its type is
    active, ScheduleNotStartable when it cannot start for another reason."""
    kind = schedulable().get(schedule["task_type"])
    if kind is None:
        raise ScheduleNotStartable(f"unknown task type {schedule['task_type']!r}")
    try:
        return start_task(kind, schedule["params"], db=db, redis=redis, config=config, strict=True,
                          reason="schedule").task_id
    except (ParamError, NotStartable) as exc:
        raise ScheduleNotStartable(str(exc)) from None


def run_now(schedule: dict[str, Any], *, db: Database, redis: Redis, config: Config, claimed_by: str
            ) -> dict[str, Any]:
    """Start a schedule's task at once ("run now"), recorded as a manual run; the run's outcome."""
    moment = database_now(db)
    if not schedule_store.claim_run(db, schedule["schedule_id"], due_at=moment, kind="manual", missed=0,
                                    claimed_by=claimed_by):
        return {"schedule": schedule["name"], "due_at": moment.isoformat(), "outcome": "skipped", "task_id": None,
                "message": "another run of this schedule was started at the same moment"}
    return _start(schedule, moment, db=db, redis=redis, config=config)


def _start(schedule: dict[str, Any], due_at: datetime, *, db: Database, redis: Redis, config: Config
           ) -> dict[str, Any]:
    task_id: str | None = None
    unavailable = False
    try:
        task_id = start_schedule_task(schedule, db=db, redis=redis, config=config)
        outcome, message = "started", None
    except task_store.TaskAlreadyRunning as exc:
        outcome, message = "skipped", f"a {exc.task_type} task is already running ({exc.active_task_id})"
        task_id = exc.active_task_id
    except ScheduleNotStartable as exc:
        outcome, message = "failed", str(exc)
    except (RedisError, psycopg2.OperationalError) as exc:  # the infrastructure, not the schedule
        outcome, message, unavailable = "failed", f"{type(exc).__name__}: {exc}"[:500], True
    except Exception as exc:  # a bad stored parameter: recorded, and the other schedules go on
        log.exception("schedule %r could not start its task", schedule["name"])
        outcome, message = "failed", f"{type(exc).__name__}: {exc}"[:500]
    schedule_store.finish_run(db, schedule["schedule_id"], due_at=due_at, outcome=outcome, task_id=task_id,
                              message=message)
    return {"schedule": schedule["name"], "due_at": due_at.isoformat(), "outcome": outcome, "task_id": task_id,
            "message": message, "unavailable": unavailable}


def run_due(db: Database, redis: Redis, config: Config, *, now: datetime | None = None,
            claimed_by: str = "") -> list[dict[str, Any]]:
    """One pass over the enabled schedules: claim and start each run that is due at `now` (the database's clock by
    default); what was done, one entry per run this scheduler claimed."""
    now = now or database_now(db)
    schedule_store.fail_stale_claims(db, older_than_seconds=STALE_CLAIM_SECONDS)
    done = []
    for schedule in schedule_store.list_schedules(db, enabled_only=True):
        since = max(t for t in (schedule["last_due_at"], schedule["updated_at"]) if t is not None)
        try:
            due = due_run(schedule["cron_expr"], schedule["timezone"], since=since, now=now,
                          grace=grace_period(config))
        except CronError as exc:
            log.warning("schedule %r: %s", schedule["name"], exc)
            continue
        except Exception:  # whatever else is wrong with this row, the schedules after it still run
            log.exception("schedule %r could not be judged", schedule["name"])
            continue
        if due is None:
            continue
        kind = "catch_up" if due.catch_up else "scheduled"
        if due.catch_up and not config.CRON_CATCH_UP:
            message = (f"missed {due.missed + 1} run time(s) while no scheduler was running; CRON_CATCH_UP is off, "
                       "so none is run now")
            if schedule_store.claim_run(db, schedule["schedule_id"], due_at=due.due_at, kind=kind,
                                        missed=due.missed, claimed_by=claimed_by, outcome="missed", message=message):
                done.append({"schedule": schedule["name"], "due_at": due.due_at.isoformat(), "outcome": "missed",
                             "task_id": None, "message": message})
            continue
        if not schedule_store.claim_run(db, schedule["schedule_id"], due_at=due.due_at, kind=kind,
                                        missed=due.missed, claimed_by=claimed_by):
            continue  # another scheduler has it
        result = _start(schedule, due.due_at, db=db, redis=redis, config=config)
        result["kind"] = kind
        result["missed"] = due.missed
        done.append(result)
    return done


def scheduler_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def start_scheduler_thread(db: Database, redis: Redis, config: Config, stop: threading.Event) -> threading.Thread:
    """The scheduler loop as a daemon thread: one pass every CRON_POLL_SECONDS until `stop` is set."""

    def loop() -> None:
        me = scheduler_identity()
        while not stop.is_set():
            try:
                for run in run_due(db, redis, config, claimed_by=me):
                    log.info("schedule %s: %s %s", run["schedule"], run["outcome"], run.get("task_id") or "")
            except Exception:  # the database restarting, say: the next pass tries again
                log.warning("scheduler pass failed", exc_info=True)
            stop.wait(config.CRON_POLL_SECONDS)

    thread = threading.Thread(target=loop, name="scheduler", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    import config as config_module
    from infra.connections import get_db, get_redis

    parser = argparse.ArgumentParser(description="Run one pass of the AudioMuse scheduler")
    parser.add_argument("--once", action="store_true", required=True)
    parser.add_argument("--now", help="the moment to act as (ISO 8601 with offset); default: the database's clock")
    parser.add_argument("--start-at", type=float, help="wait until this epoch time first (tests start racers)")
    args = parser.parse_args(argv)
    config = config_module.load_or_exit()
    config_module.install(config)
    db, redis = get_db(config), get_redis(config)
    now = datetime.fromisoformat(args.now) if args.now else None
    if args.start_at:
        time.sleep(max(0.0, args.start_at - time.time()))
    print(json.dumps(run_due(db, redis, config, now=now, claimed_by=scheduler_identity())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
