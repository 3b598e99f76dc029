"""A small local Lyrion Music Server (LMS) for tests: the JSON-RPC commands AudioMuse uses, answered with the result
shapes of LMS's CLI documentation, and `GET /music/<track id>/download` serving the real files of a music folder.

It knows: `albums`, `titles`, `playlists` (list, `tracks`, `new`, `edit cmd:add|delete`, `delete`) and `libraries`. Like
LMS, it closes the connection without an answer for a command it cannot run (unknown command, player command without
a player, missing playlist). Faults on demand: HTTP Basic auth (401 on a wrong password), transient HTTP 500s and
slow answers. Every request is recorded in `requests` as (player id, command list).
"""

from __future__ import annotations

import base64
import json
import mimetypes
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import mutagen

from tests.fakes.server import ranged

AUDIO_SUFFIXES = {".flac", ".ogg", ".mp3", ".wav", ".m4a", ".opus"}


@dataclass
class FakeTrack:
    id: int
    file: Path
    url: str
    title: str
    artist: str
    album: str
    album_artist: str
    album_id: int
    tracknum: int | None
    duration: float | None
    top_folder: str
    playcount: int = 0
    genre: str | None = None


@dataclass
class FakeAlbum:
    id: int
    name: str
    artist: str
    changed: float
    top_folder: str
    tracks: list[FakeTrack] = field(default_factory=list)


def _first(tags: Any, key: str) -> str:
    try:
        values = tags[key]
    except (KeyError, TypeError, ValueError):
        return ""
    return str(values[0]).strip() if values else ""


class FakeLyrion:
    """Start with `start()` (or use as a context manager); `url` is http://127.0.0.1:<port>."""

    def __init__(self, music_dir: Path, *, server_root: str = "/srv/music", username: str = "",
                 password: str = "", libraries: dict[str, list[str]] | None = None) -> None:
        self.music_dir = music_dir
        self.server_root = server_root.rstrip("/")
        self.username = username
        self.password = password
        self.libraries = {f"lib{i}": (name, set(folders)) for i, (name, folders) in
                          enumerate(sorted((libraries or {}).items()), start=1)}
        self.requests: list[tuple[str, list[Any]]] = []
        self.downloads: list[int] = []
        self.playlists: dict[int, dict[str, Any]] = {}
        self.delay_seconds = 0.0
        self._failures_left = 0
        self._failure_status = 500
        self._next_playlist_id = 1000
        self._lock = threading.Lock()
        self.albums: list[FakeAlbum] = []
        self.tracks: dict[int, FakeTrack] = {}
        self.rescan()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- library ----------------------------------------------------------------------------------------
    def rescan(self) -> None:
        """Read the music folder: albums by (album artist, album), untagged files by their folders."""
        albums: dict[tuple[str, str], FakeAlbum] = {}
        self.tracks = {}
        for path in sorted(p for p in self.music_dir.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
            relative = path.relative_to(self.music_dir)
            audio = mutagen.File(path, easy=True)
            tags = getattr(audio, "tags", None)
            info = getattr(audio, "info", None)
            folder_artist = relative.parts[0] if len(relative.parts) > 2 else "No Artist"
            artist = _first(tags, "artist") or folder_artist
            album_artist = _first(tags, "albumartist") or artist
            album_name = _first(tags, "album") or path.parent.name
            key = (album_artist, album_name)
            if key not in albums:
                albums[key] = FakeAlbum(id=len(albums) + 1, name=album_name, artist=album_artist, changed=0.0,
                                        top_folder=relative.parts[0])
            album = albums[key]
            album.changed = max(album.changed, path.stat().st_mtime)
            track = FakeTrack(
                id=100 + len(self.tracks) + 1, file=path,
                url="file://" + quote(f"{self.server_root}/{relative.as_posix()}", safe="/"),
                title=_first(tags, "title") or path.stem, artist=artist, album=album_name, album_artist=album_artist,
                album_id=album.id, tracknum=int(_first(tags, "tracknumber").split("/")[0] or 0) or None,
                duration=float(info.length) if info is not None and getattr(info, "length", None) else None,
                top_folder=relative.parts[0], genre=_first(tags, "genre") or None)
            album.tracks.append(track)
            self.tracks[track.id] = track
        self.albums = list(albums.values())

    def track_by_title(self, title: str) -> FakeTrack:
        return next(t for t in self.tracks.values() if t.title == title)

    # --- faults -----------------------------------------------------------------------------------------
    def fail_next(self, times: int = 1, status: int = 500) -> None:
        """Answer the next `times` requests with HTTP `status` (a transient server error)."""
        with self._lock:
            self._failures_left = times
            self._failure_status = status

    def _take_failure(self) -> int | None:
        with self._lock:
            if self._failures_left <= 0:
                return None
            self._failures_left -= 1
            return self._failure_status

    def commands(self) -> list[list[Any]]:
        return [command for _, command in self.requests]

    # --- server -----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeLyrion:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                fake._handle(self, "POST")

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-lyrion", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeLyrion:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP -------------------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        try:
            body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0)) if method == "POST" else b""
            if self.password and not self._authorized(handler.headers.get("Authorization", "")):
                self._send(handler, 401, b"Unauthorized", "text/plain",
                           {"WWW-Authenticate": 'Basic realm="Logitech Media Server"'})
                return
            status = self._take_failure()
            if status is not None:
                self._send(handler, status, b"Internal Server Error", "text/plain")
                return
            if method == "POST" and handler.path == "/jsonrpc.js":
                self._jsonrpc(handler, body)
            elif method == "GET" and handler.path.startswith("/music/") and handler.path.endswith("/download"):
                self._download(handler, handler.path.split("/")[2])
            elif method == "GET" and handler.path.startswith("/music/") and handler.path.endswith("/cover"):
                self._cover(handler, handler.path.split("/")[2])
            else:
                self._send(handler, 404, b"Not Found", "text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _authorized(self, header: str) -> bool:
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return header == f"Basic {expected}"

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    @staticmethod
    def _drop(handler: BaseHTTPRequestHandler) -> None:
        """What LMS does with a request it cannot dispatch: close the connection without an answer."""
        handler.close_connection = True

    def _download(self, handler: BaseHTTPRequestHandler, track_id: str) -> None:
        track = self.tracks.get(int(track_id)) if track_id.isdigit() else None
        if track is None:
            self._send(handler, 404, b"Not Found", "text/plain")
            return
        with self._lock:
            self.downloads.append(track.id)
        content_type = mimetypes.guess_type(track.file.name)[0] or "application/octet-stream"
        status, headers, body = ranged(track.file.read_bytes(), handler.headers.get("Range"), content_type)
        self._send(handler, status, body, headers.pop("Content-Type", content_type), headers)

    def _cover(self, handler: BaseHTTPRequestHandler, track_id: str) -> None:
        """A song's picture as LMS serves it: the cover.jpg of its album's folder (LMS answers 404 without one)."""
        track = self.tracks.get(int(track_id)) if track_id.isdigit() else None
        cover = track.file.parent / "cover.jpg" if track is not None else None
        if cover is None or not cover.is_file():
            self._send(handler, 404, b"Not Found", "text/plain")
            return
        self._send(handler, 200, cover.read_bytes(), "image/jpeg")

    def _jsonrpc(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        request = json.loads(body)
        player, command = request["params"][0], list(request["params"][1])
        with self._lock:
            self.requests.append((player, command))
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        result = self._dispatch(player, command)
        if result is None:
            self._drop(handler)
            return
        answer = {"id": request.get("id"), "method": request.get("method"), "params": request["params"],
                  "result": result}
        self._send(handler, 200, json.dumps(answer).encode(), "application/json")

    # --- commands ---------------------------------------------------------------------------------------
    @staticmethod
    def _tagged(parts: list[Any]) -> dict[str, str]:
        return dict(str(p).split(":", 1) for p in parts if ":" in str(p))

    def _dispatch(self, player: str, command: list[Any]) -> dict[str, Any] | None:
        if player or not command:
            return None  # this server has no players
        name = command[0]
        if name == "albums":
            return self._albums(int(command[1]), int(command[2]), self._tagged(command[3:]))
        if name in ("titles", "songs", "tracks"):
            return self._titles(int(command[1]), int(command[2]), self._tagged(command[3:]))
        if name == "libraries":
            loop = [{"id": lib_id, "name": lib_name} for lib_id, (lib_name, _) in self.libraries.items()]
            return {"folder_loop": loop} if loop else {}
        if name == "playlists":
            return self._playlists(command[1:])
        return None

    def _in_library(self, top_folder: str, params: dict[str, str]) -> bool:
        library = params.get("library_id")
        return library is None or top_folder in self.libraries.get(library, ("", set()))[1]

    @staticmethod
    def _window(items: list[dict[str, Any]], start: int, count: int, loop: str) -> dict[str, Any]:
        page = items[start:start + count]
        return {"count": len(items), loop: page} if page else {"count": len(items)}

    def _albums(self, start: int, count: int, params: dict[str, str]) -> dict[str, Any]:
        albums = [a for a in self.albums if self._in_library(a.top_folder, params)]
        if "album_id" in params:
            albums = [a for a in self.albums if str(a.id) == params["album_id"]]
        if params.get("sort") == "new":
            albums.sort(key=lambda a: (-a.changed, a.id))
        else:
            albums.sort(key=lambda a: a.name.lower())
        tags = params.get("tags", "l")
        items = []
        for album in albums:
            item: dict[str, Any] = {"id": album.id}
            if "l" in tags:
                item["album"] = album.name
            if "t" in tags:
                item["title"] = album.name
            if "a" in tags:
                item["artist"] = album.artist
            if "S" in tags:
                item["artist_id"] = 10 + album.id
            if "y" in tags:
                item["year"] = 0  # LMS answers 0 when no track has a year
            items.append(item)
        return self._window(items, start, count, "albums_loop")

    def _titles(self, start: int, count: int, params: dict[str, str]) -> dict[str, Any]:
        tracks = [t for t in self.tracks.values() if self._in_library(t.top_folder, params)]
        if "album_id" in params:
            tracks = [t for t in tracks if str(t.album_id) == params["album_id"]]
        if "track_id" in params:
            tracks = [t for t in self.tracks.values() if str(t.id) == params["track_id"]]
        if params.get("sort") == "tracknum":
            tracks.sort(key=lambda t: (t.tracknum or 0, t.id))
        else:
            tracks.sort(key=lambda t: t.title.lower())
        tags = params.get("tags", "gald")
        items = []
        for track in tracks:
            stat = track.file.stat()
            values = {"a": ("artist", track.artist), "d": ("duration", track.duration),
                      "e": ("album_id", track.album_id), "f": ("filesize", stat.st_size), "i": ("disc", 1),
                      "g": ("genre", track.genre), "l": ("album", track.album),
                      "n": ("modificationTime", time.strftime("%A, %B %d, %Y, %I:%M:%S %p",
                                                              time.localtime(stat.st_mtime))),
                      "t": ("tracknum", str(track.tracknum) if track.tracknum else None), "u": ("url", track.url),
                      "y": ("year", 0), "O": ("playcount", track.playcount), "s": ("artist_id", 10 + track.album_id)}
            item: dict[str, Any] = {"id": track.id, "title": track.title}
            for letter in tags:
                if letter in values and values[letter][1] is not None:
                    key, value = values[letter]
                    item[key] = value
            items.append(item)
        return self._window(items, start, count, "titles_loop")

    def _playlists(self, args: list[Any]) -> dict[str, Any] | None:
        params = self._tagged(args)
        with self._lock:
            if args and args[0] == "new":
                name = params.get("name", "")
                for playlist_id, existing in self.playlists.items():
                    if existing["name"] == name:
                        return {"overwritten_playlist_id": playlist_id}
                self._next_playlist_id += 1
                self.playlists[self._next_playlist_id] = {"name": name, "urls": []}
                return {"playlist_id": self._next_playlist_id}
            playlist = self.playlists.get(int(params.get("playlist_id", "0") or 0))
            if args and args[0] == "delete":
                if playlist is None:
                    return None
                del self.playlists[int(params["playlist_id"])]
                return {}
            if args and args[0] == "edit":
                if playlist is not None and params.get("cmd") == "delete" and params.get("index", "").isdigit():
                    del playlist["urls"][int(params["index"]):int(params["index"]) + 1]  # LMS's splice
                    return {}
                if playlist is None or params.get("cmd") != "add" or "url" not in params:
                    return None
                if params["url"] not in playlist["urls"]:  # LMS adds a track only once per playlist
                    playlist["urls"].append(params["url"])
                return {}
            if args and args[0] == "tracks":
                if playlist is None:
                    return None
                by_url = {t.url: t for t in self.tracks.values()}
                items = [{"playlist index": i, "id": by_url[url].id, "title": by_url[url].title}
                         for i, url in enumerate(playlist["urls"]) if url in by_url]
                return self._window(items, int(args[1]), int(args[2]), "playlisttracks_loop")
            if args and str(args[0]).isdigit():
                tags = params.get("tags", "")
                items = []
                for playlist_id, entry in sorted(self.playlists.items(), key=lambda kv: kv[1]["name"].lower()):
                    item: dict[str, Any] = {"id": playlist_id, "playlist": entry["name"]}
                    if "u" in tags:
                        item["url"] = "file://" + quote(f"/srv/playlists/{entry['name']}.m3u", safe="/")
                    items.append(item)
                return self._window(items, int(args[0]), int(args[1]), "playlists_loop")
        return None

    def add_playlist(self, name: str, track_ids: list[int]) -> int:
        """A playlist made by hand on the server (not by AudioMuse)."""
        with self._lock:
            self._next_playlist_id += 1
            self.playlists[self._next_playlist_id] = {"name": name, "urls": [self.tracks[i].url for i in track_ids]}
            return self._next_playlist_id
