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
    """Make (name, item ids, media-server id) the playlists of `source` besides its pinned ones, which stay as they
    are, in one transaction. A name recorded before keeps its media-server id when None is given: the playlist on
    the server is still that one until publishing says otherwise. The names must not be pinned ones."""
    with db.transaction() as cur:
        cur.execute("DELETE FROM playlists WHERE source = %s AND pinned_at IS NULL "
                    "RETURNING name, mediaserver_playlist", (source,))
        recorded = {row["name"]: row["mediaserver_playlist"] for row in cur.fetchall()}
        for name, item_ids, mediaserver_playlist in playlists:
            cur.execute("INSERT INTO playlists (name, source, mediaserver_playlist) VALUES (%s, %s, %s) "
                        "RETURNING playlist_id", (name, source, mediaserver_playlist or recorded.get(name)))
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
    """Playlists (newest first) with their tracks in order: [{name, source, mediaserver_playlist, created_at, pinned,
    tracks: [{item_id, title, artist}]}]."""
    rows = db.fetch_all(
        """SELECT p.playlist_id, p.name, p.source, p.mediaserver_playlist, p.created_at, p.pinned_at, pt.item_id,
                  t.title, t.artist
             FROM playlists p LEFT JOIN playlist_tracks pt ON pt.playlist_id = p.playlist_id
             LEFT JOIN tracks t ON t.item_id = pt.item_id
            WHERE %(source)s::text IS NULL OR p.source = %(source)s
            ORDER BY p.created_at DESC, p.name, pt.position""",
        {"source": source})
    playlists: dict[int, dict[str, Any]] = {}
    for row in rows:
        entry = playlists.setdefault(row["playlist_id"], {
            "name": row["name"], "source": row["source"], "mediaserver_playlist": row["mediaserver_playlist"],
            "created_at": row["created_at"].isoformat(), "pinned": row["pinned_at"] is not None, "tracks": []})
        if row["item_id"] is not None:
            entry["tracks"].append({"item_id": row["item_id"], "title": row["title"], "artist": row["artist"]})
    return list(playlists.values())


_SUMMARY = """SELECT p.name, p.mediaserver_playlist, p.created_at, p.pinned_at,
                     (SELECT count(*) FROM playlist_tracks pt WHERE pt.playlist_id = p.playlist_id) AS track_count
                FROM playlists p"""


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "pinned": row["pinned_at"] is not None,
            "pinned_at": row["pinned_at"].isoformat() if row["pinned_at"] else None,
            "track_count": int(row["track_count"]), "mediaserver_playlist": row["mediaserver_playlist"],
            "created_at": row["created_at"].isoformat()}


def playlist_summaries(db: Database, *, source: str) -> list[dict[str, Any]]:
    """The playlists of `source` by name, without their tracks: [{name, pinned, pinned_at, track_count,
    mediaserver_playlist, created_at}]."""
    return [_summary(row) for row in db.fetch_all(_SUMMARY + " WHERE p.source = %s ORDER BY p.name", (source,))]


def recent_playlists(db: Database, *, limit: int) -> list[dict[str, Any]]:
    """The `limit` playlists AudioMuse made or changed last, newest first: [{name, source, track_count,
    mediaserver_playlist, created_at, pinned, pinned_at}]."""
    rows = db.fetch_all(_SUMMARY.replace("SELECT p.name,", "SELECT p.name, p.source,")
                        + " ORDER BY p.created_at DESC, p.name LIMIT %s", (limit,))
    return [dict(_summary(row), source=row["source"]) for row in rows]


def set_pinned(db: Database, *, source: str, name: str, pinned: bool) -> dict[str, Any] | None:
    """Pin (or unpin) the playlist `name` of `source`; its summary afterwards, None when there is no such playlist.
    Pinning a pinned playlist keeps the time it was first pinned."""
    with db.transaction() as cur:
        cur.execute("UPDATE playlists SET pinned_at = CASE WHEN %s THEN coalesce(pinned_at, now()) END "
                    "WHERE source = %s AND name = %s", (pinned, source, name))
        cur.execute(_SUMMARY + " WHERE p.source = %s AND p.name = %s", (source, name))
        row = cur.fetchone()
    return _summary(dict(row)) if row is not None else None
