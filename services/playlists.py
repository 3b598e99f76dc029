"""Publishing a playlist a page or a client made (similar songs, a path, the chat…): created on the media server as
"<name>_instant" and recorded here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from db import tracks as track_store
from db.playlists import save_playlist
from db.pool import Database
from mediaserver import Capability, MediaServer
from mediaservers.m3u import UNWRITABLE_PATH_CHARACTERS

INSTANT_SUFFIX = "_instant"


class UnknownTrack(LookupError):
    """An item id that is not in the analyzed library."""

    def __init__(self, item_id: str) -> None:
        super().__init__(f"track '{item_id}' is not in the analyzed library")
        self.item_id = item_id


class NothingWritable(ValueError):
    """None of the songs can be written to a playlist of this server."""

    def __init__(self, left_out: list[LeftOut]) -> None:
        super().__init__(f"none of the {len(left_out)} songs can be in a playlist of this server: "
                         f"{left_out[0].reason}")
        self.left_out = left_out


@dataclass(frozen=True)
class LeftOut:
    item_id: str
    title: str
    artist: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"item_id": self.item_id, "title": self.title, "artist": self.artist, "reason": self.reason}


@dataclass(frozen=True)
class Published:
    name: str  # with the suffix
    playlist_id: str | None  # the media server's
    track_count: int = 0  # the songs written
    left_out: list[LeftOut] = field(default_factory=list)


def writable_songs(server: MediaServer, rows: Mapping[str, Mapping[str, Any]],
                   ids: Sequence[str]) -> tuple[list[str], list[LeftOut]]:
    """The ids a playlist of `server` can hold, in order, and the songs it cannot with why: on a server whose
    playlists are lists of file paths (Capability.PLAYLISTS_OF_PATHS), a song whose path holds a line break."""
    if Capability.PLAYLISTS_OF_PATHS not in server.capabilities:
        return list(ids), []
    kept, left_out = [], []
    for item_id in ids:
        row = rows.get(item_id) or {}
        path = str(row.get("file_path") or "")
        if any(c in path for c in UNWRITABLE_PATH_CHARACTERS):
            left_out.append(LeftOut(item_id, str(row.get("title") or ""), str(row.get("artist") or ""),
                                    "its file path holds a line break, which a playlist of file paths cannot hold"))
        else:
            kept.append(item_id)
    return kept, left_out


def writable_ids(db: Database, server: MediaServer, ids: Sequence[str]) -> tuple[list[str], list[LeftOut]]:
    """`writable_songs` for ids alone: the songs' rows are read only from a server whose playlists are file paths."""
    if Capability.PLAYLISTS_OF_PATHS not in server.capabilities:
        return list(ids), []
    return writable_songs(server, track_store.track_rows(db, list(ids)), ids)


def publish_playlist(db: Database, server: MediaServer, name: str, ids: list[str], *, source: str) -> Published:
    """Create the playlist on `server` and record it with what made it (`source`): the songs the server's playlists
    can hold, counted, and those they cannot, with why (`writable_songs`). UnknownTrack before anything is created
    when an id is not analyzed, NothingWritable when no song can be written; the server's MediaServerError as it
    comes."""
    rows = track_store.track_rows(db, ids)
    missing = [i for i in ids if i not in rows]
    if missing:
        raise UnknownTrack(missing[0])
    kept, left_out = writable_songs(server, rows, ids)
    if not kept:
        raise NothingWritable(left_out)
    full_name = name if name.endswith(INSTANT_SUFFIX) else name + INSTANT_SUFFIX
    playlist_id = server.create_playlist(full_name, kept)
    save_playlist(db, name=full_name, source=source, item_ids=kept, mediaserver_playlist=playlist_id)
    return Published(full_name, playlist_id, len(kept), left_out)
