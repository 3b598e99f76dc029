"""The web server's gunicorn worker: gunicorn's threaded worker, except that a connection gets a thread only once
its request head (the request line and headers) has arrived whole.

gunicorn's `gthread` worker hands a connection to a thread as soon as its first bytes arrive, and the thread then
reads the rest of the head with a blocking read: a client that sends half a head and stops (a slow or hostile one)
holds that thread for as long as it keeps the connection open, and a dozen of them hold every thread, so the web
process stops answering (issue 32's audit). Here the worker's event loop collects each head without blocking,
from any number of connections at once, and drops a connection whose head is not complete after
HEAD_TIMEOUT_SECONDS; a thread only ever sees a request it can start on at once.

Used by supervisord.conf (`--worker-class infra.web_worker.HeadFirstWorker`).
"""

from __future__ import annotations

import selectors
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn.http import get_parser
from gunicorn.workers.gthread import ThreadWorker

HEAD_TIMEOUT_SECONDS = 10.0
MAX_HEAD_BYTES = 64 * 1024  # more than gunicorn's own limits allow: its parser then refuses the request
_READ_BYTES = 16 * 1024


class HeadFirstWorker(ThreadWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heads: deque[Any] = deque()  # connections whose head is still arriving, oldest first

    def enqueue_req(self, conn: Any) -> None:
        if getattr(conn, "head_complete", False) or self.cfg.is_ssl or _has_buffered_request(conn):
            conn.head_complete = False  # the next request on this connection is collected again
            super().enqueue_req(conn)
            return
        conn.head = bytearray()
        conn.head_deadline = time.monotonic() + HEAD_TIMEOUT_SECONDS
        conn.sock.setblocking(False)
        self.heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))

    def _on_head_readable(self, conn: Any, _sock: Any) -> None:
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
        if b"\r\n\r\n" not in conn.head and b"\n\n" not in conn.head and len(conn.head) < MAX_HEAD_BYTES:
            return
        self._forget(conn)
        conn.sock.setblocking(True)
        if conn.parser is None:
            conn.initialized = True  # plain HTTP/1.x: what ThreadWorker's TConn.init() makes for it
            conn.parser = get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(conn.head))
        conn.head = bytearray()
        conn.data_ready = True
        conn.head_complete = True
        self.enqueue_req(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self.heads and self.heads[0].head_deadline <= now:
            self._drop(self.heads[0])

    def _forget(self, conn: Any) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        try:
            self.heads.remove(conn)
        except ValueError:
            pass

    def _drop(self, conn: Any) -> None:
        self._forget(conn)
        self.nr_conns -= 1
        conn.close()


def _has_buffered_request(conn: Any) -> bool:
    """Bytes of the next request already read (a client that sent it right behind the last one)."""
    parser = getattr(conn, "parser", None)
    return parser is not None and bool(parser.unreader.buf.getvalue())
