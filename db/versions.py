"""The version groups of the library (discovery/versions.py): what the rule reads, and its result stored with the
tracks (`recording_id`, `song_id`) for every list to read."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from db.pool import Database

# SQL over `tracks t`: the song a track is a version of, which is also the file a list shows for it (the kept copy
# of the song's first recording); a track alone in its song has no id stored and stands for itself.
SONG = "coalesce(t.song_id, t.item_id)"
SHOWN_COPY = SONG

# Every adapter that knows a file's size puts it first in the change signature ("size:mtime…", "size:created").
_SIZE = re.compile(r"^(\d+):")


def size_from_signature(signature: str | None) -> int | None:
    match = _SIZE.match(signature or "")
    return int(match.group(1)) if match else None


def reset_song_keys(db: Database, code: str) -> int:
    """Forget every stored song-key hash when they were computed by other code than `code` (the hash of the code that
    folds titles); return how many were forgotten."""
    row = db.fetch_one("SELECT value FROM app_settings WHERE key = 'song_key_code'")
    if row is not None and row["value"] == code:
        return 0
    with db.transaction() as cur:
        cur.execute("UPDATE tracks SET song_key_hash = NULL WHERE song_key_hash IS NOT NULL")
        forgotten = cur.rowcount
        cur.execute("""INSERT INTO app_settings (key, value) VALUES ('song_key_code', %s)
                       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""", (code,))
        cur.execute("INSERT INTO version_regroup (song_key_hash) VALUES (NULL)")  # every key, until regrouped
    return forgotten


def tracks_without_song_key(db: Database, *, batch: int = 20_000) -> Iterator[list[tuple[str, str, str]]]:
    """(item_id, title, artist) of the tracks whose song-key hash is not stored, `batch` at a time."""
    with db.transaction() as cur, cur.connection.cursor(name="without_song_key") as stream:
        stream.itersize = batch
        stream.execute("SELECT item_id, coalesce(title, ''), coalesce(artist, '') FROM tracks "
                       "WHERE song_key_hash IS NULL")
        while rows := stream.fetchmany(batch):
            yield [(r[0], r[1], r[2]) for r in rows]


def store_song_keys(db: Database, rows: Sequence[tuple[str, str, str]], hashes: Sequence[int]) -> None:
    """Store the song-key hash of each (item_id, title, artist) row, unless the track was renamed since it was read
    (its key is then computed again next time); the keys stored are asked to be regrouped, in the same statement."""
    db.execute("""WITH stored AS (
                      UPDATE tracks t SET song_key_hash = v.h
                        FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) AS v(item_id, title, artist, h)
                       WHERE t.item_id = v.item_id AND t.song_key_hash IS NULL
                         AND coalesce(t.title, '') = v.title AND coalesce(t.artist, '') = v.artist
                   RETURNING t.song_key_hash)
                  INSERT INTO version_regroup (song_key_hash) SELECT DISTINCT song_key_hash FROM stored""",
               ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], list(hashes)))


def request_regroup(db: Database, item_ids: Sequence[str]) -> None:
    """Ask for the song keys of `item_ids` (those hashed) to be regrouped: kept in the database, so a regroup that
    fails or never runs leaves them for the next one."""
    if item_ids:
        db.execute("""INSERT INTO version_regroup (song_key_hash)
                      SELECT DISTINCT song_key_hash FROM tracks
                       WHERE item_id = ANY(%s::text[]) AND song_key_hash IS NOT NULL""", (list(item_ids),))


def shared_song_key_rows(db: Database, item_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """(row in `item_ids`, item_id, title, artist, duration_seconds, file_path, size in bytes or None) of those of
    `item_ids` whose song-key hash another of them shares, in the order given."""
    rows = db.fetch_all(
        """WITH listed AS (SELECT u.item_id, u.position, t.song_key_hash
                             FROM unnest(%s::text[]) WITH ORDINALITY AS u(item_id, position)
                             JOIN tracks t ON t.item_id = u.item_id),
                shared AS (SELECT song_key_hash FROM listed WHERE song_key_hash IS NOT NULL
                            GROUP BY song_key_hash HAVING count(*) > 1)
           SELECT l.position - 1 AS row, t.item_id, t.title, t.artist, t.duration_seconds, t.file_path,
                  t.source_signature
             FROM listed l JOIN shared s ON s.song_key_hash = l.song_key_hash
             JOIN tracks t ON t.item_id = l.item_id
            ORDER BY l.position""", (list(item_ids),))
    return [(int(r["row"]), r["item_id"], r["title"], r["artist"], r["duration_seconds"], r["file_path"],
             size_from_signature(r["source_signature"])) for r in rows]


def store_groups(db: Database, recording_of: Mapping[str, str], song_of: Mapping[str, str], *,
                 answered: Sequence[int] = ()) -> int:
    """Store the groups in one transaction: the given tracks get their ids, every other track NULLs; the regroup
    requests `answered` (RegroupRequests.numbers) are removed. Writes only rows that change; returns how many
    did."""
    ids = sorted(set(recording_of) | set(song_of))
    with db.transaction() as cur:
        cur.execute(
            """UPDATE tracks t SET recording_id = v.recording_id, song_id = v.song_id
                 FROM unnest(%s::text[], %s::text[], %s::text[]) AS v(item_id, recording_id, song_id)
                WHERE t.item_id = v.item_id
                  AND (t.recording_id IS DISTINCT FROM v.recording_id OR t.song_id IS DISTINCT FROM v.song_id)""",
            (ids, [recording_of.get(i) for i in ids], [song_of.get(i) for i in ids]))
        changed = cur.rowcount
        cur.execute(
            """UPDATE tracks SET recording_id = NULL, song_id = NULL
                WHERE (recording_id IS NOT NULL OR song_id IS NOT NULL) AND NOT (item_id = ANY(%s::text[]))""",
            (ids,))
        changed += cur.rowcount
        cur.execute("DELETE FROM version_regroup WHERE seq = ANY(%s::bigint[])", (list(answered),))
        return changed


@dataclass(frozen=True)
class RegroupRequests:
    """The song keys asked to be regrouped (migration 0027's table), `keys` None when every key must be, and the
    numbers of the requests read: the store that answers them removes those alone (a request committed after the
    read, even with a lower number, stays for the next regroup)."""

    numbers: list[int]
    keys: set[int] | None


def regroup_requests(db: Database) -> RegroupRequests:
    """The regroup requests committed so far."""
    rows = db.fetch_all("SELECT seq, song_key_hash FROM version_regroup")
    numbers = [int(r["seq"]) for r in rows]
    if any(r["song_key_hash"] is None for r in rows):
        return RegroupRequests(numbers, None)
    return RegroupRequests(numbers, {int(r["song_key_hash"]) for r in rows})


def song_key_rows(db: Database, hashes: Collection[int]) -> list[tuple[Any, ...]]:
    """(song-key hash, item_id, title, artist, duration_seconds, file_path, size in bytes or None) of every track
    whose song-key hash is one of `hashes`, in item-id order."""
    if not hashes:
        return []
    rows = db.fetch_all(
        """SELECT song_key_hash, item_id, title, artist, duration_seconds, file_path, source_signature FROM tracks
            WHERE song_key_hash = ANY(%s::bigint[]) ORDER BY item_id""", (sorted(hashes),))
    return [(int(r["song_key_hash"]), r["item_id"], r["title"], r["artist"], r["duration_seconds"], r["file_path"],
             size_from_signature(r["source_signature"])) for r in rows]


def store_groups_of_keys(db: Database, hashes: Collection[int], recording_of: Mapping[str, str],
                         song_of: Mapping[str, str], *, answered: Sequence[int]) -> int:
    """Store the groups of the tracks whose song-key hash is one of `hashes` (those absent from both maps NULLs),
    leave every other track's as stored, and remove the regroup requests `answered`, in one transaction.
    Writes only rows that change; returns how many did."""
    ids = sorted(set(recording_of) | set(song_of))
    with db.transaction() as cur:
        cur.execute(
            """UPDATE tracks t SET recording_id = v.recording_id, song_id = v.song_id
                 FROM (SELECT k.item_id, g.recording_id, g.song_id
                         FROM tracks k
                         LEFT JOIN unnest(%s::text[], %s::text[], %s::text[]) AS g(item_id, recording_id, song_id)
                           ON g.item_id = k.item_id
                        WHERE k.song_key_hash = ANY(%s::bigint[])) AS v
                WHERE t.item_id = v.item_id
                  AND (t.recording_id IS DISTINCT FROM v.recording_id OR t.song_id IS DISTINCT FROM v.song_id)""",
            (ids, [recording_of.get(i) for i in ids], [song_of.get(i) for i in ids], sorted(hashes)))
        changed = cur.rowcount
        cur.execute("DELETE FROM version_regroup WHERE seq = ANY(%s::bigint[])", (list(answered),))
        return changed


def group_ids(db: Database, item_ids: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """({item_id: recording_id}, {item_id: song_id}) of those of `item_ids` that belong to a group."""
    if not item_ids:
        return {}, {}
    rows = db.fetch_all(
        """SELECT item_id, recording_id, song_id FROM tracks
            WHERE item_id = ANY(%s::text[]) AND (recording_id IS NOT NULL OR song_id IS NOT NULL)""",
        (list(item_ids),))
    return ({r["item_id"]: r["recording_id"] for r in rows if r["recording_id"] is not None},
            {r["item_id"]: r["song_id"] for r in rows if r["song_id"] is not None})


def recordings(db: Database, *, limit: int, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """The recordings held by two or more files, largest first: (how many there are, one page of them, each with
    its files as dicts of item_id, title, artist, album, duration_seconds, file_path, size_bytes)."""
    counted = db.fetch_one("SELECT count(DISTINCT recording_id) AS n FROM tracks WHERE recording_id IS NOT NULL")
    total = int(counted["n"]) if counted else 0
    rows = db.fetch_all(
        """WITH page AS (
               SELECT recording_id, count(*) AS n FROM tracks WHERE recording_id IS NOT NULL
                GROUP BY recording_id ORDER BY count(*) DESC, recording_id LIMIT %s OFFSET %s)
           SELECT p.recording_id, t.item_id, t.title, t.artist, t.album, t.duration_seconds, t.file_path,
                  t.source_signature
             FROM page p JOIN tracks t ON t.recording_id = p.recording_id
            ORDER BY p.n DESC, p.recording_id, t.item_id <> p.recording_id, t.item_id""",
        (limit, offset))
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        files = groups.setdefault(row.pop("recording_id"), [])
        size = size_from_signature(row.pop("source_signature"))
        files.append({**row, "size_bytes": size})
    return total, [{"recording_id": rid, "files": files} for rid, files in groups.items()]
