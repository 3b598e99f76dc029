"""A plain music folder as the media server: albums are folders, metadata comes from the files' tags, playlists
are .m3u8 files (which Jellyfin and Navidrome can import)."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import mutagen

from config import Config
from mediaservers.base import (
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
from mediaservers.m3u import M3uEntry, render_m3u8
from mediaservers.pictures import song_picture
from mediaservers.values import genre_names, leading_int, numbered_stem

log = logging.getLogger(__name__)

PLAYLIST_SUFFIXES = frozenset({".m3u8", ".m3u"})
MUSIC_PLAYLIST_PREFIX = "music/"

AUDIO_EXTENSIONS = frozenset({".mp3", ".flac", ".ogg", ".oga", ".opus", ".wav", ".m4a", ".aac", ".mp4", ".wma",
                              ".aiff", ".aif", ".ape", ".wv", ".mpc"})


def item_id_for(relative_path: str) -> str:
    """Stable id of a file: a hash of its path relative to the music folder (survives moving the folder)."""
    return hashlib.sha1(os.fsencode(relative_path)).hexdigest()[:20]


def _m3u_lines(path: Path) -> list[str]:
    """The entries of an .m3u/.m3u8 file (comments and blank lines left out); .m3u may be Latin-1."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _shown(text: str) -> str:
    """A file name as valid text: bytes that are not UTF-8 (old Latin-1 collections) appear as \\xNN."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _album_id(relative_dir: str) -> str:
    try:
        relative_dir.encode("utf-8")
    except UnicodeEncodeError:  # not valid UTF-8 on disk: keep the exact bytes, in a form JSON and SQL accept
        return "b64:" + base64.urlsafe_b64encode(os.fsencode(relative_dir)).decode("ascii")
    return relative_dir


def _album_dir(album_id: str) -> str:
    if album_id.startswith("b64:"):
        return os.fsdecode(base64.urlsafe_b64decode(album_id[4:].encode("ascii")))
    return album_id


def _first(tags: object, key: str) -> str:
    try:
        values = tags[key]  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return ""
    return str(values[0]).strip() if values else ""


def _all(tags: object, key: str) -> list[str]:
    try:
        return [str(v) for v in tags[key]]  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return []


class LocalFolder:
    kind = "local"
    display_name = "Local music folder"
    settings = (SettingField("music_dir", "MUSIC_DIR", "Music folder"),)
    # the playlist id is the file name; libraries are the top-level folders
    capabilities: frozenset[Capability] = frozenset({Capability.KEEPS_PLAYLIST_ID, Capability.ALBUM_LIBRARIES,
                                                     Capability.LISTS_ALL_TRACKS, Capability.COVER_ART,
                                                     Capability.PLAYLISTS_OF_PATHS})

    def __init__(self, music_dir: Path, *, playlist_dir: Path) -> None:
        self.root = music_dir.expanduser().resolve()
        # Folders the last album listing could not read: their tracks are missing from it (cleaning checks).
        self.listing_problems: list[str] = []
        self.playlist_dir = playlist_dir
        self._paths_by_id: dict[str, Path] | None = None

    @classmethod
    def from_config(cls, config: Config, *, user: UserCredentials | None = None) -> LocalFolder:
        # A folder has no users: a per-call user changes nothing.
        return cls(Path(config.MUSIC_DIR), playlist_dir=config.playlist_dir)

    def as_user(self, credentials: UserCredentials) -> LocalFolder:
        return self

    def list_libraries(self) -> list[Library]:
        self._check_root()
        return [Library(library_id=str(self.root), name=self.root.name)]

    def album_libraries(self, albums: Sequence[Album]) -> dict[str, str]:
        """A music folder's libraries are its top-level folders: an album's is the first folder of its path (the
        music folder's own name for files directly in it)."""
        found = {}
        for album in albums:
            relative = _album_dir(album.album_id)
            top = relative.split("/", 1)[0] if relative not in ("", ".") else ""
            found[album.album_id] = _shown(top) if top else self.root.name
        return found

    def top_played(self, *, limit: int, user: UserCredentials | None = None) -> list[PlayedTrack]:
        return []  # a folder keeps no play history

    def resolve_user(self, name: str) -> str:
        return name

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise MediaServerError(f"music folder {self.root} does not exist (MUSIC_DIR)")

    def _audio_files(self, directory: Path) -> list[Path]:
        try:
            entries = sorted(directory.iterdir())
        except OSError as exc:
            raise MediaServerError(f"cannot read {directory}: {exc.strerror}") from exc
        return [p for p in entries if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]

    def _walk_album_dirs(self) -> Iterator[tuple[Path, list[Path]]]:
        self._check_root()
        self.listing_problems = []

        def unreadable(exc: OSError) -> None:
            self.listing_problems.append(f"{exc.filename}: {exc.strerror}")
            log.warning("cannot read %s: %s", exc.filename, exc.strerror)

        for current, dirs, files in os.walk(self.root, onerror=unreadable):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            # is_file() also drops dangling symlinks, which would otherwise fail every stat() below
            audio = sorted(p for f in files if Path(f).suffix.lower() in AUDIO_EXTENSIONS
                           and (p := Path(current) / f).is_file())
            if audio:
                yield Path(current), audio

    def list_albums(self, *, limit: int | None = None) -> list[Album]:
        albums = []
        for directory, files in self._walk_album_dirs():
            mtimes = []
            for f in files:
                try:
                    mtimes.append(f.stat().st_mtime)
                except OSError:
                    continue  # vanished since the listing
            if not mtimes:
                continue
            tags = self._tags(files[0])
            albums.append(Album(
                album_id=_album_id(self._relative(directory) or "."),
                name=_first(tags, "album") or _shown(directory.name),
                artist=_first(tags, "albumartist") or _first(tags, "artist") or "Unknown artist",
                year=leading_int(_first(tags, "date")),
                added_at=max(mtimes),
            ))
        albums.sort(key=lambda a: (-(a.added_at or 0), a.album_id))
        return albums[:limit] if limit and limit > 0 else albums

    def album_tracks(self, album_id: str) -> list[Track]:
        self._check_root()
        try:
            directory = (self.root / _album_dir(album_id)).resolve()
        except (ValueError, OSError):
            raise MediaServerError(f"album {album_id!r} not found in {self.root}") from None
        if not directory.is_relative_to(self.root) or not directory.is_dir():
            raise MediaServerError(f"album {album_id!r} not found in {self.root}")
        tracks = []
        for path in self._audio_files(directory):
            try:
                tracks.append(self._track(path, album_id))
            except OSError:
                continue  # vanished since the listing
        return tracks

    def all_tracks(self, *, page_size: int = 1000) -> Iterator[list[Track]]:
        """Every track of every album folder, in one walk of the music folder (folders it cannot read are noted in
        `listing_problems`, as by list_albums), whole folders at a time, about `page_size` tracks a page."""
        page: list[Track] = []
        for directory, files in self._walk_album_dirs():
            album_id = _album_id(self._relative(directory) or ".")
            for path in files:
                try:
                    page.append(self._track(path, album_id))
                except OSError:
                    continue  # vanished since the walk
            if len(page) >= page_size:
                yield page
                page = []
        if page:
            yield page

    def _relative(self, path: Path) -> str:
        rel = path.relative_to(self.root).as_posix()
        return "" if rel == "." else rel

    @staticmethod
    def _tags(path: Path) -> object:
        try:
            audio = mutagen.File(path, easy=True)
        except Exception:  # mutagen raises many types on damaged files; the track is still listed
            return None
        return audio

    def _track(self, path: Path, album_id: str) -> Track:
        audio = self._tags(path)
        tags = getattr(audio, "tags", None)
        info = getattr(audio, "info", None)
        stat = path.stat()
        # Artist/Album/track.ext is the common layout; use it when the file has no tags (WAV, say).
        grandparent = path.parent.parent
        folder_artist = _shown(grandparent.name) if grandparent != self.root and \
            grandparent.is_relative_to(self.root) else ""
        artist = _first(tags, "artist") or folder_artist or "Unknown artist"
        # Untagged "03 - Title.wav": the number is the track number, the rest the title.
        number, stem_title = numbered_stem(path.stem)
        return Track(
            item_id=item_id_for(self._relative(path)),
            title=_first(tags, "title") or _shown(stem_title),
            artist=artist,
            album=_first(tags, "album") or _shown(path.parent.name),
            album_artist=_first(tags, "albumartist") or artist,
            album_id=album_id,
            path=_shown(str(path)),
            duration_seconds=float(info.length) if info is not None and getattr(info, "length", None) else None,
            year=leading_int(_first(tags, "date")),
            track_number=leading_int(_first(tags, "tracknumber")) or number,
            # ctime too: tag editors that keep the mtime (and the size, with padded tags) still change it
            signature=f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}",
            genres=genre_names(_all(tags, "genre")),
        )

    @contextmanager
    def open_audio(self, track: Track) -> Iterator[AudioFile]:
        path = Path(track.path) if track.path else None
        if path is None or not path.is_file():  # a name shown with \\xNN escapes: find the real file by id
            path = self._path_of(track.item_id)
        if not path.is_file():
            raise MediaServerError(f"{_shown(str(path))} is gone from the music folder")
        yield AudioFile(path=path, access="direct")

    # --- playlists ------------------------------------------------------------------------------------------
    def cover_art(self, song: CoverRequest) -> bytes | None:
        """The album folder's cover file, else the picture in the song's file."""
        path = Path(song.path) if song.path else None
        if path is None or not path.is_file() or not path.resolve().is_relative_to(self.root):
            try:
                path = self._path_of(song.item_id)
            except MediaServerError:
                return None
        return song_picture(path)

    def _path_of(self, item_id: str) -> Path:
        if self._paths_by_id is None or item_id not in self._paths_by_id:
            self._paths_by_id = {
                item_id_for(self._relative(f)): f for _, files in self._walk_album_dirs() for f in files
            }
        try:
            return self._paths_by_id[item_id]
        except KeyError:
            raise MediaServerError(f"no file with item id {item_id} in {self.root}") from None

    @staticmethod
    def _file_name(name: str) -> str:
        cleaned = re.sub(r"[\\/:*?\"<>|\x00-\x1f]", "_", name).strip(" .")
        if not cleaned:
            raise MediaServerError(f"playlist name {name!r} has no usable characters")
        return cleaned + ".m3u8"

    def list_playlists(self) -> list[Playlist]:
        """The .m3u8/.m3u files of PLAYLIST_DIR (ids: their file names), then those inside the music folder (ids:
        `music/` + their path there; AudioMuse reads them but never changes them)."""
        playlists = []
        files = sorted(p for p in self.playlist_dir.glob("*") if p.suffix.lower() in PLAYLIST_SUFFIXES) \
            if self.playlist_dir.is_dir() else []
        for path in files:
            playlists.append(Playlist(playlist_id=path.name, name=path.stem, track_count=len(_m3u_lines(path))))
        own = self.playlist_dir.resolve()
        if self.root.is_dir():
            for path in sorted(p for p in self.root.rglob("*") if p.suffix.lower() in PLAYLIST_SUFFIXES
                               and not p.resolve().is_relative_to(own)):
                playlists.append(Playlist(playlist_id=MUSIC_PLAYLIST_PREFIX + self._relative(path), name=path.stem,
                                          track_count=len(_m3u_lines(path))))
        return playlists

    def _playlist_file(self, playlist_id: str) -> Path:
        if playlist_id.startswith(MUSIC_PLAYLIST_PREFIX):
            path = (self.root / playlist_id[len(MUSIC_PLAYLIST_PREFIX):]).resolve()
            inside = path.is_relative_to(self.root)
        else:
            path = self.playlist_dir / Path(playlist_id).name
            inside = True
        if not inside or not path.is_file() or path.suffix.lower() not in PLAYLIST_SUFFIXES:
            raise MediaServerError(f"playlist {playlist_id!r} not found")
        return path

    def add_to_playlist(self, playlist_id: str, item_ids: Sequence[str]) -> None:
        """Append entries (absolute paths) to a playlist of PLAYLIST_DIR; the music folder's are read-only."""
        if playlist_id.startswith(MUSIC_PLAYLIST_PREFIX):
            raise MediaServerError(f"{playlist_id!r} is a playlist of the music folder: AudioMuse does not change it")
        path = self._playlist_file(playlist_id)
        lines = []
        for item_id in item_ids:
            file = self._path_of(item_id)
            track = self._track(file, _album_id(self._relative(file.parent) or "."))
            entry = render_m3u8("", [M3uEntry(path=_shown(str(file)), artist=track.artist, title=track.title,
                                               duration_seconds=track.duration_seconds)])
            lines.append("\n".join(line for line in entry.splitlines() if not line.startswith(("#EXTM3U",
                                                                                               "#PLAYLIST"))))
        text = path.read_text(encoding="utf-8", errors="replace")
        with path.open("a", encoding="utf-8") as out:
            out.write(("" if text.endswith("\n") or not text else "\n") + "\n".join(lines) + "\n")

    def playlist_tracks(self, playlist_id: str) -> list[str]:
        """The playlist's entries that are audio files of the music folder (absolute paths, or paths relative to
        the playlist file), as item ids; URLs and files outside the folder are left out."""
        path = self._playlist_file(playlist_id)
        ids = []
        for line in _m3u_lines(path):
            if "://" in line:
                continue
            entry = Path(line)
            target = (entry if entry.is_absolute() else path.parent / entry).resolve()
            if target.is_relative_to(self.root) and target.is_file() and target.suffix.lower() in AUDIO_EXTENSIONS:
                ids.append(item_id_for(self._relative(target)))
        return ids

    def create_playlist(self, name: str, item_ids: Sequence[str]) -> str:
        self.playlist_dir.mkdir(parents=True, exist_ok=True)
        target = self.playlist_dir / self._file_name(name)
        self._write(target, name, item_ids)
        return target.name

    def replace_playlist_tracks(self, playlist_id: str, item_ids: Sequence[str]) -> str:
        """Rewrite the playlist's file of PLAYLIST_DIR with these songs: same file, same name, same id."""
        if playlist_id.startswith(MUSIC_PLAYLIST_PREFIX):
            raise MediaServerError(f"{playlist_id!r} is a playlist of the music folder: AudioMuse does not change it")
        path = self._playlist_file(playlist_id)
        titled = next((line for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                       if line.startswith("#PLAYLIST:")), "")
        self._write(path, titled.removeprefix("#PLAYLIST:").strip() or path.stem, item_ids)
        return path.name

    def _write(self, target: Path, name: str, item_ids: Sequence[str]) -> None:
        """The playlist file `target` with these songs; every id is looked up before the file changes."""
        entries = []
        for item_id in item_ids:
            path = self._path_of(item_id)
            track = self._track(path, _album_id(self._relative(path.parent) or "."))
            entries.append(M3uEntry(path=_shown(str(path)), artist=track.artist, title=track.title,
                                    duration_seconds=track.duration_seconds))
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(render_m3u8(name, entries), encoding="utf-8")
        temporary.replace(target)  # atomic: a player never reads half a playlist

    def delete_playlist(self, playlist_id: str) -> None:
        if playlist_id.startswith(MUSIC_PLAYLIST_PREFIX):
            raise MediaServerError(f"{playlist_id!r} is a playlist of the music folder: AudioMuse does not delete it")
        target = self.playlist_dir / Path(playlist_id).name
        if not target.is_file():
            raise MediaServerError(f"playlist {playlist_id!r} not found")
        target.unlink()
