"""MPD (Music Player Daemon) as the media server, through python-mpd2.

What this adapter needs and assumes:
- MPD 0.21 or newer (filter expressions, `sort` and `window` in `find`).
- MPD cannot send a song's audio, so AudioMuse reads the file at MPD_MUSIC_DIRECTORY / <song URI>: MPD's
  `music_directory` must be readable here (shared volume) and MPD_MUSIC_DIRECTORY is that folder as seen here. (The
  `config` command that would report `music_directory` is refused over TCP, hence the setting.)
- Albums are MPD's own (album artist, album) pairs — album artist falls back to artist, as MPD does in `list` and
  `find`. Songs without an album tag are grouped by folder. An album id is a small JSON text that encodes the
  album: `["Album artist","Album"]` or `{"folder":"Artist/Album"}`; "most recent" is the newest Last-Modified of
  an album's songs.
- A track's item id and path are the song's URI (relative to music_directory); its signature is Last-Modified.
- Playlists are MPD's stored playlists (playlist_directory); a playlist's id is its name. MPD cannot store an
  empty playlist.
- `write_stickers` stores analysis values as song stickers; MPD needs `sticker_file` in mpd.conf for that.
- One connection per operation (MPD closes idle connections after `connection_timeout`), connect and read timeout
  HTTP_TIMEOUT_SECONDS, MPD_PASSWORD sent right after connecting. MPD_HOST may be a Unix socket path.
- MPD keeps no play counts (`top_played` is empty), has no users, and has one database (MUSIC_LIBRARIES does not
  apply).
"""

from __future__ import annotations

import calendar
import json
import posixpath
import re
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import mpd

from config import Config
from mediaservers.base import (
    MUSIC_LIBRARIES_FIELD,
    Album,
    AudioFile,
    Capability,
    CoverRequest,
    Library,
    MediaServerError,
    PlayedTrack,
    Playlist,
    SettingField,
    Track,
    UserCredentials,
)
from mediaservers.values import genre_names, leading_int, numbered_stem

SONG_PAGE = 2000  # songs per `find … window` request: keeps each answer far below MPD's output buffer
COMMAND_BATCH = 500  # commands per command list when filling a playlist or writing stickers
ALL_SONGS = "(modified-since '0')"  # a filter every song in the database matches

# MPD's ACK error codes (src/protocol/Ack.hxx)
ACK_ARG = 2
ACK_PASSWORD = 3
ACK_PERMISSION = 4
ACK_UNKNOWN = 5
ACK_NO_EXIST = 50
ACK_EXIST = 56

_ACK = re.compile(r"\[(\d+)@(\d+)\] \{(\w*)\} (.*)")


def _quote(value: str) -> str:
    """A value for an MPD filter expression: single quotes, with backslash and quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _tag(song: dict[str, Any], key: str) -> str:
    """One tag's value; python-mpd2 gives a list when the tag repeats (two artists): the first one counts."""
    value = song.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value).strip() if value is not None else ""


def _epoch(timestamp: str) -> float | None:
    """MPD's Last-Modified (ISO 8601, UTC, e.g. 2024-05-01T10:00:00Z) as seconds since the epoch."""
    try:
        return float(calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        return None


def _ack(exc: mpd.CommandError) -> tuple[int, int, str, str]:
    """(code, index in the command list, command, message) of an MPD error answer."""
    match = _ACK.match(str(exc))
    if not match:
        return ACK_UNKNOWN, 0, "", str(exc)
    return int(match.group(1)), int(match.group(2)), match.group(3), match.group(4)


def open_client(client: mpd.MPDClient, *, host: str, port: int, password: str, timeout: float) -> None:
    """Connect `client` to MPD and log in with `password` when there is one (OSError or MPDError as they come)."""
    client.timeout = timeout
    client.connect(host, port)
    if password:
        client.password(password)


class Mpd:
    kind = "mpd"
    display_name = "MPD"
    settings = (SettingField("host", "MPD_HOST", "Host"), SettingField("port", "MPD_PORT", "Port"),
                SettingField("secret", "MPD_PASSWORD", "Password"),
                SettingField("music_dir", "MPD_MUSIC_DIRECTORY", "MPD music directory as seen from here"),
                MUSIC_LIBRARIES_FIELD)
    # a stored playlist's id: its name
    capabilities = frozenset({Capability.STICKERS, Capability.KEEPS_PLAYLIST_ID, Capability.LISTS_ALL_TRACKS,
                              Capability.COVER_ART, Capability.PLAYLISTS_OF_PATHS})

    def __init__(self, host: str = "127.0.0.1", port: int = 6600, *, password: str = "",
                 music_directory: str | Path | None = None, timeout: float = 30.0,
                 page_size: int = SONG_PAGE) -> None:
        self.host = host
        self.port = port
        self.password = password
        self.music_directory = Path(music_directory).expanduser() if music_directory else None
        self.timeout = timeout
        self.page_size = page_size

    @classmethod
    def from_config(cls, config: Config, *, user: UserCredentials | None = None) -> Mpd:
        # MPD has no users: a per-call user changes nothing.
        return cls(config.MPD_HOST, config.MPD_PORT, password=config.MPD_PASSWORD,
                   music_directory=config.MPD_MUSIC_DIRECTORY or None, timeout=config.HTTP_TIMEOUT_SECONDS)

    def as_user(self, credentials: UserCredentials) -> Mpd:
        return self

    @property
    def address(self) -> str:
        return self.host if self.host.startswith(("/", "@")) else f"{self.host}:{self.port}"

    # --- connection -----------------------------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[mpd.MPDClient]:
        """A fresh, authenticated connection; every failure inside the block becomes a one-line MediaServerError.

        Only MPD calls belong in the block: any OSError raised in it is reported as a connection problem."""
        client = mpd.MPDClient()
        try:
            open_client(client, host=self.host, port=self.port, password=self.password, timeout=self.timeout)
            yield client
        except mpd.CommandError as exc:
            raise MediaServerError(self._command_message(exc), cause=self._command_cause(exc)) from None
        except TimeoutError:
            raise MediaServerError(f"MPD at {self.address} did not answer within {self.timeout:g} s",
                                   cause="timed out") from None
        except ConnectionRefusedError:
            raise MediaServerError(f"cannot reach MPD at {self.address}: connection refused",
                                   cause="connection refused") from None
        except socket.gaierror:
            raise MediaServerError(f"cannot reach MPD at {self.address}: unknown host", cause="unknown host") from None
        except OSError as exc:
            raise MediaServerError(f"cannot reach MPD at {self.address}: {exc.strerror or exc}",
                                   cause="cannot connect") from None
        except mpd.ConnectionError as exc:
            raise MediaServerError(f"MPD at {self.address} closed the connection ({exc})",
                                   cause="the server closed the connection (not an MPD server?)") from None
        except mpd.MPDError as exc:  # ProtocolError: something that is not MPD answered
            raise MediaServerError(f"{self.address} does not answer like MPD ({exc})",
                                   cause="not an MPD server") from None
        finally:
            try:
                client.disconnect()
            except Exception:  # the socket may already be gone; nothing is left to clean up
                pass

    def _command_cause(self, exc: mpd.CommandError) -> str:
        code = _ack(exc)[0]
        return {ACK_PASSWORD: "password refused", ACK_PERMISSION: "permission denied (a password is needed)"}.get(
            code, f"MPD refused a command (error {code})")

    def _command_message(self, exc: mpd.CommandError) -> str:
        code, _, command, message = _ack(exc)
        if code == ACK_PASSWORD:
            return f"MPD at {self.address} refused the password (MPD_PASSWORD)"
        if code == ACK_PERMISSION:
            hint = "MPD_PASSWORD lacks that permission" if self.password else "MPD needs a password: set MPD_PASSWORD"
            return f"MPD at {self.address} denied '{command}': {hint}"
        return f"MPD {command or 'command'} failed: {message}"

    # --- albums and tracks ----------------------------------------------------------------------------------
    def list_libraries(self) -> list[Library]:
        with self._connect() as client:
            client.stats()  # proves the server answers and the password is right
        return [Library(library_id="", name="MPD database")]

    def list_albums(self, *, limit: int | None = None) -> list[Album]:
        wanted = limit if limit and limit > 0 else None
        albums: dict[str, Album] = {}
        with self._connect() as client:
            start = 0
            while True:
                # Newest songs first: an album's first song in this order carries its newest Last-Modified.
                songs = client.find(ALL_SONGS, "sort", "-Last-Modified", "window", f"{start}:{start + self.page_size}")
                for song in songs:
                    album = self._album_of(song)
                    if album.album_id not in albums:
                        albums[album.album_id] = album
                        if wanted and len(albums) >= wanted:
                            return list(albums.values())
                if len(songs) < self.page_size:
                    return list(albums.values())
                start += self.page_size

    @staticmethod
    def _album_of(song: dict[str, Any]) -> Album:
        name = _tag(song, "album")
        if name:
            artist = _tag(song, "albumartist") or _tag(song, "artist")
            album_id = json.dumps([artist, name], ensure_ascii=False, separators=(",", ":"))
        else:
            folder = posixpath.dirname(song["file"])
            album_id = json.dumps({"folder": folder}, ensure_ascii=False, separators=(",", ":"))
            name = posixpath.basename(folder) or "Unknown album"
            artist = _tag(song, "albumartist") or _tag(song, "artist") or posixpath.basename(posixpath.dirname(folder))
        return Album(album_id=album_id, name=name, artist=artist or "Unknown artist",
                     year=leading_int(_tag(song, "date")), added_at=_epoch(_tag(song, "last-modified")))

    @staticmethod
    def _parse_album_id(album_id: str) -> tuple[str, str] | str:
        """(album artist, album) for a tagged album, or the folder for songs without an album tag."""
        try:
            value = json.loads(album_id)
        except ValueError:
            value = None
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
            return value[0], value[1]
        if isinstance(value, dict) and isinstance(value.get("folder"), str):
            return str(value["folder"])
        raise MediaServerError(f"{album_id!r} is not an MPD album id")

    def album_tracks(self, album_id: str) -> list[Track]:
        key = self._parse_album_id(album_id)
        with self._connect() as client:
            if isinstance(key, tuple):
                songs = client.find(f"((Album == {_quote(key[1])}) AND (AlbumArtist == {_quote(key[0])}))")
            else:
                songs = [entry for entry in client.lsinfo(key) if "file" in entry and not _tag(entry, "album")]
        if not songs:
            raise MediaServerError(f"album {album_id} not found in MPD's database")
        songs.sort(key=lambda s: (leading_int(_tag(s, "disc")) or 0, leading_int(_tag(s, "track")) or 0, s["file"]))
        return [self._track(song, album_id) for song in songs]

    def all_tracks(self, *, page_size: int = 1000) -> Iterator[list[Track]]:
        """Every song of MPD's database, a `find` window of `page_size` songs at a time, each under the album
        list_albums files it in (its album tag and album artist, or its folder when it has no album tag)."""
        with self._connect() as client:
            start = 0
            while True:
                songs = client.find(ALL_SONGS, "window", f"{start}:{start + page_size}")
                yield [self._track(song, self._album_of(song).album_id) for song in songs if "file" in song]
                if len(songs) < page_size:
                    return
                start += page_size

    @staticmethod
    def _track(song: dict[str, Any], album_id: str) -> Track:
        uri = song["file"]
        folder = PurePosixPath(uri).parent
        # Untagged files: Artist/Album/03 Title.wav is the common layout.
        artist = _tag(song, "artist") or (folder.parent.name if folder.parent.name else "") or "Unknown artist"
        number, stem_title = numbered_stem(PurePosixPath(uri).stem)
        duration = _tag(song, "duration") or _tag(song, "time")
        return Track(
            item_id=uri,
            title=_tag(song, "title") or stem_title,
            artist=artist,
            album=_tag(song, "album") or folder.name,
            album_artist=_tag(song, "albumartist") or artist,
            album_id=album_id,
            path=uri,
            duration_seconds=float(duration) if duration else None,
            year=leading_int(_tag(song, "date")),
            track_number=leading_int(_tag(song, "track")) or number,
            signature=_tag(song, "last-modified") or None,
            genres=genre_names(song.get("genre")),
        )

    def cover_art(self, song: CoverRequest) -> bytes | None:
        """MPD's own: `albumart` (the cover file of the song's folder), else `readpicture` (the picture in the
        file); the song's URI is its item id."""
        uri = song.path or song.item_id
        with self._connect() as client:
            for command in (client.albumart, client.readpicture):
                try:
                    found = command(uri)
                except mpd.CommandError as exc:
                    if "No file exists" in str(exc) or "[50@" in str(exc):  # ACK_ERROR_NO_EXIST: no picture
                        continue
                    raise
                if isinstance(found, dict) and found.get("binary"):
                    return bytes(found["binary"])
        return None

    @contextmanager
    def open_audio(self, track: Track) -> Iterator[AudioFile]:
        yield AudioFile(path=self.local_path(track.path or track.item_id), access="direct")

    def local_path(self, uri: str) -> Path:
        """The readable file for a song URI under MPD_MUSIC_DIRECTORY (MPD itself cannot send audio)."""
        if self.music_directory is None:
            raise MediaServerError("MPD cannot send audio: set MPD_MUSIC_DIRECTORY to MPD's music_directory "
                                   "as readable here")
        if not self.music_directory.is_dir():
            raise MediaServerError(f"MPD_MUSIC_DIRECTORY {self.music_directory} is not a readable folder here")
        relative = PurePosixPath(uri)
        if "://" in uri or relative.is_absolute() or ".." in relative.parts:
            raise MediaServerError(f"{uri!r} is not a file inside MPD's music directory")
        path = self.music_directory.joinpath(*relative.parts)
        if not path.is_file():
            raise MediaServerError(f"{uri} is not in MPD_MUSIC_DIRECTORY ({self.music_directory}); is that MPD's "
                                   "music_directory?")
        return path

    # --- playlists ------------------------------------------------------------------------------------------
    def list_playlists(self) -> list[Playlist]:
        with self._connect() as client:
            names = sorted(entry["playlist"] for entry in client.listplaylists())
            return [Playlist(playlist_id=name, name=name, track_count=len(client.listplaylist(name)))
                    for name in names]

    def add_to_playlist(self, playlist_id: str, item_ids: Sequence[str]) -> None:
        with self._connect() as client:
            if playlist_id not in {entry["playlist"] for entry in client.listplaylists()}:
                raise MediaServerError(f"playlist {playlist_id!r} not found")
            for uri in item_ids:  # every song is checked before the playlist changes
                if not client.find("file", uri):
                    raise MediaServerError(f"no song {uri!r} in MPD's database")
            for uri in item_ids:
                client.playlistadd(playlist_id, uri)

    def playlist_tracks(self, playlist_id: str) -> list[str]:
        with self._connect() as client:
            try:
                return [str(uri) for uri in client.listplaylist(playlist_id) if "://" not in str(uri)]
            except mpd.CommandError as exc:
                if _ack(exc)[0] == ACK_NO_EXIST:
                    raise MediaServerError(f"playlist {playlist_id!r} not found") from None
                raise

    def create_playlist(self, name: str, item_ids: Sequence[str]) -> str:
        if not name.strip() or any(c in name for c in "/\n\r"):
            raise MediaServerError(f"playlist name {name!r} is not allowed by MPD (empty, '/' or a line break)")
        return self._store(name, item_ids, existing_only=False)

    def replace_playlist_tracks(self, playlist_id: str, item_ids: Sequence[str]) -> str:
        """The stored playlist `playlist_id` (its name) holds these songs afterwards; the name, hence the id, stays."""
        return self._store(playlist_id, item_ids, existing_only=True)

    def _store(self, name: str, item_ids: Sequence[str], *, existing_only: bool) -> str:
        if not item_ids:
            raise MediaServerError(f"playlist {name!r} has no tracks; MPD does not store empty playlists")
        # Fill a temporary playlist, then swap it in: a client never sees half a playlist, and an unknown song
        # leaves the old playlist untouched.
        temporary = f"{name}.audiomuse-{uuid.uuid4().hex[:8]}"
        with self._connect() as client:
            if existing_only and name not in {entry["playlist"] for entry in client.listplaylists()}:
                raise MediaServerError(f"playlist {name!r} not found")
            try:
                for start in range(0, len(item_ids), COMMAND_BATCH):
                    batch = item_ids[start:start + COMMAND_BATCH]
                    client.command_list_ok_begin()
                    for uri in batch:
                        client.playlistadd(temporary, uri)
                    try:
                        client.command_list_end()
                    except mpd.CommandError as exc:
                        code, index, _, message = _ack(exc)
                        if code == ACK_NO_EXIST and index < len(batch):
                            raise MediaServerError(f"no song {batch[index]!r} in MPD's database") from None
                        raise
                existing = {entry["playlist"] for entry in client.listplaylists()}
                client.command_list_ok_begin()
                if name in existing:
                    client.rm(name)
                client.rename(temporary, name)
                client.command_list_end()
            except BaseException:
                self._discard(client, temporary)
                raise
        return name

    @staticmethod
    def _discard(client: mpd.MPDClient, playlist: str) -> None:
        try:
            client.rm(playlist)
        except (mpd.MPDError, OSError):
            pass  # never created, or the connection is gone: the original error is the one to report

    def delete_playlist(self, playlist_id: str) -> None:
        with self._connect() as client:
            try:
                client.rm(playlist_id)
            except mpd.CommandError as exc:
                if _ack(exc)[0] == ACK_NO_EXIST:
                    raise MediaServerError(f"playlist {playlist_id!r} not found") from None
                raise

    # --- stickers -------------------------------------------------------------------------------------------
    def write_stickers(self, item_id: str, values: dict[str, str]) -> None:
        """Store `values` as stickers of the song `item_id` (needs `sticker_file` in mpd.conf)."""
        for key, value in values.items():
            if not key or any(c in key for c in " \n\r") or any(c in str(value) for c in "\n\r"):
                raise MediaServerError(f"sticker {key!r}={value!r} cannot be stored by MPD (space or line break)")
        items = list(values.items())
        with self._connect() as client:
            for start in range(0, len(items), COMMAND_BATCH):
                client.command_list_ok_begin()
                for key, value in items[start:start + COMMAND_BATCH]:
                    client.sticker_set("song", item_id, key, str(value))
                self._sticker_call(client, item_id, client.command_list_end)

    def read_stickers(self, item_id: str) -> dict[str, str]:
        """The stickers of the song `item_id` (empty when it has none)."""
        with self._connect() as client:
            stickers = self._sticker_call(client, item_id, lambda: client.sticker_list("song", item_id))
        return {str(k): str(v) for k, v in dict(stickers).items()}

    def _sticker_call(self, client: mpd.MPDClient, item_id: str, call: Any) -> Any:
        try:
            return call()
        except mpd.CommandError as exc:
            code, _, _, message = _ack(exc)
            if "disabled" in message:
                raise MediaServerError(f"MPD at {self.address} has no sticker database: add sticker_file to "
                                       "mpd.conf") from None
            if code == ACK_NO_EXIST:
                raise MediaServerError(f"no song {item_id!r} in MPD's database") from None
            raise

    # --- users and history ----------------------------------------------------------------------------------
    def top_played(self, *, limit: int, user: UserCredentials | None = None) -> list[PlayedTrack]:
        return []  # MPD keeps no play counts

    def resolve_user(self, name: str) -> str:
        return name
