"""A kept-alive connection past its keep-alive time is closed only when it is idle: one whose next request has
already arrived (the event loop was held up before it dispatched the "readable") is served."""

from __future__ import annotations

import os
import selectors
import socket
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import TConn

from infra import web_worker
from infra.web_worker import STOP_LINGER_SECONDS, HeadFirstWorker


@pytest.fixture
def worker() -> Iterator[HeadFirstWorker]:
    cfg = Config()
    cfg.set("threads", 2)
    made = HeadFirstWorker(0, os.getppid(), [], None, 30, cfg, Logger(cfg))
    made.poller = selectors.DefaultSelector()
    yield made
    made.poller.close()
    made.tmp.close()


def _kept_alive(worker: HeadFirstWorker, ours: socket.socket) -> TConn:
    """`ours` as gthread keeps a connection between two requests, its keep-alive time already past."""
    conn = TConn(worker.cfg, ours, ("127.0.0.1", 1), None)
    conn.initialized = True
    conn.timeout = time.monotonic() - 1.0
    worker.nr_conns += 1
    worker.keepalived_conns.append(conn)
    worker.poller.register(ours, selectors.EVENT_READ, partial(worker.on_client_socket_readable, conn))
    return conn


def _collecting(worker: HeadFirstWorker, ours: socket.socket) -> TConn:
    """A new connection on `ours`, its request being collected by the worker's event loop."""
    conn = TConn(worker.cfg, ours, ("127.0.0.1", 1), None)
    worker.nr_conns += 1
    worker.enqueue_req(conn)
    return conn


def _record_handed(worker: HeadFirstWorker) -> list[TConn]:
    """The connections the worker hands to a thread from now on (the thread's part, not tested here)."""
    handed: list[TConn] = []
    worker.tpool = ThreadPoolExecutor(max_workers=1)
    worker.handle = lambda conn: handed.append(conn)  # type: ignore[method-assign]
    return handed


def test_an_expired_kept_alive_connection_with_a_request_waiting_is_served_and_an_idle_one_closed(
        worker: HeadFirstWorker) -> None:
    busy_ours, busy_theirs = socket.socketpair()
    idle_ours, idle_theirs = socket.socketpair()
    with busy_theirs, idle_theirs:
        busy = _kept_alive(worker, busy_ours)
        idle = _kept_alive(worker, idle_ours)
        busy_theirs.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")

        worker.murder_keepalived()

        assert idle_ours.fileno() == -1, "the idle connection was kept past its keep-alive time"
        assert idle_theirs.recv(1) == b""  # the client sees it closed
        assert busy_ours.fileno() != -1, "a connection whose next request had arrived was closed"
        assert busy in worker.collecting and busy not in worker.keepalived_conns
        assert worker.nr_conns == 1
        # the event loop's next turn collects the request from it: registered for it, the bytes still there
        assert worker.poller.get_key(busy_ours).data.func == worker._on_readable
        assert busy_ours.recv(64, socket.MSG_PEEK).startswith(b"GET /api/health")
        assert idle not in worker.keepalived_conns
        busy_ours.close()


def test_a_forced_murder_closes_every_kept_alive_connection(worker: HeadFirstWorker) -> None:
    ours, theirs = socket.socketpair()
    with theirs:
        _kept_alive(worker, ours)
        theirs.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        worker.murder_keepalived(force=True)
        assert ours.fileno() == -1 and worker.nr_conns == 0


def test_a_request_that_arrived_whole_while_the_loop_was_late_is_handed_over_not_dropped_at_its_deadline(
        worker: HeadFirstWorker) -> None:
    handed = _record_handed(worker)
    late_ours, late_theirs = socket.socketpair()
    slow_ours, slow_theirs = socket.socketpair()
    with late_theirs, slow_theirs:
        for ours in (late_ours, slow_ours):
            _collecting(worker, ours).deadline = time.monotonic() - 1.0
        late_theirs.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        slow_theirs.sendall(b"GET /api/health HTTP/1.1\r\nHost:")  # still arriving at its deadline

        worker.murder_pending()
        worker.tpool.shutdown(wait=True)

        assert [c.sock for c in handed] == [late_ours], "the request that had arrived whole was not served"
        assert slow_ours.fileno() == -1 and slow_theirs.recv(1) == b""
        assert worker.nr_conns == 1
        late_ours.close()


def test_a_stopping_worker_still_collects_a_request_for_a_short_linger_then_drops_what_did_not_arrive(
        worker: HeadFirstWorker) -> None:
    handed = _record_handed(worker)
    arriving_ours, arriving_theirs = socket.socketpair()
    silent_ours, silent_theirs = socket.socketpair()
    with arriving_theirs, silent_theirs:
        conns = [_collecting(worker, ours) for ours in (arriving_ours, silent_ours)]  # head deadlines seconds away
        worker.alive = False  # told to stop

        worker.murder_pending()

        assert worker.collecting == deque(conns), "a stopping worker dropped requests still arriving at once"
        assert all(c.deadline <= time.monotonic() + STOP_LINGER_SECONDS for c in conns)
        arriving_theirs.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        for conn in conns:
            conn.deadline = time.monotonic() - 0.01  # the linger has passed
        worker.murder_pending()
        worker.tpool.shutdown(wait=True)

        assert [c.sock for c in handed] == [arriving_ours], "the request that arrived during the linger was dropped"
        assert silent_ours.fileno() == -1 and silent_theirs.recv(1) == b""
        assert not worker.collecting and worker.nr_conns == 1
        arriving_ours.close()


def test_a_connection_that_starts_a_request_after_the_stop_gets_its_own_linger(
        worker: HeadFirstWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web_worker, "STOP_LINGER_SECONDS", 0.2)
    early_ours, early_theirs = socket.socketpair()
    late_ours, late_theirs = socket.socketpair()
    with early_theirs, late_theirs:
        _collecting(worker, early_ours)
        worker.alive = False
        worker.murder_pending()  # the early connection's linger starts
        time.sleep(0.3)
        # e.g. a kept-alive connection whose client begins its next request now
        late = _collecting(worker, late_ours)

        worker.murder_pending()

        assert early_ours.fileno() == -1, "a connection was kept past its linger"
        assert worker.collecting == deque([late]), "a request begun after the stop was dropped with the early ones"
        assert time.monotonic() < late.deadline <= time.monotonic() + 0.2
        late_ours.close()
