"""A small Jellyfin / Emby server for tests: exactly the endpoints AudioMuse calls, with the documented shapes.

It serves a folder of real audio files as libraries (one sub-folder per library; an album is a folder holding
audio files), pages `/Users/{id}/Items` with StartIndex/Limit/TotalRecordCount, keeps playlists and play counts in
memory, checks the `X-Emby-Token` header, and can be told to fail or stall (`fault`). The Emby flavour answers
only under `/emby` and creates/deletes playlists Emby's way; item ids are GUIDs on Jellyfin and numbers on Emby.
Fields that the real servers send only on request (Path, DateCreated, MediaSources, ChildCount, Etag) are sent
only when asked for in `Fields`, so an adapter that forgets to ask notices.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import mutagen

from tests.fakes.server import ranged

AUDIO_SUFFIXES = {".flac", ".ogg", ".mp3", ".wav", ".m4a", ".opus"}
CONTENT_TYPES = {".flac": "audio/flac", ".ogg": "audio/ogg", ".mp3": "audio/mpeg", ".wav": "audio/wav"}
FIRST_ADDED = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
API_KEY = "fake-api-key"


def dotnet_date(moment: datetime) -> str:
    """A date as .NET writes it: seven fractional digits and Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass
class Fault:
    """Answer requests whose path contains `path_contains` (and whose query string contains `query_contains`) with
    `status` after `delay` s, `times` times."""

    path_contains: str = ""
    status: int | None = None
    delay: float = 0.0
    times: int | None = None  # None: every time
    query_contains: str = ""


@dataclass
class Call:
    method: str
    path: str  # without the /emby prefix
    query: dict[str, str]
    token: str | None


@dataclass
class FakePlaylist:
    playlist_id: str
    name: str
    owner_id: str
    item_ids: list[str] = field(default_factory=list)
    entry_ids: list[str] = field(default_factory=list)  # PlaylistItemId of each entry, parallel to item_ids

    def add(self, item_ids: list[str], new_entry_id: Any) -> None:
        self.item_ids += item_ids
        self.entry_ids += [new_entry_id() for _ in item_ids]


class FakeJellyfin:
    """The fake server; `with FakeJellyfin(root, flavour="emby") as fake:` serves it on `fake.url`."""

    def __init__(self, root: Path, *, flavour: str = "jellyfin", server_root: str = "/srv/media",
                 libraries: dict[str, str] | None = None) -> None:
        if flavour not in ("jellyfin", "emby"):
            raise ValueError(f"flavour {flavour!r} is not jellyfin or emby")
        self.root = root
        self.flavour = flavour
        self.prefix = "/emby" if flavour == "emby" else ""
        self.server_root = server_root  # where the "server" sees the files: PATH_MAPPING maps it to `root`
        self._numbers = itertools.count(1001)
        self.users = {"Alice": self._new_id("user:Alice", user=True), "Bob": self._new_id("user:Bob", user=True)}
        self.tokens: dict[str, str | None] = {API_KEY: None, "alice-token": self.users["Alice"],
                                              "bob-token": self.users["Bob"]}
        self.folders: list[dict[str, Any]] = []
        self.albums: list[dict[str, Any]] = []
        self.tracks: list[dict[str, Any]] = []
        self.files: dict[str, Path] = {}
        self.playlists: dict[str, FakePlaylist] = {}
        self.user_data: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.send_entry_ids = True  # False: playlist items come without PlaylistItemId (a server that names none)
        self.album_dirs: dict[str, Path] = {}  # an album's folder: its cover.jpg is the album's Primary image
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._scan(libraries if libraries is not None else
                   {p.name: "music" for p in sorted(root.iterdir()) if p.is_dir()})
        self._http: ThreadingHTTPServer | None = None
        self.url = ""

    # --- library --------------------------------------------------------------------------------------------
    def _new_id(self, key: str, *, user: bool = False) -> str:
        if self.flavour == "emby" and not user:
            return str(next(self._numbers))  # Emby item ids are numbers; its user ids are GUIDs
        return hashlib.md5(f"{self.flavour}:{key}".encode()).hexdigest()

    def _scan(self, libraries: dict[str, str]) -> None:
        added = FIRST_ADDED
        for name, collection_type in libraries.items():
            folder_id = self._new_id(f"library:{name}")
            self.folders.append({"Name": name, "Locations": [f"{self.server_root}/{name}"],
                                 "CollectionType": collection_type, "ItemId": folder_id})
            directory = self.root / name
            if collection_type != "music" or not directory.is_dir():
                continue
            for album_dir in sorted(p for p in directory.rglob("*") if p.is_dir()):
                files = sorted(f for f in album_dir.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
                if files:
                    added += timedelta(days=1, seconds=17)
                    self._add_album(album_dir, files, library_id=folder_id, added=added)

    def _add_album(self, album_dir: Path, files: list[Path], *, library_id: str, added: datetime) -> None:
        relative = album_dir.relative_to(self.root).as_posix()
        album_id = self._new_id(f"album:{relative}")
        artist = album_dir.parent.name
        year = 1990 + len(self.albums)
        album = {"Id": album_id, "Name": album_dir.name, "Type": "MusicAlbum", "IsFolder": True,
                 "AlbumArtist": artist, "AlbumArtists": [{"Name": artist, "Id": self._new_id(f"artist:{artist}")}],
                 "Artists": [artist], "ProductionYear": year, "ParentId": library_id,
                 "_added": added, "_ancestors": {library_id}}
        self.albums.append(album)
        self.album_dirs[album_id] = album_dir
        for number, path in enumerate(files, start=1):
            audio = mutagen.File(path, easy=True)
            tags = dict(audio.tags or {}) if audio is not None and audio.tags is not None else {}
            track_id = self._new_id(f"track:{relative}/{path.name}")
            self.files[track_id] = path
            stat = path.stat()
            self.tracks.append({
                "Id": track_id, "Name": tags.get("title", [path.stem.split(" ", 1)[-1]])[0], "Type": "Audio",
                "MediaType": "Audio", "Album": album_dir.name, "AlbumId": album_id, "AlbumArtist": artist,
                "Artists": tags.get("artist", [artist]), "ProductionYear": year,
                "ArtistItems": [{"Name": a, "Id": hashlib.md5(f"artist:{a}".encode()).hexdigest()}
                                for a in tags.get("artist", [artist])],
                "IndexNumber": int(tags.get("tracknumber", [number])[0]), "ParentIndexNumber": 1,
                "RunTimeTicks": round(audio.info.length * 10_000_000) if audio is not None else None,
                "ParentId": album_id, "_added": added + timedelta(seconds=number),
                "_ancestors": {library_id, album_id},
                "_path": f"{self.server_root}/{path.relative_to(self.root).as_posix()}",
                "_genres": list(tags.get("genre", [])),
                "_size": stat.st_size, "_etag": hashlib.md5(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest(),
            })

    def albums_newest_first(self, library: str | None = None) -> list[dict[str, Any]]:
        folder_ids = {f["ItemId"] for f in self.folders if library is None or f["Name"] == library}
        chosen = [a for a in self.albums if a["ParentId"] in folder_ids]
        return sorted(chosen, key=lambda a: a["_added"], reverse=True)

    def album_tracks(self, album_id: str) -> list[dict[str, Any]]:
        return sorted((t for t in self.tracks if t["AlbumId"] == album_id), key=lambda t: t["IndexNumber"])

    def server_path(self, item_id: str) -> str:
        return next(str(t["_path"]) for t in self.tracks if t["Id"] == item_id)

    # --- switches and state for tests -----------------------------------------------------------------------
    def fault(self, *, path_contains: str = "", status: int | None = None, delay: float = 0.0,
              times: int | None = None, query_contains: str = "") -> None:
        self.faults.append(Fault(path_contains, status, delay, times, query_contains))

    def set_played(self, user: str, item_id: str, count: int, last_played: datetime | None = None) -> None:
        data: dict[str, Any] = {"PlayCount": count, "Played": count > 0, "IsFavorite": False}
        if last_played is not None:
            data["LastPlayedDate"] = dotnet_date(last_played)
        self.user_data[(self.users[user], item_id)] = data

    def add_playlist(self, name: str, item_ids: list[str], *, owner: str = "Alice") -> str:
        playlist_id = self._new_id(f"playlist:{name}:{len(self.playlists)}:{next(self._numbers)}")
        self.playlists[playlist_id] = FakePlaylist(playlist_id, name, self.users[owner])
        self.playlists[playlist_id].add(list(item_ids), self._entry_id)
        return playlist_id

    def _entry_id(self) -> str:
        """A new playlist entry id (PlaylistItemId): its own GUID, never an item's id."""
        return hashlib.md5(f"entry:{next(self._numbers)}".encode()).hexdigest()

    def calls_to(self, fragment: str, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if fragment in c.path and (method is None or c.method == method)]

    # --- serving --------------------------------------------------------------------------------------------
    def start(self) -> FakeJellyfin:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled answers
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> FakeJellyfin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- request handling (runs in the server's threads) ----------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        token = headers.get("X-Emby-Token")
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return _text(404, "not found")
            path = path[len(self.prefix):]
        elif path.startswith("/emby/"):
            return _text(404, "not found")
        with self._lock:
            self.calls.append(Call(method, path, query, token))
            fault = self._take_fault(path, unquote(parts.query))
        if fault is not None:
            if fault.delay:
                self._stopping.wait(fault.delay)
            if fault.status:
                return _text(fault.status, "Error processing request." if fault.status >= 500 else "Not found")
        if token not in self.tokens:
            return _text(401, "Unauthorized")
        token_user = self.tokens[token]
        segments = [s for s in path.split("/") if s]
        if method == "GET" and len(segments) == 3 and segments[0] == "Audio" and segments[2] == "stream":
            file = self.files.get(segments[1])
            if file is None:
                return _text(404, "Item not found")
            return ranged(file.read_bytes(), headers.get("Range"),
                          CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream"))
        with self._lock:
            return self._route(method, path, query, body, token_user)

    def _take_fault(self, path: str, query: str = "") -> Fault | None:
        for fault in self.faults:
            if fault.path_contains in path and fault.query_contains in query \
                    and (fault.times is None or fault.times > 0):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes,
               token_user: str | None) -> tuple[int, dict[str, str], bytes]:
        segments = [s for s in path.split("/") if s]
        emby = self.flavour == "emby"
        if method == "GET" and segments == ["Users"]:
            return _json([{"Name": name, "Id": user_id, "HasPassword": True,
                           "Policy": {"IsAdministrator": name == "Alice"}} for name, user_id in self.users.items()])
        if method == "GET" and segments == ["Library", "VirtualFolders"]:
            return _json(self.folders)
        if method == "GET" and len(segments) == 3 and segments[0] == "Users" and segments[2] == "Items":
            user_id = segments[1]
            if user_id not in self.users.values():
                return _text(404, "User not found")
            if token_user is not None and token_user != user_id:
                return _text(403, "User is not allowed to access this library")
            return self._items(user_id, query)
        if method == "GET" and len(segments) == 4 and segments[0] == "Items" and segments[2:] == ["Images", "Primary"]:
            # the documented image API: an album's picture (its folder's cover.jpg); songs have none of their own
            cover = self.album_dirs[segments[1]] / "cover.jpg" if segments[1] in self.album_dirs else None
            if cover is None or not cover.is_file():
                return _text(404, "Image not found")
            return 200, {"Content-Type": "image/jpeg"}, cover.read_bytes()
        if method == "GET" and len(segments) == 3 and segments[0] == "Items" and segments[2] == "Download":
            file = self.files.get(segments[1])
            if file is None:
                return _text(404, "Item not found")
            return 200, {"Content-Type": CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream"),
                         "Content-Disposition": f'attachment; filename="{file.name}"'}, file.read_bytes()
        if method == "POST" and segments == ["Playlists"]:
            return self._create_playlist(query if emby else _json_body(body), token_user, emby=emby)
        if method == "GET" and len(segments) == 3 and segments[0] == "Playlists" and segments[2] == "Items":
            # the documented playlist items query: the playlist's entries in order, paged like /Items
            playlist = self.playlists.get(segments[1])
            if playlist is None:
                return _text(404, "Playlist not found")
            by_id = {t["Id"]: t for t in self.tracks}
            entries = [(by_id[i], entry) for i, entry in zip(playlist.item_ids, playlist.entry_ids, strict=True)
                       if i in by_id]
            start = int(query.get("StartIndex") or 0)
            limit = int(query["Limit"]) if query.get("Limit") else len(entries)
            user = query.get("UserId") or token_user or ""
            return _json({"Items": [{**self._render(i, user, set()),
                                     **({"PlaylistItemId": entry} if self.send_entry_ids else {})}
                                    for i, entry in entries[start:start + limit]],
                          "TotalRecordCount": len(entries), "StartIndex": start})
        if method == "POST" and len(segments) == 3 and segments[0] == "Playlists" and segments[2] == "Items":
            playlist = self.playlists.get(segments[1])
            if playlist is None:
                return _text(404, "Playlist not found")
            ids = [i for i in query.get("Ids", "").split(",") if i]
            unknown = [i for i in ids if i not in self.files]
            if unknown or not query.get("UserId"):
                return _text(400, f"bad request: unknown ids {unknown} or no UserId")
            playlist.add(ids, self._entry_id)
            return _json({"ItemAddedCount": len(ids)}) if emby else (204, {}, b"")
        if method == "DELETE" and len(segments) == 3 and segments[0] == "Playlists" and segments[2] == "Items":
            # removes entries by their PlaylistItemId (documented for both: Jellyfin's entryIds, Emby's EntryIds)
            playlist = self.playlists.get(segments[1])
            if playlist is None:
                return _text(404, "Playlist not found")
            gone = {i for i in (query.get("EntryIds") or query.get("entryIds") or "").split(",") if i}
            if not gone:
                return _text(400, "EntryIds is required")
            kept = [(i, e) for i, e in zip(playlist.item_ids, playlist.entry_ids, strict=True) if e not in gone]
            playlist.item_ids, playlist.entry_ids = [i for i, _ in kept], [e for _, e in kept]
            return 204, {}, b""
        if not emby and method == "DELETE" and len(segments) == 2 and segments[0] == "Items":
            if self.playlists.pop(segments[1], None) is None:
                return _text(404, "Item not found")
            return 204, {}, b""
        if emby and method == "POST" and segments == ["Items", "Delete"]:
            ids = [i for i in query.get("Ids", "").split(",") if i]
            if not ids or any(i not in self.playlists for i in ids):
                return _text(404, "Item not found")
            for playlist_id in ids:
                del self.playlists[playlist_id]
            return 204, {}, b""
        return _text(404, f"no route {method} {path}")

    def _create_playlist(self, values: dict[str, Any], token_user: str | None, *,
                         emby: bool) -> tuple[int, dict[str, str], bytes]:
        name, user_id = values.get("Name"), values.get("UserId")
        ids: Any = [i for i in str(values.get("Ids") or "").split(",") if i] if emby else values.get("Ids") or []
        if not name or not user_id or values.get("MediaType") != "Audio" or not isinstance(ids, list):
            return _text(400, "Name, UserId and MediaType=Audio are required")
        if token_user is not None and token_user != user_id:
            return _text(403, "User is not allowed to create playlists for another user")
        if any(i not in self.files for i in ids):
            return _text(400, "unknown item id")
        playlist_id = self._new_id(f"playlist:{name}:{next(self._numbers)}")
        self.playlists[playlist_id] = FakePlaylist(playlist_id, str(name), str(user_id))
        self.playlists[playlist_id].add([str(i) for i in ids], self._entry_id)
        return _json({"Id": playlist_id, "Name": name, "ItemAddedCount": len(ids)} if emby else {"Id": playlist_id})

    def _items(self, user_id: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        types = set(query.get("IncludeItemTypes", "").split(","))
        fields = set(query.get("Fields", "").split(","))
        parent = query.get("ParentId")
        recursive = query.get("Recursive", "").lower() == "true"
        pool: list[dict[str, Any]] = []
        if "MusicAlbum" in types:
            pool += self.albums
        if "Audio" in types:
            pool += self.tracks
        if "Playlist" in types:
            pool += [self._playlist_item(p) for p in self.playlists.values() if p.owner_id == user_id]
        if parent:
            pool = [i for i in pool
                    if (parent in i.get("_ancestors", ()) if recursive else i.get("ParentId") == parent)]
        elif not recursive:
            pool = []  # the user's root views, which AudioMuse never asks for
        if "IsPlayed" in query.get("Filters", "").split(","):
            pool = [i for i in pool if self._user_data(user_id, i["Id"])["PlayCount"] > 0]
        descending = query.get("SortOrder", "Ascending") == "Descending"
        for key in reversed([k for k in query.get("SortBy", "").split(",") if k]):
            pool = sorted(pool, key=self._sort_key(key, user_id), reverse=descending)
        start = int(query.get("StartIndex") or 0)
        limit = int(query["Limit"]) if query.get("Limit") else len(pool)
        page = pool[start:start + limit]
        return _json({"Items": [self._render(i, user_id, fields) for i in page], "TotalRecordCount": len(pool),
                      "StartIndex": start})

    def _sort_key(self, key: str, user_id: str) -> Any:
        if key == "DateCreated":
            return lambda i: i["_added"]
        if key == "PlayCount":
            return lambda i: self._user_data(user_id, i["Id"])["PlayCount"]
        if key in ("SortName", "Name"):
            return lambda i: str(i.get("Name", "")).lower()
        return lambda i: i.get(key) or 0

    def _user_data(self, user_id: str, item_id: str) -> dict[str, Any]:
        return self.user_data.get((user_id, item_id), {"PlayCount": 0, "Played": False, "IsFavorite": False})

    def _playlist_item(self, playlist: FakePlaylist) -> dict[str, Any]:
        return {"Id": playlist.playlist_id, "Name": playlist.name, "Type": "Playlist", "MediaType": "Audio",
                "IsFolder": True, "_added": FIRST_ADDED, "_count": len(playlist.item_ids)}

    def _render(self, item: dict[str, Any], user_id: str, fields: set[str]) -> dict[str, Any]:
        shown = {k: v for k, v in item.items() if not k.startswith("_")}
        shown["ServerId"] = "fake-server"
        shown["UserData"] = self._user_data(user_id, item["Id"])
        if "DateCreated" in fields:
            shown["DateCreated"] = dotnet_date(item["_added"])
        if "ChildCount" in fields and "_count" in item:
            shown["ChildCount"] = item["_count"]
        if "_genres" in item and "Genres" in fields:  # Jellyfin sends Genres only when Fields asks for them
            shown["Genres"] = item["_genres"]
        if "_path" in item:
            if "Path" in fields:
                shown["Path"] = item["_path"]
            if "Etag" in fields:
                shown["Etag"] = item["_etag"]
            if "MediaSources" in fields:
                shown["MediaSources"] = [{"Id": item["Id"], "Protocol": "File", "Path": item["_path"],
                                          "Type": "Default", "Container": Path(item["_path"]).suffix.lstrip("."),
                                          "Size": item["_size"], "RunTimeTicks": item["RunTimeTicks"]}]
        return shown


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeJellyfin

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, headers, payload = self.server_fake.handle(self.command, self.path, self.headers, body)
        except Exception as exc:  # a bug in the fake should show up as a 500, not a hung client
            status, headers, payload = _text(500, f"fake server error: {type(exc).__name__}: {exc}")
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a stalled answer): nothing to tell it

    do_GET = do_POST = do_DELETE = _answer  # noqa: N815 (the names http.server dispatches to)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's signature)
        pass


def _json(value: Any, status: int = 200) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(value).encode()


def _text(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "text/plain; charset=utf-8"}, message.encode()


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
