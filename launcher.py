"""Start AudioMuse: embedded services when needed, migrations, then supervisord with web + workers.

`python launcher.py` is what the first README command and the Docker image run. With DATABASE_URL (or
POSTGRES_HOST) and REDIS_URL set it starts nothing but our own processes. Ctrl-C (SIGINT) or SIGTERM stops
supervisord (and so the web server and workers), then the embedded services, and leaves no process behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import requests

import config as config_module
from config import PROJECT_ROOT, Config, redact_url
from db.migrate import apply_migrations
from infra.data_dir import private_data_dir
from infra.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServiceError
from infra.logs import configure_logging

log = logging.getLogger("audiomuse.launcher")


def child_environment(config: Config, database_url: str, redis_url: str) -> dict[str, str]:
    run_dir = Path(config.DATA_DIR) / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env.update({
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HOST": config.HOST,
        "PORT": str(config.PORT),
        "WEB_THREADS": str(config.WEB_THREADS),
        "NUM_WORKERS": str(config.NUM_WORKERS),
        "AUDIOMUSE_RUN_DIR": str(run_dir),
        "AUDIOMUSE_START_WEB": "true" if config.SERVICE_TYPE in ("web", "all") else "false",
        "AUDIOMUSE_START_WORKERS": "true" if config.SERVICE_TYPE in ("worker", "all") else "false",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def wait_until_up(url: str, supervisor: subprocess.Popen[bytes], stopping: Callable[[], bool],
                  timeout: float = 120.0) -> dict[str, object] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and supervisor.poll() is None and not stopping():
        try:
            body = requests.get(url, timeout=2).json()
            if isinstance(body, dict) and body.get("workers", {}).get("count", 0) > 0:
                return body
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.5)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start AudioMuse (web server + workers)")
    parser.parse_args(argv)
    config = config_module.load_or_exit()
    configure_logging(config.LOG_LEVEL, config.LOG_FORMAT)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir = private_data_dir(config.DATA_DIR)

    stopping = False

    def request_stop(signum: int, frame: types.FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    postgres = EmbeddedPostgres(data_dir) if config.needs_embedded_postgres else None
    redis_server = EmbeddedRedis(data_dir) if config.needs_embedded_redis else None
    supervisor: subprocess.Popen[bytes] | None = None
    try:
        database_url = postgres.start() if postgres else config.database_url
        redis_url = redis_server.start() if redis_server else config.REDIS_URL
        log.info("PostgreSQL: %s", f"embedded ({postgres.pgdata})" if postgres else redact_url(database_url))
        log.info("Redis: %s", f"embedded (127.0.0.1:{redis_server.port})" if redis_server else redact_url(redis_url))
        apply_migrations(database_url)
        env = child_environment(config, database_url, redis_url)
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(PROJECT_ROOT / "supervisord.conf")],
            env=env, cwd=PROJECT_ROOT, start_new_session=True,
        )
        if config.SERVICE_TYPE in ("web", "all"):
            shown_host = "127.0.0.1" if config.HOST in ("0.0.0.0", "::") else config.HOST
            health = wait_until_up(f"http://{shown_host}:{config.PORT}/api/health", supervisor, lambda: stopping)
            if health is not None:
                print(f"\nAudioMuse is running at http://{shown_host}:{config.PORT}/  (Ctrl-C stops it)\n",
                      flush=True)
            elif not stopping:
                log.error("the web server did not become healthy; see the log above")
        while not stopping and supervisor.poll() is None:
            time.sleep(0.5)
        return 0 if stopping else 1
    except EmbeddedServiceError as exc:
        log.error("%s", exc)
        return 1
    finally:
        if supervisor is not None and supervisor.poll() is None:
            supervisor.send_signal(signal.SIGTERM)
            try:
                supervisor.wait(150)
            except subprocess.TimeoutExpired:
                os.killpg(supervisor.pid, signal.SIGKILL)
                supervisor.wait()
        if redis_server:
            redis_server.stop()
        if postgres:
            postgres.stop()
        log.info("AudioMuse stopped")


if __name__ == "__main__":
    raise SystemExit(main())
