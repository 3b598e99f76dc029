"""Reading a track's audio: in place when the server's path is readable here, else downloaded to TEMP_DIR."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mediaservers.base import AudioFile


def map_path(server_path: str | None, mapping: list[tuple[str, str]]) -> Path | None:
    """The local path for a server path after PATH_MAPPING (longest prefix first), or None when there is none.

    An empty server prefix ("=/srv/music") joins library-relative paths (as Subsonic servers report them) onto the
    local folder. A relative path that no entry maps is never looked up in the current directory.
    """
    if not server_path:
        return None
    for server_prefix, local_prefix in mapping:
        if not server_prefix:
            if not server_path.startswith("/"):
                return Path(local_prefix) / server_path
            continue
        server_prefix, local_prefix = server_prefix.rstrip("/"), local_prefix.rstrip("/")
        if server_path == server_prefix or server_path.startswith(server_prefix + "/"):
            return Path(local_prefix + server_path[len(server_prefix):])
    return Path(server_path) if Path(server_path).is_absolute() else None


def _readable(path: Path) -> bool:
    try:
        with path.open("rb"):
            return path.is_file()
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
