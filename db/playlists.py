"""Queries on playlists and playlist_tracks: what AudioMuse made and where it was pushed."""

from __future__ import annotations

from collections.abc import Sequence

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
