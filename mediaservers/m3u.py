"""Writing extended M3U (.m3u8) playlists: the local folder's playlists and the playlist download share it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class M3uEntry:
    path: str
    artist: str
    title: str
    duration_seconds: float | None = None


def _one_line(text: str) -> str:
    """Text that cannot start a new entry: every run of blanks and line breaks becomes one space."""
    return " ".join(text.split())


UNWRITABLE_PATH_CHARACTERS = "\r\n\x00"  # a line break in a path would start an entry of the server's choosing


def render_m3u8(name: str, entries: Iterable[M3uEntry]) -> str:
    """The playlist as .m3u8 text: a header, the name, then #EXTINF (seconds, "artist - title") and the path of each
    entry. Odd tags never break the format: names and labels are kept on one line."""
    lines = ["#EXTM3U", f"#PLAYLIST:{_one_line(name)}"]
    for entry in entries:
        if any(c in entry.path for c in UNWRITABLE_PATH_CHARACTERS):
            continue  # callers count these apart (services.playlists.writable_songs)
        seconds = round(entry.duration_seconds) if entry.duration_seconds else -1
        lines += [f"#EXTINF:{seconds},{_one_line(f'{entry.artist} - {entry.title}')}", entry.path]
    return "\n".join(lines) + "\n"
