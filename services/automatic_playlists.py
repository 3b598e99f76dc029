"""Clustering's `<name>_automatic` playlists kept up to date in place: each run saves its playlists in PostgreSQL,
then on the media server replaces the songs of the playlists whose name it produces again (same name; same id where
the adapter declares Capability.KEEPS_PLAYLIST_ID), creates the new ones and deletes the automatic playlists it no
longer produces. A pinned playlist is left alone, here and on the server, and its name is not given to a new
cluster. Every write can be repeated: a run that stopped half way is mended by the next one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from clustering.naming import names_clear_of
from db import playlists as playlist_store
from db.pool import Database
from mediaserver import AUTOMATIC_SUFFIX, MediaServer, MediaServerError
from services.playlists import writable_ids

SOURCE = "clustering"


class UnknownPlaylist(LookupError):
    """No automatic playlist of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no automatic playlist named {name!r}")
        self.name = name


@dataclass
class Publication:
    """What publishing did on the media server, by playlist name; `failures` are [{name, action, reason}]."""

    server: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    left_out: list[dict[str, str]] = field(default_factory=list)  # songs a playlist of file paths cannot hold

    @property
    def published(self) -> int:
        return len(self.created) + len(self.updated)

    def as_dict(self) -> dict[str, Any]:
        return {"server": self.server, "created": len(self.created), "updated": len(self.updated),
                "deleted": len(self.deleted), "pinned": self.pinned, "failures": self.failures,
                "left_out": self.left_out}


def run_names(db: Database, names: Sequence[str]) -> list[str]:
    """The full playlist names (with _automatic) for a run's distinct playlist names, clear of the pinned ones."""
    pinned = [p["name"] for p in playlist_store.playlist_summaries(db, source=SOURCE) if p["pinned"]]
    return names_clear_of(names, pinned, suffix=AUTOMATIC_SUFFIX)


def save(db: Database, playlists: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Make (full name, item ids) the unpinned automatic playlists AudioMuse records, in one transaction."""
    playlist_store.replace_playlists(db, source=SOURCE, playlists=[(name, ids, None) for name, ids in playlists])


def publish(db: Database, server: MediaServer, playlists: Sequence[tuple[str, Sequence[str]]], *,
            log: Callable[[str], None]) -> Publication:
    """Bring the server's automatic playlists in line with `playlists` (saved first): replace, create, delete, as
    the module docstring says, recording each playlist's id on the server as soon as it is known. A playlist the
    server refuses is said through `log` and in `failures`, and the others go on; a failure to list the server's
    playlists (the server is down) raises MediaServerError before anything changes."""
    outcome = Publication(server=server.kind)
    summaries = playlist_store.playlist_summaries(db, source=SOURCE)
    outcome.pinned = [p["name"] for p in summaries if p["pinned"]]
    recorded = {p["name"]: p["mediaserver_playlist"] for p in summaries}
    on_server: dict[str, list[str]] = {}
    for listed in server.list_playlists():
        if listed.name.endswith(AUTOMATIC_SUFFIX):
            on_server.setdefault(listed.name, []).append(listed.playlist_id)

    def failed(name: str, action: str, exc: Exception) -> None:
        outcome.failures.append({"name": name, "action": action, "reason": str(exc)})
        log(f"{name}: the media server refused to {action} it: {exc}")

    for name, wanted in playlists:
        item_ids, left_out = writable_ids(db, server, wanted)
        for song in left_out:
            outcome.left_out.append({"playlist": name, **song.as_dict()})
            log(f"{name}: left out {song.artist} – {song.title}: {song.reason}")
        existing = on_server.pop(name, [])
        # the recorded playlist when the server still has it; other playlists of that name are an older run's
        target = recorded.get(name) if recorded.get(name) in existing else next(iter(existing), None)
        try:
            if target is None:
                playlist_id = server.create_playlist(name, item_ids)
                outcome.created.append(name)
            else:
                playlist_id = server.replace_playlist_tracks(target, item_ids)
                outcome.updated.append(name)
        except (MediaServerError, OSError) as exc:
            failed(name, "update" if target else "create", exc)
            continue
        playlist_store.set_mediaserver_ids(db, source=SOURCE, ids={name: playlist_id})
        _delete(server, name, [i for i in existing if i not in (target, playlist_id)], failed)
    for name, ids in sorted(on_server.items()):
        if name in outcome.pinned:
            continue
        if _delete(server, name, ids, failed):
            outcome.deleted.append(name)
    return outcome


def _delete(server: MediaServer, name: str, ids: Sequence[str],
            failed: Callable[[str, str, Exception], None]) -> bool:
    """Delete the playlists `ids` (all named `name`); whether every one went."""
    done = True
    for playlist_id in ids:
        try:
            server.delete_playlist(playlist_id)
        except (MediaServerError, OSError) as exc:
            failed(name, "delete", exc)
            done = False
    return done


def listed(db: Database) -> list[dict[str, Any]]:
    """The automatic playlists AudioMuse records, by name: [{name, pinned, pinned_at, track_count,
    mediaserver_playlist, created_at}]."""
    return playlist_store.playlist_summaries(db, source=SOURCE)


def set_pinned(db: Database, name: str, *, pinned: bool) -> dict[str, Any]:
    """Pin or unpin the automatic playlist `name` (its full name); its summary; UnknownPlaylist when there is none."""
    summary = playlist_store.set_pinned(db, source=SOURCE, name=name, pinned=pinned)
    if summary is None:
        raise UnknownPlaylist(name)
    return summary
