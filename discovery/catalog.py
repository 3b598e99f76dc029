"""The track catalogue the web process keeps beside the index: what discovery shows and filters on, for every indexed
track, in a few flat arrays rather than one Python object per field and track.

Why flat: as a dict of nine-field tuples (str, float and dict objects) the catalogue of 100,000 tracks took 139 MB
of the web process (measured, bench/RESULTS.md); packed this way it takes about 15 MB. Strings that repeat (artists,
albums, Camelot keys) are stored once and referred to by code; the rest (item ids, titles) are one UTF-8 blob plus
offsets; numbers are float64 arrays with NaN for "unknown", so the values that come back are exactly the ones
PostgreSQL returned. Each track's `song_key` is computed once here, so requests neither normalise titles nor grow
a cache of them.

Rows are addressed by *position*, the integer id of the track in the Voyager index, so the hits of a query need no
id-to-row map; the few lookups by item id (seeds, played songs) binary-search a sorted permutation.
"""

from __future__ import annotations

import math
import pickle
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO

import numpy as np

from discovery.dedup import normalise_artist, normalise_title
from discovery.exclusions import ExclusionColumns, directory_of
from discovery.types import DiscoveryError, TrackInfo
from discovery.versions import SONG_ID_PREFIX, Copy, file_format, kept_because

__all__ = ["DELETED", "Catalog"]

# The item id of a position whose track left the index (Voyager's mark_deleted): an index updated in place keeps its
# positions, so a removed or re-analyzed track leaves a hole until the next full rebuild compacts them.
DELETED = ""

_NAN = float("nan")


class _Packed:
    """Strings as one UTF-8 blob and an offset per string: length + 8 bytes each instead of ~50 + length for a str."""

    __slots__ = ("_blob", "_offsets")

    def __init__(self) -> None:
        self._blob = bytearray()
        self._offsets = array("q", [0])

    def append(self, text: str) -> None:
        self._blob += text.encode()
        self._offsets.append(len(self._blob))

    def freeze(self) -> None:
        self._blob = bytes(self._blob)  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, position: int) -> str:
        offsets = self._offsets
        return self._blob[offsets[position] : offsets[position + 1]].decode()

    def raw(self, position: int) -> bytes | bytearray:
        """The UTF-8 bytes of the string at `position`, not decoded."""
        offsets = self._offsets
        return self._blob[offsets[position] : offsets[position + 1]]

    def spliced(self, changed: Mapping[int, str], size: int) -> _Packed:
        """A frozen copy of `size` strings: these, with those at the positions of `changed` replaced by its values
        (every position from len(self) on must be in it)."""
        blob, offsets = _splice_runs(np.frombuffer(self._blob, dtype=np.uint8), _view(self._offsets, np.int64),
                                     {p: np.frombuffer(t.encode(), dtype=np.uint8) for p, t in changed.items()}, size)
        new = _Packed()
        new._blob = blob.tobytes()  # type: ignore[assignment]
        new._offsets = array("q", offsets.tobytes())
        return new


class _Coded:
    """Repeating strings stored once each, with a code per row (-1: None)."""

    __slots__ = ("_codes", "_lookup", "values")

    def __init__(self) -> None:
        self.values: list[str] = []
        self._codes = array("i")
        self._lookup: dict[str, int] | None = {}

    def append(self, text: str | None) -> None:
        if text is None:
            self._codes.append(-1)
            return
        assert self._lookup is not None, "frozen"
        code = self._lookup.get(text)
        if code is None:
            code = self._lookup[text] = len(self.values)
            self.values.append(text)
        self._codes.append(code)

    def freeze(self) -> None:
        self._lookup = None

    @classmethod
    def frozen(cls, values: list[str], codes: np.ndarray) -> _Coded:
        coded = cls()
        coded.values, coded._lookup = values, None
        coded._codes = array("i", np.ascontiguousarray(codes, dtype=np.int32).tobytes())
        return coded

    def spliced(self, changed: Mapping[int, str | None], size: int) -> _Coded:
        """A frozen copy of `size` rows: these, with the rows at the positions of `changed` set to its values (rows
        from len(self) on that it does not name are None)."""
        values = list(self.values)
        code_of = {text: code for code, text in enumerate(values)}
        codes = np.full(size, -1, dtype=np.int32)
        codes[:len(self._codes)] = _view(self._codes, np.int32)
        for position, text in changed.items():
            if text is None:
                codes[position] = -1
                continue
            code = code_of.get(text)
            if code is None:
                code = code_of[text] = len(values)
                values.append(text)
            codes[position] = code
        return _Coded.frozen(values, codes)

    def code(self, position: int) -> int:
        return self._codes[position]

    @property
    def codes(self) -> array[int]:
        return self._codes

    def __getitem__(self, position: int) -> str | None:
        code = self._codes[position]
        return None if code < 0 else self.values[code]


def _view(values: Any, dtype: Any) -> np.ndarray:
    """A numpy view of an array.array or bytes buffer (an empty one too, which np.frombuffer refuses)."""
    return np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype=dtype)


def _splice_runs(flat: np.ndarray, offsets: np.ndarray, runs: Mapping[int, np.ndarray],
                 size: int) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length runs stored flat (`flat`, with run i at flat[offsets[i]:offsets[i + 1]]), with the runs at
    the positions of `runs` replaced and `size` runs in all (a position past the old ones not in `runs` is empty):
    the new flat array and offsets. Copies the unchanged stretches whole."""
    old = len(offsets) - 1
    lengths = np.zeros(size, dtype=np.int64)
    lengths[:old] = np.diff(offsets)
    pieces: list[np.ndarray] = []
    start = 0
    for position in sorted(runs):
        end = min(position, old)
        if start < end:
            pieces.append(flat[offsets[start]:offsets[end]])
        start = position + 1 if position < old else max(start, old)
        pieces.append(runs[position].astype(flat.dtype, copy=False))
        lengths[position] = len(runs[position])
    if start < old:
        pieces.append(flat[offsets[start]:offsets[old]])
    joined = np.concatenate(pieces) if pieces else flat[:0].copy()
    return joined, np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(lengths)])


def _number(value: Any) -> float:
    """A column value as a float; None (and anything that is not a number) as NaN."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return _NAN
    return float(value)


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else value


class Catalog:
    """Metadata of the tracks at positions 0..n-1 of an index. Build it with `Catalog.build`."""

    def __init__(self) -> None:
        self._item_ids = _Packed()
        self._present = bytearray()  # 0: the index holds the track but the tracks table does not
        self._titles = _Packed()
        self._title_keys = _Packed()
        self._artists = _Coded()
        self._artist_keys: list[str] = []  # normalise_artist of each distinct artist, by artist code
        self._albums = _Coded()
        self._camelots = _Coded()
        self._durations = array("d")
        self._tempos = array("d")
        self._energies = array("d")
        self._mood_names: list[str] = []
        self._moods = np.empty((0, 0))  # (n, len(mood_names)) float64, NaN where a track has no such score
        self._order = array("i")  # positions sorted by item id
        self._deleted = 0  # positions whose item id is DELETED
        self._formats = _Coded()  # "FLAC", "MP3"… from the file name
        # Versions (discovery/versions.py), for the few tracks that have any: the file shown instead of a track (the
        # kept copy of its song's first recording), the copies of each kept recording, and the song ids.
        self._kept_of: dict[int, int] = {}
        self._copies_of: dict[int, list[int]] = {}
        self._song_of: dict[int, str] = {}
        self._recording_of: dict[int, str] = {}  # the kept copy's item id, for each grouped track
        # What the blocklists and scope look at (discovery.exclusions): each track's genres as a run of codes, the
        # folder of its file and its media-server library, coded like the artists.
        self._genre_offsets = array("q", [0])
        self._genres = _Coded()
        self._directories = _Coded()
        self._libraries = _Coded()

    @classmethod
    def build(cls, item_ids: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> Catalog:
        """The catalogue of `item_ids` (index positions 0..n-1) from `rows`.

        `rows` are db.tracks.catalog_rows tuples, one per item id and in the same order: (item_id, found, title,
        artist, album, duration_seconds, tempo_bpm, camelot, energy, moods, genres, file_path, library, recording_id,
        song_id); a row of ten has no genres, folder, library or version groups. Raises DiscoveryError if they do not
        match.
        """
        catalog = cls()
        mood_columns: dict[str, array[float]] = {}
        recording_ids = catalog._recording_of
        count = 0
        for row in rows:
            item_id, found, title, artist, album, duration, tempo, camelot, energy, moods = row[:10]
            file_path = row[11] if len(row) > 11 else None
            recording_id, song_id = (tuple(row[13:15]) + (None, None))[:2]
            catalog._formats.append(file_format(file_path))
            if recording_id is not None and found:
                recording_ids[count] = recording_id
            if song_id is not None and found:
                catalog._song_of[count] = song_id
            if count >= len(item_ids) or item_id != item_ids[count]:
                raise DiscoveryError(None, f"catalogue row {count} is for {item_id!r}, not for the index's item")
            catalog._item_ids.append(item_id)
            if item_id == DELETED:
                catalog._deleted += 1
                found = False
            catalog._present.append(1 if found else 0)
            title, artist = title or "", artist or ""
            catalog._titles.append(title)
            catalog._title_keys.append(normalise_title.__wrapped__(title) if found else "")
            catalog._artists.append(artist)
            catalog._albums.append(album or "")
            catalog._camelots.append(camelot)
            catalog._durations.append(_number(duration))
            catalog._tempos.append(_number(tempo))
            catalog._energies.append(_number(energy))
            for name, score in (moods.items() if isinstance(moods, dict) else ()):
                column = mood_columns.get(name)
                if column is None:
                    column = mood_columns[name] = array("d", [_NAN]) * count
                column.append(_number(score))
            catalog._append_exclusion_values(row)
            count += 1
            for column in mood_columns.values():
                if len(column) < count:
                    column.append(_NAN)
        if count != len(item_ids):
            raise DiscoveryError(None, f"catalogue has {count} rows for {len(item_ids)} indexed items")
        for packed in (catalog._item_ids, catalog._titles, catalog._title_keys):
            packed.freeze()
        for coded in (catalog._artists, catalog._albums, catalog._camelots, catalog._formats, catalog._genres,
                      catalog._directories, catalog._libraries):
            coded.freeze()
        # The artist part of song_key, once per distinct artist rather than once per track.
        catalog._artist_keys = [normalise_artist.__wrapped__(a) for a in catalog._artists.values]
        catalog._mood_names = list(mood_columns)
        if mood_columns:
            catalog._moods = np.stack([np.frombuffer(c, dtype=np.float64) for c in mood_columns.values()], axis=1)
        else:
            catalog._moods = np.empty((count, 0))
        catalog._order = array("i", sorted(range(count), key=item_ids.__getitem__))
        catalog._link_versions()
        return catalog

    def _link_versions(self) -> None:
        """`_copies_of` and `_kept_of` from each grouped track's recording and song (`_recording_of`, `_song_of`)."""
        self._copies_of, self._kept_of = {}, {}
        for position, recording_id in sorted(self._recording_of.items()):
            kept = self.position(recording_id)
            if kept is None:
                continue  # the kept copy left the index since the groups were stored: this copy stands for itself
            self._copies_of.setdefault(kept, []).append(position)
            if kept != position:
                self._kept_of[position] = kept
        for position, song_id in self._song_of.items():
            principal = self.position(song_id)
            if principal is not None and principal != position:
                self._kept_of[position] = principal  # a version is shown by its song's first recording

    # --- an index updated in place -------------------------------------------------------------------------------
    def updated(self, item_ids: Sequence[str], rows: Iterable[tuple[Any, ...]], positions: Sequence[int]) -> Catalog:
        """This catalogue for the same index updated in place: `item_ids` has a position for each of this
        catalogue's and possibly more after them; `rows` (db.tracks.catalog_rows tuples, as `build` takes) are those
        of `positions`, ascending, which must name every position whose row changed: each new one, each deleted one
        and each whose metadata or version group changed. Answers everything as `Catalog.build` over all the rows
        would, at the cost of the changed rows plus a few copies of the arrays (no pass in Python over the others).
        Raises DiscoveryError if the rows do not match `item_ids`."""
        old, size = len(self), len(item_ids)
        changed = [int(p) for p in positions]
        if size < old or any(b <= a for a, b in zip(changed, changed[1:], strict=False)) or \
                (changed and not 0 <= changed[0] <= changed[-1] < size) or \
                size - old > len([p for p in changed if p >= old]):
            raise DiscoveryError(None, "an updated catalogue needs rows for every new position, ascending")
        part = Catalog.build([item_ids[p] for p in changed], rows)
        at = dict(zip(changed, range(len(changed)), strict=True))  # position -> row of `part`
        index = np.asarray(changed, dtype=np.int64)
        new = Catalog()
        for name in ("_item_ids", "_titles", "_title_keys",  # packed strings
                     "_artists", "_albums", "_camelots", "_formats", "_directories", "_libraries"):  # coded
            theirs = getattr(part, name)
            setattr(new, name, getattr(self, name).spliced({p: theirs[i] for p, i in at.items()}, size))
        new._artist_keys = self._artist_keys + [normalise_artist.__wrapped__(a)
                                                for a in new._artists.values[len(self._artist_keys):]]
        present = np.zeros(size, dtype=np.uint8)
        present[:old] = _view(self._present, np.uint8)
        present[index] = _view(part._present, np.uint8)
        new._present = bytearray(present.tobytes())
        for name in ("_durations", "_tempos", "_energies"):
            values = np.full(size, _NAN)
            values[:old] = _view(getattr(self, name), np.float64)
            values[index] = _view(getattr(part, name), np.float64)
            setattr(new, name, array("d", values.tobytes()))
        new._mood_names = self._mood_names + [m for m in part._mood_names if m not in self._mood_names]
        moods = np.full((size, len(new._mood_names)), _NAN)
        moods[:old, :len(self._mood_names)] = self._moods
        moods[index] = _NAN
        for column, name in enumerate(part._mood_names):
            moods[index, new._mood_names.index(name)] = part._moods[:, column]
        new._moods = moods
        new._genres, new._genre_offsets = self._genres_spliced(part, at, size)
        new._deleted = int(np.count_nonzero(np.diff(_view(new._item_ids._offsets, np.int64)) == 0))
        new._order = self._order_after(new, at)
        for mine, theirs, target in ((self._recording_of, part._recording_of, new._recording_of),
                                     (self._song_of, part._song_of, new._song_of)):
            target.update((p, v) for p, v in mine.items() if p not in at)
            target.update((changed[i], v) for i, v in theirs.items())
        new._link_versions()
        return new

    def _genres_spliced(self, part: Catalog, at: Mapping[int, int], size: int) -> tuple[_Coded, array[int]]:
        """The genre runs (codes and per-position offsets) with the changed positions' runs taken from `part`."""
        values = list(self._genres.values)
        code_of = {genre: code for code, genre in enumerate(values)}
        runs: dict[int, np.ndarray] = {}
        for position, row in at.items():
            run = []
            for code in part._genres.codes[part._genre_offsets[row]:part._genre_offsets[row + 1]]:
                genre = part._genres.values[code]
                mine = code_of.get(genre)
                if mine is None:
                    mine = code_of[genre] = len(values)
                    values.append(genre)
                run.append(mine)
            runs[position] = np.asarray(run, dtype=np.int32)
        codes, offsets = _splice_runs(_view(self._genres.codes, np.int32), _view(self._genre_offsets, np.int64),
                                      runs, size)
        return _Coded.frozen(values, codes), array("q", offsets.tobytes())

    def _order_after(self, new: Catalog, at: Mapping[int, int]) -> array[int]:
        """`new`'s positions sorted by item id, from this catalogue's order: the unchanged positions keep theirs,
        the changed ones are put in place by binary search. Deleted positions (item id "") come first, ascending, as
        `build`'s sort puts them."""
        order = _view(self._order, np.int32)
        changed = np.zeros(len(new), dtype=bool)
        changed[list(at)] = True
        old_deleted, old_live = order[:self._deleted], order[self._deleted:]
        kept_live = old_live[~changed[old_live]]
        key = new._item_ids.__getitem__
        deleted = [p for p in at if key(p) == DELETED]
        placed = sorted((p for p in at if key(p) != DELETED), key=key)
        where = [bisect_left(kept_live, key(p), key=key) for p in placed]
        live = np.insert(kept_live, where, np.asarray(placed, dtype=np.int32)) if placed else kept_live
        head = np.sort(np.concatenate([old_deleted[~changed[old_deleted]], np.asarray(deleted, dtype=np.int32)]))
        return array("i", np.concatenate([head, live]).astype(np.int32).tobytes())

    # --- kept on disk beside the index file, for a fast start ---------------------------------------------------
    def dump(self, out: BinaryIO) -> None:
        """Write this built catalogue to `out`, for `Catalog.load`: its arrays and tables as they are (pickle), so
        loading costs a read instead of a pass over every row."""
        pickle.dump(self.__dict__, out, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, source: BinaryIO) -> Catalog:
        """A catalogue `dump` wrote. Only for files AudioMuse wrote itself (DATA_DIR): unpickling runs code."""
        state = pickle.load(source)
        if not isinstance(state, dict) or set(state) != set(cls().__dict__):
            raise ValueError("not a catalogue written by this version of AudioMuse")
        catalog = cls()
        catalog.__dict__.update(state)
        return catalog

    def positions_in(self, other: Catalog) -> np.ndarray:
        """For each position here, the position of the same track in `other` (-1: `other` does not hold it), int64:
        what moves a per-position table built against this catalogue's index onto `other`'s. One merge of the two
        id orders, comparing UTF-8 bytes (their order is the code-point order the orders were sorted in)."""
        moved = np.full(len(self), -1, dtype=np.int64)
        mine, theirs = self._item_ids, other._item_ids
        my_order, their_order = self._order, other._order
        i = j = 0
        while i < len(my_order) and j < len(their_order):
            a, b = mine.raw(my_order[i]), theirs.raw(their_order[j])
            if a == b:
                if a:  # DELETED (empty) is no track
                    moved[my_order[i]] = their_order[j]
                i += 1
                j += 1
            elif a < b:
                i += 1
            else:
                j += 1
        return moved

    def kept_copy(self, position: int) -> int:
        """The position of the file lists show for the track at `position`: its song's first recording's kept copy
        (discovery/versions.py), itself for most tracks."""
        return self._kept_of.get(position, position)

    def copies(self, position: int) -> list[int]:
        """Positions of every file of the recording whose kept copy is at `position` ([] for a single file)."""
        return self._copies_of.get(position, [])

    def song_of(self, position: int) -> tuple[str, str]:
        """The song the track at `position` is a version of, as TrackInfo.song compares it."""
        return self._song_title_key(position), self._artist_keys[self._artists.code(position)]

    def one_per_song(self, positions: Iterable[int]) -> Iterator[tuple[int, int]]:
        """(index in `positions`, position to show) for the first hit of each song in `positions`, shown by its
        recording's kept copy: a ranked list with one row per song. Positions without metadata pass through."""
        seen: set[tuple[str, str]] = set()
        for i, position in enumerate(positions):
            if not self._present[position]:
                yield i, position
                continue
            song = self.song_of(position)
            if song in seen:
                continue
            seen.add(song)
            yield i, self.kept_copy(position)

    def copy_fields(self, position: int) -> dict[str, Any]:
        """What a result row says about the file shown: its format, and for a recording held by several files how
        many and why this one ("lossless FLAC over MP3")."""
        fields: dict[str, Any] = {"format": self._formats[position]}
        copies = len(self.copies(position))
        if copies > 1:
            fields.update(copies=copies, copy_note=self._copy_note(position))
        return fields

    def file_format(self, position: int) -> str | None:
        return self._formats[position]

    def _copy_note(self, position: int) -> str:
        """Why this copy is the one shown ("lossless FLAC over MP3"), for a recording held by several files."""
        others = [p for p in self.copies(position) if p != position]
        if not others:
            return ""

        def copy(p: int) -> Copy:
            fmt = self._formats[p]
            return Copy(self._item_ids[p], "", "", _optional(self._durations[p]), f"x.{fmt.lower()}" if fmt else None)

        return kept_because(copy(position), [copy(p) for p in others])

    def __len__(self) -> int:
        """Positions, deleted ones included (the length of every per-position array)."""
        return len(self._present)

    @property
    def live(self) -> int:
        """Positions that hold a track (not deleted): the most a query of the index can return."""
        return len(self._present) - self._deleted

    def live_positions(self) -> np.ndarray:
        """The positions that are not deleted, ascending (int64)."""
        if not self._deleted:
            return np.arange(len(self._present), dtype=np.int64)
        lengths = np.diff(np.frombuffer(self._item_ids._offsets, dtype=np.int64))  # a deleted id is empty
        return np.flatnonzero(lengths > 0)

    def item_id(self, position: int) -> str:
        return self._item_ids[position]

    def position(self, item_id: str) -> int | None:
        """The index position of `item_id`, or None when the index does not hold it."""
        if item_id == DELETED:
            return None
        order = self._order
        i = bisect_left(order, item_id, key=self._item_ids.__getitem__)
        if i < len(order) and self._item_ids[order[i]] == item_id:
            return order[i]
        return None

    def artist_positions(self, name: str) -> list[int]:
        """Positions of the tracks (with metadata) whose artist is `name`, compared as the artist cap compares
        (case, accents and "feat. X" folded); [] for an unknown artist. One pass over the artist codes."""
        wanted = normalise_artist(name)
        codes = [code for code, key in enumerate(self._artist_keys) if key == wanted]
        if not wanted or not codes:
            return []
        rows = np.flatnonzero(np.isin(np.frombuffer(self._artists.codes, dtype=np.int32), codes))
        return [int(p) for p in rows if self._present[p]]

    def names(self, position: int) -> tuple[str, str, str] | None:
        """(title, artist, album) of the track at `position`; None when it has no metadata row."""
        if not self._present[position]:
            return None
        return self._titles[position], self._artists.values[self._artists.code(position)], self._albums[position] or ""

    def track(self, position: int, vector: np.ndarray) -> TrackInfo | None:
        """The track at `position` with its `vector` (d,) from the index; None when it has no metadata row."""
        if not self._present[position]:
            return None
        artist_code = self._artists.code(position)
        title = self._titles[position]
        moods: Mapping[str, float] = {}
        if self._mood_names:
            moods = {name: score for name, score in zip(self._mood_names, self._moods[position].tolist(), strict=True)
                     if not math.isnan(score)}
        return TrackInfo(
            item_id=self._item_ids[position],
            title=title,
            artist=self._artists.values[artist_code],
            vector=vector,
            album=self._albums[position] or "",
            duration_seconds=_optional(self._durations[position]),
            tempo_bpm=_optional(self._tempos[position]),
            camelot=self._camelots[position],
            energy=_optional(self._energies[position]),
            moods=moods,
            song_key=(self._song_title_key(position), self._artist_keys[artist_code]),
            file_format=self._formats[position],
            copies=len(self.copies(position)) or 1,
            copy_note=self._copy_note(position),
        )

    def _song_title_key(self, position: int) -> str:
        """The title part of the track's song key: its song's id when versions of it are grouped (so two songs with
        one title stay apart and a live version joins its song), else the folded title."""
        song = self._song_of.get(position)
        return self._title_keys[position] if song is None else SONG_ID_PREFIX + song

    # --- blocklists and scope (discovery.exclusions) ------------------------------------------------------------
    def _append_exclusion_values(self, row: tuple[Any, ...]) -> None:
        """Genres, folder and library of one row: its columns 10-12 (genres, file_path, library), appended after the
        first ten; a shorter row has none."""
        genres, path, library = row[10:13] if len(row) >= 13 else (None, None, None)
        for genre in genres if isinstance(genres, list | tuple) else ():
            if genre:
                self._genres.append(str(genre))
        self._genre_offsets.append(len(self._genres.codes))
        self._directories.append(directory_of(path) or None)
        self._libraries.append(library or None)

    def exclusion_columns(self) -> ExclusionColumns:
        """The columns the exclusions test, as numpy views of the catalogue's own arrays (no copy)."""

        def codes(coded: _Coded) -> np.ndarray:
            return np.frombuffer(coded.codes, dtype=np.int32) if len(coded.codes) else np.zeros(0, dtype=np.int32)

        return ExclusionColumns(
            artist_codes=codes(self._artists), artists=self._artists.values,
            album_codes=codes(self._albums), albums=self._albums.values,
            genre_offsets=np.frombuffer(self._genre_offsets, dtype=np.int64), genre_codes=codes(self._genres),
            genres=self._genres.values, directory_codes=codes(self._directories),
            directories=self._directories.values, library_codes=codes(self._libraries),
            libraries=self._libraries.values,
            durations=np.frombuffer(self._durations, dtype=np.float64) if len(self._durations) else np.zeros(0),
            artist_keys=self._artist_keys)

    def library(self, position: int) -> str | None:
        """The media-server library of the track at `position` (None when unknown)."""
        return self._libraries[position]
