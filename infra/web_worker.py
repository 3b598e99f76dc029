"""The web server's gunicorn worker: gunicorn's threaded worker, except that a connection gets a thread only once
its request has arrived whole: the head (request line and headers), and a body of up to BODY_BUFFER_BYTES.

gunicorn's `gthread` worker hands a connection to a thread as soon as its first bytes arrive, and the thread then
reads the rest of the request with blocking reads: a client that sends half a request and stops (a slow or hostile
one) holds that thread for as long as it keeps the connection open, and a dozen of them hold every thread, so the
web process stops answering (issue 32's audit). Here the worker's event loop collects each request without
blocking, from any number of connections at once, and drops a connection whose head is not complete after
HEAD_TIMEOUT_SECONDS (its body: BODY_TIMEOUT_SECONDS more); a head larger than MAX_HEAD_BYTES is answered 431.
A thread only ever sees a request it can start on at once. A larger body (an upload, or a chunked one) is read by
the thread at a rate the client must keep up: its reads may wait BODY_TIMEOUT_SECONDS plus a second for each
MIN_BODY_BYTES_PER_SECOND received, so a body dripped a byte at a time lets its thread go. The response is written with
IO_TIMEOUT_SECONDS on each write, so a client that stops reading lets its thread go too.

Used by supervisord.conf (`--worker-class infra.web_worker.HeadFirstWorker`).
"""

from __future__ import annotations

import re
import selectors
import socket
import struct
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn.http import get_parser
from gunicorn.workers.gthread import ThreadWorker

HEAD_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT_SECONDS = 30.0
IO_TIMEOUT_SECONDS = 30
MAX_HEAD_BYTES = 64 * 1024
BODY_BUFFER_BYTES = 1024 * 1024
MIN_BODY_BYTES_PER_SECOND = 8 * 1024  # far below any real upload, far above a drip
STOP_LINGER_SECONDS = 2.0  # a stopping worker still collects a request for this long (gthread's kept-alive linger)
_READ_BYTES = 64 * 1024
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r?$")
_EXPECT_CONTINUE = re.compile(rb"(?im)^expect[ \t]*:[ \t]*100-continue")
_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Type: text/plain\r\n"
              b"Content-Length: 32\r\n\r\nThe request's headers are too large")


class HeadFirstWorker(ThreadWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.collecting: deque[Any] = deque()  # connections whose request is still arriving, oldest first

    def enqueue_req(self, conn: Any) -> None:
        if self.cfg.is_ssl:
            super().enqueue_req(conn)
            return
        if getattr(conn, "request_complete", False):
            conn.request_complete = False  # the next request on this connection is collected again
            _set_io_timeouts(conn.sock)
            super().enqueue_req(conn)
            return
        parser = getattr(conn, "parser", None)
        # bytes of the next request already read behind the last one (pipelining) are collected like the rest
        conn.head = bytearray(parser.unreader.take_buffered() if parser is not None else b"")
        conn.deadline = time.monotonic() + HEAD_TIMEOUT_SECONDS
        conn.body_deadline_set = False
        conn.linger_until = None  # set once the worker is stopping
        state = self._state(conn)
        if state == "whole":
            self._hand_over(conn)
        if state != "more":
            return
        conn.sock.setblocking(False)
        self.collecting.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: Any, _sock: Any) -> None:
        try:
            data = conn.sock.recv(_READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away before its request was whole
            self._drop(conn)
            return
        conn.head += data
        self._hand_over_if_whole(conn)

    def _hand_over_if_whole(self, conn: Any) -> bool:
        """Hand the collected request to a thread when it is whole; whether it left the collecting connections (handed
        over, or refused as too large)."""
        state = self._state(conn)
        if state == "whole":
            self._forget(conn)
            self._hand_over(conn)
        return state != "more"

    def _state(self, conn: Any) -> str:
        """"whole" when the collected bytes hold a whole head and a body up to BODY_BUFFER_BYTES (or the head of a
        larger one, or of one the client sends only after "100 Continue"); "more" while they do not; "refused"
        when the head passed MAX_HEAD_BYTES (answered 431, the connection dropped)."""
        head = conn.head
        end = _HEAD_END.search(head, 0, MAX_HEAD_BYTES + 4)
        if end is None:
            if len(head) > MAX_HEAD_BYTES:
                self._refuse(conn)
                return "refused"
            return "more"
        headers = bytes(head[:end.start() + 1])
        match = _CONTENT_LENGTH.search(headers)
        length = int(match.group(1)) if match else 0
        if length > BODY_BUFFER_BYTES or _EXPECT_CONTINUE.search(headers):
            return "whole"  # the thread reads the body, with a timeout on each read
        if len(head) - end.end() >= length:
            return "whole"
        if not conn.body_deadline_set:
            conn.deadline = time.monotonic() + BODY_TIMEOUT_SECONDS
            conn.body_deadline_set = True
        return "more"

    def _hand_over(self, conn: Any) -> None:
        conn.sock.setblocking(True)
        if conn.parser is None:
            conn.initialized = True  # plain HTTP/1.x: what ThreadWorker's TConn.init() makes for it
            conn.parser = get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(conn.head))
        # what the thread reads beyond the collected bytes (a large or chunked body) must keep arriving
        conn.parser.unreader.sock = MinimumRateReader(conn.sock, grace_seconds=BODY_TIMEOUT_SECONDS,
                                                      bytes_per_second=MIN_BODY_BYTES_PER_SECOND)
        conn.head = bytearray()
        conn.data_ready = True
        conn.request_complete = True
        self.enqueue_req(conn)

    def murder_keepalived(self, force: bool = False) -> None:
        # A kept-alive connection whose next request is already in its socket is served even past the keep-alive
        # time: a busy process can hold the event loop up for longer than that between the poller seeing the request
        # and this check, and closing then drops a request the client has sent (it sees a reset, not an answer).
        # (A TLS socket cannot be peeked at: gthread's own rule.)
        if force or self.cfg.is_ssl:
            super().murder_keepalived(force)
            return
        now = time.monotonic()
        while self.keepalived_conns and self.keepalived_conns[0].timeout <= now:
            conn = self.keepalived_conns[0]
            if _has_bytes_waiting(conn.sock):
                self.on_client_socket_readable(conn, conn.sock)  # takes it out of keepalived_conns
                continue
            self.keepalived_conns.popleft()
            try:
                self.poller.unregister(conn.sock)
            except (OSError, KeyError, ValueError):
                pass
            self.nr_conns -= 1
            conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        if not self.alive:
            # Stopping: a request still arriving gets what gthread gives a kept-alive connection, a short linger (it is
            # answered, with "Connection: close"), not a reset the moment the worker is told to stop. Each connection
            # gets its own, counted from when it is first seen here (a kept-alive one may start a request later).
            for conn in self.collecting:
                if conn.linger_until is None:
                    conn.linger_until = now + STOP_LINGER_SECONDS
                conn.deadline = min(conn.deadline, conn.linger_until)
        for conn in [c for c in self.collecting if c.deadline <= now]:
            if self._collect_waiting(conn):
                continue  # it had arrived whole while the event loop was late: handed over
            self._drop(conn)

    def _collect_waiting(self, conn: Any) -> bool:
        """Read what waits in a collecting connection's socket, without blocking; hand the request over and say so
        when it is whole (the drop at a deadline is for clients that did not send it in time, not for a late loop)."""
        while True:
            try:
                data = conn.sock.recv(_READ_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return False
            if not data:
                return False
            conn.head += data
            if len(conn.head) > MAX_HEAD_BYTES + BODY_BUFFER_BYTES:
                break
        return self._hand_over_if_whole(conn)

    def _refuse(self, conn: Any) -> None:
        try:
            conn.sock.send(_TOO_LARGE)
        except OSError:
            pass
        self._drop(conn)

    def _forget(self, conn: Any) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        try:
            self.collecting.remove(conn)
        except ValueError:
            pass

    def _drop(self, conn: Any) -> None:
        self._forget(conn)
        self.nr_conns -= 1
        conn.close()


def _has_bytes_waiting(sock: socket.socket) -> bool:
    """Whether bytes from the client wait to be read on this non-blocking socket (not at its end)."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except OSError:  # BlockingIOError: nothing yet
        return False


def _set_io_timeouts(sock: socket.socket) -> None:
    """A blocking read or write that waits IO_TIMEOUT_SECONDS fails (gthread's handle() makes the socket blocking,
    which clears Python's own timeout but not these)."""
    value = struct.pack("ll", IO_TIMEOUT_SECONDS, 0)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    except OSError:
        pass


class SlowRequestBody(TimeoutError):
    """The request body stopped arriving at the minimum rate (answered 408 when the application was reading it)."""


class MinimumRateReader:
    """The socket as a request's parser reads it in the thread: the reads may wait, in all, `grace_seconds` plus a
    second per `bytes_per_second` received; a read past that fails with SlowRequestBody (the connection closes).
    Only time spent waiting for the client counts (not the wait for a free thread, nor the application's own work
    between two reads), and the clock starts at the first read."""

    def __init__(self, sock: socket.socket, *, grace_seconds: float, bytes_per_second: float) -> None:
        self.sock = sock
        self.grace_seconds = grace_seconds
        self.bytes_per_second = bytes_per_second
        self.received = 0
        self.waited = 0.0
        self.timeout: float | None = None  # a caller's own bound (gunicorn's drain of an unread body)

    def recv(self, size: int) -> bytes:
        remaining = self.grace_seconds + self.received / self.bytes_per_second - self.waited
        if remaining <= 0:
            raise SlowRequestBody(f"the request body arrived slower than {self.bytes_per_second:g} bytes a second")
        bound = min(remaining, IO_TIMEOUT_SECONDS, *((self.timeout,) if self.timeout is not None else ()))
        before = time.monotonic()
        self.sock.settimeout(bound)
        try:
            data = self.sock.recv(size)
        except TimeoutError:
            if bound < remaining:
                raise  # the caller's bound or the read timeout: not the rate
            raise SlowRequestBody(
                f"the request body arrived slower than {self.bytes_per_second:g} bytes a second") from None
        finally:
            self.waited += time.monotonic() - before
            self.sock.settimeout(None)
        self.received += len(data)
        return data

    def gettimeout(self) -> float | None:
        return self.timeout

    def settimeout(self, value: float | None) -> None:
        self.timeout = value
