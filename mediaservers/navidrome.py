"""Navidrome — or any server speaking the Subsonic API (supysonic, gonic, Airsonic…) — as the media server.

Every call is `GET {NAVIDROME_URL}/rest/{method}` with `u`, `v`, `c=AudioMuse`, `f=json` and credentials. The
adapter prefers token auth (`t` = md5(password + salt), `s` = salt, API 1.16.1); servers older than API 1.13 or
answering "token auth not supported" get the legacy `p=enc:<hex password>` instead. Which one works is found out by
one `ping` per adapter instance. Subsonic reports failures with HTTP 200 and a `status: failed` body; those become
MediaServerError with the server's own message.

Albums come from `getAlbumList2?type=newest` (paged), tracks from `getAlbum` (a whole library's from `search3` with an
empty query, paged; albums it lists short of their song count by `getAlbum`), audio from `download` (the original
file) unless the song's `path` is readable here after PATH_MAPPING. Subsonic paths are often relative to the music
folder (supysonic, Navidrome without "report real path"): map those with an empty server prefix
(`PATH_MAPPING='=/srv/music'`) or a prefix of the relative path; an unmapped relative path is downloaded, never
looked up relative to the working directory.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

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
from mediaservers.values import epoch_seconds, genre_names, int_or_none

API_VERSION = "1.16.1"
LEGACY_API_VERSION = "1.12.0"  # sent with p=enc: when the server does not say which version it speaks
TOKEN_AUTH_SINCE = (1, 13, 0)
CLIENT_NAME = "AudioMuse"
MAX_PAGE_SIZE = 500  # the Subsonic API's cap for getAlbumList2 `size`
DEFAULT_PLAYLIST_BATCH = 100  # song ids per createPlaylist/updatePlaylist call: keeps URLs well under 8 KB

# Subsonic error codes (http://www.subsonic.org/pages/api.jsp, OpenSubsonic adds 42-44).
WRONG_CREDENTIALS = 40
NOT_AUTHORIZED = 50
NOT_FOUND = 70
# "Server must upgrade", "token auth not supported for LDAP users", "auth mechanism not supported": try p=enc:.
TOKEN_UNSUPPORTED = frozenset({30, 41, 42})

SERVER_LABEL = "Navidrome"
# search3 queries that mean "every song": supysonic's, then Navidrome's (the one Subsonic clients send to sync).
EVERY_SONG_QUERIES = ("", '""')


class SubsonicError(MediaServerError):
    """The server answered `status: failed`; `code` is the Subsonic error code."""

    def __init__(self, message: str, *, code: int | None) -> None:
        meaning = {WRONG_CREDENTIALS: "wrong user or password", NOT_AUTHORIZED: "not allowed for this user",
                   NOT_FOUND: "not found"}.get(code or -1, "the server refused")
        super().__init__(message, cause=f"Subsonic error {code}: {meaning}")
        self.code = code


def _version_tuple(text: object) -> tuple[int, ...]:
    parts = []
    for piece in str(text or "").split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def _one_line(text: object) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0][:200] if lines else "no message"


def _as_list(value: object) -> list[Any]:
    """Subsonic JSON holds one-element lists as lists, but some servers drop empty lists or send a bare object."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _song_track(song: Mapping[str, Any], album_id: str, album: Mapping[str, Any]) -> Track:
    """A Subsonic song (`Child`) of album `album_id` as a Track; `album` is its AlbumID3 (getAlbum's, or the entry
    getAlbumList2 gave: `name`, `artist`, `artistId`), which fills what the song leaves out."""
    album_artist = str(album.get("artist") or "")
    artist = str(song.get("artist") or album_artist or "Unknown artist")
    size = int_or_none(song.get("size"))
    created = song.get("created")
    # size + created changes when the file is replaced or rescanned as new; None: always check content.
    marker = [str(size) if size is not None and size >= 0 else "", str(created or "")]
    duration = song.get("duration")
    return Track(
        item_id=str(song["id"]),
        title=str(song.get("title") or song["id"]),
        artist=artist,
        album=str(song.get("album") or album.get("name") or ""),
        album_artist=str(song.get("albumArtist") or album_artist or artist),
        album_id=album_id,
        path=str(song["path"]) if song.get("path") else None,
        duration_seconds=float(duration) if isinstance(duration, int | float) and duration > 0 else None,
        year=int_or_none(song.get("year")) or None,
        track_number=int_or_none(song.get("track")),
        signature=":".join(marker) if any(marker) else None,
        genres=genre_names(song.get("genres"), song.get("genre")),
        artist_id=str(song.get("artistId") or album.get("artistId") or "") or None,
    )


def _error_of(answer: Mapping[str, Any]) -> tuple[int | None, str]:
    """(code, one-line message) of a failed answer; supysonic may send a list of errors: the first counts."""
    errors = _as_list(answer.get("error"))
    error = errors[0] if errors and isinstance(errors[0], dict) else {}
    return int_or_none(error.get("code")), _one_line(error.get("message"))


class Navidrome:
    """A Subsonic API server read as one user (NAVIDROME_USER, or the per-call UserCredentials)."""

    kind = "navidrome"
    display_name = "Navidrome (Subsonic API)"
    settings = (SettingField("url", "NAVIDROME_URL", "URL", "http://navidrome:4533"),
                SettingField("user", "NAVIDROME_USER", "User"),
                SettingField("secret", "NAVIDROME_PASSWORD", "Password"), MUSIC_LIBRARIES_FIELD, PATH_MAPPING_FIELD)
    capabilities = frozenset({Capability.PLAY_HISTORY, Capability.SENDS_AUDIO, Capability.STREAMS_AUDIO,
                              Capability.KEEPS_PLAYLIST_ID, Capability.ALBUM_LIBRARIES, Capability.LISTS_ALL_TRACKS,
                              Capability.COVER_ART})

    def __init__(self, base_url: str, *, user: str, password: str, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.5, music_libraries: Sequence[str] = (),
                 path_mapping: Sequence[tuple[str, str]] = (), temp_dir: Path = Path("/tmp/audiomuse"),
                 page_size: int = MAX_PAGE_SIZE, playlist_batch: int = DEFAULT_PLAYLIST_BATCH,
                 download_limits: DownloadLimits | None = None) -> None:
        """Connect lazily: nothing is sent until the first call, which pings once to pick the auth method.

        `page_size` (1-500) is the getAlbumList2 page; `playlist_batch` the song ids sent per playlist call.
        """
        if not user:
            raise MediaServerError("no Navidrome user configured (NAVIDROME_USER)")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise MediaServerError(f"page_size={page_size} is outside 1..{MAX_PAGE_SIZE}")
        if playlist_batch < 1:
            raise MediaServerError(f"playlist_batch={playlist_batch} must be at least 1")
        self._options: dict[str, Any] = {
            "timeout": timeout, "retries": retries, "backoff": backoff, "music_libraries": tuple(music_libraries),
            "path_mapping": tuple(path_mapping), "temp_dir": temp_dir, "page_size": page_size,
            "playlist_batch": playlist_batch, "download_limits": download_limits}
        self._http = HttpClient(SERVER_LABEL, base_url, timeout=timeout, retries=retries, backoff=backoff,
                                download_limits=download_limits)
        self.base_url = self._http.base_url
        self.user = user
        self._password = password
        self.music_libraries = list(music_libraries)
        self.path_mapping = list(path_mapping)
        self.temp_dir = temp_dir
        self.page_size = page_size
        self.playlist_batch = playlist_batch
        self._legacy_version: str | None = None  # set when the server needs p=enc:
        self._negotiated = False

    @classmethod
    def from_config(cls, config: Config, *, user: UserCredentials | None = None, **options: Any) -> Navidrome:
        """The adapter for NAVIDROME_URL acting as `user` (else NAVIDROME_USER/NAVIDROME_PASSWORD).

        `options` (page_size, playlist_batch, backoff) override the defaults; the rest comes from `config`.
        """
        if not config.NAVIDROME_URL:
            raise MediaServerError("NAVIDROME_URL is not set")
        return cls(config.NAVIDROME_URL, user=user.user if user else config.NAVIDROME_USER,
                   password=user.secret if user else config.NAVIDROME_PASSWORD,
                   timeout=config.HTTP_TIMEOUT_SECONDS, retries=config.HTTP_RETRIES,
                   music_libraries=config.music_libraries, path_mapping=config.path_mapping,
                   temp_dir=Path(config.TEMP_DIR), download_limits=DownloadLimits.from_config(config), **options)

    def as_user(self, credentials: UserCredentials) -> Navidrome:
        """The same server read as another user."""
        return Navidrome(self.base_url, user=credentials.user, password=credentials.secret, **self._options)

    # --- protocol -------------------------------------------------------------------------------------------
    @property
    def auth_method(self) -> str:
        """'token' or 'password' (p=enc:), as found by the first ping."""
        self._negotiate()
        return "password" if self._legacy_version else "token"

    def _token_params(self) -> dict[str, str]:
        salt = secrets.token_hex(8)  # a fresh salt per request, as the API recommends
        token = hashlib.md5((self._password + salt).encode()).hexdigest()
        return {"u": self.user, "t": token, "s": salt, "v": API_VERSION, "c": CLIENT_NAME, "f": "json"}

    def _password_params(self, version: str) -> dict[str, str]:
        return {"u": self.user, "p": "enc:" + self._password.encode().hex(), "v": version, "c": CLIENT_NAME,
                "f": "json"}

    def _auth_params(self) -> dict[str, str]:
        self._negotiate()
        if self._legacy_version:
            return self._password_params(self._legacy_version)
        return self._token_params()

    def _negotiate(self) -> None:
        """Ping with a token; fall back to p=enc: when the server is too old for tokens or refuses them."""
        if self._negotiated:
            return
        answer = self._response("ping", self._http.get_json("rest/ping", params=self._token_params()))
        if answer.get("status") != "ok":
            code, _ = _error_of(answer)
            # supysonic (1.12.0) answers a token with "required parameter missing"; only the version tells.
            if _version_tuple(answer.get("version")) < TOKEN_AUTH_SINCE or code in TOKEN_UNSUPPORTED:
                legacy = str(answer.get("version") or LEGACY_API_VERSION)
                retry = self._response("ping", self._http.get_json("rest/ping",
                                                                   params=self._password_params(legacy)))
                self._raise_if_failed("ping", retry)
                self._legacy_version = legacy
            else:
                self._raise_if_failed("ping", answer)
        self._negotiated = True

    def _response(self, method: str, body: object) -> dict[str, Any]:
        inner = body.get("subsonic-response") if isinstance(body, dict) else None
        if not isinstance(inner, dict):
            raise MediaServerError(f"{SERVER_LABEL} at {self.base_url} answered {method} without a "
                                   "'subsonic-response' (is NAVIDROME_URL a Subsonic API server?)")
        return inner

    def _raise_if_failed(self, method: str, answer: Mapping[str, Any]) -> None:
        if answer.get("status") == "ok":
            return
        code, message = _error_of(answer)
        if code == WRONG_CREDENTIALS:
            text = f"{SERVER_LABEL} at {self.base_url} refused the credentials of user {self.user!r}: {message}"
        elif code == NOT_AUTHORIZED:
            text = f"{SERVER_LABEL} user {self.user!r} may not call {method}: {message}"
        elif code == NOT_FOUND:
            text = f"{SERVER_LABEL} {method}: {message}"
        else:
            text = f"{SERVER_LABEL} {method} failed: {message} (Subsonic error {code})"
        raise SubsonicError(text, code=code)

    def _call(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One API call; list values in `params` become repeated parameters (songId=…&songId=…)."""
        query: dict[str, Any] = dict(self._auth_params())
        query.update(params or {})
        answer = self._response(method, self._http.get_json(f"rest/{method}", params=query))
        self._raise_if_failed(method, answer)
        return answer

    # --- libraries and albums -------------------------------------------------------------------------------
    def list_libraries(self) -> list[Library]:
        folders = _as_list(self._call("getMusicFolders").get("musicFolders", {}).get("musicFolder"))
        return [Library(library_id=str(f["id"]), name=str(f.get("name") or f["id"])) for f in folders]

    def _folder_ids(self) -> list[str | None]:
        """The musicFolderId values MUSIC_LIBRARIES names ([None]: no filter)."""
        if not self.music_libraries:
            return [None]
        return list(library_ids_for(self.music_libraries, self.list_libraries(), server=SERVER_LABEL))

    def _album_list(self, list_type: str, *, limit: int | None,
                    folder_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Album entries of getAlbumList2 `list_type`, page by page, until exhausted or `limit` reached."""
        seen: set[str] = set()
        offset = 0
        while limit is None or len(seen) < limit:
            size = self.page_size if limit is None else min(self.page_size, limit - len(seen))
            params: dict[str, Any] = {"type": list_type, "size": size, "offset": offset}
            if folder_id is not None:
                params["musicFolderId"] = folder_id
            page = _as_list(self._call("getAlbumList2", params).get("albumList2", {}).get("album"))
            fresh = [a for a in page if isinstance(a, dict) and str(a.get("id")) not in seen]
            for entry in fresh:
                seen.add(str(entry.get("id")))
                yield entry
            # A short page is the last one; a page of known albums means the server ignores `offset`.
            if len(page) < size or not fresh:
                return
            offset += len(page)

    def album_libraries(self, albums: Sequence[Album]) -> dict[str, str]:
        """Which music folder (library; of MUSIC_LIBRARIES, when set) each album is in: one album listing per
        folder when there are several, none when there is one."""
        libraries = self.list_libraries()
        if self.music_libraries:
            wanted = {name.casefold() for name in self.music_libraries}
            libraries = [lib for lib in libraries if lib.name.casefold() in wanted]
        return libraries_by_album(albums, libraries, lambda lib: (
            str(entry.get("id")) for entry in self._album_list("alphabeticalByName", limit=None,
                                                               folder_id=lib.library_id)), one_holds_all=True)

    @staticmethod
    def _album(entry: Mapping[str, Any]) -> Album:
        return Album(album_id=str(entry["id"]), name=str(entry.get("name") or entry.get("title") or entry["id"]),
                     artist=str(entry.get("artist") or "Unknown artist"), year=int_or_none(entry.get("year")) or None,
                     added_at=epoch_seconds(entry.get("created")))

    def list_albums(self, *, limit: int | None = None) -> list[Album]:
        wanted = limit if limit is not None and limit > 0 else None
        folder_ids = self._folder_ids()
        albums: dict[str, Album] = {}
        for folder_id in folder_ids:
            for entry in self._album_list("newest", limit=wanted, folder_id=folder_id):
                album = self._album(entry)
                albums.setdefault(album.album_id, album)
        ordered = list(albums.values())
        if len(folder_ids) > 1:  # one list per library: merge them, newest first
            ordered.sort(key=lambda a: -(a.added_at or 0.0))
        return ordered[:wanted] if wanted else ordered

    def _album_songs(self, album_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        album = self._call("getAlbum", {"id": album_id}).get("album") or {}
        songs = [s for s in _as_list(album.get("song")) if isinstance(s, dict) and not s.get("isVideo")]
        return album, songs

    def album_tracks(self, album_id: str) -> list[Track]:
        album, songs = self._album_songs(album_id)
        return [_song_track(song, album_id, album) for song in songs]

    def all_tracks(self, *, page_size: int = 1000) -> Iterator[list[Track]]:
        """Every song of the albums list_albums gives, each as album_tracks gives it, from `search3` with an empty
        query (every song, `page_size` a request, per MUSIC_LIBRARIES folder when set) instead of one getAlbum per
        album. An album of which fewer songs came than its `songCount` (a server that answers an empty query with
        nothing, or a library changing while it is read) is listed with getAlbum afterwards; its songs that had
        already come are then listed twice, which the consumers allow."""
        folder_ids = self._folder_ids()
        albums: dict[str, dict[str, Any]] = {}
        for folder_id in folder_ids:
            for entry in self._album_list("newest", limit=None, folder_id=folder_id):
                albums.setdefault(str(entry["id"]), {"name": entry.get("name") or entry.get("title"),
                                                     "artist": entry.get("artist"), "artistId": entry.get("artistId"),
                                                     "songCount": int_or_none(entry.get("songCount"))})
        came = dict.fromkeys(albums, 0)
        for folder_id in folder_ids:
            for songs in self._every_song(folder_id, page_size):
                page = []
                for song in songs:
                    album_id = str(song.get("albumId") or "")
                    if album_id in albums and not song.get("isVideo"):
                        page.append(_song_track(song, album_id, albums[album_id]))
                        came[album_id] += 1
                if page:
                    yield page
        page = []
        for album_id, album in albums.items():
            if came[album_id] < (album["songCount"] if album["songCount"] is not None else 1):
                page.extend(self.album_tracks(album_id))
                if len(page) >= page_size:
                    yield page
                    page = []
        if page:
            yield page

    def _every_song(self, folder_id: str | None, page_size: int) -> Iterator[list[dict[str, Any]]]:
        """search3 pages of every song (of one music folder), until a page comes back empty: a server may send
        fewer than asked per page. How to ask for every song differs: supysonic matches the empty string, Navidrome
        wants two quote marks (as the sync of Subsonic clients sends); the first that answers with songs is used.
        A server that ignores the offset (the same first song twice) ends the listing."""
        base: dict[str, Any] = {"artistCount": 0, "albumCount": 0, "songCount": page_size}
        if folder_id is not None:
            base["musicFolderId"] = folder_id
        for query in EVERY_SONG_QUERIES:
            offset, first = 0, None
            while True:
                try:
                    answer = self._call("search3", {**base, "query": query, "songOffset": offset})
                except SubsonicError:
                    if offset == 0:
                        break  # this server refuses this spelling: try the next one
                    raise
                songs = [s for s in _as_list((answer.get("searchResult3") or {}).get("song"))
                         if isinstance(s, dict) and s.get("id")]
                if not songs or str(songs[0]["id"]) == first:
                    break
                first = str(songs[0]["id"])
                yield songs
                offset += len(songs)
            if offset:
                return

    # --- audio ----------------------------------------------------------------------------------------------
    def _download(self, item_id: str, target: Path, expected_seconds: float | None = None) -> Path:
        params = dict(self._auth_params(), id=item_id)
        self._http.download("rest/download", target, params=params, expected_seconds=expected_seconds)
        # Subsonic reports a failed download as an HTTP 200 error document instead of audio.
        with target.open("rb") as f:
            head = f.read(64).lstrip()
        if head.startswith(b"{") and b"subsonic-response" in head and target.stat().st_size < 1 << 20:
            try:
                body = json.loads(target.read_bytes())
            except ValueError:
                return target
            self._raise_if_failed("download", self._response("download", body))
        elif head.startswith(b"<") and b"subsonic-response" in head:
            raise MediaServerError(f"{SERVER_LABEL} sent an error document instead of the audio of {item_id}")
        return target

    def cover_art(self, song: CoverRequest) -> bytes | None:
        """`getCoverArt` of the song's `coverArt` id (`getSong`), else of its album; the original size (resized
        here, where it is cached)."""
        try:
            cover_id = self._call("getSong", {"id": song.item_id}).get("song", {}).get("coverArt")
        except SubsonicError:
            cover_id = None
        for wanted in dict.fromkeys(i for i in (cover_id, song.album_id) if i):
            found = self._http.get_image("rest/getCoverArt", params=dict(self._auth_params(), id=wanted))
            if found:
                return found
        return None

    def stream_audio(self, item_id: str, *, byte_range: str | None = None) -> AudioStream:
        """`stream` with format=raw (the original, not transcoded); an error document instead of audio raises."""
        return self._http.open_stream("rest/stream", byte_range=byte_range,
                                      params=dict(self._auth_params(), id=item_id, format="raw"))

    @contextmanager
    def open_audio(self, track: Track) -> Iterator[AudioFile]:
        """The file in place when its (mapped) path is readable here, else the original downloaded to TEMP_DIR."""
        # PATH_MAPPING decides, relative paths included (mediaservers.access.map_path): an unmapped one is downloaded
        suffix = PurePosixPath(track.path).suffix if track.path else ""
        with local_or_downloaded(track.path, mapping=self.path_mapping, temp_dir=self.temp_dir, suffix=suffix,
                                 download=lambda target: self._download(track.item_id, target,
                                                                        track.duration_seconds)) as audio:
            yield audio

    # --- playlists ------------------------------------------------------------------------------------------
    def list_playlists(self) -> list[Playlist]:
        """This user's playlists (public playlists of other users are left out: they are not ours to change)."""
        entries = _as_list(self._call("getPlaylists").get("playlists", {}).get("playlist"))
        me = self.user.casefold()
        return [Playlist(playlist_id=str(p["id"]), name=str(p.get("name") or ""),
                         track_count=int_or_none(p.get("songCount")) or 0)
                for p in entries if isinstance(p, dict) and str(p.get("owner") or self.user).casefold() == me]

    def add_to_playlist(self, playlist_id: str, item_ids: Sequence[str]) -> None:
        ids = [str(i) for i in item_ids]
        for start in range(0, len(ids), self.playlist_batch):
            self._call("updatePlaylist", {"playlistId": playlist_id,
                                          "songIdToAdd": ids[start:start + self.playlist_batch]})

    def playlist_tracks(self, playlist_id: str) -> list[str]:
        entries = _as_list(self._call("getPlaylist", {"id": playlist_id}).get("playlist", {}).get("entry"))
        return [str(e["id"]) for e in entries if isinstance(e, dict) and e.get("id") is not None]

    def create_playlist(self, name: str, item_ids: Sequence[str]) -> str:
        """Create the playlist, then delete older ones of the same name, so a failure leaves the old one intact."""
        ids = [str(i) for i in item_ids]
        batch = self.playlist_batch
        existing = {p.playlist_id for p in self.list_playlists() if p.name == name}
        answer = self._call("createPlaylist", {"name": name, "songId": ids[:batch]})
        created = answer.get("playlist")
        playlist_id = str(created["id"]) if isinstance(created, dict) and created.get("id") else ""
        if not playlist_id:  # API < 1.14 answers createPlaylist with an empty body: find the new one
            fresh = [p.playlist_id for p in self.list_playlists() if p.name == name and p.playlist_id not in existing]
            if not fresh:
                raise MediaServerError(f"{SERVER_LABEL} did not create playlist {name!r}")
            playlist_id = fresh[0]
        try:
            for start in range(batch, len(ids), batch):
                self._call("updatePlaylist", {"playlistId": playlist_id, "songIdToAdd": ids[start:start + batch]})
        except MediaServerError:
            self._delete_quietly(playlist_id)
            raise
        for playlist in self.list_playlists():
            if playlist.name == name and playlist.playlist_id != playlist_id:
                self.delete_playlist(playlist.playlist_id)
        return playlist_id

    def replace_playlist_tracks(self, playlist_id: str, item_ids: Sequence[str]) -> str:
        """`createPlaylist?playlistId=` with the first batch of songs (the API replaces a playlist's songs that way,
        keeping its id and name), then `updatePlaylist` adds the other batches."""
        ids = [str(i) for i in item_ids]
        batch = self.playlist_batch
        self._call("createPlaylist", {"playlistId": playlist_id, "songId": ids[:batch]})
        for start in range(batch, len(ids), batch):
            self._call("updatePlaylist", {"playlistId": playlist_id, "songIdToAdd": ids[start:start + batch]})
        return playlist_id

    def _delete_quietly(self, playlist_id: str) -> None:
        try:
            self.delete_playlist(playlist_id)
        except MediaServerError:
            pass  # the original error is the one to report

    def delete_playlist(self, playlist_id: str) -> None:
        self._call("deletePlaylist", {"id": playlist_id})

    # --- users and play history -----------------------------------------------------------------------------
    def resolve_user(self, name: str) -> str:
        return name  # Subsonic identifies users by name

    def top_played(self, *, limit: int, user: UserCredentials | None = None) -> list[PlayedTrack]:
        """Songs with a `playCount` from the most frequently played albums; [] when the server keeps none."""
        if user is not None and (user.user != self.user or user.secret != self._password):
            return self.as_user(user).top_played(limit=limit)
        if limit <= 0:
            return []
        played: dict[str, PlayedTrack] = {}
        for entry in self._album_list("frequent", limit=None):
            album_plays = int_or_none(entry.get("playCount"))
            if len(played) >= limit:
                counts = sorted((p.play_count for p in played.values()), reverse=True)
                # An album's count bounds its songs' counts; without album counts, enough is enough.
                if album_plays is None or album_plays <= counts[limit - 1]:
                    break
            if album_plays == 0:
                break
            _, songs = self._album_songs(str(entry["id"]))
            hits = [PlayedTrack(item_id=str(s["id"]), play_count=count, last_played=epoch_seconds(s.get("played")))
                    for s in songs if (count := int_or_none(s.get("playCount")) or 0) > 0]
            if not hits:
                break  # "frequent" lists played albums first: one without plays ends the played part
            for hit in hits:
                played.setdefault(hit.item_id, hit)
        ranked = sorted(played.values(), key=lambda p: (-p.play_count, -(p.last_played or 0.0), p.item_id))
        return ranked[:limit]
