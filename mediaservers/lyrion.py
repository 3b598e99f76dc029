"""Lyrion Music Server (LMS, formerly Logitech Media Server) as the media server, through its JSON-RPC API.

Every call is `POST /jsonrpc.js` with `{"id": 1, "method": "slim.request", "params": ["", [command, …]]}`. The
player id is always empty: only server-level commands are used, so no player needs to be connected — playlists are
filled with `playlists edit cmd:add`, never through a player's queue. Commands and result shapes follow LMS's CLI
documentation (Help → Technical Information → Command Line Interface):

- albums: `albums <start> <n> sort:new tags:laytS` → `count`, `albums_loop`, paged. LMS's "new music" order is the
  most-recent-first order; LMS reports no timestamp for albums, so `Album.added_at` stays None.
- tracks: `titles <start> <n> album_id:<id> sort:tracknum tags:adefilntuy` → `count`, `titles_loop`. The item id
  is LMS's track id, the path is the file URL's path, the signature is file size + modification time.
- audio: the file in place when the server's path (after PATH_MAPPING) is readable here, otherwise
  `GET /music/<track id>/download` into TEMP_DIR, deleted afterwards.
- playlists: `playlists <start> <n> tags:u` (`playlists_loop`), `playlists tracks 0 1 playlist_id:<id>` (`count`),
  `playlists new name:<name>` (`playlist_id`, or `overwritten_playlist_id` when the name exists),
  `playlists edit cmd:add playlist_id:<id> url:<file url>` (LMS adds a track only once per playlist, so
  repeated tracks appear once), `playlists edit cmd:delete playlist_id:<id> index:<i>` (replacing a playlist's
  songs in place), `playlists delete playlist_id:<id>`.
- libraries: `libraries` (LMS 7.9+ virtual libraries, `folder_loop` of id/name). MUSIC_LIBRARIES names are looked up
  there and albums are listed with `library_id:` (library after library, each most recent first).
- play counts: tag O (`playcount`) of `titles`. LMS documents no sort by play count, so `top_played` reads the play
  count of every track (paged) and keeps the most played; LMS counts per server, not per user.

Requirements: LMS 7.9 or newer. With password protection on (Settings → Advanced → Security), set LYRION_USER and
LYRION_PASSWORD (or pass UserCredentials per call); they are sent as HTTP Basic auth and never appear in messages.
LMS closes the connection without an answer when it rejects a command, so such failures read "cannot reach Lyrion".
"""

from __future__ import annotations

import base64
import heapq
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from config import Config
from mediaservers.access import local_or_downloaded
from mediaservers.base import (
    MUSIC_LIBRARIES_FIELD,
    PATH_MAPPING_FIELD,
    Album,
    AudioFile,
    AudioStream,
    Capability,
    CoverRequest,
    Library,
    MediaServerError,
    PlayedTrack,
    Playlist,
    SettingField,
    Track,
    UserCredentials,
    libraries_by_album,
    library_ids_for,
)
from mediaservers.http import DownloadLimits, HttpClient
from mediaservers.values import genre_names, numbered_stem

PAGE_SIZE = 500
ALBUM_TAGS = "laytS"  # album, artist (album artist), year, raw title, artist_id
# artist, duration, album_id, filesize, disc, genre, album, modificationTime, artist_id, tracknum, url, year
TRACK_TAGS = "adefgilnstuy"
WHOLE_LIBRARY = "Lyrion library"  # the one library listed when LMS has no virtual libraries


def _int(value: Any) -> int | None:
    try:
        return int(str(value).split("/")[0].strip())
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def file_path(url: Any) -> str | None:
    """The server's path of a `file://` track URL (percent-decoded), or None for a remote track."""
    if not isinstance(url, str) or not url.startswith("file:"):
        return None
    path = unquote(urlsplit(url).path)
    if len(path) > 3 and path[0] == "/" and path[2] == ":" and path[1].isalpha():
        path = path[1:]  # file:///C:/Music/… on a Windows server
    return path or None


def _client(base_url: str, username: str, password: str, *, timeout: float, retries: int,
            download_limits: DownloadLimits | None = None) -> HttpClient:
    headers = {}
    if username or password:
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    return HttpClient("Lyrion", base_url, timeout=timeout, retries=retries, headers=headers,
                      download_limits=download_limits)


class Lyrion:
    kind = "lyrion"
    display_name = "Lyrion Music Server"
    settings = (SettingField("url", "LYRION_URL", "URL", "http://lms:9000"),
                SettingField("user", "LYRION_USER", "User"), SettingField("secret", "LYRION_PASSWORD", "Password"),
                MUSIC_LIBRARIES_FIELD, PATH_MAPPING_FIELD)
    capabilities = frozenset({Capability.PLAY_HISTORY, Capability.SENDS_AUDIO, Capability.STREAMS_AUDIO,
                              Capability.KEEPS_PLAYLIST_ID, Capability.ALBUM_LIBRARIES,
                              Capability.LISTS_ALL_TRACKS, Capability.COVER_ART})

    def __init__(self, http: HttpClient, *, path_mapping: list[tuple[str, str]] | None = None,
                 temp_dir: Path = Path("/tmp/audiomuse"), libraries: Sequence[str] = (),
                 page_size: int = PAGE_SIZE) -> None:
        self.http = http
        self.path_mapping = path_mapping or []
        self.temp_dir = temp_dir
        self.libraries = list(libraries)
        self.page_size = page_size
        self._urls: dict[str, str] = {}  # track id → file URL, remembered from album_tracks for playlists

    @classmethod
    def from_config(cls, config: Config, *, user: UserCredentials | None = None) -> Lyrion:
        parts = urlsplit(config.LYRION_URL)
        # Credentials in the URL become a header, so error messages (which show the URL) never carry them.
        base_url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])) if parts.netloc else ""
        # config.py refuses user info in LYRION_URL; reading it here only helps direct constructions.
        username = config.LYRION_USER or unquote(parts.username or "")
        password = config.LYRION_PASSWORD or unquote(parts.password or "")
        if user is not None:
            username, password = user.user, user.secret
        http = _client(base_url, username, password, timeout=config.HTTP_TIMEOUT_SECONDS, retries=config.HTTP_RETRIES,
                       download_limits=DownloadLimits.from_config(config))
        return cls(http, path_mapping=config.path_mapping, temp_dir=Path(config.TEMP_DIR),
                   libraries=config.music_libraries)

    def as_user(self, credentials: UserCredentials) -> Lyrion:
        """The same server with other credentials (LMS has no users: the password protection's login)."""
        http = _client(self.http.base_url, credentials.user, credentials.secret, timeout=self.http.timeout,
                       retries=self.http.retries, download_limits=self.http.download_limits)
        return Lyrion(http, path_mapping=self.path_mapping, temp_dir=self.temp_dir, libraries=self.libraries,
                      page_size=self.page_size)

    # --- JSON-RPC -------------------------------------------------------------------------------------------
    def _query(self, *command: Any) -> dict[str, Any]:
        """Run one CLI command through JSON-RPC; its `result` object."""
        body = {"id": 1, "method": "slim.request", "params": ["", list(command)]}
        changes = command[0] == "playlists" and len(command) > 1 and command[1] in ("new", "edit", "delete")
        answer = self.http.post_json("jsonrpc.js", json=body, idempotent=not changes)
        name = " ".join(str(part) for part in command[:2] if not isinstance(part, int))
        if not isinstance(answer, dict):
            raise MediaServerError(f"Lyrion sent no JSON-RPC answer to '{name}'")
        if answer.get("error"):
            raise MediaServerError(f"Lyrion refused '{name}': {str(answer['error'])[:200]}",
                                   cause="Lyrion refused the command")
        result = answer.get("result", {})
        if not isinstance(result, dict):
            raise MediaServerError(f"Lyrion sent an unexpected result for '{name}'")
        return result

    def _paged(self, command: str, loop: str, *params: str) -> Iterator[dict[str, Any]]:
        """Every item of an extended query (`<command> <start> <n> <params…>`), page after page."""
        start = 0
        while True:
            result = self._query(command, start, self.page_size, *params)
            items = [item for item in result.get(loop) or [] if isinstance(item, dict)]
            yield from items
            start += len(items)
            if not items or start >= (_int(result.get("count")) or 0):
                return

    # --- libraries and albums -------------------------------------------------------------------------------
    def list_libraries(self) -> list[Library]:
        result = self._query("libraries")
        libraries = [Library(library_id=str(item["id"]), name=str(item.get("name") or item["id"]))
                     for item in result.get("folder_loop") or [] if isinstance(item, dict) and "id" in item]
        return sorted(libraries, key=lambda lib: lib.name) or [Library(library_id="", name=WHOLE_LIBRARY)]

    def _library_filters(self) -> list[str | None]:
        if not self.libraries:
            return [None]
        ids = library_ids_for(self.libraries, self.list_libraries(), server="Lyrion")
        return [None] if "" in ids else [f"library_id:{library_id}" for library_id in ids]

    def list_albums(self, *, limit: int | None = None) -> list[Album]:
        wanted = limit if limit and limit > 0 else None
        albums: dict[str, Album] = {}
        for library in self._library_filters():
            params = ["sort:new", f"tags:{ALBUM_TAGS}"] + ([library] if library else [])
            for item in self._paged("albums", "albums_loop", *params):
                album = self._album(item)
                albums.setdefault(album.album_id, album)
                if wanted and len(albums) >= wanted:
                    return list(albums.values())
        return list(albums.values())

    def album_libraries(self, albums: Sequence[Album]) -> dict[str, str]:
        """Which virtual library (of MUSIC_LIBRARIES, when set) each album is in ("Lyrion library" when LMS has
        none): one album listing per virtual library (it may hold only part of the music)."""
        libraries = self.list_libraries()
        if self.libraries:
            wanted = {name.casefold() for name in self.libraries}
            libraries = [lib for lib in libraries if lib.name.casefold() in wanted]
        return libraries_by_album(albums, libraries, lambda lib: (
            str(item["id"]) for item in self._paged("albums", "albums_loop", f"library_id:{lib.library_id}")
            if "id" in item), one_holds_all=libraries == [Library(library_id="", name=WHOLE_LIBRARY)])

    @staticmethod
    def _album(item: dict[str, Any]) -> Album:
        return Album(album_id=str(item["id"]), name=str(item.get("album") or item.get("title") or "Unknown album"),
                     artist=str(item.get("artist") or "Unknown artist"), year=_int(item.get("year")) or None)

    def album_tracks(self, album_id: str) -> list[Track]:
        found = self._query("albums", 0, 1, f"album_id:{album_id}", f"tags:{ALBUM_TAGS}").get("albums_loop") or []
        if not found:
            raise MediaServerError(f"album {album_id} not found on Lyrion")
        album = self._album(found[0])
        items = list(self._paged("titles", "titles_loop", f"album_id:{album_id}", "sort:tracknum",
                                 f"tags:{TRACK_TAGS}"))
        pairs = sorted(((item, self._track(item, album)) for item in items),
                       key=lambda pair: (_int(pair[0].get("disc")) or 0, pair[1].track_number or 10**6))
        tracks = [track for _, track in pairs]
        self._urls.update((str(item["id"]), str(item["url"])) for item in items if item.get("url"))
        return tracks

    def all_tracks(self, *, page_size: int = 1000) -> Iterator[list[Track]]:
        """Every track of the albums list_albums gives (each with its album's name, artist and year, as
        album_tracks reads them), from `titles` paged over the whole library (per MUSIC_LIBRARIES library when set)
        instead of one query per album; yielded `page_size` tracks at a time."""
        albums = {album.album_id: album for album in self.list_albums()}
        page: list[Track] = []
        for library in self._library_filters():
            for item in self._paged("titles", "titles_loop", f"tags:{TRACK_TAGS}", *([library] if library else [])):
                album = albums.get(str(item.get("album_id")))
                if album is None or "id" not in item:
                    continue
                page.append(self._track(item, album))
                if item.get("url"):
                    self._urls[str(item["id"])] = str(item["url"])
                if len(page) >= page_size:
                    yield page
                    page = []
        if page:
            yield page

    @staticmethod
    def _track(item: dict[str, Any], album: Album) -> Track:
        path = file_path(item.get("url"))
        size, modified = item.get("filesize"), item.get("modificationTime")
        artist = str(item.get("artist") or album.artist)
        return Track(
            item_id=str(item["id"]),
            title=str(item.get("title") or (PurePosixPath(path).stem if path else f"Track {item['id']}")),
            artist=artist,
            album=str(item.get("album") or album.name),
            album_artist=album.artist if album.artist != "Unknown artist" else artist,
            album_id=album.album_id,
            path=path,
            duration_seconds=_float(item.get("duration")),
            year=_int(item.get("year")) or album.year,
            # "03 Title.wav" without tags: the file name's number is the track number.
            track_number=_int(item.get("tracknum")) or (numbered_stem(PurePosixPath(path).stem)[0] if path else None),
            signature=f"{size}:{modified}" if size is not None or modified is not None else None,
            genres=genre_names(item.get("genre")),
            artist_id=str(item["artist_id"]) if item.get("artist_id") not in (None, "") else None,
        )

    def open_audio(self, track: Track) -> AbstractContextManager[AudioFile]:
        suffix = PurePosixPath(track.path).suffix if track.path else ""
        download_path = f"music/{quote(track.item_id, safe='')}/download"
        return local_or_downloaded(track.path, mapping=self.path_mapping, temp_dir=self.temp_dir,
                                   download=lambda target: self.http.download(
                                       download_path, target, expected_seconds=track.duration_seconds), suffix=suffix)

    def cover_art(self, song: CoverRequest) -> bytes | None:
        """`/music/<track id>/cover`: the picture LMS shows for the song (its album's)."""
        return self.http.get_image(f"music/{quote(song.item_id, safe='')}/cover")

    def stream_audio(self, item_id: str, *, byte_range: str | None = None) -> AudioStream:
        """`/music/<id>/download`: the original file (LMS serves Range on it)."""
        return self.http.open_stream(f"music/{quote(item_id, safe='')}/download", byte_range=byte_range)

    # --- playlists ------------------------------------------------------------------------------------------
    def _playlist_entries(self) -> list[dict[str, Any]]:
        return [item for item in self._paged("playlists", "playlists_loop", "tags:u") if "id" in item]

    def list_playlists(self) -> list[Playlist]:
        playlists = []
        for item in self._playlist_entries():
            count = self._query("playlists", "tracks", 0, 1, f"playlist_id:{item['id']}").get("count")
            playlists.append(Playlist(playlist_id=str(item["id"]), name=str(item.get("playlist") or ""),
                                      track_count=_int(count) or 0))
        return playlists

    def add_to_playlist(self, playlist_id: str, item_ids: Sequence[str]) -> None:
        if not any(str(item["id"]) == playlist_id for item in self._playlist_entries()):
            raise MediaServerError(f"playlist {playlist_id!r} not found")
        for url in [self._track_url(i) for i in item_ids]:  # every id is checked before the playlist changes
            self._query("playlists", "edit", "cmd:add", f"playlist_id:{playlist_id}", f"url:{url}")

    def playlist_tracks(self, playlist_id: str) -> list[str]:
        ids: list[str] = []
        start = 0
        while True:
            answer = self._query("playlists", "tracks", start, self.page_size, f"playlist_id:{playlist_id}", "tags:u")
            page = [t for t in answer.get("playlisttracks_loop") or [] if isinstance(t, dict)]
            ids += [str(t["id"]) for t in page if t.get("id") is not None]
            start += len(page)
            if not page or start >= (_int(answer.get("count")) or 0):
                return ids

    def _track_url(self, item_id: str) -> str:
        if item_id in self._urls:
            return self._urls[item_id]
        if not item_id.isdigit():
            raise MediaServerError(f"{item_id!r} is not a Lyrion track id")
        found = self._query("titles", 0, 1, f"track_id:{item_id}", "tags:u").get("titles_loop") or []
        if not found or not found[0].get("url"):
            raise MediaServerError(f"no track with id {item_id} on Lyrion")
        self._urls[item_id] = str(found[0]["url"])
        return self._urls[item_id]

    def create_playlist(self, name: str, item_ids: Sequence[str]) -> str:
        if not name.strip():
            raise MediaServerError("a playlist needs a name")
        # An unknown id stops us before any change; LMS keeps a track only once per playlist.
        urls = list(dict.fromkeys(self._track_url(item_id) for item_id in item_ids))
        for item in self._playlist_entries():
            if item.get("playlist") == name:
                self._query("playlists", "delete", f"playlist_id:{item['id']}")
        created = self._query("playlists", "new", f"name:{name}")
        if created.get("playlist_id") is None and created.get("overwritten_playlist_id") is not None:
            # Someone made one with this name meanwhile: LMS refuses to create a second one, so replace it.
            self._query("playlists", "delete", f"playlist_id:{created['overwritten_playlist_id']}")
            created = self._query("playlists", "new", f"name:{name}")
        playlist_id = created.get("playlist_id")
        if playlist_id is None:
            raise MediaServerError(f"Lyrion did not create the playlist {name!r}")
        try:
            for url in urls:
                self._query("playlists", "edit", "cmd:add", f"playlist_id:{playlist_id}", f"url:{url}")
        except MediaServerError:
            try:
                self._query("playlists", "delete", f"playlist_id:{playlist_id}")
            except MediaServerError:
                pass  # the first failure is the one to report
            raise
        return str(playlist_id)

    def replace_playlist_tracks(self, playlist_id: str, item_ids: Sequence[str]) -> str:
        """The playlist edited in place: `playlists edit cmd:delete index:<i>` for each of its tracks (from the
        last, so the others keep their indexes), then `cmd:add` for each song; its id and name stay."""
        if not any(str(item["id"]) == playlist_id for item in self._playlist_entries()):
            raise MediaServerError(f"playlist {playlist_id!r} not found")
        # An unknown id stops us before any change; LMS keeps a track only once per playlist, hence delete first.
        urls = list(dict.fromkeys(self._track_url(item_id) for item_id in item_ids))
        count = _int(self._query("playlists", "tracks", 0, 1, f"playlist_id:{playlist_id}").get("count")) or 0
        for index in reversed(range(count)):
            self._query("playlists", "edit", "cmd:delete", f"playlist_id:{playlist_id}", f"index:{index}")
        for url in urls:
            self._query("playlists", "edit", "cmd:add", f"playlist_id:{playlist_id}", f"url:{url}")
        return playlist_id

    def delete_playlist(self, playlist_id: str) -> None:
        if not any(str(item["id"]) == playlist_id for item in self._playlist_entries()):
            raise MediaServerError(f"playlist {playlist_id!r} not found")
        self._query("playlists", "delete", f"playlist_id:{playlist_id}")

    # --- users and history ----------------------------------------------------------------------------------
    def top_played(self, *, limit: int, user: UserCredentials | None = None) -> list[PlayedTrack]:
        if limit <= 0:
            return []
        counts = ((_int(item.get("playcount")) or 0, str(item["id"]))
                  for item in self._paged("titles", "titles_loop", "tags:O") if "id" in item)
        top = heapq.nlargest(limit, (pair for pair in counts if pair[0] > 0))
        return [PlayedTrack(item_id=item_id, play_count=count, last_played=None) for count, item_id in top]

    def resolve_user(self, name: str) -> str:
        return name  # LMS has no user accounts
