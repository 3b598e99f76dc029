"""The narrow tables an update in place reads instead of the JSONB id map (migration 0029): the held positions of
each stored index follow every whole store and every delta; each track's catalogue-row hash follows every column
the catalogue reads (db/tracks.py CATALOG_COLUMNS) and no other; the per-position hashes change exactly where a
catalogue row changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audio.musicnn import MODEL_NAME
from db import voyager_indexes as index_store
from db.tracks import CATALOG_COLUMNS
from tests.seeded_library import insert_track
from voyager_manager import update_index

DIMENSIONS = 16

# a new value for each catalogue column of a track inserted by insert_track
NEW_VALUES: dict[str, Any] = {
    "title": "Other", "artist": "Someone", "album": "Another", "duration_seconds": 201.5, "tempo_bpm": 99.0,
    "camelot": "3B", "energy": 0.25, "moods": '{"happy": 0.5}', "genres": "{Jazz}", "file_path": "/music/x.flac",
    "library": "Music", "recording_id": "rec-1", "song_id": "song-1",
}


def _hash(db: Any, item_id: str) -> int | None:
    row = db.fetch_one("SELECT hash FROM track_catalog_hashes WHERE item_id = %s", (item_id,))
    return None if row is None else int(row["hash"])


def _update(db: Any, redis: Any, config: Any, folder: Path, *, full: bool = False) -> Any:
    return update_index(db, redis, name=config.INDEX_NAME, model=MODEL_NAME, channel=config.INDEX_RELOAD_CHANNEL,
                        m=16, ef_construction=200, rebuild_share=0.5, folder=folder, full=full)


def _seed(db: Any, rng: np.random.Generator, start: int, count: int) -> list[str]:
    ids = [f"t{i:04d}" for i in range(start, start + count)]
    for i, item_id in zip(range(start, start + count), ids, strict=True):
        insert_track(db, item_id=item_id, title=f"Song {i}", artist=f"Artist {i}", vector=rng.normal(size=DIMENSIONS))
    return ids


def _held(db: Any, name: str) -> tuple[dict[int, str], dict[int, str]]:
    """(position → item id) of the positions table, and of the JSONB id map without its deleted positions."""
    rows = db.fetch_all("SELECT position, item_id FROM voyager_index_positions WHERE name = %s", (name,))
    stored = db.fetch_one("SELECT item_ids FROM voyager_indexes WHERE name = %s", (name,))
    return ({int(r["position"]): r["item_id"] for r in rows},
            {p: i for p, i in enumerate(stored["item_ids"]) if i})


def test_the_row_hash_follows_every_catalogue_column_and_no_other(db):
    assert set(NEW_VALUES) == set(CATALOG_COLUMNS), "a catalogue column the trigger's hash may not read"
    insert_track(db, item_id="a", title="Song", artist="Artist", vector=np.ones(DIMENSIONS))
    insert_track(db, item_id="b", title="Song", artist="Artist", vector=np.ones(DIMENSIONS))
    assert _hash(db, "a") is not None and _hash(db, "a") != _hash(db, "b")  # the item id is part of the row
    for column, value in NEW_VALUES.items():
        before = _hash(db, "a")
        db.execute(f"UPDATE tracks SET {column} = %s WHERE item_id = 'a'", (value,))
        assert _hash(db, "a") != before, column
    for column, value in (("tags", '{"rock": 0.5}'), ("analysis_version", 2)):  # not in the catalogue
        before = _hash(db, "a")
        db.execute(f"UPDATE tracks SET {column} = %s WHERE item_id = 'a'", (value,))
        assert _hash(db, "a") == before, column

    db.execute("UPDATE tracks SET library = NULL WHERE item_id = 'b'")  # NULL and empty told apart
    null_library = _hash(db, "b")
    db.execute("UPDATE tracks SET library = '' WHERE item_id = 'b'")
    assert null_library != _hash(db, "b")

    # an upsert's update half and a many-row statement are hashed too; a deleted track's hash goes with it
    db.execute("""INSERT INTO tracks (item_id, title, artist) VALUES ('a', 'Upserted', 'Artist')
                  ON CONFLICT (item_id) DO UPDATE SET title = EXCLUDED.title""")
    expected = db.fetch_one("SELECT track_catalog_hash(t) AS h FROM tracks t WHERE item_id = 'a'")["h"]
    assert _hash(db, "a") == expected
    db.execute("UPDATE tracks SET artist = 'Both'")
    assert {r["item_id"]: r["hash"] for r in db.fetch_all("SELECT item_id, hash FROM track_catalog_hashes")} == \
        {r["item_id"]: r["h"] for r in db.fetch_all("SELECT item_id, track_catalog_hash(t) AS h FROM tracks t")}
    db.execute("DELETE FROM tracks WHERE item_id = 'a'")
    assert _hash(db, "a") is None and _hash(db, "b") is not None


def test_the_positions_table_follows_whole_stores_and_updates_in_place(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    rng = np.random.default_rng(3)
    ids = _seed(db, rng, 0, 60)
    assert _update(db, redis, config, folder, full=True).full
    table, id_map = _held(db, config.INDEX_NAME)
    assert table == id_map == dict(enumerate(ids))

    added = _seed(db, rng, 60, 5)
    db.execute("DELETE FROM tracks WHERE item_id = ANY(%s)", (ids[:3],))
    db.execute("UPDATE embeddings SET vector = %s, created_at = now() WHERE item_id = 't0010'",
               (rng.normal(size=DIMENSIONS).astype("<f4").tobytes(),))
    with index_store.stored_index(db, config.INDEX_NAME) as stored:
        assert stored is not None
        changes = stored.changes(MODEL_NAME, since=stored.built_at)
        assert changes.new_ids == added and changes.removed == [0, 1, 2]
        assert changes.recent == [("t0010", 10)]  # written since the index was stored: compared by the update

    update = _update(db, redis, config, folder)
    assert not update.full and update.added == 6 and update.removed == 4  # t0010 re-added at a new position
    table, id_map = _held(db, config.INDEX_NAME)
    assert table == id_map and sorted(table.values()) == sorted([*ids[3:], *added])
    assert table[60] != "t0010" and "t0010" in table.values()
    with index_store.stored_index(db, config.INDEX_NAME) as stored:
        assert stored is not None
        changes = stored.changes(MODEL_NAME, since=stored.built_at)
        assert changes.new_ids == [] and changes.removed == []
        assert index_store.current_size(db, name=config.INDEX_NAME, model=MODEL_NAME) == 62

    assert _update(db, redis, config, folder, full=True).full  # a whole store replaces the rows
    table, id_map = _held(db, config.INDEX_NAME)
    assert table == id_map and sorted(table) == list(range(62))


def test_position_hashes_change_exactly_where_a_catalogue_row_changed(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    _seed(db, np.random.default_rng(5), 0, 40)
    _update(db, redis, config, folder, full=True)

    def hashes() -> np.ndarray:
        with index_store.stored_index(db, config.INDEX_NAME) as stored:
            assert stored is not None
            return stored.catalog_hashes()

    first = hashes()
    assert len(first) == 40 and len(set(first.tolist())) == 40 and np.array_equal(first, hashes())
    db.execute("UPDATE tracks SET title = 'Renamed' WHERE item_id IN ('t0007', 't0031')")
    db.execute("UPDATE tracks SET tags = '{\"rock\": 0.9}' WHERE item_id = 't0012'")  # not a catalogue column
    db.execute("DELETE FROM embeddings WHERE item_id = 't0020'")  # still held: its row is unchanged
    db.execute("DELETE FROM tracks WHERE item_id = 't0025'")  # held, its row gone
    second = hashes()
    assert np.flatnonzero(second != first).tolist() == [7, 25, 31]
    assert index_store.catalog_checksum(second) != index_store.catalog_checksum(first)

    # two rows trading places change the checksum (an XOR of the hashes): each is mixed with its position
    positions = np.array([0, 1], dtype=np.uint64)
    mixed = index_store._mixed(np.array([7, 8], dtype=np.uint64), positions)
    traded = index_store._mixed(np.array([8, 7], dtype=np.uint64), positions)
    assert int(np.bitwise_xor.reduce(mixed)) != int(np.bitwise_xor.reduce(traded))
