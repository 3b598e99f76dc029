"""A library whose vectors are known: real files on disk (for playlists), rows and an index built from hand-made
vectors instead of an analysis, so discovery results can be checked exactly."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audio.musicnn import MODEL_NAME
from mediaserver import Track
from mediaservers.local import LocalFolder
from tests.library import make_library
from voyager_manager import rebuild_from_embeddings


def insert_track(db: Any, *, item_id: str, title: str, artist: str, vector: np.ndarray, path: str = "",
                 bpm: float = 120.0, camelot: str = "8A", energy: float = 0.5, duration: float = 200.0) -> None:
    db.execute(
        """INSERT INTO tracks (item_id, title, artist, album, file_path, duration_seconds, tempo_bpm, camelot, energy,
                               moods, tags, analysis_model, analysis_version, analyzed_at)
           VALUES (%s, %s, %s, 'Album', %s, %s, %s, %s, %s, '{}', '{}', %s, 1, now())""",
        (item_id, title, artist, path, duration, bpm, camelot, energy, MODEL_NAME))
    vector = np.asarray(vector, dtype="<f4")
    db.execute("INSERT INTO embeddings (item_id, model, dimensions, vector) VALUES (%s, %s, %s, %s)",
               (item_id, MODEL_NAME, vector.size, vector.tobytes()))


def seed_arc(db: Any, redis: Any, config: Any, tracks: Sequence[tuple[str, str, str]]) -> None:
    """Store (item id, title, path) tracks with vectors on a quarter circle in this order, so neighbours and paths
    are known, and build and store the index. Each track has its own artist, BPM 100, 102, … and Camelot keys
    cycling 8A, 9A, 8B, 3B."""
    for i, (item_id, title, path) in enumerate(tracks):
        angle = i * np.pi / 2 / (len(tracks) - 1)
        vector = np.zeros(16, dtype=np.float32)
        vector[0], vector[1], vector[2 + i % 3] = np.cos(angle), np.sin(angle), 0.01
        insert_track(db, item_id=item_id, title=title, artist=f"Artist {i}", vector=vector, path=path,
                     bpm=100 + 2 * i, camelot=["8A", "9A", "8B", "3B"][i % 4])
    rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME,
                            channel=config.INDEX_RELOAD_CHANNEL, m=16, ef_construction=100)


def seed_arc_library(db: Any, redis: Any, config: Any, music: Path) -> list[Track]:
    """12 real files in a local music folder (for playlists), stored as seed_arc() describes."""
    make_library(music, albums=4, tracks_per_album=3, seconds=1)
    folder = LocalFolder(music, playlist_dir=music.parent / "playlists")
    tracks = [t for album in reversed(folder.list_albums()) for t in folder.album_tracks(album.album_id)]
    seed_arc(db, redis, config, [(t.item_id, t.title, t.path or "") for t in tracks])
    return tracks


GROUP_TAGS = ("rock", "electronic", "jazz")


def seed_groups(db: Any, redis: Any, config: Any, music: Path) -> list[Track]:
    """24 real files in three sound groups (close vectors; top tag rock, electronic or jazz by i % 3), indexed."""
    make_library(music, albums=4, tracks_per_album=6, seconds=1)
    folder = LocalFolder(music, playlist_dir=music.parent / "playlists")
    tracks = [t for album in folder.list_albums() for t in folder.album_tracks(album.album_id)]
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(3, 24))
    for i, t in enumerate(tracks):
        insert_track(db, item_id=t.item_id, title=t.title, artist=f"Artist {i % 6}", path=t.path or "",
                     vector=centres[i % 3] + 0.3 * rng.normal(size=24))
        db.execute("UPDATE tracks SET tags = %s WHERE item_id = %s",
                   (json.dumps({GROUP_TAGS[i % 3]: 0.9, "ambient": 0.2}), t.item_id))
    rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME,
                            channel=config.INDEX_RELOAD_CHANNEL, m=16, ef_construction=100)
    return tracks
