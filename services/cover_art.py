"""Cover art for the pages: a song's picture from the media server, resized to what a page shows and kept on disk
(DATA_DIR/covers, at most COVER_CACHE_MB, the least recently used dropped first), so the server is asked once per
song and size. A song without a picture is remembered for a day as having none."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image, UnidentifiedImageError

__all__ = ["SIZES", "CoverCache", "Cover", "resized"]

log = logging.getLogger(__name__)

SIZES = (64, 128, 300, 600)  # square edge in pixels the pages ask for
NONE_TTL_SECONDS = 86400  # "no picture" is asked again after a day (the user may add a cover file)
MAX_SOURCE_PIXELS = 40_000_000  # a larger picture is refused rather than decoded (decompression bombs)


@dataclass(frozen=True)
class Cover:
    data: bytes
    etag: str


def resized(raw: bytes, size: int) -> bytes:
    """`raw` (any format Pillow reads) as a JPEG fitting size × size, aspect kept; ValueError when it is not a
    picture."""
    try:
        with Image.open(io.BytesIO(raw)) as picture:
            if picture.width * picture.height > MAX_SOURCE_PIXELS:
                raise ValueError(f"a picture of {picture.width}×{picture.height} pixels is too large")
            picture.draft("RGB", (size, size))  # JPEG: decode at a fraction of the size at once
            image = picture.convert("RGB")
            image.thumbnail((size, size), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            image.save(out, "JPEG", quality=85, optimize=True, progressive=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not a picture Pillow can read: {exc}") from None


def _etag(data: bytes) -> str:
    """The picture's own tag: a cover that changed (evicted, fetched again) is not answered 304."""
    return hashlib.sha256(data).hexdigest()[:16]


class CoverCache:
    """Resized covers on disk by key, at most `max_bytes` in all."""

    def __init__(self, folder: Path, *, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._total: int | None = None  # bytes on disk, counted once and then kept up to date

    def _file(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.folder / digest[:2] / f"{digest}.jpg"

    def get(self, key: str) -> Cover | Literal[False] | None:
        """The cover kept for `key`; False when the song is known to have none; None when nothing is known."""
        path = self._file(key)
        try:
            data = path.read_bytes()
            status = path.stat()
        except OSError:
            return None
        if not data:
            if time.time() - status.st_mtime > NONE_TTL_SECONDS:
                return None
            return False
        try:
            os.utime(path)  # used: the last to be dropped
        except OSError:
            pass  # trimmed meanwhile: served this once more all the same
        return Cover(data, _etag(data))

    def put(self, key: str, data: bytes | None) -> Cover | None:
        """Keep `data` (None: the song has no picture) for `key`; the cover kept."""
        path = self._file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{threading.get_ident()}.part")
        partial.write_bytes(data or b"")
        partial.replace(path)
        with self._lock:
            if self._total is not None:
                self._total += len(data or b"")
        self._trim()
        return Cover(data, _etag(data)) if data else None

    def _trim(self) -> None:
        with self._lock:
            if self._total is not None and self._total <= self.max_bytes:
                return
            files = []
            for entry in self.folder.glob("*/*.part"):  # left by a process killed while writing
                if time.time() - entry.stat().st_mtime > 3600:
                    entry.unlink(missing_ok=True)
            for entry in self.folder.glob("*/*.jpg"):
                try:
                    status = entry.stat()
                except OSError:
                    continue
                files.append((status.st_mtime, status.st_size, entry))
            total = sum(size for _, size, _ in files)
            if total > self.max_bytes:
                for _, size, entry in sorted(files, key=lambda found: found[0]):
                    entry.unlink(missing_ok=True)
                    total -= size
                    if total <= self.max_bytes * 0.9:  # some room, so not every new cover trims again
                        break
            self._total = total
