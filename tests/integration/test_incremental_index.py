"""The similarity index updated in place (voyager_manager.update_index): new, removed and re-analyzed tracks applied
to the stored index give the neighbours a full rebuild gives; many changes rebuild it whole; deleted tracks are never
found; the index file kept in DATA_DIR is used when its hash is the stored one and fetched again when not; the web
process's holder serves an update once it is announced; a second update waits for the one under way; the catalogue
kept beside the index file is used while its rows are unchanged. Small libraries with a wide search, so HNSW is
exact."""

from __future__ import annotations

import hashlib
import pickle
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from audio.musicnn import MODEL_NAME
from db import voyager_indexes as index_store
from services.map import CACHE_NAME as MAP_CACHE
from services.map import map_cache_builder, move_web_map
from services.search import CACHE_NAME as FACETS_CACHE
from services.search import build_search_facets, carry_search_facets, move_search_facets
from services.text_search import CACHE_NAME as TEXT_CACHE
from services.text_search import build_searchable_library, move_searchable_library
from tests.catalog_answers import catalog_answers
from tests.conftest import wait_for
from tests.seeded_library import insert_track
from voyager_manager import (
    IndexHolder,
    IndexUpdate,
    LoadedIndex,
    catalog_file,
    index_file,
    load_index,
    update_index,
)

DIMENSIONS = 16
QUERY_EF = 500


def _seed(db: Any, rng: np.random.Generator, start: int, count: int) -> list[str]:
    ids = []
    for i in range(start, start + count):
        item_id = f"t{i:04d}"
        insert_track(db, item_id=item_id, title=f"Song {i}", artist=f"Artist {i}",
                     vector=rng.normal(size=DIMENSIONS))
        ids.append(item_id)
    return ids


def _update(db: Any, redis: Any, config: Any, folder: Path, *, share: float = 0.2, full: bool = False) -> IndexUpdate:
    return update_index(db, redis, name=config.INDEX_NAME, model=MODEL_NAME, channel=config.INDEX_RELOAD_CHANNEL,
                        m=16, ef_construction=200, rebuild_share=share, folder=folder, full=full)


def _neighbours(loaded: LoadedIndex, queries: np.ndarray) -> list[list[str]]:
    lookups = loaded.queries(query_ef=QUERY_EF)
    return [[item_id for item_id, _ in lookups.neighbours(q, 10)] for q in queries]


def _change(db: Any, rng: np.random.Generator, item_id: str) -> None:
    vector = rng.normal(size=DIMENSIONS).astype("<f4")
    db.execute("UPDATE embeddings SET vector = %s, created_at = now() WHERE item_id = %s",
               (vector.tobytes(), item_id))


def _library_with_changes(db: Any, redis: Any, config: Any, folder: Path) -> tuple[list[str], list[str], list[str]]:
    """200 tracks indexed whole, then 12 added, 6 deleted and 4 re-analyzed: (added, deleted, changed) ids."""
    rng = np.random.default_rng(29)
    ids = _seed(db, rng, 0, 200)
    assert _update(db, redis, config, folder, full=True).full
    added = _seed(db, rng, 200, 12)
    deleted = ids[10:16]
    db.execute("DELETE FROM tracks WHERE item_id = ANY(%s)", (deleted,))  # the embeddings go with them
    changed = ids[50:54]
    for item_id in changed:
        _change(db, rng, item_id)
    return added, deleted, changed


def test_an_update_in_place_gives_the_neighbours_of_a_rebuild(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    added, deleted, changed = _library_with_changes(db, redis, config, folder)

    update = _update(db, redis, config, folder)
    assert not update.full and update.size == 206
    assert (update.added, update.removed) == (12 + 4, 6 + 4)  # a re-analyzed track moves to a new position
    incremental = load_index(db, config.INDEX_NAME, folder=folder)
    assert incremental is not None and incremental.live == 206 and len(incremental) == 200 + 16
    queries = np.random.default_rng(7).normal(size=(40, DIMENSIONS)).astype(np.float32)
    got = _neighbours(incremental, queries)

    assert _update(db, redis, config, folder, full=True).full
    rebuilt = load_index(db, config.INDEX_NAME, folder=folder)
    assert rebuilt is not None and len(rebuilt) == rebuilt.live == 206  # a rebuild drops the deleted positions
    assert got == _neighbours(rebuilt, queries)
    # the re-analyzed tracks are found at their new vectors: each one is its own nearest neighbour
    for item_id in changed + added:
        vector = incremental.tracks([incremental.position(item_id)])[0].vector
        assert incremental.queries(query_ef=QUERY_EF).neighbours(vector, 1)[0][0] == item_id


def test_deleted_tracks_are_never_found(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    rng = np.random.default_rng(3)
    _, deleted, _ = _library_with_changes(db, redis, config, folder)
    vectors = {r["item_id"]: np.frombuffer(r["vector"], dtype="<f4") for r in
               db.fetch_all("SELECT item_id, vector FROM embeddings")}
    before = load_index(db, config.INDEX_NAME, folder=folder)
    assert before is not None
    old_vectors = before.index.get_vectors([before.position(i) for i in deleted])
    assert not _update(db, redis, config, folder).full
    loaded = load_index(db, config.INDEX_NAME, folder=folder)
    assert loaded is not None
    lookups = loaded.queries(query_ef=QUERY_EF)
    queries = np.vstack([old_vectors, rng.normal(size=(30, DIMENSIONS))]).astype(np.float32)
    found = {item_id for q in queries for item_id, _ in lookups.neighbours(q, 50)}
    assert found and not found & set(deleted)
    # asking for more than the index holds gives every live track, none deleted
    everything = [item_id for item_id, _ in lookups.neighbours(queries[0], 1000)]
    assert sorted(everything) == sorted(vectors)
    assert lookups.lookup(deleted) == {}
    assert all(loaded.position(i) is None for i in deleted)
    assert all(loaded.catalog.artist_positions(f"Artist {int(i[1:])}") == [] for i in deleted)
    assert loaded.catalog.artist_positions("Artist 20") == [loaded.position("t0020")]


def test_many_changes_rebuild_the_index_whole(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    rng = np.random.default_rng(11)
    _seed(db, rng, 0, 100)
    first = _update(db, redis, config, folder)
    assert first.full and first.reason == "no index is stored yet" and first.size == 100
    _seed(db, rng, 100, 15)  # 15 % of the index: above a share of 0.1
    update = _update(db, redis, config, folder, share=0.1)
    assert update.full and "15 of 100" in update.reason and update.size == 115
    loaded = load_index(db, config.INDEX_NAME, folder=folder)
    assert loaded is not None and len(loaded) == loaded.live == 115
    _seed(db, rng, 115, 5)  # below it: in place
    update = _update(db, redis, config, folder, share=0.1)
    assert not update.full and update.added == 5 and update.size == 120
    assert not _update(db, redis, config, folder, share=0.1).added  # nothing changed: nothing to do


def test_the_index_file_is_used_when_its_hash_matches_and_fetched_again_when_not(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    _seed(db, np.random.default_rng(5), 0, 60)
    _update(db, redis, config, folder)
    path = index_file(folder, config.INDEX_NAME)
    stored = db.fetch_one("SELECT sha256 FROM voyager_indexes WHERE name = %s", (config.INDEX_NAME,))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == stored["sha256"]

    inode = path.stat().st_ino
    loaded = load_index(db, config.INDEX_NAME, folder=folder)
    assert loaded is not None and loaded.live == 60
    assert path.stat().st_ino == inode  # read as it was: not fetched and written again

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    loaded = load_index(db, config.INDEX_NAME, folder=folder)
    assert loaded is not None and loaded.live == 60
    assert hashlib.sha256(path.read_bytes()).hexdigest() == stored["sha256"]  # replaced by the stored copy
    vector = loaded.tracks([loaded.position("t0007")])[0].vector
    assert loaded.queries(query_ef=QUERY_EF).neighbours(vector, 1)[0][0] == "t0007"

    path.unlink()
    assert load_index(db, config.INDEX_NAME, folder=folder) is not None and path.exists()
    assert not list(folder.glob(".*.tmp"))  # no temporary file left behind


def test_the_web_holder_serves_an_update_once_it_is_announced(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    rng = np.random.default_rng(13)
    _seed(db, rng, 0, 80)
    _update(db, redis, config, folder)
    holder = IndexHolder(db, config.INDEX_NAME, folder=folder)
    assert holder.reload() and holder.size == 80
    stop = threading.Event()
    thread = holder.listen_in_background(redis, config.INDEX_RELOAD_CHANNEL, stop)
    try:
        deadline = time.monotonic() + 10
        while redis.pubsub_numsub(config.INDEX_RELOAD_CHANNEL)[0][1] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the listener has subscribed: the announcement cannot be missed
        added = _seed(db, rng, 80, 3)
        db.execute("DELETE FROM tracks WHERE item_id = 't0001'")
        update = _update(db, redis, config, folder)
        assert not update.full and update.size == 82
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            queries = holder.queries(query_ef=QUERY_EF)
            if queries is not None and queries.lookup(added).keys() == set(added):
                break
            time.sleep(0.1)
        queries = holder.queries(query_ef=QUERY_EF)
        assert queries is not None and set(queries.lookup(added)) == set(added)
        assert queries.lookup(["t0001"]) == {} and holder.size == 82
    finally:
        stop.set()
        thread.join(timeout=5)


def test_a_second_update_waits_for_the_one_under_way_and_then_applies_its_tracks(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    rng = np.random.default_rng(17)
    _seed(db, rng, 0, 100)
    _update(db, redis, config, folder)
    added = _seed(db, rng, 100, 4)
    results: list[IndexUpdate] = []
    with index_store.update_lock(db, config.INDEX_NAME):  # another process is updating the index
        second = threading.Thread(target=lambda: results.append(_update(db, redis, config, folder)), daemon=True)
        second.start()
        wait_for(lambda: index_store.update_waiters(db, config.INDEX_NAME) == 1, timeout=20,
                 what="the second update to wait for the lock")
        assert not results and second.is_alive()
        stored = db.fetch_one("SELECT num_items FROM voyager_indexes WHERE name = %s", (config.INDEX_NAME,))
        assert stored is not None and stored["num_items"] == 100  # it has not stored anything meanwhile
    second.join(60)
    assert [(r.full, r.added, r.size) for r in results] == [(False, 4, 104)]
    loaded = load_index(db, config.INDEX_NAME, folder=folder)
    assert loaded is not None and set(loaded.queries(query_ef=QUERY_EF).lookup(added)) == set(added)
    assert index_store.update_waiters(db, config.INDEX_NAME) == 0


def _same_catalogue(a: LoadedIndex, b: LoadedIndex) -> bool:
    return pickle.dumps(a.catalog.__dict__) == pickle.dumps(b.catalog.__dict__)


def test_the_catalogue_file_is_used_while_its_rows_are_unchanged(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    _seed(db, np.random.default_rng(19), 0, 50)
    _update(db, redis, config, folder)
    db.execute("UPDATE tracks SET moods = '{\"happy\": 0.7}', genres = '{Jazz}', library = 'Music' "
               "WHERE item_id = 't0003'")
    built = load_index(db, config.INDEX_NAME, folder=folder)  # built from the rows, and kept
    path = catalog_file(folder, config.INDEX_NAME)
    assert built is not None and path.exists()
    inode = path.stat().st_ino
    again = load_index(db, config.INDEX_NAME)  # no folder: always from the rows
    from_file = load_index(db, config.INDEX_NAME, folder=folder)
    assert again is not None and from_file is not None and path.stat().st_ino == inode  # read, not rewritten
    assert _same_catalogue(from_file, again) and from_file.catalog.library(3) == "Music"
    assert from_file.tracks([from_file.position("t0003")])[0].title == "Song 3"

    # any column the catalogue reads, changed, is seen: the file is built again
    for change in ("UPDATE tracks SET title = 'Renamed' WHERE item_id = 't0003'",
                   "UPDATE tracks SET moods = '{\"happy\": 0.8}' WHERE item_id = 't0003'",
                   "UPDATE tracks SET genres = '{Rock}' WHERE item_id = 't0010'",
                   "UPDATE tracks SET recording_id = 't0011', song_id = 't0011' WHERE item_id = 't0012'",
                   "UPDATE tracks SET tempo_bpm = NULL WHERE item_id = 't0020'",
                   "DELETE FROM tracks WHERE item_id = 't0030'"):
        db.execute(change)
        loaded = load_index(db, config.INDEX_NAME, folder=folder)
        fresh = load_index(db, config.INDEX_NAME)
        assert loaded is not None and fresh is not None and path.stat().st_ino != inode, change
        assert _same_catalogue(loaded, fresh), change
        inode = path.stat().st_ino
    assert loaded.tracks([loaded.position("t0003")])[0].title == "Renamed"

    path.write_bytes(path.read_bytes()[:200])  # damaged: built from the rows again
    loaded = load_index(db, config.INDEX_NAME, folder=folder)
    assert loaded is not None and _same_catalogue(loaded, fresh) and path.stat().st_size > 200


def test_the_web_holder_serves_an_update_in_place_at_once_and_rebuilds_its_caches_after(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    rng = np.random.default_rng(23)
    ids = _seed(db, rng, 0, 120)
    _update(db, redis, config, folder, full=True)
    holder = IndexHolder(db, config.INDEX_NAME, folder=folder)
    seen: list[tuple[str, int, int, str]] = []  # at each build: served index, its positions, facet rows, state

    def record(db: Any, loaded: LoadedIndex | None) -> int:
        served = holder.state.index
        facets = holder.cache("search_facets")
        seen.append((served.sha256 if served else "", len(served) if served else 0,
                     len(facets) if facets is not None else -1, holder.cache_states()["search_facets"]))
        return len(loaded) if loaded is not None else 0

    holder.add_cache("recorder", record)  # built first: it sees what is served while the others wait their turn
    holder.add_cache("search_facets", build_search_facets, carry=carry_search_facets)
    assert holder.reload()
    before = holder.current
    assert before is not None and holder.cache("recorder") == 120

    added = _seed(db, rng, 120, 5)
    db.execute("DELETE FROM tracks WHERE item_id IN ('t0001', 't0002')")
    db.execute("UPDATE tracks SET title = 'Renamed' WHERE item_id = 't0040'")  # metadata only: no new analysis
    db.execute("UPDATE tracks SET genres = '{Jazz}', library = 'Kids' WHERE item_id = 't0041'")
    _change(db, rng, "t0050")  # re-analyzed: a new position
    update = _update(db, redis, config, folder)
    assert not update.full and (update.added, update.removed) == (6, 3)
    seen.clear()
    assert holder.reload()
    after = holder.current
    assert after is not None and after.sha256 != before.sha256 and before.sha256 in after.extends
    # the caches were rebuilt while the new index was already served, the facets fitted to it meanwhile
    assert seen == [(after.sha256, len(after), len(after), "updating")]
    assert holder.cache("recorder") == len(after) == 126
    assert holder.cache_states() == {"search_facets": "ready", "recorder": "ready"}
    # the catalogue, updated from the changed rows only, answers as one built from every row
    fresh = load_index(db, config.INDEX_NAME)
    assert fresh is not None and not fresh.extends
    every = ids + added
    assert catalog_answers(after.catalog, every) == catalog_answers(fresh.catalog, every)
    assert after.tracks([after.position("t0040")])[0].title == "Renamed" and after.position("t0001") is None
    assert after.catalog.library(after.position("t0041")) == "Kids"
    facets = holder.cache("search_facets")
    assert facets.table.present.tolist() == [after.catalog.names(p) is not None for p in range(len(after))]
    # and kept for the next start: a restart reads the same catalogue from the file
    restarted = load_index(db, config.INDEX_NAME, folder=folder)
    assert restarted is not None and catalog_answers(restarted.catalog, every) == catalog_answers(fresh.catalog,
                                                                                                  every)

    # a full rebuild renumbers the positions: everything is built against it before it is served
    _update(db, redis, config, folder, full=True)
    seen.clear()
    assert holder.reload()
    rebuilt = holder.current
    assert rebuilt is not None and not rebuilt.extends and len(rebuilt) == rebuilt.live == 123
    assert seen == [(after.sha256, 126, 126, "ready")]  # the old index and its caches were served meanwhile
    assert holder.cache("recorder") == 123


def _cache_answers(holder: IndexHolder) -> dict[str, Any]:
    """What each served cache says of each track, by item id (not by position)."""
    loaded = holder.current
    assert loaded is not None
    item_id = loaded.catalog.item_id
    facets, text, drawn = holder.cache(FACETS_CACHE), holder.cache(TEXT_CACHE), holder.cache(MAP_CACHE)
    table = facets.table
    return {
        "facets": {item_id(p): (float(table.bpm[p]), float(table.energy[p]), table.top_tags[p].tolist())
                   for p in range(len(table)) if table.present[p]},
        "text": {item_id(int(p)): text.scores.matrix[r].tobytes() for r, p in enumerate(text.positions) if p >= 0},
        "words": sorted(item_id(r) for r, _ in text.keywords.search("song 1", limit=60)),
        "map": {item_id(int(p)): drawn.xy(i) for i, p in enumerate(drawn.positions) if p >= 0},
        "map points": {i: drawn.point(p) for i in ("t0050", "t0051", "t0119") if (p := loaded.position(i)) is not None},
        "map index": drawn.index_id == loaded.sha256,
    }


def _without(answers: dict[str, Any], gone: set[str]) -> dict[str, Any]:
    return {name: {k: v for k, v in value.items() if k not in gone} if isinstance(value, dict) else
            [k for k in value if k not in gone] if isinstance(value, list) else value
            for name, value in answers.items()}


def test_a_new_index_is_served_with_its_caches_moved_onto_it_and_each_built_again_after(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    _seed(db, np.random.default_rng(29), 0, 120)
    db.execute("""UPDATE tracks SET tags = CASE WHEN substr(item_id, 2)::int % 2 = 0 THEN '{"jazz": 0.9, "rock": 0.05}'
                                           ELSE '{"rock": 0.8, "jazz": 0.1}' END::jsonb,
                                  tempo_bpm = 60 + substr(item_id, 2)::int""")
    _update(db, redis, config, folder, full=True)
    holder = IndexHolder(db, config.INDEX_NAME, folder=folder)
    during: list[tuple[str, str, dict[str, str]]] = []  # at each build: the cache, the index served, the states
    moved: list[dict[str, Any]] = []  # what the caches answered while the first of them was built again
    old: list[weakref.ref[LoadedIndex]] = []

    def recorded(name: str, build: Any) -> Any:
        def wrapped(db: Any, loaded: LoadedIndex | None) -> Any:
            served = holder.current
            during.append((name, served.sha256 if served else "", holder.cache_states()))
            if old and not moved and holder.cache_states()[name] == "updating":  # the first moved cache built
                moved.append(_cache_answers(holder))
                moved.append({"old index let go": old[0]() is None})
            return build(db, loaded)
        return wrapped

    holder.add_cache(MAP_CACHE, recorded(MAP_CACHE, map_cache_builder(config)), move=move_web_map)
    holder.add_cache(TEXT_CACHE, recorded(TEXT_CACHE, build_searchable_library), move=move_searchable_library)
    holder.add_cache(FACETS_CACHE, recorded(FACETS_CACHE, build_search_facets), carry=carry_search_facets,
                     move=move_search_facets)
    holder.add_cache("recorder", recorded("recorder", lambda db, loaded: len(loaded or ())))  # no mover
    assert holder.reload()
    before = _cache_answers(holder)
    assert len(before["text"]) == len(before["facets"]) == len(before["map"]) == 120 and before["words"]
    first = holder.current
    assert first is not None
    old.append(weakref.ref(first))
    first_sha, first_position = first.sha256, first.position("t0050")
    del first

    # a full rebuild without t0000..t0009 and with four new tracks: every position now means another track
    db.execute("DELETE FROM tracks WHERE item_id < 't0010'")
    added = _seed(db, np.random.default_rng(30), 120, 4)
    assert _update(db, redis, config, folder, full=True).full
    during.clear()
    assert holder.reload()
    after = holder.current
    assert after is not None and not after.has_positions_of(first_sha) and after.position("t0050") != first_position
    # only the cache without a mover was built before the swap; the others after it, one at a time, each while the
    # rest were served moved ("updating") or already built again ("ready")
    assert [(name, sha == after.sha256) for name, sha, _ in during] == [
        ("recorder", False), (MAP_CACHE, True), (TEXT_CACHE, True), (FACETS_CACHE, True)]
    assert during[1][2] == {MAP_CACHE: "updating", TEXT_CACHE: "updating", FACETS_CACHE: "updating",
                            "recorder": "ready"}
    assert during[3][2][MAP_CACHE] == during[3][2][TEXT_CACHE] == "ready"
    # meanwhile each moved cache said of each kept track what it said before the rebuild, at its new position
    gone = {f"t{i:04d}" for i in range(10)}
    assert moved[0] == _without(before, gone) and moved[1] == {"old index let go": True}
    # and once built again, the same plus the new tracks
    rebuilt = _cache_answers(holder)
    assert holder.cache_states() == dict.fromkeys([MAP_CACHE, TEXT_CACHE, FACETS_CACHE, "recorder"], "ready")
    assert set(rebuilt["facets"]) == set(rebuilt["text"]) == set(moved[0]["facets"]) | set(added)
    assert {k: v for k, v in rebuilt["facets"].items() if k not in added} == moved[0]["facets"]
    assert set(moved[0]["text"]) == set(moved[0]["facets"]) == set(before["text"]) - gone  # (percentiles move)
    assert rebuilt["words"] == sorted(moved[0]["words"] + added) and "t0001" in before["words"]


def test_a_cache_kept_after_a_failed_build_is_moved_again_only_when_it_is_of_the_index_served(
        db, redis, config, tmp_path):
    folder = tmp_path / "index"
    _seed(db, np.random.default_rng(33), 0, 60)
    _update(db, redis, config, folder, full=True)
    holder = IndexHolder(db, config.INDEX_NAME, folder=folder)
    failing: set[str] = set()  # "build": the map's next build fails; "move": its next move does
    built_before_swap: list[bool] = []
    build_map = map_cache_builder(config)

    def build(db: Any, loaded: LoadedIndex | None) -> Any:
        served = holder.current
        built_before_swap.append(served is not None and loaded is not None and served.sha256 != loaded.sha256)
        if "build" in failing:
            raise RuntimeError("the map's build failed")
        return build_map(db, loaded)

    def move(cache: Any, loaded: LoadedIndex, moved: np.ndarray) -> Any:
        if "move" in failing:
            raise RuntimeError("the map's move failed")
        return move_web_map(cache, loaded, moved)

    def mapped() -> dict[str, tuple[float, float]]:
        loaded, drawn = holder.current, holder.cache(MAP_CACHE)
        assert loaded is not None and drawn is not None and drawn.index_id == loaded.sha256
        return {loaded.catalog.item_id(int(p)): drawn.xy(i) for i, p in enumerate(drawn.positions) if p >= 0}

    holder.add_cache(MAP_CACHE, build, move=move)
    assert holder.reload()
    first = mapped()

    def rebuild_without(ids: list[str], *, adding: int = 0) -> None:
        db.execute("DELETE FROM tracks WHERE item_id = ANY(%s)", (ids,))
        _seed(db, np.random.default_rng(34), 100, adding)
        assert _update(db, redis, config, folder, full=True).full
        built_before_swap.clear()
        assert holder.reload()

    # a moved map whose build fails is kept, with its gone tracks at position -1 ...
    failing.add("build")
    rebuild_without(["t0000", "t0001"])
    assert holder.cache_states()[MAP_CACHE] == "failed" and built_before_swap == [False]
    assert mapped() == {k: v for k, v in first.items() if k not in ("t0000", "t0001")}
    # ... and moved again by the next rebuild: -1 stays -1 (never the last position's track)
    rebuild_without(["t0002"])
    assert built_before_swap == [False]  # moved, then its build (after the swap) failed again
    assert mapped() == {k: v for k, v in first.items() if k not in ("t0000", "t0001", "t0002")}
    # a move that fails, with a build that fails too, keeps the map of the index before: the next rebuild must
    # build it beside, not move it with a renaming that is not of its positions
    failing.add("move")
    rebuild_without(["t0003"], adding=3)  # more positions than the map's index had: a wrong renaming would fit
    stale = holder.cache(MAP_CACHE)
    assert stale is not None and holder.current is not None and stale.index_id != holder.current.sha256
    failing.clear()
    rebuild_without(["t0004"])
    assert built_before_swap == [True]
    assert set(mapped()) == set(first) - {f"t{i:04d}" for i in range(5)} | {"t0100", "t0101", "t0102"}
    # (a new projection: new coordinates)
    assert holder.cache_states() == {MAP_CACHE: "ready"}


def test_a_reload_of_the_loaded_index_keeps_it_and_rebuilds_the_caches_one_at_a_time(db, redis, config, tmp_path):
    folder = tmp_path / "index"
    _seed(db, np.random.default_rng(31), 0, 60)
    _update(db, redis, config, folder, full=True)
    holder = IndexHolder(db, config.INDEX_NAME, folder=folder)
    builds: list[str] = []
    seen: list[tuple[str, Any]] = []  # at each build: the cache built, and the other one as served then

    def cache(name: str, other: str) -> Any:
        def build(db: Any, loaded: LoadedIndex | None) -> tuple[str, int]:
            builds.append(name)
            seen.append((name, holder.cache(other)))
            return name, len(builds)
        return build

    holder.add_cache("first", cache("first", "second"))
    holder.add_cache("second", cache("second", "first"))
    assert holder.reload()
    before = holder.current
    assert before is not None
    db.execute("UPDATE tracks SET title = 'Renamed' WHERE item_id = 't0005'")  # rows change, the index does not
    seen.clear()
    assert holder.reload()  # the same index announced again (a listener that subscribed again, a second message)
    after = holder.current
    assert after is not None and after.sha256 == before.sha256
    assert after.index is before.index  # no second copy of the index, even for a moment
    assert after.tracks([after.position("t0005")])[0].title == "Renamed"
    # each cache built while the other was served, built or not yet rebuilt: never both built beside the served ones
    assert seen == [("first", ("second", 2)), ("second", ("first", 3))]
    assert holder.cache_states() == {"first": "ready", "second": "ready"}
    for thread in threading.enumerate():  # the renamed row's catalogue, written to its file behind the reload
        if thread.name == "catalog-file":
            thread.join()
    unchanged, kept = holder.current, catalog_file(folder, config.INDEX_NAME).stat()
    assert holder.reload() and holder.current is not None and holder.current.catalog is unchanged.catalog
    again = catalog_file(folder, config.INDEX_NAME).stat()
    assert (again.st_ino, again.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)  # nothing changed: not rewritten


def test_an_update_in_place_is_stored_as_a_delta_that_reproduces_the_index(db, redis, config, tmp_path, monkeypatch):
    folder = tmp_path / "index"
    rng = np.random.default_rng(31)
    _seed(db, rng, 0, 150)
    _update(db, redis, config, folder, full=True)

    def chunks() -> list[tuple[int, str]]:
        return [(r["chunk_no"], r["xmin"]) for r in
                db.fetch_all("SELECT chunk_no, xmin::text AS xmin FROM voyager_index_chunks ORDER BY chunk_no")]

    def deltas() -> int:
        row = db.fetch_one("SELECT count(*) AS n FROM voyager_index_deltas")
        return int(row["n"]) if row else 0

    base = chunks()
    for step in range(2):
        _seed(db, rng, 150 + 5 * step, 5)
        db.execute("DELETE FROM tracks WHERE item_id = %s", (f"t{step:04d}",))
        _change(db, rng, f"t{20 + step:04d}")
        update = _update(db, redis, config, folder)
        assert not update.full and (update.added, update.removed) == (6, 2)
        assert chunks() == base and deltas() == step + 1  # the base is not written again: one delta more
    stored = db.fetch_one("SELECT sha256, base_sha256 FROM voyager_indexes")
    assert stored is not None and stored["sha256"] != stored["base_sha256"]
    # the updater's copy in DATA_DIR, and the base with its deltas applied (a start without that file, another
    # host), are the same bytes
    with_file = load_index(db, config.INDEX_NAME, folder=folder)
    replayed = load_index(db, config.INDEX_NAME)
    assert with_file is not None and replayed is not None
    assert hashlib.sha256(replayed.index.as_bytes()).hexdigest() == stored["sha256"] == \
        hashlib.sha256(with_file.index.as_bytes()).hexdigest()
    elsewhere = tmp_path / "other-host"
    assert load_index(db, config.INDEX_NAME, folder=elsewhere) is not None
    assert hashlib.sha256(index_file(elsewhere, config.INDEX_NAME).read_bytes()).hexdigest() == stored["sha256"]
    queries = np.random.default_rng(5).normal(size=(20, DIMENSIONS)).astype(np.float32)
    assert _neighbours(replayed, queries) == _neighbours(with_file, queries)
    # an update planned on the replayed copy (a worker on another host) is again reproduced by the deltas
    _seed(db, rng, 170, 3)
    assert not _update(db, redis, config, elsewhere).full and deltas() == 3
    stored = db.fetch_one("SELECT sha256 FROM voyager_indexes")
    again = load_index(db, config.INDEX_NAME)
    assert stored is not None and again is not None
    assert hashlib.sha256(again.index.as_bytes()).hexdigest() == stored["sha256"] and again.live == 150 + 13 - 2

    # past MAX_INDEX_DELTAS the update is stored whole: a new base, no deltas
    monkeypatch.setattr("voyager_manager.MAX_INDEX_DELTAS", 3)
    _seed(db, rng, 180, 2)
    assert not _update(db, redis, config, folder).full
    stored = db.fetch_one("SELECT sha256, base_sha256 FROM voyager_indexes")
    assert stored is not None and stored["sha256"] == stored["base_sha256"] and deltas() == 0 and chunks() != base
    _seed(db, rng, 190, 2)
    assert not _update(db, redis, config, folder).full and deltas() == 1
    assert _update(db, redis, config, folder, full=True).full and deltas() == 0  # a rebuild starts a new base


def test_an_index_stored_before_deltas_existed_takes_its_first_delta(db, redis, config, tmp_path):
    rng = np.random.default_rng(37)
    _seed(db, rng, 0, 60)
    _update(db, redis, config, tmp_path / "index", full=True)
    db.execute("UPDATE voyager_indexes SET base_sha256 = NULL")  # a row stored before migration 0022
    _seed(db, rng, 60, 4)
    assert not _update(db, redis, config, tmp_path / "index").full
    stored = db.fetch_one("SELECT sha256, base_sha256 FROM voyager_indexes")
    loaded = load_index(db, config.INDEX_NAME)  # from PostgreSQL: the base and its delta
    assert stored is not None and loaded is not None and loaded.live == 64
    assert hashlib.sha256(loaded.index.as_bytes()).hexdigest() == stored["sha256"] != stored["base_sha256"]
    # a damaged base is rebuilt from the embeddings by the next update, not left failing
    db.execute("UPDATE voyager_index_chunks SET data = 'x'::bytea WHERE chunk_no = 0")
    _seed(db, rng, 64, 2)
    update = _update(db, redis, config, tmp_path / "elsewhere")
    assert update.full and "could not be read" in update.reason and update.size == 66


def test_every_cache_of_the_web_process_is_moved_onto_a_new_index_not_built_beside(app):
    """Each cache the web process registers has a mover (a full rebuild then never builds them all beside the ones
    in use); the movers themselves are exercised above and in tests/unit/test_moved_caches.py."""
    holder = app.extensions["audiomuse"].index
    assert set(holder.cache_states()) >= {MAP_CACHE, TEXT_CACHE, FACETS_CACHE, "artists"}
    assert set(holder._movers) == set(holder.cache_states())
