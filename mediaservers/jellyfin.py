"""Jellyfin as the media server (and, through a subclass in emby.py, Emby, which speaks the same dialect).

Everything is read as one user (`/Users/{id}/Items`) with an API key or a user token in the `X-Emby-Token` header.
Albums come most recently added first, paged, optionally restricted to the MUSIC_LIBRARIES by their ids from
`/Library/VirtualFolders`. A track's audio is read in place when its server path (after PATH_MAPPING) is readable
here, otherwise fetched from `/Items/{id}/Download` into TEMP_DIR.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

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
    recreate_playlist,
)
from mediaservers.http import DownloadLimits, HttpClient
from mediaservers.values import epoch_seconds, genre_names, int_or_none

DEFAULT_PAGE_SIZE = 500
DEFAULT_PLAYLIST_BATCH = 100  # item ids per request: keeps query strings well under common URL limits
TICKS_PER_SECOND = 10_000_000  # RunTimeTicks are 100-nanosecond units
TRACK_FIELDS = "Path,DateCreated,MediaSources,Etag,Genres"

# Jellyfin and Emby user ids are GUIDs, written with or without dashes; anything else is taken as a user name.
_ID_PATTERN = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _items(body: Any) -> list[dict[str, Any]]:
    """The item list of a response that is either a bare list or a `{Items: [...]}` query result."""
    if isinstance(body, dict):
        body = body.get("Items")
    if not isinstance(body, list):
        return []
    return [item for item in body if isinstance(item, dict)]


def _first_id(entries: Any) -> str | None:
    """The Id of the first {Name, Id} entry (ArtistItems, AlbumArtists), as the server writes it."""
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("Id"):
            return str(entry["Id"])
    return None


class Jellyfin:
    """A Jellyfin server read as one user.

    `user` is a user id or a user name (resolved through `GET /Users` on first use); `token` is an API key or that
    user's access token. `music_libraries` are library names (case-insensitive); empty means every library.
    """

    kind = "jellyfin"
    display_name = "Jellyfin"
    api_prefix = ""  # Emby serves the same API under /emby
    settings: tuple[SettingField, ...] = (
        SettingField("url", "JELLYFIN_URL", "URL", "http://jellyfin:8096"),
        SettingField("user", "JELLYFIN_USER_ID", "User (name or id)"),
        SettingField("secret", "JELLYFIN_TOKEN", "API key"), MUSIC_LIBRARIES_FIELD, PATH_MAPPING_FIELD)
    capabilities = frozenset({Capability.PLAY_HISTORY, Capability.SENDS_AUDIO, Capability.STREAMS_AUDIO,
                              Capability.KEY_READS_USERS, Capability.KEEPS_PLAYLIST_ID, Capability.ALBUM_LIBRARIES,
                              Capability.LISTS_ALL_TRACKS, Capability.COVER_ART})

    def __init__(self, url: str, *, token: str, user: str, music_libraries: Sequence[str] = (),
                 path_mapping: Sequence[tuple[str, str]] = (), temp_dir: Path = Path("/tmp/audiomuse"),
                 timeout: float = 30.0, retries: int = 3, page_size: int = DEFAULT_PAGE_SIZE,
                 playlist_batch_size: int = DEFAULT_PLAYLIST_BATCH,
                 download_limits: DownloadLimits | None = None) -> None:
        if page_size < 1 or playlist_batch_size < 1:
            raise ValueError(f"page_size={page_size} and playlist_batch_size={playlist_batch_size} must be ≥ 1")
        base = url.rstrip("/")
        if self.api_prefix and base.endswith(self.api_prefix):
            base = base[: -len(self.api_prefix)]  # accept a URL given with the prefix already on it
        self.url = base
        self.user = user.strip()
        self.token = token
        self.music_libraries = [name.strip() for name in music_libraries if name.strip()]
        self.path_mapping = list(path_mapping)
        self.temp_dir = temp_dir
        self.timeout = timeout
        self.retries = retries
        self.page_size = page_size
        self.playlist_batch_size = playlist_batch_size
        self.download_limits = download_limits or DownloadLimits()
        self.http = HttpClient(self.display_name, base, timeout=timeout, retries=retries,
                               headers={"X-Emby-Token": token} if token else None,
                               download_limits=self.download_limits)
        self._user_id: str | None = None

    @classmethod
    def from_config(cls, config: Config, *, user: UserCredentials | None = None,
                    page_size: int = DEFAULT_PAGE_SIZE,
                    playlist_batch_size: int = DEFAULT_PLAYLIST_BATCH) -> Self:
        """The adapter for the configured server, acting as `user` (name or id + token) when given."""
        url_key, user_key, token_key = (f.setting for f in cls.settings[:3])
        return cls(getattr(config, url_key),
                   token=user.secret if user else getattr(config, token_key),
                   user=user.user if user else getattr(config, user_key),
                   music_libraries=config.music_libraries, path_mapping=config.path_mapping,
                   temp_dir=Path(config.TEMP_DIR), timeout=config.HTTP_TIMEOUT_SECONDS,
                   retries=config.HTTP_RETRIES, page_size=page_size, playlist_batch_size=playlist_batch_size,
                   download_limits=DownloadLimits.from_config(config))

    def as_user(self, credentials: UserCredentials) -> Self:
        """The same server read as another user, with that user's token."""
        return type(self)(self.url, token=credentials.secret, user=credentials.user,
                          music_libraries=self.music_libraries, path_mapping=self.path_mapping,
                          temp_dir=self.temp_dir, timeout=self.timeout, retries=self.retries,
                          page_size=self.page_size, playlist_batch_size=self.playlist_batch_size,
                          download_limits=self.download_limits)

    # --- plumbing -------------------------------------------------------------------------------------------
    def _path(self, path: str) -> str:
        return self.api_prefix + path

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.http.get_json(self._path(path), params=params)

    def _user_items(self, params: dict[str, Any], *, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a `/Users/{id}/Items` query, page by page (at most `limit` when given)."""
        path = f"/Users/{self.user_id}/Items"
        start = 0
        seen: set[str] = set()
        while limit is None or start < limit:
            size = self.page_size if limit is None else min(self.page_size, limit - start)
            body = self._get(path, {**params, "StartIndex": start, "Limit": size})
            page = _items(body)
            for item in page:
                # An item added while paging shifts the list by one; never yield the same item twice.
                item_id = str(item.get("Id", ""))
                if item_id and item_id not in seen:
                    seen.add(item_id)
                    yield item
            start += len(page)
            total = body.get("TotalRecordCount") if isinstance(body, dict) else None
            if not page or (start >= total if isinstance(total, int) else len(page) < size):
                return

    # --- users ----------------------------------------------------------------------------------------------
    @property
    def user_id(self) -> str:
        """The id of the user this adapter reads as (a configured name is looked up once)."""
        if self._user_id is None:
            if not self.user:
                raise MediaServerError(f"no {self.display_name} user configured ({self.settings[1].setting})")
            self._user_id = self.user if _ID_PATTERN.fullmatch(self.user) else self.resolve_user(self.user)
        return self._user_id

    def resolve_user(self, name: str) -> str:
        """The id of the user called `name` (case-insensitive) or whose id is `name`."""
        users = _items(self._get("/Users"))
        wanted = name.strip().casefold()
        for user in users:
            if str(user.get("Name", "")).casefold() == wanted or str(user.get("Id", "")).casefold() == wanted:
                return str(user["Id"])
        known = ", ".join(sorted(str(u.get("Name")) for u in users)) or "none visible with this token"
        raise MediaServerError(f"{self.display_name} has no user {name!r} (users: {known})",
                               cause=f"no such user on this {self.display_name} server")

    # --- libraries and albums -------------------------------------------------------------------------------
    def list_libraries(self) -> list[Library]:
        """The server's music libraries (virtual folders whose collection type is music)."""
        folders = _items(self._get("/Library/VirtualFolders"))
        return [Library(library_id=str(folder.get("ItemId") or folder.get("Id")), name=str(folder.get("Name", "")))
                for folder in folders
                if str(folder.get("CollectionType", "")).lower() == "music" and (folder.get("ItemId")
                                                                                 or folder.get("Id"))]

    def _library_ids(self) -> list[str] | None:
        """Ids of the MUSIC_LIBRARIES, or None to read every library."""
        if not self.music_libraries:
            return None
        return library_ids_for(self.music_libraries, self.list_libraries(), server=self.display_name)

    def list_albums(self, *, limit: int | None = None) -> list[Album]:
        """Albums, most recently added first; `limit` None or ≤ 0 means all."""
        limit = limit if limit and limit > 0 else None
        params = {"IncludeItemTypes": "MusicAlbum", "Recursive": "true", "SortBy": "DateCreated",
                  "SortOrder": "Descending", "Fields": "DateCreated"}
        library_ids = self._library_ids()
        scopes: list[dict[str, Any]] = [params] if library_ids is None else \
            [{**params, "ParentId": library_id} for library_id in dict.fromkeys(library_ids)]
        albums: dict[str, Album] = {}
        for scope in scopes:
            for item in self._user_items(scope, limit=limit):
                album = self._album(item)
                albums.setdefault(album.album_id, album)
        # Each library comes sorted; merging them needs one more sort (stable, so ties keep server order).
        ordered = sorted(albums.values(), key=lambda a: -(a.added_at or 0.0)) if len(scopes) > 1 \
            else list(albums.values())
        return ordered[:limit] if limit else ordered

    def album_libraries(self, albums: Sequence[Album]) -> dict[str, str]:
        """Which music library (of MUSIC_LIBRARIES, when set) each album is in: one listing of album ids per library
        (an album may also sit in a library of mixed content, which is no music library)."""
        libraries = self.list_libraries()
        if self.music_libraries:
            wanted = {name.casefold() for name in self.music_libraries}
            libraries = [lib for lib in libraries if lib.name.casefold() in wanted]
        params = {"IncludeItemTypes": "MusicAlbum", "Recursive": "true"}
        return libraries_by_album(albums, libraries, lambda lib: (
            str(item["Id"]) for item in self._user_items({**params, "ParentId": lib.library_id})), one_holds_all=False)

    @staticmethod
    def _album(item: dict[str, Any]) -> Album:
        artists = item.get("Artists") or []
        album_artists = [a.get("Name") for a in item.get("AlbumArtists") or [] if isinstance(a, dict)]
        artist = item.get("AlbumArtist") or next(iter(album_artists), None) or next(iter(artists), None)
        return Album(album_id=str(item["Id"]), name=str(item.get("Name") or ""),
                     artist=str(artist or "Unknown artist"), year=int_or_none(item.get("ProductionYear")),
                     added_at=epoch_seconds(item.get("DateCreated")))

    def album_tracks(self, album_id: str) -> list[Track]:
        """The album's tracks in disc/track order, with the server's file path and a change signature."""
        params = {"ParentId": album_id, "IncludeItemTypes": "Audio", "Recursive": "true", "Fields": TRACK_FIELDS,
                  "SortBy": "ParentIndexNumber,IndexNumber,SortName", "SortOrder": "Ascending"}
        return [self._track(item, album_id) for item in self._user_items(params)]

    def all_tracks(self, *, page_size: int = 1000) -> Iterator[list[Track]]:
        """Every audio item of the MUSIC_LIBRARIES (all libraries when unset) that belongs to an album, `page_size`
        a request, oldest first so items added meanwhile land on later pages instead of shifting earlier ones.
        Items are not de-duplicated across pages (that would keep a set of a million ids)."""
        params = {"IncludeItemTypes": "Audio", "Recursive": "true", "Fields": TRACK_FIELDS,
                  "SortBy": "DateCreated,SortName", "SortOrder": "Ascending", "EnableImages": "false",
                  "EnableUserData": "false"}
        library_ids = self._library_ids()
        scopes: list[dict[str, Any]] = [params] if library_ids is None else \
            [{**params, "ParentId": library_id} for library_id in dict.fromkeys(library_ids)]
        path = f"/Users/{self.user_id}/Items"
        for scope in scopes:
            start = 0
            while True:
                body = self._get(path, {**scope, "StartIndex": start, "Limit": page_size})
                page = _items(body)
                yield [self._track(item, str(item["AlbumId"])) for item in page if item.get("Id")
                       and item.get("AlbumId")]
                start += len(page)
                total = body.get("TotalRecordCount") if isinstance(body, dict) else None
                if not page or (start >= total if isinstance(total, int) else len(page) < page_size):
                    break

    @staticmethod
    def _track(item: dict[str, Any], album_id: str) -> Track:
        sources = [s for s in item.get("MediaSources") or [] if isinstance(s, dict)]
        source = sources[0] if sources else {}
        artists = [str(a) for a in item.get("Artists") or [] if a]
        album_artist = str(item.get("AlbumArtist") or "")
        artist = ", ".join(artists) or album_artist or "Unknown artist"
        ticks = item.get("RunTimeTicks") or source.get("RunTimeTicks")
        # Size and dates change when the file is replaced; the Etag (when sent) covers the server's own view.
        parts = [str(value) for value in (source.get("Size"), item.get("DateCreated"), item.get("Etag"))
                 if value not in (None, "")]
        return Track(
            item_id=str(item["Id"]),
            title=str(item.get("Name") or ""),
            artist=artist,
            album=str(item.get("Album") or ""),
            album_artist=album_artist or artist,
            album_id=album_id,
            path=item.get("Path") or source.get("Path") or None,
            duration_seconds=ticks / TICKS_PER_SECOND if isinstance(ticks, (int, float)) and ticks > 0 else None,
            year=int_or_none(item.get("ProductionYear")),
            track_number=int_or_none(item.get("IndexNumber")),
            signature=":".join(parts) or None,
            genres=genre_names(item.get("Genres")),
            artist_id=_first_id(item.get("ArtistItems")) or _first_id(item.get("AlbumArtists")),
        )

    # --- audio ----------------------------------------------------------------------------------------------
    def open_audio(self, track: Track) -> AbstractContextManager[AudioFile]:
        """The file in place when readable here (after PATH_MAPPING), else downloaded to TEMP_DIR meanwhile."""
        return local_or_downloaded(
            track.path, mapping=self.path_mapping, temp_dir=self.temp_dir,
            download=lambda target: self.http.download(self._path(f"/Items/{track.item_id}/Download"), target,
                                                       expected_seconds=track.duration_seconds))

    def cover_art(self, song: CoverRequest) -> bytes | None:
        """`/Items/{id}/Images/Primary` of the song, else of its album (most songs have only the album's)."""
        for item in dict.fromkeys(i for i in (song.item_id, song.album_id) if i):
            found = self.http.get_image(self._path(f"/Items/{quote(item, safe='')}/Images/Primary"))
            if found:
                return found
        return None

    def stream_audio(self, item_id: str, *, byte_range: str | None = None) -> AudioStream:
        """`/Audio/{id}/stream?static=true`: the original file, no transcoding, Range honoured."""
        return self.http.open_stream(self._path(f"/Audio/{quote(item_id, safe='')}/stream"), byte_range=byte_range,
                                     params={"static": "true"})

    # --- playlists ------------------------------------------------------------------------------------------
    def list_playlists(self) -> list[Playlist]:
        params = {"IncludeItemTypes": "Playlist", "Recursive": "true", "Fields": "ChildCount",
                  "SortBy": "SortName", "SortOrder": "Ascending"}
        return [Playlist(playlist_id=str(item["Id"]), name=str(item.get("Name") or ""),
                         track_count=int_or_none(item.get("ChildCount")) or 0)
                for item in self._user_items(params)]

    def _playlist_entries(self, playlist_id: str) -> list[dict[str, Any]]:
        """The playlist's entries, page by page, in the playlist's order (/Playlists/{id}/Items); each is the item
        with the entry's own id in PlaylistItemId."""
        entries: list[dict[str, Any]] = []
        start = 0
        while True:
            body = self._get(f"/Playlists/{playlist_id}/Items", {"UserId": self.user_id, "StartIndex": start,
                                                                 "Limit": self.page_size})
            page = _items(body)
            entries += page
            start += len(page)
            total = body.get("TotalRecordCount") if isinstance(body, dict) else None
            if not page or (start >= total if isinstance(total, int) else len(page) < self.page_size):
                return entries

    def playlist_tracks(self, playlist_id: str) -> list[str]:
        """The playlist's audio items, in the playlist's order."""
        return [str(i["Id"]) for i in self._playlist_entries(playlist_id)
                if i.get("Id") and i.get("Type", "Audio") == "Audio"]

    def create_playlist(self, name: str, item_ids: Sequence[str]) -> str:
        """Create the playlist (in batches of ids), then remove older playlists of the same name; return its id."""
        ids = [str(i) for i in item_ids]
        older = [p.playlist_id for p in self.list_playlists() if p.name == name]
        first, rest = ids[: self.playlist_batch_size], ids[self.playlist_batch_size:]
        body = self._post_new_playlist(name, first)
        playlist_id = body.get("Id") if isinstance(body, dict) else None
        if not playlist_id:
            raise MediaServerError(f"{self.display_name} created playlist {name!r} but sent back no id")
        playlist_id = str(playlist_id)
        for start in range(0, len(rest), self.playlist_batch_size):
            batch = rest[start:start + self.playlist_batch_size]
            self.http.post_json(self._path(f"/Playlists/{playlist_id}/Items"),
                                params={"Ids": ",".join(batch), "UserId": self.user_id})
        # The old one goes only once the new one is complete, so a failure never leaves the user with neither.
        for old_id in older:
            if old_id != playlist_id:
                self.delete_playlist(old_id)
        return playlist_id

    def add_to_playlist(self, playlist_id: str, item_ids: Sequence[str]) -> None:
        ids = [str(i) for i in item_ids]
        for start in range(0, len(ids), self.playlist_batch_size):
            self.http.post_json(self._path(f"/Playlists/{playlist_id}/Items"),
                                params={"Ids": ",".join(ids[start:start + self.playlist_batch_size]),
                                        "UserId": self.user_id})

    def replace_playlist_tracks(self, playlist_id: str, item_ids: Sequence[str]) -> str:
        """Remove every entry (`DELETE /Playlists/{id}/Items?EntryIds=…`, by the entries' PlaylistItemId), then add
        the songs (`POST /Playlists/{id}/Items?Ids=…`), in batches: the playlist keeps its id, name and owner. A
        server that names no entry ids gets a new playlist of the same name instead (its id is returned)."""
        entry_ids = [str(e.get("PlaylistItemId") or "") for e in self._playlist_entries(playlist_id)]
        if not all(entry_ids):
            return recreate_playlist(self, playlist_id, item_ids)
        size = self.playlist_batch_size
        for start in range(0, len(entry_ids), size):
            self.http.request("DELETE", self._path(f"/Playlists/{playlist_id}/Items"),
                              params={"EntryIds": ",".join(entry_ids[start:start + size])})
        self.add_to_playlist(playlist_id, item_ids)
        return playlist_id

    def _post_new_playlist(self, name: str, ids: list[str]) -> Any:
        return self.http.post_json(self._path("/Playlists"),
                                   json={"Name": name, "Ids": ids, "UserId": self.user_id, "MediaType": "Audio"})

    def delete_playlist(self, playlist_id: str) -> None:
        self.http.request("DELETE", self._path(f"/Items/{playlist_id}"))

    # --- play history ---------------------------------------------------------------------------------------
    def top_played(self, *, limit: int, user: UserCredentials | None = None) -> list[PlayedTrack]:
        """The user's most played tracks (default: the configured user), most played first."""
        if user is not None:
            return self.as_user(user).top_played(limit=limit)
        if limit <= 0:
            return []
        params = {"IncludeItemTypes": "Audio", "Recursive": "true", "SortBy": "PlayCount",
                  "SortOrder": "Descending", "Fields": "UserData", "Filters": "IsPlayed"}
        played = []
        for item in self._user_items(params, limit=limit):
            data = item.get("UserData") or {}
            count = int_or_none(data.get("PlayCount")) or 0
            if count > 0:
                played.append(PlayedTrack(item_id=str(item["Id"]), play_count=count,
                                          last_played=epoch_seconds(data.get("LastPlayedDate"))))
        return played
