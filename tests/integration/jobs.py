"""Small real tasks that exercise the task framework in tests (workers import them by dotted path)."""

from __future__ import annotations

import time
from typing import Any

from config import Config
from infra.connections import get_db, get_redis
from tasks.progress import TaskContext, task
from tasks.queues import start_main_task
from tasks.types import TaskFunction


def start(func: TaskFunction, kwargs: dict[str, Any], *, config: Config) -> str:
    """Start a main task with the process's database and Redis handles for `config`."""
    return start_main_task(func, kwargs=kwargs, db=get_db(config), connection=get_redis(config), config=config)


@task("test_count")
def count_to(ctx: TaskContext, n: int, pause: float = 0.0) -> dict[str, Any]:
    ctx.report("counting", phase="count", current=0, total=n)
    for i in range(1, n + 1):
        ctx.check_cancelled()
        time.sleep(pause)
        ctx.report(f"step {i}/{n}", current=i, total=n)
    return {"counted": n}


@task("test_other")
def other_kind(ctx: TaskContext) -> dict[str, Any]:
    return {"ok": True}


@task("test_explode")
def explode(ctx: TaskContext, value: int) -> None:
    ctx.report("about to fail")
    raise ValueError(f"bad input {value}")


@task("test_child")
def slow_child(ctx: TaskContext, steps: int, pause: float) -> dict[str, Any]:
    for i in range(1, steps + 1):
        ctx.check_cancelled()
        time.sleep(pause)
        ctx.report(f"child step {i}/{steps}", current=i, total=steps)
    return {"steps": steps}


@task("test_orchestrator")
def orchestrator(ctx: TaskContext, children: int, steps: int, pause: float) -> dict[str, Any]:
    ids = [ctx.spawn_child(slow_child, steps=steps, pause=pause) for _ in range(children)]
    ctx.report(f"launched {len(ids)} children", phase="children", current=0, total=len(ids))
    while True:
        ctx.check_cancelled()
        counts = ctx.child_counts()
        done = sum(counts.get(s, 0) for s in ("SUCCESS", "FAILURE", "REVOKED"))
        if done == len(ids):
            return {"children": counts}
        ctx.report(current=done, total=len(ids))
        time.sleep(0.1)
