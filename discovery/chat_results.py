"""The chat's rows made into a playlist: versions of one song (same artist, same title once "(Live)", "- 2011
Remaster" and the like are set aside) kept once, at most `max_per_artist` songs per artist, at most `limit`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from discovery.chat_intent import fold

_VERSION = re.compile(r"\s*(\([^)]*\)|\[[^\]]*\]|\s-\s.*(remaster|live|version|edit|mix|mono|stereo).*)\s*$",
                      re.IGNORECASE)


def song_key(title: str, artist: str) -> tuple[str, str]:
    base = title or ""
    while True:
        stripped = _VERSION.sub("", base)
        if stripped == base or not stripped:
            break
        base = stripped
    return fold(base), fold(artist or "")


def playlist_rows(rows: Sequence[dict[str, Any]], *, max_per_artist: int, limit: int) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    per_artist: dict[str, int] = {}
    kept = []
    for row in rows:
        key = song_key(str(row.get("title") or ""), str(row.get("artist") or ""))
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
