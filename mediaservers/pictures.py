"""A song's picture from its file and its folder, as players find it: a cover file beside the song (cover.jpg,
folder.png, front.jpg, ...), else the picture embedded in the file (FLAC/Ogg picture blocks, ID3 APIC, MP4 covr).
For the adapters that read files (the local folder; others through PATH_MAPPING)."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import mutagen
from mutagen.flac import Picture

__all__ = ["COVER_FILE_NAMES", "embedded_picture", "folder_picture", "song_picture"]

log = logging.getLogger(__name__)

# Names players look for, best first (compared without case); the first found is the album's picture
COVER_FILE_NAMES = ("cover", "folder", "front", "album", "albumart", "albumartsmall")
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")
MAX_PICTURE_BYTES = 20 * 1024 * 1024
FRONT_COVER = 3  # the picture type ID3 and FLAC give a front cover


def folder_picture(directory: Path) -> bytes | None:
    """The cover file of `directory`, by COVER_FILE_NAMES's order; None when there is none."""
    try:
        entries = {entry.name.lower(): entry for entry in directory.iterdir() if entry.is_file()}
    except OSError:
        return None
    for stem in COVER_FILE_NAMES:
        for suffix in PICTURE_SUFFIXES:
            entry = entries.get(stem + suffix)
            try:
                if entry is not None and entry.stat().st_size <= MAX_PICTURE_BYTES:
                    return entry.read_bytes()
            except OSError as exc:  # unreadable (another user's file on a NAS): the next name, or none
                log.debug("cover file %s unreadable: %s", entry, exc)
    return None


def embedded_picture(path: Path) -> bytes | None:
    """The picture embedded in the audio file (the front cover when it has several); None when it has none or the
    file cannot be read."""
    try:
        audio = mutagen.File(path)
    except Exception as exc:  # a damaged file has no picture worth a failure
        log.debug("no picture read from %s: %s", path, exc)
        return None
    if audio is None:
        return None
    pictures: list[tuple[int, bytes]] = []
    for picture in getattr(audio, "pictures", []) or []:  # FLAC
        pictures.append((picture.type, picture.data))
    tags = audio.tags
    if tags is not None:
        for key in list(tags.keys()):
            value = tags[key]
            if key.startswith("APIC"):  # ID3
                pictures.append((getattr(value, "type", 0), value.data))
            elif key == "covr":  # MP4
                pictures.extend((FRONT_COVER, bytes(cover)) for cover in value)
            elif key.lower() == "metadata_block_picture":  # Ogg Vorbis / Opus
                for encoded in value:
                    try:
                        block = Picture(base64.b64decode(encoded))
                    except Exception:
                        continue
                    pictures.append((block.type, block.data))
    if not pictures:
        return None
    pictures.sort(key=lambda found: found[0] != FRONT_COVER)
    return pictures[0][1]


def song_picture(path: Path) -> bytes | None:
    """The song's picture: its folder's cover file, else the one in the file."""
    return folder_picture(path.parent) or embedded_picture(path)
