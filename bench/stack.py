"""The real stack for the end-to-end benchmarks: embedded PostgreSQL and redis-server, RQ worker processes, tasks."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from config import Config
from db import task_status as store
from db.migrate import apply_migrations
from db.pool import Database
from infra.connections import get_db, get_redis
from infra.embedded import EmbeddedPostgres, EmbeddedRedis
from tasks.queues import TaskRef, start_main_task

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def embedded_services() -> Iterator[tuple[Path, str, str]]:
    """A fresh work folder with a migrated PostgreSQL and a redis-server in it: (folder, database URL, Redis URL).
    The folder (hundreds of MB of database files after a large run) is deleted afterwards."""
    work = Path(tempfile.mkdtemp(prefix="audiomuse-bench-"))
    postgres, redis_server = EmbeddedPostgres(work), EmbeddedRedis(work)
    try:
        database_url, redis_url = postgres.start(), redis_server.start()
        apply_migrations(database_url)
        yield work, database_url, redis_url
    finally:
        redis_server.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def task_workers(env: Mapping[str, str], *, child_workers: int, code_root: Path = ROOT) -> Iterator[None]:
    """One orchestrator worker (`high`) and `child_workers` album/batch workers (`default`), as supervisord runs
    them, running the code of `code_root` (another checkout, to measure the code before a change); stopped on exit
    (SIGTERM, then SIGKILL for any still running after 30 s)."""
    procs = [subprocess.Popen([sys.executable, "-m", "tasks.worker", "--queues", queue], cwd=code_root,
                              env=dict(env), start_new_session=True)
             for queue in ["high"] + ["default"] * child_workers]
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def start_web_server(env: Mapping[str, str], port: int) -> subprocess.Popen[bytes]:
    """The real web server as supervisord runs it (gunicorn, one process, 8 threads, a 300-s worker timeout — loading
    a large index takes longer than gunicorn's default 30 s — `app:serve()`) on `port`."""
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "8", "--bind", f"127.0.0.1:{port}",
         "--timeout", "300", "--no-control-socket", "app:serve()"], cwd=ROOT, env=dict(env), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_health(base: str, done: Callable[[dict[str, Any]], bool], *, what: str,
                    timeout: float) -> tuple[float, dict[str, Any]]:
    """Poll /api/health of the web server at `base` until `done(its "index" block)`; (seconds it took, that block).
    Raises RuntimeError naming `what` after `timeout` seconds."""
    import requests

    started = time.perf_counter()
    while True:
        try:
            block = requests.get(base + "/api/health", timeout=2).json()["index"]
            if done(block):
                return time.perf_counter() - started, block
        except (requests.RequestException, ValueError, KeyError):
            pass
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"the web server did not {what} in {timeout:.0f} s")
        time.sleep(0.2)


def wait_for_index(base: str, size: int, *, timeout: float = 300.0) -> float:
    """Wait until the web server at `base` serves an index of `size` tracks; the seconds it took."""
    return wait_for_health(base, lambda block: block["size"] == size, what="come up with the index",
                           timeout=timeout)[0]


def wait_for_caches(base: str, *, timeout: float = 3600.0) -> tuple[float, dict[str, str]]:
    """Wait until the web server at `base` reports every cache built against its index ("ready" or "failed"):
    (the seconds it took, each cache's state)."""
    seconds, block = wait_for_health(
        base, lambda block: bool(block["caches"]) and all(v in ("ready", "failed") for v in block["caches"].values()),
        what="build its caches", timeout=timeout)
    return seconds, dict(block["caches"])


def vacuum(db: Database, tables: str) -> None:
    """VACUUM ANALYZE `tables` (a comma-separated list): a bench's freshly loaded library as a long-used one is, with
    no autovacuum left to run through the measurements. VACUUM runs outside a transaction."""
    with db.connection() as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"VACUUM ANALYZE {tables}")
        conn.autocommit = False


def stop_web_server(web: subprocess.Popen[bytes] | None) -> None:
    if web is not None and web.poll() is None:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(30)


def config_for(env: Mapping[str, str]) -> Config:
    return Config.from_mapping({k: v for k, v in env.items() if k in Config.__dataclass_fields__})


def run_main_task(db: Database, task: TaskRef, kwargs: dict[str, Any], config: Config) -> tuple[dict[str, Any], float]:
    """Start a main task as the web page does and wait for it: (its status row, seconds from start to finish).
    Raises RuntimeError when it does not succeed."""
    started = time.perf_counter()
    task_id = start_main_task(task, kwargs=kwargs, db=get_db(config), connection=get_redis(config),
                              config=config)
    while (row := store.get_task(db, task_id)) is None or row["finished_at"] is None:
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    if row["status"] != "SUCCESS":
        raise RuntimeError(f"{task.task_type} ended {row['status']}: {row['message']}")
    return row, seconds


def print_figures(title: str, rows: Sequence[tuple[str, str]], *, header: tuple[str, str] = ("measure", "figure"),
                  load: bool = True) -> None:
    """A benchmark's figures as markdown: `title` (none when empty), the machine, one row per (name, figure)."""
    print(f"\n### {title}\n" if title else "")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
          + (f", load {os.getloadavg()[0]:.1f}." if load else ".") + "\n")
    print(f"| {header[0]} | {header[1]} |\n|---|---|")
    for name, figure in rows:
        print(f"| {name} | {figure} |")
