"""An index update in place regroups only the song keys that can have changed (version_groups.regroup_versions):
after adds, removals, renames both ways, a deleted row and a changed duration, the stored groups equal those of
regrouping every key — and a key nothing touched is not read again. Real PostgreSQL."""

from __future__ import annotations

import numpy as np

from audio.musicnn import MODEL_NAME
from db import versions as version_store
from db.tracks import embeddings_of
from tests.seeded_library import insert_track
from version_groups import _hash_new_song_keys, regroup_versions, store_version_groups

DIMS = 16


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=DIMS)
    return v / np.linalg.norm(v)


def _near(base: np.ndarray, rng: np.random.Generator, distance: float = 0.004) -> np.ndarray:
    other = rng.normal(size=DIMS)
    other -= (other @ base) * base
    other /= np.linalg.norm(other)
    cos = 1.0 - distance
    return cos * base + np.sqrt(1.0 - cos * cos) * other


def _library(db) -> list[str]:  # type: ignore[no-untyped-def]
    """Eight songs of two to four files each (copies, a live version, an excerpt) and four songs alone."""
    rng = np.random.default_rng(3)
    item_ids = []
    for song in range(12):
        base = _unit(rng)
        files = [("", 200.0 + song, 0.0)]
        if song < 8:
            files += [("", 200.4 + song, 0.003)]
        if song % 3 == 0:
            files += [(" (Live)", 240.0 + song, 0.09)]
        if song % 4 == 1:
            files += [("", 30.0, 0.06)]
        for n, (note, duration, distance) in enumerate(files):
            item_id = f"s{song:02d}-{n}"
            vector = _near(base, rng, distance) if distance else base
            insert_track(db, item_id=item_id, title=f"Song {song}{note}", artist=f"Band {song % 5}", vector=vector,
                         path=f"/m/{item_id}.{'flac' if n == 0 else 'mp3'}", duration=duration)
            item_ids.append(item_id)
    return item_ids


def _groups(db) -> dict[str, tuple[str | None, str | None]]:  # type: ignore[no-untyped-def]
    return {r["item_id"]: (r["recording_id"], r["song_id"]) for r in db.fetch_all(
        "SELECT item_id, recording_id, song_id FROM tracks WHERE recording_id IS NOT NULL OR song_id IS NOT NULL")}


def _vectors(db):  # type: ignore[no-untyped-def]
    return lambda ids: embeddings_of(db, MODEL_NAME, ids, dimensions=DIMS)


def _regroup_all(db, item_ids: list[str]) -> None:  # type: ignore[no-untyped-def]
    vectors = _vectors(db)
    store_version_groups(db, item_ids, lambda rows: vectors([item_ids[r] for r in rows]))


def test_regrouping_the_touched_song_keys_gives_the_groups_of_regrouping_every_key(db):
    item_ids = _library(db)
    _regroup_all(db, item_ids)
    assert db.fetch_one("SELECT count(*) AS n FROM version_regroup")["n"] == 0  # the whole regroup answered them
    grouped = _groups(db)
    assert grouped["s00-1"] == ("s00-0", "s00-0") and grouped["s00-2"][1] == "s00-0"  # a copy, a live version
    assert "s10-0" not in grouped and "s11-0" not in grouped  # alone

    rng = np.random.default_rng(11)
    # a new copy of song 10, which was alone
    insert_track(db, item_id="new-10", title="Song 10", artist="Band 0", vector=_near(
        embeddings_of(db, MODEL_NAME, ["s10-0"], dimensions=DIMS)[0].astype(np.float64), rng, 0.002),
                 path="/m/new-10.mp3", duration=210.3)
    # song 1's copy renamed away: song 1 keeps its excerpt; song 2's copy renamed into song 11
    db.execute("UPDATE tracks SET title = 'Something Else' WHERE item_id = 's01-1'")
    db.execute("UPDATE tracks SET title = 'Song 11', artist = 'Band 1' WHERE item_id = 's02-1'")
    # song 4's second copy deleted (row and all): song 4 is alone again
    db.execute("DELETE FROM tracks WHERE item_id = 's04-1'")
    # song 3's copy now 40 s longer: a recording of its own
    db.execute("UPDATE tracks SET duration_seconds = 243.4 WHERE item_id = 's03-1'")
    # song 6's copy left the index (its row stays: no embedding any more)
    db.execute("DELETE FROM embeddings WHERE item_id = 's06-1'")
    indexed = [i for i in item_ids if i not in ("s04-1", "s06-1")] + ["new-10"]
    # a song nothing touched, with a wrong group planted: the regroup must not read song 7 again
    db.execute("UPDATE tracks SET song_id = 'planted' WHERE item_id = 's07-1'")

    version_store.request_regroup(db, ["new-10", "s06-1"])  # as the update does for the tracks it touched
    regroup_versions(db, indexed, _vectors(db))
    regrouped = _groups(db)
    assert regrouped.pop("s07-1") == ("s07-0", "planted")  # untouched key: as stored
    assert regrouped["new-10"] == ("s10-0", "s10-0")
    assert (regrouped["s02-1"][1], regrouped["s11-0"][1]) == ("s02-1", "s11-0")  # one title, two songs now
    assert "s04-0" not in regrouped and "s06-1" not in regrouped  # alone; out of the index
    assert regrouped["s06-2"][1] == "s06-0"  # the live version of song 6 stays its version
    assert (regrouped["s03-0"], regrouped["s03-1"]) == ((None, "s03-0"), (None, "s03-1"))  # was one recording
    assert db.fetch_one("SELECT count(*) AS n FROM version_regroup")["n"] == 0

    _regroup_all(db, indexed)
    everything = _groups(db)
    assert everything.pop("s07-1") == ("s07-0", "s07-0")
    assert regrouped == everything


def test_a_regroup_asked_for_every_key_regroups_them_all(db):
    item_ids = _library(db)
    _regroup_all(db, item_ids)
    db.execute("UPDATE tracks SET song_id = 'planted' WHERE item_id = 's07-1'")
    db.execute("INSERT INTO version_regroup (song_key_hash) VALUES (NULL)")  # as migration 0027 leaves it
    regroup_versions(db, item_ids, _vectors(db))
    assert _groups(db)["s07-1"] == ("s07-0", "s07-0")
    assert db.fetch_one("SELECT count(*) AS n FROM version_regroup")["n"] == 0


def test_keys_asked_for_by_a_regroup_that_failed_are_regrouped_by_the_next(db):
    item_ids = _library(db)
    _regroup_all(db, item_ids)
    db.execute("UPDATE tracks SET title = 'Song 10', artist = 'Band 0' WHERE item_id = 's11-0'")  # ungrouped
    _hash_new_song_keys(db)  # a regroup that stopped after storing the new key (killed, a lost connection)
    regroup_versions(db, item_ids, _vectors(db))
    assert _groups(db)["s11-0"][1] == "s11-0" and _groups(db)["s10-0"][1] == "s10-0"  # one title, two songs
