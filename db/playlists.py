"""Queries on playlists and playlist_tracks: what AudioMuse made and where it was pushed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from db.pool import Database


def save_playlist(db: Database, *, name: str, source: str, item_ids: Sequence[str],
                  mediaserver_playlist: str | None) -> int:
    """Create or replace the playlist `name` from `source` with these tracks, in order; return its id."""
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO playlists (name, source, mediaserver_playlist) VALUES (%s, %s, %s)
               ON CONFLICT (name, source) DO UPDATE SET mediaserver_playlist = EXCLUDED.mediaserver_playlist,
                                                        created_at = now()
               RETURNING playlist_id""",
            (name, source, mediaserver_playlist),
        )
        row = cur.fetchone()
        assert row is not None
        playlist_id = int(row["playlist_id"])
        cur.execute("DELETE FROM playlist_tracks WHERE playlist_id = %s", (playlist_id,))
        cur.executemany("INSERT INTO playlist_tracks (playlist_id, position, item_id) VALUES (%s, %s, %s)",
                        [(playlist_id, position, item_id) for position, item_id in enumerate(item_ids)])
    return playlist_id


def replace_playlists(db: Database, *, source: str, playlists: Sequence[tuple[str, Sequence[str], str | None]]) -> None:
    """Make (name, item ids, media-server id) the only playlists of `source`, in one transaction."""
    with db.transaction() as cur:
        cur.execute("DELETE FROM playlists WHERE source = %s", (source,))
        for name, item_ids, mediaserver_playlist in playlists:
            cur.execute("INSERT INTO playlists (name, source, mediaserver_playlist) VALUES (%s, %s, %s) "
                        "RETURNING playlist_id", (name, source, mediaserver_playlist))
            row = cur.fetchone()
            assert row is not None
            cur.executemany("INSERT INTO playlist_tracks (playlist_id, position, item_id) VALUES (%s, %s, %s)",
                            [(row["playlist_id"], position, item_id) for position, item_id in enumerate(item_ids)])


def set_mediaserver_ids(db: Database, *, source: str, ids: dict[str, str]) -> None:
    """Record the media server's id of each published playlist (name → id)."""
    with db.transaction() as cur:
        cur.executemany("UPDATE playlists SET mediaserver_playlist = %s WHERE source = %s AND name = %s",
                        [(pid, source, name) for name, pid in ids.items()])


def list_playlists(db: Database, *, source: str | None = None) -> list[dict[str, Any]]:
    """Playlists (newest first) with their tracks in order: [{name, source, mediaserver_playlist, created_at,
    tracks: [{item_id, title, artist}]}]."""
    rows = db.fetch_all(
        """SELECT p.playlist_id, p.name, p.source, p.mediaserver_playlist, p.created_at, pt.item_id, t.title,
                  t.artist
             FROM playlists p LEFT JOIN playlist_tracks pt ON pt.playlist_id = p.playlist_id
             LEFT JOIN tracks t ON t.item_id = pt.item_id
            WHERE %(source)s::text IS NULL OR p.source = %(source)s
            ORDER BY p.created_at DESC, p.name, pt.position""",
        {"source": source})
    playlists: dict[int, dict[str, Any]] = {}
    for row in rows:
        entry = playlists.setdefault(row["playlist_id"], {
            "name": row["name"], "source": row["source"], "mediaserver_playlist": row["mediaserver_playlist"],
            "created_at": row["created_at"].isoformat(), "tracks": []})
        if row["item_id"] is not None:
            entry["tracks"].append({"item_id": row["item_id"], "title": row["title"], "artist": row["artist"]})
    return list(playlists.values())
