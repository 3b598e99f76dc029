"""What every media-server adapter shares: the MediaServer interface, the Album/Track/... types, the one error type,
the settings an adapter declares for the Settings form, and the optional capabilities it may declare.

Adapters import this module, never `mediaserver.py` (which imports every adapter for its registry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, Self

if TYPE_CHECKING:
    from config import Config

AUTOMATIC_SUFFIX = "_automatic"


class MediaServerError(RuntimeError):
    """A media server call failed; the message is the one-line cause to show the user.

    `cause`, when set, is the same without anything the server sent (its error text, a banner, a page): what an
    answer may repeat to whoever asked, e.g. the Settings page's connection test, which can be pointed anywhere."""

    def __init__(self, message: str, *, cause: str | None = None) -> None:
        super().__init__(message)
        self.cause = cause

    @property
    def public_cause(self) -> str:
        return self.cause or str(self)


@dataclass(frozen=True)
class Album:
    album_id: str
    name: str
    artist: str
    year: int | None = None
    added_at: float | None = None  # seconds since the epoch; orders "most recent"


@dataclass(frozen=True)
class Track:
    item_id: str
    title: str
    artist: str
    album: str
    album_artist: str
    album_id: str
    path: str | None = None  # the server's path for the file, when it tells us
    duration_seconds: float | None = None
    year: int | None = None
    track_number: int | None = None
    signature: str | None = None  # cheap change marker (size:mtime, etag, modified date)
    genres: tuple[str, ...] = ()  # the genres the server's metadata gives (recommended tags leave these out)
    artist_id: str | None = None  # the server's id of the song's (first) artist; None when it has no artist ids


@dataclass(frozen=True)
class AudioFile:
    path: Path
    access: Literal["direct", "downloaded"]


@dataclass(frozen=True)
class Playlist:
    playlist_id: str
    name: str
    track_count: int


@dataclass(frozen=True)
class Library:
    library_id: str
    name: str


@dataclass(frozen=True)
class PlayedTrack:
    item_id: str
    play_count: int
    last_played: float | None  # seconds since the epoch, when the server knows


@dataclass(frozen=True)
class UserCredentials:
    """Per-call credentials (sonic fingerprint, instant playlists); the server default comes from config."""

    user: str
    secret: str  # password or API token, as the server expects


class Capability(StrEnum):
    """What only some servers can do; an adapter lists the ones it has in `capabilities`."""

    PLAY_HISTORY = "play_history"  # top_played() reports real play counts
    STICKERS = "stickers"  # write_stickers()/read_stickers() store values on the server's songs (MPD)
    SENDS_AUDIO = "sends_audio"  # open_audio() can download a file that is not readable here
    STREAMS_AUDIO = "streams_audio"  # stream_audio() relays the server's stream of a track (audio preview)
    KEY_READS_USERS = "key_reads_users"  # the configured secret is an API key that reads any user's data by name
    KEEPS_PLAYLIST_ID = "keeps_playlist_id"  # replace_playlist_tracks() changes the playlist in place: same id
    ALBUM_LIBRARIES = "album_libraries"  # album_libraries() tells which library each album is in (LibraryTeller)
    LISTS_ALL_TRACKS = "lists_all_tracks"  # all_tracks() pages through every track cheaply (TrackLister)
    COVER_ART = "cover_art"  # cover_art() gives a song's picture (CoverArtSource)
    # playlists are lists of file paths, one a line (.m3u8 files, MPD's stored playlists): a path with a line break
    # cannot be one of their entries
    PLAYLISTS_OF_PATHS = "playlists_of_paths"


@dataclass(frozen=True)
class SettingField:
    """One setting of an adapter as the Settings form shows it: the form field, the Config name, the label."""

    field: str  # url, host, port, user, secret, music_dir, music_libraries, path_mapping
    setting: str
    label: str
    placeholder: str = ""

    @property
    def secret(self) -> bool:
        return self.field == "secret"


MUSIC_LIBRARIES_FIELD = SettingField("music_libraries", "MUSIC_LIBRARIES",
                                     "Libraries to analyze (comma-separated, empty = all)")
PATH_MAPPING_FIELD = SettingField("path_mapping", "PATH_MAPPING", "Path mapping (server_prefix=local_prefix;…)",
                                  "/media/music=/mnt/music")


class MediaServer(Protocol):
    kind: str
    display_name: str
    settings: tuple[SettingField, ...]
    capabilities: frozenset[Capability]

    @classmethod
    def from_config(cls, config: Config, *, user: UserCredentials | None = None) -> Self:
        """The adapter for the configured server, acting as `user` when given (else the configured account)."""
        ...

    def as_user(self, credentials: UserCredentials) -> MediaServer:
        """The same server acting as another user (servers without users return themselves)."""
        ...

    def list_albums(self, *, limit: int | None = None) -> list[Album]:
        """Albums, most recently added first; `limit` None or ≤ 0 means all. An adapter whose listing can skip part
        of the library without failing (a folder walk meeting an unreadable folder) also keeps a list of str
        `listing_problems` saying what the last listing missed: cleaning deletes nothing while it is not empty."""
        ...

    def album_tracks(self, album_id: str) -> list[Track]: ...

    def open_audio(self, track: Track) -> AbstractContextManager[AudioFile]:
        """A readable local file for the track for the duration of the `with` block."""
        ...

    def list_playlists(self) -> list[Playlist]: ...

    def playlist_tracks(self, playlist_id: str) -> list[str]:
        """The item ids of a playlist's songs, in order (songs the server cannot name as tracks are left out)."""
        ...

    def create_playlist(self, name: str, item_ids: Sequence[str]) -> str:
        """Create (or replace) a playlist; return its id."""
        ...

    def add_to_playlist(self, playlist_id: str, item_ids: Sequence[str]) -> None:
        """Append songs to an existing playlist (the user's own; nothing else of it changes)."""
        ...

    def replace_playlist_tracks(self, playlist_id: str, item_ids: Sequence[str]) -> str:
        """Make `item_ids`, in order, the songs of the existing playlist `playlist_id` (its name stays); return its
        id afterwards: the same one where the adapter declares Capability.KEEPS_PLAYLIST_ID, else possibly a new
        one (`recreate_playlist`). Running it twice with the same songs gives the same playlist; an unknown
        playlist or song is a MediaServerError."""
        ...

    def delete_playlist(self, playlist_id: str) -> None: ...

    def list_libraries(self) -> list[Library]:
        """The server's music libraries / folders (MUSIC_LIBRARIES filters albums by these names)."""
        ...

    def top_played(self, *, limit: int, user: UserCredentials | None = None) -> list[PlayedTrack]:
        """The user's most played tracks, most played first (empty when the server keeps no play counts)."""
        ...

    def resolve_user(self, name: str) -> str:
        """The server's user id for a user name (servers without users return the name)."""
        ...


@dataclass(frozen=True)
class AudioStream:
    """A track's audio as the server streams it: `status` 200 or 206 (a Range was served), the headers worth
    passing on (Content-Type, Content-Length, Content-Range, Accept-Ranges), the body in chunks; call `close`
    when done (also when the body was not read to the end)."""

    status: int
    headers: dict[str, str]
    chunks: Iterator[bytes]
    close: Callable[[], None]


class AudioStreamer(Protocol):
    """A server with Capability.STREAMS_AUDIO."""

    def stream_audio(self, item_id: str, *, byte_range: str | None = None) -> AudioStream:
        """The track's original audio, from `byte_range` ("bytes=100-") when given; MediaServerError otherwise."""
        ...


class StickerStore(Protocol):
    """A server with Capability.STICKERS."""

    def write_stickers(self, item_id: str, values: dict[str, str]) -> None: ...

    def read_stickers(self, item_id: str) -> dict[str, str]: ...


class LibraryTeller(Protocol):
    """A server with Capability.ALBUM_LIBRARIES."""

    def album_libraries(self, albums: Sequence[Album]) -> dict[str, str]:
        """album id → the name of the library `albums` (as list_albums gave them) are in; an album in several is in
        the first the server lists. Requests can be scoped to libraries by it (discovery.exclusions)."""
        ...


@dataclass(frozen=True)
class CoverRequest:
    """What a server may need to find a song's picture: the song, its file as the server names it, its album."""

    item_id: str
    path: str | None = None
    album_id: str | None = None


class CoverArtSource(Protocol):
    """A server with Capability.COVER_ART."""

    def cover_art(self, song: CoverRequest) -> bytes | None:
        """The song's picture as the server keeps it (JPEG, PNG, ... bytes): the song's own, else its album's;
        None when it has none. A server that fails raises MediaServerError."""
        ...


class TrackLister(Protocol):
    """A server with Capability.LISTS_ALL_TRACKS."""

    def all_tracks(self, *, page_size: int = 1000) -> Iterator[list[Track]]:
        """Every track of the albums `list_albums()` lists, in pages of about `page_size` (in no particular
        order), each Track exactly as `album_tracks` of its album gives it (item id, signature, album id,
        genres, artist id): a whole library in a few requests instead of one per album. A failed request is a
        MediaServerError; an adapter that can skip part of the library keeps `listing_problems` like list_albums."""
        ...


def libraries_by_album(albums: Sequence[Album], libraries: Sequence[Library],
                       album_ids_in: Callable[[Library], Iterator[str]], *, one_holds_all: bool) -> dict[str, str]:
    """album id → library name, for the albums of `albums`: each library's albums as `album_ids_in` lists them (one
    listing per library) — or, with `one_holds_all` (the server lists every album in some library), all of them in
    the one library when there is one, without a request."""
    if not libraries:
        return {}
    if len(libraries) == 1 and one_holds_all:
        return {album.album_id: libraries[0].name for album in albums}
    wanted = {album.album_id for album in albums}
    found: dict[str, str] = {}
    for library in libraries:
        for album_id in album_ids_in(library):
            if album_id in wanted:
                found.setdefault(album_id, library.name)
    return found


def delete_automatic_playlists(server: MediaServer) -> list[str]:
    """Delete the playlists AudioMuse made (names ending in _automatic) and only those; return their names."""
    deleted = []
    for playlist in server.list_playlists():
        if playlist.name.endswith(AUTOMATIC_SUFFIX):
            server.delete_playlist(playlist.playlist_id)
            deleted.append(playlist.name)
    return deleted


def recreate_playlist(server: MediaServer, playlist_id: str, item_ids: Sequence[str]) -> str:
    """replace_playlist_tracks for a server that cannot change a playlist's songs in place: a new playlist of the
    same name, then the old one deleted (create_playlist of most adapters does that already); the new id."""
    name = next((p.name for p in server.list_playlists() if p.playlist_id == playlist_id), None)
    if name is None:
        raise MediaServerError(f"playlist {playlist_id!r} not found")
    new_id = server.create_playlist(name, item_ids)
    if new_id != playlist_id and any(p.playlist_id == playlist_id for p in server.list_playlists()):
        server.delete_playlist(playlist_id)
    return new_id


def library_ids_for(names: Sequence[str], libraries: Sequence[Library], *, server: str) -> list[str]:
    """Ids of the libraries MUSIC_LIBRARIES names (matched without regard to case), in the order given; a
    MediaServerError naming the unknown names and the known ones otherwise."""
    by_name = {library.name.casefold(): library.library_id for library in libraries}
    unknown = [name for name in names if name.casefold() not in by_name]
    if unknown:
        known = ", ".join(sorted(library.name for library in libraries)) or "none"
        raise MediaServerError(f"MUSIC_LIBRARIES names {', '.join(map(repr, unknown))} are not {server} libraries "
                               f"(known: {known})")
    return [by_name[name.casefold()] for name in names]


def iter_all_tracks(server: MediaServer) -> Iterator[Track]:
    for album in server.list_albums(limit=None):
        yield from server.album_tracks(album.album_id)


