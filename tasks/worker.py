"""Worker entry point: `python -m tasks.worker [--burst] [--queues high,default]`.

Applies migrations, reconciles tasks left behind by dead workers, loads the CLAP audio model when CLAP_ENABLED
(exits with status 2 and the reason when it is not a CLAP audio encoder), starts the scheduler thread (CRON_ENABLED,
not with --burst; tasks/schedules.py) and MPD's queue-mode thread (not with --burst; tasks/mpd_queue.py), then
serves the `high` and `default` queues.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
import uuid

# One worker process per core: numeric libraries must not start a thread per core each as well (cores² threads
# fighting over the cores). Set before numpy is imported; an explicit environment value wins.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from rq import SimpleWorker, worker_registration  # noqa: E402

import config as config_module  # noqa: E402
from db.migrate import apply_migrations  # noqa: E402
from infra.connections import get_db, get_redis  # noqa: E402
from infra.data_dir import private_data_dir  # noqa: E402
from infra.logs import configure_logging  # noqa: E402
from tasks.queues import QUEUE_NAMES, get_queues  # noqa: E402
from tasks.reconcile import reconcile_dead_workers  # noqa: E402

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


def keep_registered(worker: SimpleWorker, stop: threading.Event, every: float) -> threading.Thread:
    """A Redis restarted without its data forgets the workers (RQ registers one only at its start): every `every`
    seconds, a worker missing from RQ's registry is registered again, so /api/health and the reconciler count it.
    A registered worker's key gets its time to live again each round, as RQ's SimpleWorker does not while it runs
    a job (a re-registered worker would drop out during a long one)."""
    ttl = worker.worker_ttl + 60

    def check() -> None:
        while not stop.wait(every):
            try:
                connection = worker.connection
                if connection.hexists(worker.key, "death"):
                    continue  # it is stopping: RQ has unregistered it
                if connection.sismember(worker.redis_workers_keys, worker.key) and connection.exists(worker.key):
                    connection.expire(worker.key, ttl)
                    continue
                with connection.pipeline() as pipe:
                    pipe.hset(worker.key, mapping=worker.serialize())
                    worker_registration.register(worker, pipe)
                    pipe.expire(worker.key, ttl)
                    pipe.execute()
                log.warning("worker %s was missing from Redis (restarted without its data): registered again",
                            worker.name)
            except Exception as exc:  # Redis away: the next round tries again
                log.warning("worker registration check failed: %s", exc)

    thread = threading.Thread(target=check, name="worker-registration", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="AudioMuse RQ worker")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--queues", default=",".join(QUEUE_NAMES),
                        help="comma-separated queues to serve, highest priority first (default: high,default)")
    args = parser.parse_args(argv)

    config = config_module.load_or_exit()
    config_module.install(config)
    configure_logging(config.LOG_LEVEL, config.LOG_FORMAT)
    private_data_dir(config.DATA_DIR)
    apply_migrations(config.database_url)
    # RQ's own bookkeeping (a job's end, heartbeats) raises on a lost connection and ends the worker: its commands
    # wait for a restarted Redis instead, as the tasks' progress writes do.
    connection = get_redis(config, outage_seconds=config.WORKER_REDIS_OUTAGE_SECONDS)
    reconcile_dead_workers(get_db(config), connection, dead_after_seconds=config.TASK_DEAD_AFTER_SECONDS)
    # Jobs run in this process (no fork per job); an album job's models and decoders live in the analysis process
    # (audio/engine.py), kept while jobs come and let go when the worker is idle.
    names = [q.strip() for q in args.queues.split(",") if q.strip()]
    unknown = sorted(set(names) - set(QUEUE_NAMES))
    if unknown:
        parser.error(f"unknown queue(s) {', '.join(unknown)}; known: {', '.join(QUEUE_NAMES)}")
    if config.CLAP_ENABLED:  # refuse a wrong CLAP model now rather than fail every album job on it
        from audio.clap import ClapModelError
        from tasks.analysis import clap_model_name

        try:  # in the analysis process, which lets the model go again when the worker stays idle
            name = clap_model_name(config)
        except ClapModelError as exc:
            print(f"audiomuse worker: {exc}", file=sys.stderr)
            return 2
        print(f"audiomuse worker: CLAP audio model {name or '-'} loaded", file=sys.stderr)
    if config.CRON_ENABLED and not args.burst:
        from tasks.schedules import start_scheduler_thread

        start_scheduler_thread(get_db(config), connection, config, threading.Event())
    background_stop = threading.Event()
    queue_mode = None
    if not args.burst:  # MPD's queue mode: one worker across hosts drives MPD while the Mix page's switch is on
        from tasks.mpd_queue import start_mpd_queue_thread

        queue_mode = start_mpd_queue_thread(get_db(config), connection, config, background_stop)
    queues = [q for q in get_queues(connection) if q.name in names]
    worker = SimpleWorker(queues, connection=connection, name=worker_name())
    registered = keep_registered(worker, background_stop, config.TASK_HEARTBEAT_SECONDS)
    worker.work(burst=args.burst, with_scheduler=False, logging_level=config.LOG_LEVEL)
    background_stop.set()
    registered.join(5)
    if queue_mode is not None:
        queue_mode.join(5)  # lets a driver release MPD's lock now rather than when it expires
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
