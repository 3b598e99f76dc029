"""The first README command's core: launcher.py brings everything up on embedded services and Ctrl-C
leaves no process behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import requests

from tests.conftest import REPO_ROOT, wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes_using(data_dir: str) -> list[psutil.Process]:
    """Processes whose command line, working directory or environment mention `data_dir` (redis-server and
    postgres rewrite their titles and environment, but keep their data folder as working directory)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(data_dir in part for part in proc.info["cmdline"] or []) or proc.cwd().startswith(data_dir) or any(
                    data_dir in value for value in proc.environ().values()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def test_launcher_starts_everything_and_ctrl_c_stops_everything(tmp_path):
    data_dir = str(tmp_path / "data")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "POSTGRES_HOST")}
    env.update({"DATA_DIR": data_dir, "PORT": str(port), "NUM_WORKERS": "2", "LOG_LEVEL": "WARNING"})
    launcher = subprocess.Popen([sys.executable, "launcher.py"], cwd=REPO_ROOT, env=env, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []  # read as it comes: the test waits for the banner before it presses Ctrl-C
    reader = threading.Thread(target=lambda: lines.extend(launcher.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        def healthy() -> dict | None:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
            except (requests.ConnectionError, requests.Timeout):
                return None  # not up yet, or still busy starting on a loaded machine
            body = response.json()
            # two batch workers and two orchestrators
            return body if response.status_code == 200 and body["workers"]["count"] == 4 else None

        health = wait_for(healthy, timeout=120, what="launcher to report healthy")
        assert health["database"]["ok"] and health["redis"]["ok"]
        assert len(_processes_using(data_dir)) >= 5  # postgres, redis, supervisord, gunicorn, workers

        # the banner follows the launcher's own health check, which may come a poll after ours on a busy machine
        wait_for(lambda: any("AudioMuse is running at" in line for line in lines), timeout=60, what="the banner")
        os.killpg(launcher.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends to the foreground group
        launcher.wait(timeout=120)
        reader.join(timeout=10)
        output = "".join(lines)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.returncode == 0, output
    assert f"AudioMuse is running at http://127.0.0.1:{port}/" in output
    deadline = time.monotonic() + 10
    while _processes_using(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_using(data_dir) == []
