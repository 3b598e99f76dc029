"""Everything a caller can ask a discovery Catalog, for comparing two catalogues by what they answer."""

from __future__ import annotations

from typing import Any

import numpy as np

from discovery.catalog import DELETED, Catalog
from discovery.exclusions import Exclusions, allowed_mask


def catalog_answers(catalog: Catalog, ids: list[str]) -> dict[str, Any]:
    """Everything a caller can ask the catalogue, for every position and item id."""
    n = len(catalog)
    vector = np.zeros(2, dtype=np.float32)
    tracks = []
    for p in range(n):
        t = catalog.track(p, vector)
        tracks.append(None if t is None else (t.item_id, t.title, t.artist, t.album, t.duration_seconds, t.tempo_bpm,
                                              t.camelot, t.energy, dict(t.moods), t.song_key, t.file_format,
                                              t.copies, t.copy_note))
    columns = catalog.exclusion_columns()
    offsets = columns.genre_offsets
    genre_runs = [[columns.genres[c] for c in columns.genre_codes[offsets[p]:offsets[p + 1]]] for p in range(n)]
    masks = [allowed_mask(columns, ex).allowed.tolist() for ex in (
        Exclusions.of(artists=["artist 3"]), Exclusions.of(genres=["jazz", "genre 1"]), Exclusions.of(
            folders=["/music/Artist 2"]), Exclusions.of(libraries=["kids"]), Exclusions.of(max_duration=100),
        Exclusions.of(albums=["album a"]))]
    return {
        "len": n, "live": catalog.live, "live_positions": catalog.live_positions().tolist(),
        "ids": [catalog.item_id(p) for p in range(n)], "names": [catalog.names(p) for p in range(n)],
        "tracks": tracks, "positions": {i: catalog.position(i) for i in ids + ["nope", DELETED]},
        "kept": [catalog.kept_copy(p) for p in range(n)], "copies": [catalog.copies(p) for p in range(n)],
        "fields": [catalog.copy_fields(p) for p in range(n)], "library": [catalog.library(p) for p in range(n)],
        "songs": [catalog.song_of(p) if catalog.names(p) else None for p in range(n)],
        "one_per_song": list(catalog.one_per_song(range(n))),
        "artists": {a: catalog.artist_positions(a) for a in [f"Artist {i}" for i in range(12)] + ["ARTIST 4 feat. X"]},
        "genres": genre_runs, "masks": masks,
        "durations": [None if np.isnan(d) else d for d in columns.durations.tolist()],
    }
