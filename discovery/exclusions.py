"""Blocklists and scope: which tracks no list may suggest.

An `Exclusions` value holds what is never suggested — artists, albums, genres, folders, songs longer than a maximum —
and the scope a request is restricted to (media-server libraries, folders). The saved settings give one; a request
adds its own with `merged`: its blocklists add to the settings', its scope narrows theirs, the shorter maximum
wins. One rule compares each kind of value, here, for every list (the index's masks, the SQL of db/, the checks of
single tracks):

* artists as the artist cap compares them (`dedup.normalise_artist`: case, accents and "feat. X" ignored);
* albums, genres and library names case- and accent-insensitively (`textfold.fold`, spaces squeezed);
* folders as path prefixes of the track's folder, case-insensitively, "\\" read as "/": an absolute folder
  ("/music/Audiobooks") is a prefix of the path, a relative one ("Audiobooks", "Rock/Live") matches that folder
  at any depth (MPD and Subsonic report paths relative to their music folder);
* a track of unknown length passes a maximum length; a track whose library is unknown (a server that cannot tell
  libraries, a track not analyzed again since libraries were recorded) is outside a library scope.

`allowed_mask` applies a value to a whole catalogue at once (numpy, one pass per distinct name), for the web
process's index; `MaskCache` keeps the masks of recent values so a request does not rebuild one.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from discovery.dedup import normalise_artist
from discovery.textfold import fold
from discovery.types import DiscoveryError

__all__ = ["ExclusionColumns", "Exclusions", "MaskCache", "MaskResult", "allowed_mask", "directory_of",
           "join_names", "split_names"]

MAX_NAMES = 1000  # entries in one list
MAX_NAME_LENGTH = 500
_SEPARATOR = re.compile(r"(?<!\\),|\n")


def split_names(text: str) -> list[str]:
    """The entries of a comma- (or line-) separated list; `\\,` is a comma inside an entry ("Crosby\\, Stills")."""
    return [part.replace("\\,", ",").strip() for part in _SEPARATOR.split(text) if part.strip()]


def join_names(names: Iterable[str]) -> str:
    """The text `split_names` reads back as `names`: one per line, a comma in a name escaped."""
    return "\n".join(name.strip().replace(",", "\\,") for name in names if name.strip())


def _name_key(text: str) -> str:
    return " ".join(fold(text).split())


def _folder_key(text: str) -> str:
    return text.replace("\\", "/").casefold().rstrip("/")


def directory_of(path: str | None) -> str:
    """The folder of a file path as stored ("\\" read as "/"; "" for a bare file name or no path). db/ computes
    the same in SQL (exclusions_sql.DIRECTORY)."""
    text = (path or "").replace("\\", "/")
    cut = text.rfind("/")
    return text[:cut] if cut >= 0 else ""


def _absolute(folder_key: str) -> bool:
    return folder_key.startswith("/") or folder_key == "" or (len(folder_key) >= 2 and folder_key[1] == ":")


def _folder_holds(folder_key: str, directory_key: str) -> bool:
    """Whether the folder (a `_folder_key`) holds the directory: a prefix for an absolute folder, a run of whole
    path segments anywhere for a relative one."""
    if _absolute(folder_key):
        return (directory_key + "/").startswith(folder_key + "/")
    return ("/" + folder_key + "/") in ("/" + directory_key + "/")


def _unique(names: Iterable[str], key: Callable[[str], str]) -> tuple[str, ...]:
    seen: set[str] = set()
    kept = []
    for name in names:
        name = name.strip()
        k = key(name)
        if name and k not in seen:
            seen.add(k)
            kept.append(name)
    return tuple(kept)


@dataclass(frozen=True)
class Exclusions:
    """What no list suggests, and the scope lists are restricted to. Empty: everything is allowed.

    `libraries` / `scope_folders`: None is no restriction; an empty tuple allows nothing (a request narrowed the
    settings' scope to nothing). `max_duration` in seconds; None: no maximum. Build it with `Exclusions.of` (which
    checks and de-duplicates) rather than directly."""

    artists: tuple[str, ...] = ()
    albums: tuple[str, ...] = ()
    genres: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    libraries: tuple[str, ...] | None = None
    scope_folders: tuple[str, ...] | None = None
    max_duration: float | None = None

    @classmethod
    def of(cls, *, artists: Iterable[str] = (), albums: Iterable[str] = (), genres: Iterable[str] = (),
           folders: Iterable[str] = (), libraries: Iterable[str] | None = None,
           scope_folders: Iterable[str] | None = None, max_duration: float | None = None) -> Exclusions:
        """The exclusions of these names (blank ones dropped, repeats by the comparison rule kept once). Raises
        DiscoveryError naming the list for too many or too long names and for a maximum that is not above 0."""
        lists = {"artists": list(artists), "albums": list(albums), "genres": list(genres), "folders": list(folders),
                 "libraries": None if libraries is None else list(libraries),
                 "scope_folders": None if scope_folders is None else list(scope_folders)}
        for name, values in lists.items():
            if values is None:
                continue
            if len(values) > MAX_NAMES:
                raise DiscoveryError(name, f"{name} holds {len(values)} entries, at most {MAX_NAMES}")
            for value in values:
                if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH:
                    raise DiscoveryError(name, f"{name} entries must be text of at most {MAX_NAME_LENGTH} "
                                               f"characters, got {str(value)[:40]!r}")
        if max_duration is not None and not (math.isfinite(max_duration) and max_duration > 0):
            raise DiscoveryError("max_duration", f"max_duration must be a number of seconds above 0, got "
                                                 f"{max_duration!r}")
        return cls(artists=_unique(lists["artists"] or (), normalise_artist),
                   albums=_unique(lists["albums"] or (), _name_key),
                   genres=_unique(lists["genres"] or (), _name_key),
                   folders=_unique(lists["folders"] or (), _folder_key),
                   libraries=None if lists["libraries"] is None else _unique(lists["libraries"], _name_key),
                   scope_folders=None if lists["scope_folders"] is None else
                   _unique(lists["scope_folders"], _folder_key),
                   max_duration=float(max_duration) if max_duration is not None else None)

    @classmethod
    def from_settings(cls, settings: Any) -> Exclusions:
        """The exclusions a Config (or anything with its EXCLUDE_*, SCOPE_* and MAX_SUGGESTED_TRACK_SECONDS
        attributes) describes."""
        libraries = split_names(settings.SCOPE_LIBRARIES)
        scope = split_names(settings.SCOPE_FOLDERS)
        return cls.of(artists=split_names(settings.EXCLUDE_ARTISTS), albums=split_names(settings.EXCLUDE_ALBUMS),
                      genres=split_names(settings.EXCLUDE_GENRES), folders=split_names(settings.EXCLUDE_FOLDERS),
                      libraries=libraries or None, scope_folders=scope or None,
                      max_duration=settings.MAX_SUGGESTED_TRACK_SECONDS or None)

    # --- what the value means ----------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether anything is excluded or scoped at all (an inactive value leaves every list as it was)."""
        return bool(self.artists or self.albums or self.genres or self.folders or self.libraries is not None
                    or self.scope_folders is not None or self.max_duration is not None)

    @cached_property
    def key(self) -> tuple[Any, ...]:
        """What the value means, as a hashable value: two spellings of one blocklist share it (the masks' key)."""
        return (frozenset(self._artist_keys), frozenset(self._album_keys), frozenset(self._genre_keys),
                frozenset(self._folder_keys), None if self.libraries is None else frozenset(self._library_keys),
                None if self.scope_folders is None else frozenset(self._scope_keys), self.max_duration)

    @cached_property
    def _artist_keys(self) -> set[str]:
        return {normalise_artist(a) for a in self.artists}

    @cached_property
    def _album_keys(self) -> set[str]:
        return {_name_key(a) for a in self.albums}

    @cached_property
    def _genre_keys(self) -> set[str]:
        return {_name_key(g) for g in self.genres}

    @cached_property
    def _library_keys(self) -> set[str]:
        return {_name_key(name) for name in self.libraries or ()}

    @cached_property
    def _folder_keys(self) -> tuple[str, ...]:
        return tuple(_folder_key(f) for f in self.folders)

    @cached_property
    def _scope_keys(self) -> tuple[str, ...]:
        return tuple(_folder_key(f) for f in self.scope_folders or ())

    def blocks_artist(self, artist: str | None) -> bool:
        return bool(self.artists) and normalise_artist(artist or "") in self._artist_keys

    def blocks_artist_key(self, key: str) -> bool:
        """`blocks_artist` of an artist whose `normalise_artist` is `key`."""
        return key in self._artist_keys

    def blocks_album(self, album: str | None) -> bool:
        return bool(self.albums) and _name_key(album or "") in self._album_keys

    def blocks_genre(self, genre: str | None) -> bool:
        return bool(self.genres) and _name_key(genre or "") in self._genre_keys

    def allows_directory(self, directory: str) -> bool:
        """Whether a track in this folder (`directory_of` its path) is outside the blocked folders and inside the
        folder scope."""
        key = _folder_key(directory)
        if any(_folder_holds(folder, key) for folder in self._folder_keys):
            return False
        return self.scope_folders is None or any(_folder_holds(folder, key) for folder in self._scope_keys)

    def allows_library(self, library: str | None) -> bool:
        return self.libraries is None or (library is not None and _name_key(library) in self._library_keys)

    def allows_duration(self, seconds: float | None) -> bool:
        return self.max_duration is None or seconds is None or not seconds > self.max_duration

    def allows(self, *, artist: str | None = None, album: str | None = None, genres: Iterable[str] = (),
               path: str | None = None, library: str | None = None, duration: float | None = None) -> bool:
        """Whether a track with these values may be suggested."""
        return (not self.blocks_artist(artist) and not self.blocks_album(album)
                and not any(self.blocks_genre(g) for g in genres) and self.allows_directory(directory_of(path))
                and self.allows_library(library) and self.allows_duration(duration))

    # --- combining and showing -----------------------------------------------------------------------------------
    def merged(self, request: Exclusions) -> Exclusions:
        """These (saved) exclusions with a request's: blocklists added, scopes narrowed (a library or folder of the
        request that the saved scope does not hold is dropped; nothing left allows nothing), the shorter maximum."""
        libraries = self.libraries if request.libraries is None else request.libraries if self.libraries is None \
            else tuple(name for name in request.libraries if _name_key(name) in self._library_keys)
        if self.scope_folders is None or request.scope_folders is None:
            scope = self.scope_folders if request.scope_folders is None else request.scope_folders
        else:  # the folders of either that lie inside a folder of the other
            scope = tuple(f for f in request.scope_folders
                          if any(_folder_holds(s, _folder_key(f)) for s in self._scope_keys)) + tuple(
                f for f in self.scope_folders if any(_folder_holds(r, _folder_key(f)) for r in request._scope_keys))
        durations = [d for d in (self.max_duration, request.max_duration) if d is not None]
        return Exclusions(
            artists=_unique((*self.artists, *request.artists), normalise_artist),
            albums=_unique((*self.albums, *request.albums), _name_key),
            genres=_unique((*self.genres, *request.genres), _name_key),
            folders=_unique((*self.folders, *request.folders), _folder_key),
            libraries=libraries if libraries is None else _unique(libraries, _name_key),
            scope_folders=scope if scope is None else _unique(scope, _folder_key),
            max_duration=min(durations) if durations else None)

    def describe(self) -> dict[str, Any]:
        """The value as JSON: {artists, albums, genres, folders, libraries, scope_folders, max_duration}."""
        return {"artists": list(self.artists), "albums": list(self.albums), "genres": list(self.genres),
                "folders": list(self.folders),
                "libraries": None if self.libraries is None else list(self.libraries),
                "scope_folders": None if self.scope_folders is None else list(self.scope_folders),
                "max_duration": self.max_duration}


@dataclass(frozen=True)
class ExclusionColumns:
    """What the exclusions look at, for n tracks, as flat columns (discovery.catalog.Catalog.exclusion_columns):
    each kind of name as codes into its distinct values (-1: none), a track's genres as a run of codes
    (`genre_offsets[i]:genre_offsets[i + 1]` of `genre_codes`), durations in seconds (NaN: unknown)."""

    artist_codes: np.ndarray  # int32 (n,)
    artists: Sequence[str]
    album_codes: np.ndarray
    albums: Sequence[str]
    genre_offsets: np.ndarray  # int64 (n + 1,)
    genre_codes: np.ndarray  # int32
    genres: Sequence[str]
    directory_codes: np.ndarray
    directories: Sequence[str]
    library_codes: np.ndarray
    libraries: Sequence[str]
    durations: np.ndarray  # float64 (n,)
    # normalise_artist of each distinct artist, when the caller has them (the catalogue computes them at load)
    artist_keys: Sequence[str] | None = None

    def __len__(self) -> int:
        return len(self.durations)


@dataclass(frozen=True)
class MaskResult:
    """Which tracks the exclusions allow (`allowed`, bool (n,)), how many they leave out, and what the answer
    should tell the user (a library scope the server cannot apply, a library no track is in)."""

    allowed: np.ndarray
    excluded: int
    warnings: tuple[str, ...] = ()


def _codes_where(values: Sequence[str], test: Callable[[str], bool]) -> list[int]:
    return [code for code, value in enumerate(values) if test(value)]


def allowed_mask(columns: ExclusionColumns, exclusions: Exclusions) -> MaskResult:
    """The tracks of `columns` that `exclusions` allow: the rules of `Exclusions.allows`, each tested once per
    distinct value and spread over the tracks by their codes."""
    n = len(columns)
    allowed = np.ones(n, dtype=bool)
    warnings: list[str] = []

    def drop(codes: np.ndarray, bad: list[int]) -> None:
        if bad:
            allowed[np.isin(codes, np.asarray(bad, dtype=np.int32))] = False

    if exclusions.artists and columns.artist_keys is not None:
        drop(columns.artist_codes, _codes_where(columns.artist_keys, exclusions.blocks_artist_key))
    elif exclusions.artists:
        drop(columns.artist_codes, _codes_where(columns.artists, exclusions.blocks_artist))
    if exclusions.albums:
        drop(columns.album_codes, _codes_where(columns.albums, exclusions.blocks_album))
    if exclusions.genres:
        bad = _codes_where(columns.genres, exclusions.blocks_genre)
        if bad:
            hit = np.isin(columns.genre_codes, np.asarray(bad, dtype=np.int32))
            owners = np.repeat(np.arange(n), np.diff(columns.genre_offsets))
            allowed[owners[hit]] = False
    if exclusions.folders or exclusions.scope_folders is not None:
        bad = _codes_where(columns.directories, lambda d: not exclusions.allows_directory(d))
        if not exclusions.allows_directory(""):
            bad.append(-1)  # tracks without a path
        drop(columns.directory_codes, bad)
    if exclusions.libraries is not None:
        bad = _codes_where(columns.libraries, lambda name: not exclusions.allows_library(name)) + [-1]
        drop(columns.library_codes, bad)
        unknown = int(np.count_nonzero(columns.library_codes < 0))
        if unknown:
            warnings.append(f"{unknown} of {n} tracks have no known library (the media server does not tell "
                            "libraries, or they were analyzed before libraries were recorded): the library scope "
                            "leaves them out; scope by folders instead, or run an analysis")
        known = {_name_key(name) for name in columns.libraries}
        missing = [name for name in exclusions.libraries if _name_key(name) not in known]
        if missing:
            warnings.append(f"no track is in the libraries {', '.join(missing)} (known: "
                            f"{', '.join(sorted(columns.libraries)) or 'none'})")
    if exclusions.max_duration is not None:
        with np.errstate(invalid="ignore"):
            allowed &= ~(columns.durations > exclusions.max_duration)
    return MaskResult(allowed, int(n - np.count_nonzero(allowed)), tuple(warnings))


@dataclass
class MaskCache:
    """The masks of the last `size` exclusion values for one catalogue (a request at 1M tracks reuses them)."""

    size: int = 8
    _masks: OrderedDict[Any, MaskResult] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, exclusions: Exclusions, build: Callable[[], MaskResult]) -> MaskResult:
        key = exclusions.key
        with self._lock:
            found = self._masks.get(key)
            if found is not None:
                self._masks.move_to_end(key)
                return found
        result = build()  # outside the lock: two threads may build the same mask once each, never wait on one
        with self._lock:
            self._masks[key] = result
            while len(self._masks) > self.size:
                self._masks.popitem(last=False)
        return result
