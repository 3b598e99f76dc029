"""The music map as the web process serves it: the mapped tracks in a fixed pseudo-random order, held once in a
compact form, and two ways of sending it.

`/api/map?percent=p` answers the first p % of that order (so the 25 % sample is inside the 50 % one, and the same
songs at every rebuild of the same library), either as the JSON document the reference's clients read or as the
binary form the map page draws (`format=binary`, layout below).

What is held, for n mapped tracks (about 30 MB at 1M tracks plus the compressed JSON):

- per point, in map order: its index position (int32), its coordinates (float32, and uint16 quantised for the
  binary form) and the code of its top tag (uint8, uint16 beyond 254 tags); per index position, its point (int32);
- the JSON items as ONE deflate stream, flushed at the end of each sample, so that the gzip document of any sample
  is a per-sample header, a prefix of that stream and a per-sample trailer (precomputed CRC-32s), with nothing
  compressed or copied per request; a client that does not accept gzip gets the prefix inflated as it is sent. The
  JSON is built straight into the compressor, so it is never held whole.

Titles, artists and item ids are not copied here: the page asks for those of the points it needs (hover, click,
lasso) by point index, and the web process reads them from the index's catalogue.

Binary layout (version 1; all little-endian):

    offset 0   4 bytes   magic b"AMAP"
    offset 4   uint16    format version (1)
    offset 6   uint16    bytes per tag code: 1 (uint8, 255 = no tag) or 2 (uint16, 65535 = no tag)
    offset 8   uint32    count: points in this answer
    offset 12  uint32    H: length of the JSON header (UTF-8, padded with spaces so 16 + H is a multiple of 4)
    offset 16  H bytes   JSON header: the JSON document's fields without items (projection, percent, count,
                         total, built_at, ...) plus version (the map's identity, for /api/map/items), bounds
                         [x_min, y_min, x_max, y_max] and tags (the tag names the codes index)
    then       count × 2 uint16: x, y of each point; x = x_min + q / 65535 × (x_max − x_min), the same for y
    then       count tag codes (1 or 2 bytes each)

Point i is the i-th track of the map order, so the samples are prefixes and point i is the same track in each.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from json.encoder import encode_basestring
from typing import Any

import numpy as np

from discovery.map_projection import map_order

__all__ = ["BINARY_MAGIC", "PERCENTS", "BinaryMap", "MapCache", "build_map_cache", "decode_binary_map",
           "sample_size"]

PERCENTS = (25, 50, 75, 100)
EMPTY_MESSAGE = "Nothing has been analyzed yet: run an analysis and the map fills in."
BINARY_MAGIC = b"AMAP"
BINARY_VERSION = 1
QUANT_STEPS = 65535
_PREFIX = struct.Struct("<4sHHII")
_SERVE_CHUNK = 1 << 20
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0, unknown OS
_JSON_TAIL = b"]}"


def sample_size(total: int, percent: int) -> int:
    """How many of `total` mapped tracks the `percent` % sample holds (at least one of a non-empty map)."""
    if total == 0:
        return 0
    return max(1, math.ceil(total * percent / 100))


@dataclass(frozen=True)
class _DeflatedJson:
    """The items of the JSON document as one raw deflate stream with a sync flush at the end of each sample."""

    stream: bytes
    heads: dict[int, bytes]  # percent -> the document up to and including '"items":['
    head_deflated: dict[int, bytes]  # the same, deflated on its own (a non-final block)
    tail_deflated: bytes  # ']}' as the final block
    ends: dict[int, int]  # percent -> end of that sample's items, uncompressed
    stream_ends: dict[int, int]  # percent -> end of that sample's items in `stream`
    crcs: dict[int, int]  # percent -> CRC-32 of the whole document


@dataclass(frozen=True, eq=False)
class MapCache:
    """The served map. Arrays are in map order (point i = i-th track of the order) unless said otherwise."""

    projection: str
    total: int
    meta: dict[str, Any]
    version: str
    tag_names: list[str]
    positions: np.ndarray  # (n,) int32: the index position of each point
    coords: np.ndarray  # (n, 2) float32
    codes: np.ndarray  # (n,) uint8 or uint16: the top tag of each point, into tag_names (the largest value: none)
    quantised: np.ndarray  # (n, 2) uint16
    bounds: tuple[float, float, float, float]  # x_min, y_min, x_max, y_max
    _point_of: np.ndarray = field(repr=False)  # (index size,) int32: point of each index position, -1: none
    _json: _DeflatedJson = field(repr=False)
    index_id: str = ""  # which index the positions are of (its sha256), so a reader can tell a stale cache

    # --- JSON -----------------------------------------------------------------------------------------------
    def json_chunks(self, percent: int) -> Iterator[bytes]:
        """The JSON document of the `percent` sample, inflated as it goes (no copy of the whole)."""
        doc = self._json
        yield doc.heads[percent]
        inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        stream = memoryview(doc.stream)[:doc.stream_ends[percent]]
        for start in range(0, len(stream), _SERVE_CHUNK // 8):
            data = inflate.decompress(stream[start:start + _SERVE_CHUNK // 8])
            if data:
                yield data
        yield _JSON_TAIL

    def json_length(self, percent: int) -> int:
        return len(self._json.heads[percent]) + self._json.ends[percent] + len(_JSON_TAIL)

    def json_bytes(self, percent: int) -> bytes:
        return b"".join(self.json_chunks(percent))

    def gzip_chunks(self, percent: int) -> Iterator[bytes]:
        """The gzip file of the `percent` sample's JSON document: a prefix of the one deflate stream between its
        own header and trailer."""
        doc = self._json
        yield _GZIP_HEADER + doc.head_deflated[percent]
        stream = memoryview(doc.stream)[:doc.stream_ends[percent]]
        for start in range(0, len(stream), _SERVE_CHUNK):
            yield bytes(stream[start:start + _SERVE_CHUNK])
        yield doc.tail_deflated + struct.pack("<II", doc.crcs[percent], self.json_length(percent) & 0xFFFFFFFF)

    def gzip_length(self, percent: int) -> int:
        doc = self._json
        return (len(_GZIP_HEADER) + len(doc.head_deflated[percent]) + doc.stream_ends[percent]
                + len(doc.tail_deflated) + 8)

    def gzip_bytes(self, percent: int) -> bytes:
        return b"".join(self.gzip_chunks(percent))

    # --- binary ---------------------------------------------------------------------------------------------
    def binary_header(self, percent: int) -> dict[str, Any]:
        return {**self.meta, "projection": self.projection, "percent": percent,
                "count": sample_size(self.total, percent), "total": self.total, "version": self.version,
                "bounds": list(self.bounds), "tags": self.tag_names}

    def _binary_prefix(self, percent: int) -> bytes:
        header = json.dumps(self.binary_header(percent), ensure_ascii=False, separators=(",", ":")).encode()
        header += b" " * (-(_PREFIX.size + len(header)) % 4)
        return _PREFIX.pack(BINARY_MAGIC, BINARY_VERSION, self.codes.itemsize, sample_size(self.total, percent),
                            len(header)) + header

    def binary_chunks(self, percent: int) -> Iterator[bytes]:
        """The binary form of the `percent` sample (layout in the module docstring)."""
        count = sample_size(self.total, percent)
        yield self._binary_prefix(percent)
        for array in (self.quantised[:count], self.codes[:count]):
            data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).view(np.uint8).reshape(-1)
            for start in range(0, len(data), _SERVE_CHUNK):
                yield data[start:start + _SERVE_CHUNK].tobytes()

    def binary_length(self, percent: int) -> int:
        count = sample_size(self.total, percent)
        return len(self._binary_prefix(percent)) + count * (4 + self.codes.itemsize)

    def binary_bytes(self, percent: int) -> bytes:
        return b"".join(self.binary_chunks(percent))

    # --- single points --------------------------------------------------------------------------------------
    def point(self, position: int) -> tuple[float, float] | None:
        """Where the track at index `position` is ((x, y) as the JSON says it), None when it is not on the map."""
        if not 0 <= position < len(self._point_of):
            return None
        i = int(self._point_of[position])
        return None if i < 0 else self.xy(i)

    def xy(self, i: int) -> tuple[float, float]:
        x, y = self.coords[i].tolist()
        return round(x, 4), round(y, 4)

    def top_tag(self, i: int) -> str | None:
        code = int(self.codes[i])
        return self.tag_names[code] if code < len(self.tag_names) else None

    def moved(self, moved: np.ndarray, *, index_size: int, index_id: str) -> MapCache:
        """This map on a new index `index_id` of `index_size` positions: point i's track is at `moved[p]` there
        (p its position here; -1: the new index does not hold it, and `positions` says -1). The documents name
        tracks by item id, so they are served as they are."""
        positions = np.where(self.positions >= 0, moved[np.maximum(self.positions, 0)], -1).astype(np.int32)
        kept = np.flatnonzero(positions >= 0)
        point_of = np.full(index_size, -1, dtype=np.int32)
        point_of[positions[kept]] = kept.astype(np.int32)
        return replace(self, positions=positions, _point_of=point_of, index_id=index_id)

    @property
    def nbytes(self) -> int:
        arrays = (self.positions, self.coords, self.codes, self.quantised, self._point_of)
        doc = self._json
        return (sum(a.nbytes for a in arrays) + len(doc.stream)
                + sum(len(h) + len(d) for h, d in zip(doc.heads.values(), doc.head_deflated.values(), strict=True)))


@dataclass(frozen=True)
class BinaryMap:
    """A decoded binary map: its JSON header, (count, 2) float64 coordinates and (count,) tag codes (-1: none)."""

    header: dict[str, Any]
    coords: np.ndarray
    codes: np.ndarray


def decode_binary_map(data: bytes) -> BinaryMap:
    """Read the binary form (what static/js/map.js does in the browser); ValueError when `data` is not one."""
    if len(data) < _PREFIX.size:
        raise ValueError(f"{len(data)} bytes are too few for a binary map")
    magic, version, code_size, count, length = _PREFIX.unpack_from(data)
    if magic != BINARY_MAGIC or version != BINARY_VERSION or code_size not in (1, 2):
        raise ValueError(f"not a version-{BINARY_VERSION} binary map (magic {magic!r}, version {version})")
    at = _PREFIX.size + length
    if len(data) != at + count * (4 + code_size):
        raise ValueError(f"a binary map of {count} points cannot be {len(data)} bytes long")
    header = json.loads(data[_PREFIX.size:at])
    q = np.frombuffer(data, dtype="<u2", count=2 * count, offset=at).reshape(count, 2).astype(np.float64)
    x0, y0, x1, y1 = header["bounds"]
    coords = np.stack([x0 + q[:, 0] * ((x1 - x0) / QUANT_STEPS), y0 + q[:, 1] * ((y1 - y0) / QUANT_STEPS)], axis=1)
    codes = np.frombuffer(data, dtype="<u1" if code_size == 1 else "<u2", count=count, offset=at + 4 * count)
    none = (1 << (8 * code_size)) - 1
    return BinaryMap(header, coords, np.where(codes == none, -1, codes.astype(np.int64)))


def _quantise(coords: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """(n, 2) uint16 coordinates over the bounding box and the box: a step of 1/65535 of the map's width."""
    if len(coords) == 0:
        return np.zeros((0, 2), dtype=np.uint16), (0.0, 0.0, 0.0, 0.0)
    xy = coords.astype(np.float64)
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    q = np.rint((xy - low) / span * QUANT_STEPS).astype(np.uint16)
    return q, (float(low[0]), float(low[1]), float(high[0]), float(high[1]))


def _number(value: float) -> str:
    return repr(value)  # what json.dumps writes for a finite float


def build_map_cache(*, positions: Sequence[int], item_ids: Sequence[str], names: Sequence[tuple[str, str, str]],
                    coords: np.ndarray, tag_names: Sequence[str], tag_codes: np.ndarray, tag_scores: np.ndarray,
                    index_size: int, projection: str, meta: dict[str, Any] | None = None,
                    gzip_level: int = 6, index_id: str = "") -> MapCache:
    """The cache of the mapped tracks: `positions` (their index positions), `item_ids`, `names` ((title, artist,
    album) each; any sequence, read once per track, so a view of the catalogue will do), `coords` (n, 2), and their
    top tags as `tag_codes` (n, k) into `tag_names` (-1: none) with `tag_scores` (n, k). `index_size` sizes the
    by-position table and `index_id` names that index; `meta` goes into every document."""
    n = len(item_ids)
    xy = np.asarray(coords, dtype=np.float32).reshape(n, 2)
    if not (len(positions) == len(names) == n == tag_codes.shape[0] == tag_scores.shape[0]):
        raise ValueError("map columns differ in length")
    meta = dict(meta or {})
    if n == 0:
        meta.setdefault("message", EMPTY_MESSAGE)
    order = map_order(item_ids)
    ordered_positions = np.asarray(positions, dtype=np.int32).reshape(n)[order]
    ordered_xy = np.ascontiguousarray(xy[order])
    tag_names = list(tag_names)
    code_type, none = (np.uint8, 0xFF) if len(tag_names) < 0xFF else (np.uint16, 0xFFFF)
    top = (tag_codes[:, 0] if tag_codes.shape[1] else np.full(n, -1)).astype(np.int64)[order]
    codes = np.where(top >= 0, top, none).astype(code_type)
    point_of = np.full(index_size, -1, dtype=np.int32)
    point_of[ordered_positions] = np.arange(n, dtype=np.int32)
    quantised, bounds = _quantise(ordered_xy)
    heads = {p: _json_head(meta, projection=projection, percent=p, total=n) for p in PERCENTS}
    document = _deflate_items(order, item_ids=item_ids, names=names, xy=ordered_xy, tag_names=tag_names,
                              tag_codes=tag_codes, tag_scores=tag_scores, heads=heads, level=gzip_level)
    version = hashlib.blake2b(b"".join([projection.encode(), json.dumps(meta, sort_keys=True).encode(),
                                        ordered_positions.tobytes(), ordered_xy.tobytes(), codes.tobytes(),
                                        json.dumps(tag_names).encode()]), digest_size=8).hexdigest()
    return MapCache(projection=projection, total=n, meta=meta, version=version, tag_names=tag_names,
                    positions=ordered_positions, coords=ordered_xy, codes=codes, quantised=quantised, bounds=bounds,
                    _point_of=point_of, _json=document, index_id=index_id)


def _json_head(meta: dict[str, Any], *, projection: str, percent: int, total: int) -> bytes:
    head = {**meta, "projection": projection, "percent": percent, "count": sample_size(total, percent),
            "total": total}
    return json.dumps(head, separators=(",", ":"))[:-1].encode() + b',"items":['


_BLOCK = 4096


def _deflate_items(order: np.ndarray, *, item_ids: Sequence[str], names: Sequence[tuple[str, str, str]],
                   xy: np.ndarray, tag_names: list[str], tag_codes: np.ndarray, tag_scores: np.ndarray,
                   heads: dict[int, bytes], level: int) -> _DeflatedJson:
    """The items of every sample as one deflate stream (see the module docstring), written item by item."""
    n = len(order)
    ends_at = {sample_size(n, p): p for p in PERCENTS}  # item count -> percent(s) ending there
    boundaries = sorted(ends_at)
    quoted_tags = [encode_basestring(t) for t in tag_names]
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    crcs = {p: zlib.crc32(heads[p]) for p in PERCENTS}
    stream: list[bytes] = []
    ends: dict[int, int] = {}
    stream_ends: dict[int, int] = {}
    written = 0  # uncompressed bytes of items so far
    compressed = 0
    pending: list[str] = []
    done = 0

    def emit(text: str, *, flush: bool) -> None:
        nonlocal written, compressed
        data = text.encode()
        written += len(data)
        for p in PERCENTS:
            if p not in ends:
                crcs[p] = zlib.crc32(data, crcs[p])
        out = compressor.compress(data)
        if flush:
            out += compressor.flush(zlib.Z_SYNC_FLUSH)
        if out:
            stream.append(out)
            compressed += len(out)

    # rows as Python values a block at a time: all of them at once were ~400 MB of lists and floats at 1M tracks
    blocks = ((order[b:b + _BLOCK], xy[b:b + _BLOCK]) for b in range(0, n, _BLOCK))
    rows = ((i, x, y, row_codes, row_scores) for indices, block_xy in blocks
            for i, (x, y), row_codes, row_scores in zip(indices.tolist(), block_xy.tolist(),
                                                        tag_codes[indices].tolist(), tag_scores[indices].tolist(),
                                                        strict=True))
    for count, (i, x, y, row_codes, row_scores) in enumerate(rows, start=1):
        title, artist, album = names[i]
        moods = ",".join(f"{quoted_tags[c]}:{_number(round(s, 3))}"
                         for c, s in zip(row_codes, row_scores, strict=True) if c >= 0)
        first = row_codes[0] if row_codes else -1
        pending.append(("," if count > 1 else "")
                       + f'{{"item_id":{encode_basestring(item_ids[i])},"title":{encode_basestring(title)},'
                       f'"artist":{encode_basestring(artist)},"album":{encode_basestring(album)},'
                       f'"embedding_2d":[{_number(round(x, 4))},{_number(round(y, 4))}],'
                       f'"top_mood":{quoted_tags[first] if first >= 0 else "null"},"mood_vector":{{{moods}}}}}')
        boundary = done < len(boundaries) and count == boundaries[done]
        if boundary or len(pending) >= 256:
            emit("".join(pending), flush=boundary)
            pending.clear()
        if boundary:
            ending = [p for p in PERCENTS if sample_size(n, p) == count]
            for p in ending:
                ends[p], stream_ends[p] = written, compressed
            done += 1
    if n == 0:
        emit("", flush=True)
        ends.update({p: 0 for p in PERCENTS})
        stream_ends.update({p: compressed for p in PERCENTS})
    head_deflated = {}
    for p in PERCENTS:
        own = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        head_deflated[p] = own.compress(heads[p]) + own.flush(zlib.Z_SYNC_FLUSH)
        crcs[p] = zlib.crc32(_JSON_TAIL, crcs[p])
    last = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    tail_deflated = last.compress(_JSON_TAIL) + last.flush(zlib.Z_FINISH)
    return _DeflatedJson(stream=b"".join(stream), heads=heads, head_deflated=head_deflated,
                         tail_deflated=tail_deflated, ends=ends, stream_ends=stream_ends, crcs=crcs)
