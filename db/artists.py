"""Queries on artist_models (the artist model built beside the track index) and on the artist columns of tracks."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from db.pool import Database


@dataclass(frozen=True)
class ArtistTracks:
    """The songs of some item ids that the tracks table holds, aligned: title, artist tag, media-server artist id."""

    item_ids: list[str]
    titles: list[str]
    artists: list[str]
    artist_ids: list[str | None]


def track_artists(db: Database, item_ids: Sequence[str], *, batch: int = 20_000) -> ArtistTracks:
    """Title, artist and artist id of each of `item_ids` the tracks table holds, in the order given (the others are
    left out), streamed through a server-side cursor."""
    found = ArtistTracks([], [], [], [])
    with db.transaction() as cur, cur.connection.cursor(name="track_artists") as stream:
        stream.itersize = batch
        stream.execute(
            """SELECT t.item_id, t.title, t.artist, t.artist_id
                 FROM unnest(%s::text[]) WITH ORDINALITY AS u(item_id, position)
                 JOIN tracks t ON t.item_id = u.item_id
                ORDER BY u.position""",
            (list(item_ids),))
        for item_id, title, artist, artist_id in stream:
            found.item_ids.append(item_id)
            found.titles.append(title or "")
            found.artists.append(artist or "")
            found.artist_ids.append(artist_id)
    return found


def replace_model(db: Database, *, name: str, model: str, num_artists: int, num_components: int, data: bytes,
                  index_data: bytes) -> str:
    """Make (data, index_data) the stored artist model `name`; return their sha256."""
    digest = _digest(data, index_data)
    db.execute(
        """INSERT INTO artist_models (name, model, num_artists, num_components, data, index_data, sha256, built_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, now())
           ON CONFLICT (name) DO UPDATE SET model = EXCLUDED.model, num_artists = EXCLUDED.num_artists,
               num_components = EXCLUDED.num_components, data = EXCLUDED.data, index_data = EXCLUDED.index_data,
               sha256 = EXCLUDED.sha256, built_at = now()""",
        (name, model, num_artists, num_components, data, index_data, digest))
    return digest


@dataclass(frozen=True)
class StoredModel:
    data: bytes
    index_data: bytes
    sha256: str
    built_at: datetime


def stored_model(db: Database, name: str) -> StoredModel | None:
    """The stored artist model `name` (None before the first build). ValueError when its bytes are damaged."""
    row = db.fetch_one("SELECT data, index_data, sha256, built_at FROM artist_models WHERE name = %s", (name,))
    if row is None:
        return None
    data, index_data = bytes(row["data"]), bytes(row["index_data"])
    if _digest(data, index_data) != row["sha256"]:
        raise ValueError(f"stored artist model {name!r} does not match its checksum")
    return StoredModel(data, index_data, row["sha256"], row["built_at"])


def _digest(data: bytes, index_data: bytes) -> str:
    digest = hashlib.sha256(data)
    digest.update(index_data)
    return digest.hexdigest()


def delete_model(db: Database, name: str) -> None:
    db.execute("DELETE FROM artist_models WHERE name = %s", (name,))
