"""The version groups of the indexed tracks (discovery/versions.py: which files are one recording, which recordings
one song), computed from the stored tracks and stored with them (db/versions.py) before an index is announced, so
the web process loads both together."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from db import versions as version_store
from db.pool import Database
from discovery.dedup import song_key, song_key_hash
from discovery.textfold import fold
from discovery.versions import Copy, Grouping, group_versions

# The vectors of some rows of a list of tracks, shape (len(rows), d): an array's rows, or read from an index.
VectorRows = Callable[[Sequence[int]], np.ndarray]


# The code that folds titles into song keys: hashes stored by another version of it are computed again.
_SONG_KEY_CODE = hashlib.sha256(b"".join(Path(sys.modules[name].__file__ or "").read_bytes() for name in (
    song_key.__module__, fold.__module__))).hexdigest()[:16]


def store_version_groups(db: Database, item_ids: Sequence[str], vectors: np.ndarray | VectorRows) -> Grouping:
    """Group the indexed tracks into recordings and songs (discovery.versions) and store the groups with the tracks,
    before the index is announced, so the web process loads both together. `vectors` are those of `item_ids`
    (n, d), or a function giving the rows asked for."""
    # Only tracks whose song key another track shares can have versions. Each track's key is hashed once and stored
    # (tracks.song_key_hash, forgotten when its title or artist changes), so PostgreSQL finds the shared ones and
    # only new or renamed tracks are folded here: an update that adds 1,000 tracks folds 1,000 titles, not a million.
    version_store.reset_song_keys(db, _SONG_KEY_CODE)
    for batch in version_store.tracks_without_song_key(db):
        version_store.store_song_keys(db, batch, [song_key_hash(title, artist) for _, title, artist in batch])
    copies, rows = [], []
    for row, item_id, title, artist, duration, path, size in version_store.shared_song_key_rows(db, item_ids):
        copies.append(Copy(item_id, title or "", artist or "", duration, path, size))
        rows.append(row)
    rows_of: VectorRows = vectors.__getitem__ if isinstance(vectors, np.ndarray) else vectors
    grouping = group_versions(copies, np.asarray(rows_of(rows), dtype=np.float32))
    version_store.store_groups(db, grouping.recording_of, grouping.song_of)
    return grouping
