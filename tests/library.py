"""Generated music libraries for tests: real audio files (FLAC, Ogg Vorbis, WAV, MP3) with real tags."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import mutagen
import numpy as np
import soundfile as sf

SR = 22050


def rhythmic_piece(*, bpm: float, seconds: float, root_hz: float, seed: int, sr: int = SR) -> np.ndarray:
    """A short piece with a steady beat (decaying noise bursts) over a sustained chord: mono float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    chord = sum(np.sin(2 * np.pi * root_hz * ratio * t) for ratio in (1.0, 1.25, 1.5)) * 0.12
    beat = np.zeros(n)
    period = int(sr * 60.0 / bpm)
    burst = rng.normal(size=int(0.05 * sr)) * np.exp(-np.linspace(0, 8, int(0.05 * sr)))
    for start in range(0, n - len(burst), period):
        beat[start:start + len(burst)] += burst * 0.5
    return (chord + beat + rng.normal(size=n) * 0.005).astype(np.float32)


def write_track(path: Path, samples: np.ndarray, *, title: str, artist: str, album: str, track_number: int,
                sr: int = SR, genre: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".mp3":
        wav = path.with_suffix(".tmp.wav")
        sf.write(wav, samples, sr)
        ffmpeg = shutil.which("ffmpeg")
        assert ffmpeg, "ffmpeg (Debian package) is needed to write MP3 fixtures"
        subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", str(wav), "-b:a", "128k", str(path)], check=True)
        wav.unlink()
    else:
        sf.write(path, samples, sr, format={".flac": "FLAC", ".ogg": "OGG", ".wav": "WAV"}[suffix],
                 subtype="VORBIS" if suffix == ".ogg" else "PCM_16")
    if suffix != ".wav":
        tags = mutagen.File(path, easy=True)
        if tags.tags is None:
            tags.add_tags()
        tags["title"], tags["artist"], tags["album"] = title, artist, album
        tags["albumartist"], tags["tracknumber"] = artist, str(track_number)
        if genre:
            tags["genre"] = genre
        tags.save()
    return path


GENRES = ("Rock", "Jazz; Blues", "Electronic")


def make_library(root: Path, *, albums: int = 3, tracks_per_album: int = 3, seconds: float = 12.0) -> list[Path]:
    """`albums` folders of `tracks_per_album` tracks in mixed formats, album a's genre GENRES[a % 3] (WAV files
    carry no tags); returns the file paths. Each shape is written once per test process and copied afterwards (the
    same audio and tags: the signal is seeded), its files dated afresh."""
    shape = (albums, tracks_per_album, float(seconds))
    if shape not in _written:
        folder = Path(tempfile.mkdtemp(prefix="audiomuse-test-library-"))
        atexit.register(shutil.rmtree, folder, True)
        _write_library(folder, *shape)
        _written[shape] = folder
    written = _written[shape]
    paths = []
    base_time = time.time() - 86400
    for a in range(albums):
        for t in range(tracks_per_album):
            relative = _track_path(a, t)
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(written / relative, path)
            # Later albums are newer by whole minutes, whatever the file system's timestamp resolution.
            os.utime(path, (base_time + 60 * a, base_time + 60 * a))
            paths.append(path)
    return paths


_written: dict[tuple[int, int, float], Path] = {}
_FORMATS = (".flac", ".ogg", ".mp3", ".wav")


def _track_path(a: int, t: int) -> Path:
    return Path(f"Artist {a}") / f"Album {a}" / f"{t + 1:02d} Song {a}-{t}{_FORMATS[(a + t) % len(_FORMATS)]}"


def _write_library(root: Path, albums: int, tracks_per_album: int, seconds: float) -> None:
    for a in range(albums):
        for t in range(tracks_per_album):
            samples = rhythmic_piece(bpm=90 + 15 * a + 5 * t, seconds=seconds, root_hz=196 + 20 * t, seed=a * 10 + t)
            write_track(root / _track_path(a, t), samples, title=f"Song {a}-{t}", artist=f"Artist {a}",
                        album=f"Album {a}", track_number=t + 1, genre=GENRES[a % len(GENRES)])
