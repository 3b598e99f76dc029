"""The page's static files as the web process serves them: read once, compressed once, named by a version.

A file's version is a hash of its bytes, so a page can link `/static/js/map.js?v=<version>` and let the browser keep
it for a year: a changed file gets a new URL. Text files (scripts, styles, SVG, JSON) are kept gzip-compressed too,
for browsers that accept it (the vendored Plotly bundle is 4.7 MB, 1.4 MB compressed). A file changed on disk is
read again (its size and modification time are checked on each request: one stat).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Asset", "AssetStore"]

COMPRESSIBLE = frozenset({".js", ".css", ".svg", ".json", ".txt", ".html", ".map"})
MIN_COMPRESSED_BYTES = 1024  # below this gzip's header and the extra request header cost more than they save


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None when compressing does not pay
    version: str  # first 12 hex digits of the body's sha256
    mimetype: str
    stamp: tuple[int, int]  # (size, mtime_ns) the file had when read

    @property
    def etag(self) -> str:
        return self.version


class AssetStore:
    """Files under `root`, each read and compressed on first use and again when it changes."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._assets: dict[str, Asset] = {}
        self._lock = threading.Lock()

    def path_of(self, name: str) -> Path | None:
        """The file `name` (relative, '/'-separated, no empty, '.' or '..' part) names under the root; None when it
        names none, leaves the root or is spelled another way (one cache entry per file, whatever the URL)."""
        parts = name.split("/")
        if "\0" in name or any(part in ("", ".", "..") for part in parts):
            return None
        candidate = (self.root / name).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def get(self, name: str) -> Asset | None:
        path = self.path_of(name)
        if path is None:
            return None
        name = path.relative_to(self.root).as_posix()
        status = path.stat()
        stamp = (status.st_size, status.st_mtime_ns)
        known = self._assets.get(name)
        if known is not None and known.stamp == stamp:
            return known
        body = path.read_bytes()
        gzipped = None
        if path.suffix.lower() in COMPRESSIBLE and len(body) >= MIN_COMPRESSED_BYTES:
            packed = gzip.compress(body, compresslevel=9, mtime=0)
            gzipped = packed if len(packed) < len(body) else None
        mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if mimetype.startswith("text/") or mimetype in ("application/javascript", "image/svg+xml", "application/json"):
            mimetype += "; charset=utf-8"
        asset = Asset(body, gzipped, hashlib.sha256(body).hexdigest()[:12], mimetype, stamp)
        with self._lock:
            self._assets[name] = asset
        return asset

    def version(self, name: str) -> str:
        """The version of `name` for its URL ('' when there is no such file: the link then 404s plainly)."""
        asset = self.get(name)
        return asset.version if asset is not None else ""
