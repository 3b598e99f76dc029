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
    _hash_new_song_keys(db)
    rows_of: VectorRows = vectors.__getitem__ if isinstance(vectors, np.ndarray) else vectors
    return _regroup_every_key(db, item_ids, rows_of, version_store.regroup_requests(db))


def _regroup_every_key(db: Database, item_ids: Sequence[str], rows_of: VectorRows,
                       requests: version_store.RegroupRequests) -> Grouping:
    copies, rows = [], []
    for row, item_id, title, artist, duration, path, size in version_store.shared_song_key_rows(db, item_ids):
        copies.append(Copy(item_id, title or "", artist or "", duration, path, size))
        rows.append(row)
    grouping = group_versions(copies, np.asarray(rows_of(rows), dtype=np.float32))
    version_store.store_groups(db, grouping.recording_of, grouping.song_of, answered=requests.numbers)
    return grouping


def _hash_new_song_keys(db: Database) -> None:
    """Store the song-key hash of every track without one (every track's, when other folding code made the stored
    ones); each key stored, and a reset, is a regroup request (db/versions.py)."""
    version_store.reset_song_keys(db, _SONG_KEY_CODE)
    for batch in version_store.tracks_without_song_key(db):
        version_store.store_song_keys(db, batch, [song_key_hash(title, artist) for _, title, artist in batch])


def regroup_versions(db: Database, item_ids: Sequence[str],
                     vectors_of: Callable[[Sequence[str]], np.ndarray]) -> Grouping:
    """`store_version_groups` for an index updated in place: the groups of `item_ids` (the updated index's tracks)
    regrouped only for the song keys asked for in the database (db/versions.py: the keys of tracks the update
    added, re-analysed or removed — `request_regroup`, before the update is stored —, of keys computed now, of
    tracks renamed, deleted or changed in duration, path or file); every other track keeps its stored group. The
    same groups as regrouping every key: groups never span two song keys. `vectors_of` gives the stored
    embeddings of the ids asked for. Returns the grouping of the regrouped keys."""
    _hash_new_song_keys(db)
    requests = version_store.regroup_requests(db)
    if requests.keys is None:  # the keys are hashed and the requests read already
        return _regroup_every_key(db, item_ids, lambda rows: vectors_of([item_ids[r] for r in rows]), requests)
    position = {item_id: n for n, item_id in enumerate(item_ids)}
    members: dict[int, list[tuple[int, Copy]]] = {}
    for key, item_id, title, artist, duration, path, size in version_store.song_key_rows(db, requests.keys):
        if item_id in position:
            members.setdefault(key, []).append(
                (position[item_id], Copy(item_id, title or "", artist or "", duration, path, size)))
    # in the index's order, as store_version_groups sees them (the rules break some ties by the order)
    copies = [copy for _, copy in sorted(m for group in members.values() if len(group) > 1 for m in group)]
    grouping = group_versions(copies, np.asarray(vectors_of([c.item_id for c in copies]), dtype=np.float32))
    version_store.store_groups_of_keys(db, requests.keys, grouping.recording_of, grouping.song_of,
                                       answered=requests.numbers)
    return grouping
