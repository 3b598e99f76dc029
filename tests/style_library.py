"""A library of four clearly different styles for clustering tests: real (short) FLAC files in a local music
folder, and analysis rows written directly with tags, moods, tempo, energy and embeddings that follow the style,
so a good clustering is known: one playlist per style."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from psycopg2.extras import Json

from audio.moods import MOODS
from audio.musicnn import MODEL_NAME, MSD_TAGS
from mediaserver import MediaServer, Track
from mediaservers.local import LocalFolder

STYLES: dict[str, dict[str, Any]] = {
    "rock": {"tags": {"rock": 0.8, "hard rock": 0.5, "guitar": 0.4}, "moods": {"aggressive": 0.7}, "bpm": 140,
             "energy": 0.85},
    "jazz": {"tags": {"jazz": 0.8, "instrumental": 0.5, "Mellow": 0.4}, "moods": {"relaxed": 0.7}, "bpm": 92,
             "energy": 0.4},
    "electronic": {"tags": {"electronic": 0.8, "dance": 0.7, "House": 0.5},
                   "moods": {"danceable": 0.8, "party": 0.6}, "bpm": 126, "energy": 0.75},
    "ambient": {"tags": {"ambient": 0.8, "chillout": 0.6, "chill": 0.5}, "moods": {"relaxed": 0.9, "sad": 0.3},
                "bpm": 70, "energy": 0.2},
}


def write_flac(path: Path, *, title: str, artist: str, album: str, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(8000) / 16000
    samples = 0.2 * np.sin(2 * np.pi * (220 + 7 * seed) * t)
    with sf.SoundFile(str(path), "w", samplerate=16000, channels=1, format="FLAC") as f:
        f.title, f.artist, f.album = title, artist, album
        f.write(samples)


def write_style_files(music: Path, *, per_style: int = 12, styles: tuple[str, ...] = tuple(STYLES)) -> None:
    for n, name in enumerate(styles):
        for i in range(per_style):
            artist = f"{name.title()} Artist {i % 3}"
            write_flac(music / artist / f"{name.title()} Album" / f"{i + 1:02d} {name.title()} Song {i}.flac",
                       title=f"{name.title()} Song {i}", artist=artist, album=f"{name.title()} Album",
                       seed=n * 100 + i)


def seed_style_library(db: Any, music: Path, *, per_style: int = 12, seed: int = 0,
                       styles: tuple[str, ...] = tuple(STYLES), server: MediaServer | None = None,
                       write_files: bool = True) -> dict[str, list[Track]]:
    """Write `per_style` tracks of each style (three artists per style) and their analysis rows, with the item ids
    of `server` (default: the music folder as a local media source); return the tracks by style."""
    rng = np.random.default_rng(seed)
    centres = {name: rng.normal(size=200) for name in styles}
    if write_files:
        write_style_files(music, per_style=per_style, styles=styles)
    folder = server or LocalFolder(music, playlist_dir=music.parent / "playlists")
    by_style: dict[str, list[Track]] = {name: [] for name in styles}
    for album in folder.list_albums():
        for track in folder.album_tracks(album.album_id):
            style = track.title.split()[0].lower()
            by_style[style].append(track)
            spec = STYLES[style]
            tags = {tag: float(np.clip(spec["tags"].get(tag, 0.02) + rng.normal(0, 0.04), 0, 1)) for tag in MSD_TAGS}
            moods = {m: float(np.clip(spec["moods"].get(m, 0.05) + rng.normal(0, 0.04), 0, 1)) for m in MOODS}
            vector = (centres[style] + rng.normal(0, 0.3, size=200)).astype("<f4")
            db.execute(
                """INSERT INTO tracks (item_id, title, artist, album, album_id, file_path, duration_seconds,
                                       tempo_bpm, energy, tags, moods, analysis_model, analysis_version, analyzed_at)
                   VALUES (%s, %s, %s, %s, %s, %s, 0.5, %s, %s, %s, %s, %s, 1, now())""",
                (track.item_id, track.title, track.artist, track.album, track.album_id, track.path,
                 spec["bpm"] + float(rng.normal(0, 3)), float(np.clip(spec["energy"] + rng.normal(0, 0.05), 0, 1)),
                 Json(tags), Json(moods), MODEL_NAME))
            db.execute("INSERT INTO embeddings (item_id, model, dimensions, vector) VALUES (%s, %s, 200, %s)",
                       (track.item_id, MODEL_NAME, vector.tobytes()))
    return by_style
