"""The artist model in the web process: loaded from PostgreSQL with the track index (a cache registered on the
IndexHolder, so each new analysis replaces it without a restart), and the lookup the artist routes and the alchemy
use."""

from __future__ import annotations

import numpy as np

from db import artists as artist_store
from db.pool import Database
from discovery.artist_similarity import ArtistModel, artist_vector
from voyager_manager import IndexHolder, LoadedIndex

CACHE_NAME = "artists"


def build_artist_model(db: Database, loaded: LoadedIndex | None) -> ArtistModel | None:
    """The artist model stored beside the index just loaded (None before the first analysis)."""
    if loaded is None:
        return None
    stored = artist_store.stored_model(db, loaded.name)
    return None if stored is None else ArtistModel.from_bytes(stored.data, stored.index_data)


def current_artists(holder: IndexHolder) -> ArtistModel | None:
    """The artist model as last loaded; None while none is."""
    model = holder.cache(CACHE_NAME)
    return model if isinstance(model, ArtistModel) else None


def artist_centroid(holder: IndexHolder, artist: str) -> np.ndarray | None:
    """An artist's centroid (discovery.artist_similarity.artist_vector) by name or media-server id; None while no
    artist model is loaded. UnknownArtist (a DiscoveryError) for an artist the model does not hold."""
    model = current_artists(holder)
    return None if model is None else artist_vector(model, artist)
