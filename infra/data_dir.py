"""DATA_DIR holds the database, the settings key, backups and the index: readable by AudioMuse's user only."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)


def private_data_dir(path: str | Path) -> Path:
    """`path` created with mode 0700 (its missing parents too), or narrowed to 0700 when it exists, is ours and
    others may read it; returned."""
    folder = Path(path)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid == os.getuid() and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        folder.chmod(0o700)
        log.info("DATA_DIR %s was readable by other users; it is 0700 now", folder)
    return folder
