"""Fixtures on real infrastructure: PostgreSQL, Redis and RQ workers.

With AUDIOMUSE_TEST_DATABASE_URL / AUDIOMUSE_TEST_REDIS_URL set, the suite uses those servers (a fresh database
is created on the PostgreSQL server, Redis DB 15 is used, 14 by a second xdist worker, ...); otherwise it starts the
same embedded PostgreSQL and redis-server the launcher uses, in a temporary folder, so it passes on a machine with
nothing running. Run in parallel (scripts/test.sh runs two pytest-xdist workers), each worker has its own pair.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.errors
import pytest
import redis as redis_lib

import config as config_module
from config import Config
from db.migrate import apply_migrations
from infra.connections import get_db, get_redis
from infra.embedded import EmbeddedPostgres, EmbeddedRedis

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = Path(os.environ.get("AUDIOMUSE_TEST_OUTPUT", REPO_ROOT / "test-output"))


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """URLs of a real PostgreSQL database (fresh) and a real Redis database for this test session."""
    given_db = os.environ.get("AUDIOMUSE_TEST_DATABASE_URL")
    given_redis = os.environ.get("AUDIOMUSE_TEST_REDIS_URL")
    cleanups: list[Callable[[], None]] = []
    data_dir = tmp_path_factory.mktemp("services")
    if given_db:
        name = f"audiomuse_test_{uuid.uuid4().hex[:8]}"
        admin = psycopg2.connect(given_db)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        database_url = _with_database(given_db, name)

        def drop() -> None:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()

        cleanups.append(drop)
    else:
        postgres = EmbeddedPostgres(data_dir, database="audiomuse_test")
        database_url = postgres.start()
        cleanups.append(postgres.stop)
    if given_redis:
        redis_url = urlunsplit(urlsplit(given_redis)._replace(path=f"/{_redis_database_number()}"))
    else:
        embedded_redis = EmbeddedRedis(data_dir)
        redis_url = embedded_redis.start()
        cleanups.append(embedded_redis.stop)
    apply_migrations(database_url)
    try:
        yield {"database_url": database_url, "redis_url": redis_url}
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


def _redis_database_number() -> int:
    """Redis DB 15 for a single test process; with pytest-xdist each worker (gw0, gw1, ...) counts down from 15,
    so parallel workers never flush each other's queues."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return 15 - int(worker.removeprefix("gw") or 0)


TABLES = ["playlist_tracks", "playlists", "clap_embeddings", "embeddings", "voyager_index_chunks", "voyager_indexes",
          "tracks", "analysis_failures", "task_status", "schedule_runs", "schedules", "smart_playlists",
          "playlist_suggestions", "playlist_profiles", "user_playlists", "app_settings", "map_projections",
          "version_regroup", "voyager_index_positions", "track_catalog_hashes", "imported_analyses", "api_tokens",
          "ended_sessions"]


@pytest.fixture
def make_config(services: dict[str, str], tmp_path: Path) -> Callable[..., Config]:
    def make(**overrides: Any) -> Config:
        values: dict[str, Any] = {
            "DATABASE_URL": services["database_url"],
            "REDIS_URL": services["redis_url"],
            "DATA_DIR": str(tmp_path / "data"),
            "CANCEL_CHECK_INTERVAL_SECONDS": 0,
            "TASK_LOG_LINES": 5,
        }
        values.update(overrides)
        return Config.from_mapping(values)

    return make


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    cfg = make_config()
    config_module.install(cfg)
    return cfg


@pytest.fixture(autouse=True)
def clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty tables and Redis around every test that uses the real services."""
    if "services" not in request.fixturenames:
        yield
        return
    services = request.getfixturevalue("services")
    _wipe(services)
    yield
    _wipe(services)


def _wipe(services: dict[str, str]) -> None:
    conn = psycopg2.connect(services["database_url"])
    try:
        # A web process of the test may still be finishing an index reload (reads in one snapshot) while we
        # truncate; PostgreSQL then breaks the deadlock by failing one side, so try again.
        for attempt in range(5):
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
                break
            except psycopg2.errors.DeadlockDetected:
                if attempt == 4:
                    raise
                time.sleep(0.5)
    finally:
        conn.close()
    redis_lib.Redis.from_url(services["redis_url"]).flushdb()


@pytest.fixture
def db(config: Config):  # type: ignore[no-untyped-def]
    return get_db(config)


@pytest.fixture
def redis(config: Config) -> redis_lib.Redis:
    return get_redis(config)


@pytest.fixture
def app(config: Config):  # type: ignore[no-untyped-def]
    from app import serve

    application = serve(config)
    yield application
    application.extensions["audiomuse"].stop_background.set()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def run_worker_burst(config: Config, redis: redis_lib.Redis) -> Callable[[], None]:
    """Run a real RQ SimpleWorker in burst mode in this process until the queues are empty."""
    from rq import SimpleWorker

    from tasks.queues import get_queues

    def run() -> None:
        worker = SimpleWorker(get_queues(redis), connection=redis, name=f"test-burst-{uuid.uuid4().hex[:6]}")
        worker.work(burst=True, with_scheduler=False)

    return run


@pytest.fixture
def worker_processes(services: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start real `python -m tasks.worker` processes (each in its own process group); stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        extra = env or {}
        env = dict(os.environ)
        env.update({"DATABASE_URL": services["database_url"], "REDIS_URL": services["redis_url"],
                    "CANCEL_CHECK_INTERVAL_SECONDS": "0", "TASK_HEARTBEAT_SECONDS": "0.5",
                    "PYTHONPATH": str(REPO_ROOT), "LOG_LEVEL": "WARNING"})
        env.update(extra)
        proc = subprocess.Popen([sys.executable, "-m", "tasks.worker", *args], cwd=REPO_ROOT, env=env,
                                start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # RQ's warm shutdown: the job in hand may finish first
    for proc in started:
        for sent in (signal.SIGTERM, signal.SIGKILL):  # a second SIGTERM is RQ's cold shutdown
            try:
                proc.wait(3 if sent == signal.SIGTERM else 10)
                break
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, sent)
        proc.wait()


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail the test with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# Drills (issue 32): fault drills marked `drill` (`pytest -m drill` runs them alone); each says what it did in one
# line through `drill_summary`, printed in the run's "drills" section (with pytest-xdist too: the lines travel in
# the reports as user properties).
DRILL_PROPERTY = "drill"
_drill_lines: list[str] = []


@pytest.fixture
def drill_summary(record_property: Callable[[str, object], None]) -> Callable[[str], None]:
    def say(line: str) -> None:
        record_property(DRILL_PROPERTY, line)

    return say


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("drill") and "drill_summary" not in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid} is a drill without a summary line (use the drill_summary fixture)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # a drill says its line after its last check: a failed drill has none (its failure is reported instead)
    if report.when == "call":
        _drill_lines.extend(f"drill: {value}" for key, value in report.user_properties if key == DRILL_PROPERTY)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _drill_lines:
        terminalreporter.write_sep("=", f"drills ({len(_drill_lines)})")
        for line in sorted(_drill_lines):
            terminalreporter.write_line(line)
