"""A small Subsonic/OpenSubsonic API server (API 1.16.1, JSON only) for adapter tests, shaped like Navidrome.

It speaks token auth (checks t = md5(password + s)) and, with `token_auth=False`, only the legacy `p=` (answering
a token with error 41, as servers do for LDAP users). It serves ping, getMusicFolders, getAlbumList2 (newest /
frequent, size / offset / musicFolderId), getAlbum, search3 (songs), download, and the playlist calls. Switches make
it answer HTTP 500 for the next N requests (`fail_next`), always answer one HTTP status (`force_status`), or wait
before answering (`delay_seconds`). Every request is logged in `requests` as (method, params).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.server import BackgroundServer

VERSION = "1.16.1"


@dataclass
class FakeSong:
    id: str
    title: str
    track: int
    data: bytes
    suffix: str = "flac"
    duration: int = 10
    play_count: int = 0
    played: str | None = None  # ISO 8601, as Navidrome sends it
    created: str = "2024-01-01T00:00:00Z"


@dataclass
class FakeAlbum:
    id: str
    name: str
    artist: str
    created: str  # ISO 8601; "newest" sorts on it
    songs: list[FakeSong]
    year: int | None = None
    folder_id: int = 1

    @property
    def play_count(self) -> int:
        return sum(s.play_count for s in self.songs)


def make_albums(count: int = 5, *, songs_per_album: int = 2) -> list[FakeAlbum]:
    """`count` albums, album i added on day i+1 of 2024 (so the last is the newest), with small fake files."""
    albums = []
    for a in range(count):
        songs = [FakeSong(id=f"so-{a}-{t}", title=f"Song {a}-{t}", track=t + 1,
                          data=f"fake audio {a}-{t} ".encode() * 100, created=f"2024-01-{a + 1:02d}T10:00:00Z")
                 for t in range(songs_per_album)]
        albums.append(FakeAlbum(id=f"al-{a}", name=f"Album {a}", artist=f"Artist {a}", year=2000 + a,
                                created=f"2024-01-{a + 1:02d}T10:00:00Z", songs=songs))
    return albums


@dataclass
class FakePlaylist:
    id: str
    name: str
    owner: str
    song_ids: list[str] = field(default_factory=list)


class SubsonicError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FakeSubsonic(BackgroundServer):
    """Start with `with FakeSubsonic(...) as server:`; `server.url` is the base URL (no /rest)."""

    def __init__(self, *, user: str = "navi", password: str = "s3cret", albums: list[FakeAlbum] | None = None,
                 folders: dict[int, str] | None = None, token_auth: bool = True,
                 every_song_query: str | None = '""', search_page_cap: int = 500) -> None:
        self.user = user
        self.password = password
        self.albums = albums if albums is not None else make_albums()
        self.folders = folders or {1: "Music"}
        self.token_auth = token_auth
        # search3: the query that lists every song (Navidrome's '""'; None: none does), at most this many a page;
        # albums whose songs search3 leaves out (as a library changing while it is read would).
        self.every_song_query = every_song_query
        self.search_page_cap = search_page_cap
        self.unsearchable_albums: set[str] = set()
        self.playlists: dict[str, FakePlaylist] = {}
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.fail_next = 0
        self.force_status: int | None = None
        self.delay_seconds = 0.0
        self._ids = itertools.count(1)
        super().__init__(self._handler_class(), name="fake-subsonic")

    def calls(self, method: str) -> list[dict[str, list[str]]]:
        """Parameters of every request to `method`, in order."""
        return [params for name, params in self.requests if name == method]

    def add_playlist(self, name: str, *, owner: str, song_ids: list[str] | None = None) -> str:
        playlist = FakePlaylist(id=f"pl-{next(self._ids)}", name=name, owner=owner, song_ids=list(song_ids or []))
        self.playlists[playlist.id] = playlist
        return playlist.id

    # --- request handling -----------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
                fake._handle(self, "")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                fake._handle(self, self.rfile.read(length).decode() if length else "")

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler

    def _handle(self, request: BaseHTTPRequestHandler, body: str) -> None:
        parts = urlsplit(request.path)
        params = parse_qs(parts.query, keep_blank_values=True)
        for key, values in parse_qs(body, keep_blank_values=True).items():
            params.setdefault(key, []).extend(values)
        method = parts.path.rsplit("/", 1)[-1].removesuffix(".view")
        with self._lock:
            self.requests.append((method, params))
            failing = self.fail_next > 0
            self.fail_next -= 1 if failing else 0
        if self.delay_seconds:
            self._stopping.wait(self.delay_seconds)
        status, content, content_type = self._answer(parts.path, method, params, failing)
        self._send(request, status, content, content_type)

    def _answer(self, path: str, method: str, params: dict[str, list[str]], failing: bool) -> tuple[int, bytes, str]:
        """(HTTP status, body, content type) for one request."""
        if failing:
            return 500, b'{"error": "transient failure"}', "application/json"
        if self.force_status:
            return self.force_status, b"Unauthorized\n", "text/plain"
        handler = getattr(self, f"_api_{method}", None)
        if not path.startswith("/rest/") or (handler is None and method not in ("download", "stream")):
            return 404, b"404 page not found\n", "text/plain"
        try:
            self._check_auth(params)
            if method in ("download", "stream"):
                song = self._song(self._one(params, "id"))
                return 200, song.data, f"audio/{song.suffix}"
            assert handler is not None
            with self._lock:
                payload = handler(params)
            answer: dict[str, Any] = {"status": "ok", **payload}
        except SubsonicError as exc:
            answer = {"status": "failed", "error": {"code": exc.code, "message": exc.message}}
        answer.update({"version": VERSION, "type": "fake-navidrome", "serverVersion": "0.0.1",
                       "openSubsonic": True})
        return 200, json.dumps({"subsonic-response": answer}).encode(), "application/json"

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    @staticmethod
    def _one(params: dict[str, list[str]], name: str) -> str:
        values = params.get(name)
        if not values:
            raise SubsonicError(10, f"Required parameter '{name}' is missing")
        return values[0]

    def _check_auth(self, params: dict[str, list[str]]) -> None:
        if params.get("f") != ["json"]:
            raise SubsonicError(0, "this fake speaks f=json only")
        for name in ("u", "v", "c"):
            self._one(params, name)
        if "t" in params or "s" in params:
            if not self.token_auth:
                raise SubsonicError(41, "Token authentication not supported for LDAP users.")
            expected = hashlib.md5((self.password + self._one(params, "s")).encode()).hexdigest()
            ok = self._one(params, "t") == expected
        elif "p" in params:
            given = self._one(params, "p")
            ok = (bytes.fromhex(given[4:]).decode() if given.startswith("enc:") else given) == self.password
        else:
            raise SubsonicError(10, "Required parameter is missing: authentication")
        if not ok or params["u"] != [self.user]:
            raise SubsonicError(40, "Wrong username or password")

    # --- API methods (called with the lock held) ------------------------------------------------------------
    def _song(self, song_id: str) -> FakeSong:
        for album in self.albums:
            for song in album.songs:
                if song.id == song_id:
                    return song
        raise SubsonicError(70, "Song not found")

    def _child(self, album: FakeAlbum, song: FakeSong) -> dict[str, Any]:
        child: dict[str, Any] = {
            "id": song.id, "parent": album.id, "isDir": False, "title": song.title, "album": album.name,
            "artist": album.artist, "track": song.track, "year": album.year, "size": len(song.data),
            "contentType": f"audio/{song.suffix}", "suffix": song.suffix, "duration": song.duration,
            "bitRate": 320, "path": f"{album.artist}/{album.name}/{song.track:02d} - {song.title}.{song.suffix}",
            "playCount": song.play_count, "created": song.created, "albumId": album.id, "type": "music",
            "isVideo": False, "artistId": "ar-" + album.artist.lower().replace(" ", "-")}
        if song.played:
            child["played"] = song.played
        return child

    @staticmethod
    def _album_entry(album: FakeAlbum) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": album.id, "name": album.name, "artist": album.artist,
                                 "songCount": len(album.songs), "duration": sum(s.duration for s in album.songs),
                                 "created": album.created, "playCount": album.play_count}
        if album.year:
            entry["year"] = album.year
        return entry

    def _api_ping(self, params: dict[str, list[str]]) -> dict[str, Any]:
        return {}

    def _api_getMusicFolders(self, params: dict[str, list[str]]) -> dict[str, Any]:  # noqa: N802
        return {"musicFolders": {"musicFolder": [{"id": i, "name": n} for i, n in sorted(self.folders.items())]}}

    def _api_getAlbumList2(self, params: dict[str, list[str]]) -> dict[str, Any]:  # noqa: N802
        kind = self._one(params, "type")
        size = min(int(params.get("size", ["10"])[0]), 500)
        offset = int(params.get("offset", ["0"])[0])
        albums = self.albums
        if "musicFolderId" in params:
            albums = [a for a in albums if str(a.folder_id) == params["musicFolderId"][0]]
        if kind == "newest":
            albums = sorted(albums, key=lambda a: a.created, reverse=True)
        elif kind == "frequent":
            albums = sorted((a for a in albums if a.play_count > 0), key=lambda a: a.play_count, reverse=True)
        else:
            raise SubsonicError(0, f"type {kind!r} is not supported by this fake")
        return {"albumList2": {"album": [self._album_entry(a) for a in albums[offset:offset + size]]}}

    def _api_getAlbum(self, params: dict[str, list[str]]) -> dict[str, Any]:  # noqa: N802
        album_id = self._one(params, "id")
        for album in self.albums:
            if album.id == album_id:
                return {"album": {**self._album_entry(album), "song": [self._child(album, s) for s in album.songs]}}
        raise SubsonicError(70, "Album not found")

    def _api_search3(self, params: dict[str, list[str]]) -> dict[str, Any]:
        """Songs only, by title substring, in album order; the empty query is refused as a missing parameter (as
        Navidrome does), `every_song_query` lists every song."""
        query = self._one(params, "query")
        if not query:
            raise SubsonicError(10, "Required parameter 'query' is missing")
        size = min(int(params.get("songCount", ["20"])[0]), self.search_page_cap)
        offset = int(params.get("songOffset", ["0"])[0])
        albums = [a for a in self.albums if a.id not in self.unsearchable_albums]
        if "musicFolderId" in params:
            albums = [a for a in albums if str(a.folder_id) == params["musicFolderId"][0]]
        every = query == self.every_song_query
        songs = [self._child(a, song) for a in albums for song in a.songs if every or query.lower() in
                 song.title.lower()]
        return {"searchResult3": {"song": songs[offset:offset + size]}}

    def _playlist_entry(self, playlist: FakePlaylist) -> dict[str, Any]:
        return {"id": playlist.id, "name": playlist.name, "owner": playlist.owner, "public": False,
                "songCount": len(playlist.song_ids), "duration": 0, "created": "2024-02-01T00:00:00Z",
                "changed": "2024-02-01T00:00:00Z"}

    def _api_getPlaylists(self, params: dict[str, list[str]]) -> dict[str, Any]:  # noqa: N802
        return {"playlists": {"playlist": [self._playlist_entry(p) for p in self.playlists.values()]}}

    def _api_createPlaylist(self, params: dict[str, list[str]]) -> dict[str, Any]:  # noqa: N802
        songs = params.get("songId", [])
        for song_id in songs:
            self._song(song_id)
        if "playlistId" in params:
            playlist = self.playlists[self._one(params, "playlistId")]
            playlist.song_ids = list(songs)
        else:
            playlist = FakePlaylist(id=f"pl-{next(self._ids)}", name=self._one(params, "name"),
                                    owner=params["u"][0], song_ids=list(songs))
            self.playlists[playlist.id] = playlist
        return {"playlist": {**self._playlist_entry(playlist), "entry": [{"id": s} for s in playlist.song_ids]}}

    def _api_updatePlaylist(self, params: dict[str, list[str]]) -> dict[str, Any]:  # noqa: N802
        playlist = self.playlists.get(self._one(params, "playlistId"))
        if playlist is None:
            raise SubsonicError(70, "Playlist not found")
        for song_id in params.get("songIdToAdd", []):
            self._song(song_id)
            playlist.song_ids.append(song_id)
        return {}

    def _api_deletePlaylist(self, params: dict[str, list[str]]) -> dict[str, Any]:  # noqa: N802
        playlist = self.playlists.get(self._one(params, "id"))
        if playlist is None:
            raise SubsonicError(70, "Playlist not found")
        if playlist.owner != params["u"][0]:
            raise SubsonicError(50, "User is not authorized for the given operation.")
        del self.playlists[playlist.id]
        return {}
