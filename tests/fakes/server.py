"""The lifecycle the fake servers share: a threaded HTTP server on a free 127.0.0.1 port, run in the background
between `__enter__` and `__exit__`. Subclasses give the handler class; `_stopping` wakes delayed answers so a
shutdown does not wait for them, `_lock` guards what handlers record."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class BackgroundServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler], *, name: str) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name=name, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def ranged(data: bytes, range_header: str | None, content_type: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for a file served the way media servers do: the whole of it, or one Range
    ("bytes=a-b", "bytes=a-", "bytes=-n") with 206 and Content-Range, or 416 for a range past the end."""
    headers = {"Content-Type": content_type, "Accept-Ranges": "bytes"}
    if not range_header or not range_header.startswith("bytes="):
        return 200, headers, data
    first, _, last = range_header[len("bytes="):].partition("-")
    size = len(data)
    if not first:
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return 416, {"Content-Range": f"bytes */{size}"}, b""
    return 206, {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}, data[start:end + 1]
