"""The chat's rows made into a playlist: versions of one song (the library's one `song_key`: same artist, same title
once "(Live)", "- 2011 Remaster" and the like are set aside; a remix stays its own song) kept once, at most
`max_per_artist` songs per artist, at most `limit`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from discovery.dedup import song_key
from discovery.versions import song_identity

__all__ = ["playlist_rows", "song_key"]


def playlist_rows(rows: Sequence[dict[str, Any]], *, max_per_artist: int, limit: int,
                  song_of: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """`song_of`: the stored song ids of the rows' tracks (discovery/versions.py), which tell two songs with one
    title apart and join a version to its song; without them the title decides."""
    seen: set[tuple[str, str]] = set()
    per_artist: dict[str, int] = {}
    kept = []
    for row in rows:
        key = song_identity(str(row.get("item_id") or ""), str(row.get("title") or ""),
                            str(row.get("artist") or ""), song_of or {})
        if not row.get("item_id") or key in seen:
            continue
        if max_per_artist and per_artist.get(key[1], 0) >= max_per_artist:
            continue
        seen.add(key)
        per_artist[key[1]] = per_artist.get(key[1], 0) + 1
        kept.append(row)
        if len(kept) >= limit:
            break
    return kept
