"""Publishing a playlist a page or a client made (similar songs, a path, the chat…): created on the media server as
"<name>_instant" and recorded here."""

from __future__ import annotations

from dataclasses import dataclass

from db import tracks as track_store
from db.playlists import save_playlist
from db.pool import Database
from mediaserver import MediaServer

INSTANT_SUFFIX = "_instant"


class UnknownTrack(LookupError):
    """An item id that is not in the analyzed library."""

    def __init__(self, item_id: str) -> None:
        super().__init__(f"track '{item_id}' is not in the analyzed library")
        self.item_id = item_id


@dataclass(frozen=True)
class Published:
    name: str  # with the suffix
    playlist_id: str | None  # the media server's


def publish_playlist(db: Database, server: MediaServer, name: str, ids: list[str], *, source: str) -> Published:
    """Create the playlist on `server` and record it with what made it (`source`). UnknownTrack before anything is
    created when an id is not analyzed; the server's MediaServerError as it comes."""
    rows = track_store.track_rows(db, ids)
    missing = [i for i in ids if i not in rows]
    if missing:
        raise UnknownTrack(missing[0])
    full_name = name if name.endswith(INSTANT_SUFFIX) else name + INSTANT_SUFFIX
    playlist_id = server.create_playlist(full_name, ids)
    save_playlist(db, name=full_name, source=source, item_ids=ids, mediaserver_playlist=playlist_id)
    return Published(full_name, playlist_id)
