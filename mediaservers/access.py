"""Reading a track's audio: in place when the server's path is readable here, else downloaded to TEMP_DIR."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mediaservers.base import AudioFile


def map_path(server_path: str | None, mapping: list[tuple[str, str]]) -> Path | None:
    """The local path for a server path after PATH_MAPPING (longest prefix first), or None when there is none.

    Only what a mapping entry covers is read in place, and only inside that entry's local folder: a path the
    server reports outside every mapped prefix, or one whose `..` would climb out of it, is downloaded instead
    (a server must not make AudioMuse open /etc/shadow). To read the server's own paths unchanged, map a prefix to
    itself (`/music=/music`). An empty server prefix ("=/srv/music") joins library-relative paths (as Subsonic
    servers report them) onto the local folder.
    """
    if not server_path or "\x00" in server_path:
        return None
    for server_prefix, local_prefix in mapping:
        if not server_prefix:
            if not server_path.startswith("/"):
                return _inside(local_prefix, server_path)
            continue
        server_prefix, local_prefix = server_prefix.rstrip("/"), local_prefix.rstrip("/")
        if server_path == server_prefix or server_path.startswith(server_prefix + "/"):
            return _inside(local_prefix, server_path[len(server_prefix):].lstrip("/"))
    return None


def _inside(local_prefix: str, relative: str) -> Path | None:
    """local_prefix/relative, unless `..` takes it out of local_prefix."""
    base = os.path.normpath(local_prefix or "/")
    joined = os.path.normpath(os.path.join(base, relative))
    if joined != base and not joined.startswith(base.rstrip("/") + "/"):
        return None
    return Path(joined)


def _readable(path: Path) -> bool:
    """A regular file we may open: never a FIFO or device (opening a FIFO would block the worker)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with path.open("rb"):
            return True
    except OSError:
        return False  # missing, or listed but unreadable (permissions): download instead


@contextmanager
def local_or_downloaded(server_path: str | None, *, mapping: list[tuple[str, str]], temp_dir: Path,
                        download: Callable[[Path], Path], suffix: str = "") -> Iterator[AudioFile]:
    """Yield the file in place if it is readable here; otherwise download it and delete it afterwards."""
    local = map_path(server_path, mapping)
    if local is not None and _readable(local):
        yield AudioFile(path=local, access="direct")
        return
    temp_dir.mkdir(parents=True, exist_ok=True)
    ext = suffix or (Path(server_path).suffix if server_path else "")
    target = temp_dir / f"{uuid.uuid4().hex}{ext}"
    try:
        yield AudioFile(path=download(target), access="downloaded")
    finally:
        target.unlink(missing_ok=True)


def file_in_library(server_path: str | None, *, local_folder: str | None,
                    mapping: list[tuple[str, str]]) -> Path | None:
    """The track's file when it can be read here *and* lies inside the library, for sending it to a browser:
    with a local music folder, `server_path` is a path inside `local_folder`; otherwise it goes through
    PATH_MAPPING (map_path). Symbolic links are followed and the real file must still be inside the folder (or the
    mapped local folder): a link in the library pointing at /etc is not served. None when no such file exists."""
    if not server_path or "\x00" in server_path:
        return None
    if local_folder:
        candidate: Path | None = _inside(local_folder, server_path) if not os.path.isabs(server_path) else Path(
            os.path.normpath(server_path))
        roots = [local_folder]
    else:
        candidate = map_path(server_path, mapping)
        roots = [local for _, local in mapping]
    if candidate is None:
        return None
    real = os.path.realpath(candidate)
    for root in roots:
        base = os.path.realpath(root or "/")
        if real == base or not real.startswith(base.rstrip("/") + "/"):
            continue
        if _readable(Path(real)):
            return Path(real)
    return None
