"""One scenario of clustering's in-place publishing (services.automatic_playlists), run on every media server the
tests reach (the local folder, real MPD, real supysonic, the Jellyfin-shaped server). What the server holds is read
by the caller's `holds`, not through the adapter under test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from db import playlists as playlist_store
from mediaserver import Capability, MediaServer
from services import automatic_playlists as automatic
from tests.seeded_library import insert_track


def store_tracks(db: Any, item_ids: Sequence[str]) -> None:
    """Analysis rows for the server's songs (AudioMuse records only analyzed songs in its playlists)."""
    for n, item_id in enumerate(item_ids):
        insert_track(db, item_id=item_id, title=f"Song {n}", artist=f"Artist {n % 3}", vector=np.full(4, n + 1.0))


def run(db: Any, server: MediaServer, playlists: Sequence[tuple[str, Sequence[str]]]) -> automatic.Publication:
    """What a clustering run does with its playlists (names without the suffix): names clear of the pins, saved,
    published; no failure expected."""
    names = automatic.run_names(db, [name for name, _ in playlists])
    full = [(name, list(ids)) for name, (_, ids) in zip(names, playlists, strict=True)]
    automatic.save(db, full)
    lines: list[str] = []
    outcome = automatic.publish(db, server, full, log=lines.append)
    assert outcome.failures == [] and lines == [], outcome.failures
    return outcome


def recorded(db: Any) -> dict[str, tuple[str | None, list[str]]]:
    """AudioMuse's record of its automatic playlists: name → (the media server's id, item ids)."""
    return {p["name"]: (p["mediaserver_playlist"], [t["item_id"] for t in p["tracks"]])
            for p in playlist_store.list_playlists(db, source=automatic.SOURCE)}


def check_in_place_publishing(db: Any, server: MediaServer, songs: Sequence[str],
                              holds: Callable[[str], list[str] | None]) -> None:
    """Three runs on `server` with 7 of its `songs` (item ids); `holds(playlist id)` is what the server really holds
    in that playlist, None when it has no such playlist.

    Run 1 makes Calm, Party and Rock; Rock is pinned. Run 2 makes Calm again (other songs), Jazz, and a new cluster
    named Rock: Calm keeps its name (and its id where the adapter says so) with the new songs, Party is deleted, the
    pinned Rock is untouched and the new cluster becomes Rock_2. Run 3 repeats run 2: only updates, same ids. A
    playlist of the user's own is never touched."""
    s = list(songs[:7])
    assert len(s) == 7, songs
    store_tracks(db, s)
    own = server.create_playlist("Mine", s[:1])
    first = run(db, server, [("Calm", s[0:3]), ("Party", s[3:5]), ("Rock", s[5:7])])
    assert (first.created, first.updated, first.deleted) == (
        ["Calm_automatic", "Party_automatic", "Rock_automatic"], [], [])
    before = recorded(db)
    for name, (playlist_id, item_ids) in before.items():
        assert playlist_id and holds(playlist_id) == item_ids, name
    automatic.set_pinned(db, "Rock_automatic", pinned=True)

    second = run(db, server, [("Calm", [s[6], s[0]]), ("Jazz", s[3:5]), ("Rock", s[1:3])])
    assert (second.updated, second.created, second.deleted, second.pinned) == (
        ["Calm_automatic"], ["Jazz_automatic", "Rock_2_automatic"], ["Party_automatic"], ["Rock_automatic"])
    after = recorded(db)
    assert sorted(after) == ["Calm_automatic", "Jazz_automatic", "Rock_2_automatic", "Rock_automatic"]
    calm_id = after["Calm_automatic"][0]
    assert calm_id is not None
    if Capability.KEEPS_PLAYLIST_ID in server.capabilities:
        assert calm_id == before["Calm_automatic"][0]
    for name, (playlist_id, item_ids) in after.items():
        assert playlist_id and holds(playlist_id) == item_ids, name
    assert after["Calm_automatic"][1] == [s[6], s[0]]
    assert after["Rock_automatic"] == before["Rock_automatic"] and after["Rock_automatic"][1] == s[5:7]
    assert holds(str(before["Party_automatic"][0])) is None
    listed = sorted(p.name for p in server.list_playlists())
    assert listed == ["Calm_automatic", "Jazz_automatic", "Mine", "Rock_2_automatic", "Rock_automatic"]

    third = run(db, server, [("Calm", [s[6], s[0]]), ("Jazz", s[3:5]), ("Rock", s[1:3])])
    assert (third.updated, third.created, third.deleted) == (
        ["Calm_automatic", "Jazz_automatic", "Rock_2_automatic"], [], [])
    again = recorded(db)
    if Capability.KEEPS_PLAYLIST_ID in server.capabilities:
        assert again == after
    for name, (playlist_id, item_ids) in again.items():
        assert playlist_id and holds(playlist_id) == item_ids, name
    assert holds(own) == s[:1]
