"""MPD's "keep the queue going" mode: a thread in every worker process (like the scheduler, tasks/schedules.py) of
which one at a time, across hosts, drives MPD. The driver waits on MPD's `idle playlist player` and, when fewer
than MPD_QUEUE_MIN_AHEAD songs remain after the current one, appends MPD_QUEUE_ADD songs from the mix
(discovery.mix: seeds are the last songs of the queue that are analyzed, `previous` the whole queue, so nothing
queued is queued again). MPD's song URIs are our item ids for MPD.

Where things live, and why:

* The switch is an app_settings row (`mpd_queue_mode`, "true"/"false"; absent: MPD_QUEUE_MODE), written by the Mix
  page. A user's choice must survive restarts and be seen by workers on every host; Redis may be an embedded,
  non-persistent one and is flushed without harm, the database is not.
* The driver's lock and its state (running, last addition, last error) are Redis keys: they are ephemeral, and the
  lock expires by itself (LOCK_SECONDS) when its holder dies; a thread of the driver renews it every third of that,
  whatever the driver is waiting for (loading the index, a slow MPD), and the driver appends only while it holds it.
* The driver loads the index itself (only that one worker pays for it) and reloads it on the web process's reload
  announcements (IndexHolder.listen).

The driver stops within about POLL_SECONDS when the mode is turned off, the worker stops or the lock is lost; when
MPD goes away it reconnects after 0.5 s, doubling up to MPD_QUEUE_RECONNECT_MAX_SECONDS.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import LockError, RedisError

from config import Config, parse_bool
from db.app_settings import effective_config, get_setting, set_setting
from db.pool import Database
from discovery.exclusions import Exclusions
from discovery.mix import mix
from mediaservers.base import MediaServerError
from mediaservers.mpd_queue import MpdQueue
from voyager_manager import IndexHolder

log = logging.getLogger(__name__)

SWITCH_KEY = "mpd_queue_mode"  # app_settings
LOCK_KEY = "audiomuse:mpd_queue:lock"
STATUS_KEY = "audiomuse:mpd_queue:status"
LOCK_SECONDS = 15
POLL_SECONDS = 1.0  # the longest the driver goes without looking at the switch, the stop event and the lock
SUPERVISOR_SECONDS = 2.0  # how often an idle worker looks whether it should drive
FIRST_BACKOFF_SECONDS = 0.5
SEEDS = 3  # the last analyzed songs of the queue the mix continues from
EVENTS = ("playlist", "player")


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


# --- the switch and the state ----------------------------------------------------------------------------------
def mode_on(db: Database, config: Config) -> bool:
    """The switch: the Mix page's choice, else MPD_QUEUE_MODE."""
    stored = get_setting(db, SWITCH_KEY)
    flag = parse_bool(stored) if stored is not None else None
    return config.MPD_QUEUE_MODE if flag is None else flag


def set_mode(db: Database, on: bool) -> None:
    set_setting(db, SWITCH_KEY, "true" if on else "false")


def _note(redis: Redis, **fields: Any) -> None:
    """Record part of the driver's state; Redis trouble is logged, never fatal to the driver."""
    try:
        redis.hset(STATUS_KEY, mapping={k: json.dumps(v) for k, v in fields.items()})
    except RedisError as exc:
        log.warning("MPD queue mode: could not record its state: %s", exc)


def status(redis: Redis) -> dict[str, Any]:
    """{running, state, holder, last_added: {at, songs: [{item_id, title, author}]}, last_error: {at, message},
    message, checked_version}: what the driver last recorded (`checked_version`: MPD's version of the queue it last
    looked at); `running` is whether a driver holds the lock now."""
    raw = redis.hgetall(STATUS_KEY)
    fields = {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}
    running = bool(redis.exists(LOCK_KEY))
    return {"running": running, "state": fields.get("state", "off") if running else "off",
            "holder": fields.get("holder") if running else None, "last_added": fields.get("last_added"),
            "last_error": fields.get("last_error"), "message": fields.get("message"),
            "checked_version": fields.get("checked_version")}


# --- the driver ----------------------------------------------------------------------------------------------------
def top_up(queue: MpdQueue, index: IndexHolder, config: Config, redis: Redis, *,
           still_driving: Callable[[], bool] = lambda: True) -> list[str]:
    """Append the mix to MPD's queue when fewer than MPD_QUEUE_MIN_AHEAD songs remain after the current one (and
    `still_driving()` holds when it is time to append: another driver may have taken over); the URIs appended."""
    state = queue.state()
    try:
        if state.remaining >= config.MPD_QUEUE_MIN_AHEAD:
            return []
        # the saved blocklists and scope (config is the effective one): nothing they leave out is queued
        queries = index.queries(query_ef=config.VOYAGER_QUERY_EF, exclusions=Exclusions.from_settings(config))
        if queries is None:
            _note(redis, message="no similarity index yet: run an analysis first")
            return []
        known = queries.lookup(state.uris[-50:])
        seeds = [known[uri] for uri in reversed(state.uris[-50:]) if uri in known][:SEEDS][::-1]
        if not seeds:
            _note(redis, message="none of the last songs of the queue is analyzed: nothing to continue from")
            return []
        picks = mix(seeds, count=config.MPD_QUEUE_ADD, neighbours=queries.neighbours, lookup=queries.lookup,
                    previous=state.uris, duplicate_distance=config.DUPLICATE_DISTANCE)
        uris = [p.track.item_id for p in picks]
        if not uris:
            _note(redis, message="the mix found no song that is not queued already")
            return []
        if not still_driving():
            return []
        queue.append(uris)
        log.info("MPD queue mode: %d songs left after the current one; added %d: %s", state.remaining, len(uris),
                 "; ".join(f"{p.track.artist} - {p.track.title} ({p.reason})" for p in picks))
        _note(redis, message=f"added {len(uris)} songs after {len(state.uris)} queued",
              last_added={"at": time.time(), "songs": [{"item_id": p.track.item_id, "title": p.track.title,
                                                        "author": p.track.artist, "reason": p.reason} for p in picks]})
        return uris
    finally:  # after any append: what the driver has seen and done
        _note(redis, checked_version=state.version)


def keep_queue(db: Database, redis: Redis, config: Config, stop: threading.Event, *,
               on_added: Callable[[list[str]], None] | None = None) -> str:
    """Drive MPD while the mode is on and this caller holds the lock; why it ended ("off", "stopped", "lock held
    elsewhere", "lock lost", "not mpd", "failed")."""
    if effective_config(config, db).MEDIASERVER_TYPE != "mpd":
        _note(redis, message="the media server is not MPD (MEDIASERVER_TYPE): the queue mode has nothing to drive")
        return "not mpd"
    lock = redis.lock(LOCK_KEY, timeout=LOCK_SECONDS, thread_local=False)
    if not lock.acquire(blocking=False):
        return "lock held elsewhere"
    me = identity()
    index = IndexHolder(db, config.INDEX_NAME)
    done = threading.Event()  # ends the index listener and the lock's renewal with the driver
    lost = threading.Event()

    def renew() -> None:
        while not done.wait(LOCK_SECONDS / 3):
            try:
                lock.reacquire()
            except LockError:
                lost.set()
                return
            except Exception as exc:  # Redis restarting: the next renewal tries again, before the lock expires
                log.warning("MPD queue mode: could not renew the lock: %s", exc)

    threading.Thread(target=renew, name="mpd-queue-lock", daemon=True).start()

    def why_stop() -> str | None:
        if stop.is_set():
            return "stopped"
        if lost.is_set():
            return "lock lost"
        try:
            if not mode_on(db, config):
                return "off"
        except Exception as exc:  # the database restarting: keep driving, ask again next round
            log.warning("MPD queue mode: could not read the switch: %s", exc)
        return None

    queue: MpdQueue | None = None
    try:
        _note(redis, holder=me, state="starting")
        index.reload(build_caches=False)
        index.listen_in_background(redis, config.INDEX_RELOAD_CHANNEL, done)
        backoff = FIRST_BACKOFF_SECONDS
        while (reason := why_stop()) is None:
            settings = effective_config(config, db)  # MPD's address as the Settings page saved it
            queue = MpdQueue.from_config(settings)
            try:
                queue.connect()
                _note(redis, state="watching")
                log.info("MPD queue mode: watching MPD's queue at %s", queue.address)
                backoff = FIRST_BACKOFF_SECONDS
                changed = True
                while True:
                    if changed:
                        added = top_up(queue, index, settings, redis, still_driving=lambda: not lost.is_set())
                        if added and on_added is not None:
                            on_added(added)
                    changed = bool(queue.wait(EVENTS, POLL_SECONDS))
                    if (reason := why_stop()) is not None:
                        return reason
            except MediaServerError as exc:
                log.warning("MPD queue mode: %s; trying again in %g s", exc, backoff)
                _note(redis, state="reconnecting", last_error={"at": time.time(), "message": str(exc)})
                deadline = time.monotonic() + backoff
                while (left := deadline - time.monotonic()) > 0:
                    if stop.wait(min(POLL_SECONDS, left)) or (reason := why_stop()) is not None:
                        return reason or "stopped"
                backoff = min(2 * backoff, config.MPD_QUEUE_RECONNECT_MAX_SECONDS)
            finally:
                queue.close()
        return reason or "stopped"
    except Exception as exc:  # a bug or the database gone: recorded, and the supervisor tries again later
        log.exception("MPD queue mode stopped")
        _note(redis, last_error={"at": time.time(), "message": f"{type(exc).__name__}: {exc}"[:500]})
        return "failed"
    finally:
        done.set()
        _note(redis, state="off")
        try:
            lock.release()
        except LockError:
            pass  # expired or taken over: not ours to release


def start_mpd_queue_thread(db: Database, redis: Redis, config: Config, stop: threading.Event) -> threading.Thread:
    """The supervisor as a daemon thread: every SUPERVISOR_SECONDS, when the mode is on, try to drive MPD (one
    worker across hosts wins the lock); until `stop` is set."""

    def loop() -> None:
        while not stop.is_set():
            try:
                if mode_on(db, config):
                    reason = keep_queue(db, redis, config, stop)
                    if reason not in ("lock held elsewhere", "off", "not mpd"):
                        log.info("MPD queue mode: driver ended (%s)", reason)
            except Exception:  # the database or Redis restarting: the next round tries again
                log.warning("MPD queue mode supervisor round failed", exc_info=True)
            stop.wait(SUPERVISOR_SECONDS)

    thread = threading.Thread(target=loop, name="mpd-queue", daemon=True)
    thread.start()
    return thread
