"""The artist model in the web process: loaded from PostgreSQL with the track index (a cache registered on the
IndexHolder, so each new analysis replaces it without a restart), and the lookups the artist routes and the
alchemy use."""

from __future__ import annotations

import numpy as np

from db import artists as artist_store
from db.pool import Database
from discovery.artist_similarity import ArtistModel
from voyager_manager import IndexHolder, LoadedIndex

CACHE_NAME = "artists"


def build_artist_model(db: Database, loaded: LoadedIndex | None) -> ArtistModel | None:
    """The artist model stored beside the index just loaded (None before the first analysis)."""
    if loaded is None:
        return None
    stored = artist_store.stored_model(db, loaded.name)
    return None if stored is None else ArtistModel.from_bytes(stored.data, stored.index_data)


def keep_artist_model(model: ArtistModel, loaded: LoadedIndex, moved: np.ndarray) -> ArtistModel:
    """The artist model on a new index (an IndexHolder cache mover): as it is, since it names artists, not
    positions, until the one stored with the new index is read."""
    return model


def current_artists(holder: IndexHolder) -> ArtistModel | None:
    """The artist model as last loaded; None while none is."""
    model = holder.cache(CACHE_NAME)
    return model if isinstance(model, ArtistModel) else None


def artist_name(holder: IndexHolder, value: str) -> str:
    """The artist's name for a name or a media-server artist id (the Navidrome plugin sends ids); `value` itself
    while no artist model is loaded or the model does not know it."""
    model = current_artists(holder)
    row = model.find(value) if model is not None else None
    return value if model is None or row is None else model.names[row]
