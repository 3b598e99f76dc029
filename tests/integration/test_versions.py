"""One notion of "the same song" in every list (discovery/versions.py), on a library with planted copies: the
recording "Shine" as FLAC, MP3 and a 30-s excerpt, a live version ("Shine (Live)"), and a different song by the same
artist that is also called "Shine". Every list shows one row per song, by the FLAC; the other "Shine" is its own
row; the versions view groups exactly the three copies. Real PostgreSQL, Redis and Voyager index; vectors made by
hand so the expected rows are exact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app import serve
from audio.musicnn import MODEL_NAME
from clustering.data import library_from_rows
from db import playlist_matching as match_store
from db import tracks as track_store
from db import versions as version_store
from discovery.dedup import song_key_hash
from discovery.playlist_matching import profile_of, suggest
from tests.conftest import wait_for
from tests.seeded_library import insert_track
from version_groups import store_version_groups
from voyager_manager import rebuild_from_embeddings

DIMS = 16
COPIES = ("shine-flac", "shine-mp3", "shine-excerpt")
VERSIONS = ("shine-live",)
NOT_SHOWN = ("shine-mp3", "shine-excerpt", "shine-live")  # lists show shine-flac for all of these


def _direction(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIMS)
    return v / np.linalg.norm(v)


def _at_distance(base: np.ndarray, distance: float, seed: int) -> np.ndarray:
    other = np.random.default_rng(seed).normal(size=DIMS)
    other -= (other @ base) * base
    other /= np.linalg.norm(other)
    cos = 1.0 - distance
    return cos * base + np.sqrt(1.0 - cos * cos) * other


SHINE = _direction(1)
# (item id, title, artist, album, file, duration, cosine distance to SHINE or None for a direction of its own)
PLANTED = [
    ("shine-flac", "Shine", "Artist A", "Shine", "A/Shine/01 Shine.flac", 200.0, 0.0),
    ("shine-mp3", "Shine", "Artist A", "Shine (MP3)", "A/Shine MP3/01 Shine.mp3", 200.6, 0.003),
    ("shine-excerpt", "Shine", "Artist A", "Samples", "A/Samples/shine.ogg", 30.0, 0.06),
    ("shine-live", "Shine (Live)", "Artist A", "Live", "A/Live/05 Shine (Live).mp3", 236.0, 0.09),
    ("other-shine", "Shine", "Artist A", "Later", "A/Later/02 Shine.flac", 151.0, 0.30),
] + [(f"f{i}", f"Filler {i}", f"Artist {chr(66 + i)}", f"Album {i}", f"F/{i}.mp3", 180.0 + i, 0.02 + 0.04 * i)
     for i in range(1, 11)]


def plant(db, redis, config) -> None:  # type: ignore[no-untyped-def]
    for n, (item_id, title, artist, album, path, duration, distance) in enumerate(PLANTED):
        vector = _at_distance(SHINE, distance, 100 + n) if distance else SHINE
        insert_track(db, item_id=item_id, title=title, artist=artist, vector=vector, path=f"/music/{path}",
                     bpm=120.0 + n % 3, camelot="8A", energy=0.5, duration=duration)
        rock = 0.9 if artist == "Artist A" else 0.1 + 0.02 * n
        db.execute("UPDATE tracks SET album = %s, tags = %s, moods = %s, genres = %s WHERE item_id = %s",
                   (album, json.dumps({"rock": rock, "jazz": 1 - rock}), json.dumps({"happy": 0.5, "relaxed": 0.5}),
                    ["Rock"] if artist == "Artist A" else ["Jazz"], item_id))
    rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME, channel=config.INDEX_RELOAD_CHANNEL,
                            m=16, ef_construction=100)


@pytest.fixture
def planted(make_config, db, redis, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "music").mkdir()
    config = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"),
                         MAX_SONGS_PER_ARTIST=10, AI_MODEL_PROVIDER="none")
    app = serve(config)
    plant(db, redis, config)
    client = app.test_client()
    wait_for(lambda: client.get("/api/health").get_json()["index"]["size"] == len(PLANTED), what="the index")
    yield client
    app.extensions["audiomuse"].stop_background.set()


def ids(rows) -> list[str]:  # type: ignore[no-untyped-def]
    return [r["item_id"] for r in rows]


def one_row_per_song(listed: list[str]) -> None:
    assert not set(listed) & set(NOT_SHOWN), listed
    assert len(listed) == len(set(listed))


def test_the_versions_view_groups_exactly_the_planted_copies(planted, db):
    body = planted.get("/api/versions").get_json()
    assert body["total"] == 1
    (recording,) = body["recordings"]
    assert recording["recording_id"] == "shine-flac"
    assert [(f["item_id"], f["format"], f["kept"]) for f in recording["files"]] == [
        ("shine-flac", "FLAC", True), ("shine-excerpt", "OGG", False), ("shine-mp3", "MP3", False)]
    assert recording["kept_because"] == "full length over an excerpt; lossless FLAC over MP3, OGG"
    stored = {r["item_id"]: (r["recording_id"], r["song_id"]) for r in db.fetch_all(
        "SELECT item_id, recording_id, song_id FROM tracks WHERE recording_id IS NOT NULL OR song_id IS NOT NULL")}
    assert stored == {**dict.fromkeys(COPIES, ("shine-flac", "shine-flac")), "shine-live": (None, "shine-flac"),
                      "other-shine": (None, "other-shine")}
    page = planted.get("/versions")
    assert page.status_code == 200 and b"versions.js" in page.data


def test_index_lists_show_one_row_per_song_by_the_flac(planted):
    similar = planted.get("/api/similar_tracks?item_id=f1&n=14").get_json()
    one_row_per_song(ids(similar))
    assert ids(similar)[0] == "shine-flac" and "other-shine" in ids(similar)
    flac = similar[0]
    assert (flac["format"], flac["copies"], flac["copy_note"]) == (
        "FLAC", 3, "full length over an excerpt; lossless FLAC over MP3, OGG")
    # the seed's own song is never listed, whichever copy is the seed
    from_mp3 = ids(planted.get("/api/similar_tracks?item_id=shine-mp3&n=12").get_json())
    assert not set(from_mp3) & {"shine-flac", *NOT_SHOWN} and "other-shine" in from_mp3
    for mode in ("energy", "harmonic", "vibe"):
        mixable = planted.get(f"/api/mixable_tracks?item_id=f1&n=8&mode={mode}&bpm_tolerance=10").get_json()
        one_row_per_song(ids(mixable["results"] if isinstance(mixable, dict) else mixable))
    path = planted.get("/api/find_path?start_song_id=f1&end_song_id=f10&max_steps=12").get_json()
    one_row_per_song(ids(path["path"]))
    alchemy = planted.post("/api/alchemy", json={"items": [{"type": "song", "id": "f1", "op": "ADD"}],
                                                 "n": 10}).get_json()
    one_row_per_song(ids(alchemy["results"]))
    assert "shine-flac" in ids(alchemy["results"])
    mix = planted.post("/api/mix", json={"tracks": ["f1"], "count": 8}).get_json()
    one_row_per_song(ids(mix["tracks"]))
    radio = planted.get("/api/artist_radio?artist=Artist%20A&n=10").get_json()
    assert {"shine-flac", "other-shine"} <= set(ids(radio))
    one_row_per_song(ids(radio))


def test_search_lists_group_versions_under_one_row(planted):
    found = planted.get("/api/v1/search?q=shine&semantic=false").get_json()
    rows = {r["track"]["item_id"]: r for r in found["results"]}
    assert set(rows) == {"shine-flac", "other-shine"}
    assert rows["shine-flac"]["version_count"] == 4
    assert sorted(ids(rows["shine-flac"]["versions"])) == ["shine-excerpt", "shine-live", "shine-mp3"]
    assert rows["other-shine"]["version_count"] == 1 and found["totalMatches"] == 2
    text = planted.post("/api/clap/search", json={"query": "rock", "limit": 3}).get_json()
    assert set(ids(text["results"])[:2]) == {"shine-flac", "other-shine"}  # the five rock tracks: two songs
    one_row_per_song(ids(text["results"]))


def test_chat_and_smart_playlists_list_one_row_per_song(planted):
    answer = planted.post("/chat/api/chatPlaylist", json={"userInput": "songs by Artist A",
                                                         "ai_provider": "none"}).get_json()["response"]
    assert sorted(ids(answer["query_results"])) == ["other-shine", "shine-flac"]
    for order_by in ("energy", "similarity"):
        preview = planted.post("/api/smart_playlists/preview", json={"rule": 'artist = "Artist A"',
                                                                      "order_by": order_by}).get_json()
        assert sorted(ids(preview["tracks"])) == ["other-shine", "shine-flac"], preview
        assert preview["count"] == 2


def test_clustering_sees_one_copy_and_tells_the_two_shines_apart(planted, db):
    with track_store.clustering_rows(db, MODEL_NAME) as (count, rows):
        data = library_from_rows(rows, count=count, tag_names=("rock", "jazz"), mood_names=("happy",))
    assert len(data) == count == len(data.item_ids)
    assert sorted(i for i in data.item_ids if i.startswith(("shine", "other"))) == [
        "other-shine", "shine-flac", "shine-live"]
    keys = dict(zip(data.item_ids, data.song_titles(), strict=True))
    assert keys["shine-flac"] == keys["shine-live"] != keys["other-shine"]
    assert data.from_bytes(data.to_bytes()).song_titles() == data.song_titles()


def test_playlist_matching_offers_a_song_once_and_not_when_a_version_is_in_the_playlist(planted, db):
    match_store.save_user_playlist(db, playlist_id="p1", name="Mine", item_ids=["f1", "f2", "shine-live"],
                                   content_hash="h", generated=False)
    continued = planted.get("/api/playlists/p1/continue?n=12").get_json()["results"]
    assert "other-shine" in ids(continued) and not {"shine-flac", *COPIES} & set(ids(continued))
    one_row_per_song(ids(continued))
    match_store.save_user_playlist(db, playlist_id="p2", name="Fillers", item_ids=["f1", "f2", "f3"],
                                   content_hash="h2", generated=False)
    library = match_store.matching_library(db, MODEL_NAME, members={"f1", "f2", "f3", "shine-live"}, since=None)
    playlists = [({"playlist_id": pid, "item_ids": members},
                  profile_of(library, [library.member_rows[i] for i in members], tag_names=("rock", "jazz"),
                             mood_names=("happy",)))
                 for pid, members in (("p1", ["f1", "f2", "shine-live"]), ("p2", ["f1", "f2", "f3"]))]
    found = suggest(library, playlists, decided=set())
    offered = [(item_id, playlist) for item_id, playlist, _, _ in found.suggestions]
    # the song once, by the FLAC, to the playlist without it; not to p1, which has its live version
    assert offered == [("shine-flac", "p2")]


def _groups(db) -> dict[str, tuple[str | None, str | None]]:  # type: ignore[no-untyped-def]
    return {r["item_id"]: (r["recording_id"], r["song_id"]) for r in db.fetch_all(
        "SELECT item_id, recording_id, song_id FROM tracks WHERE recording_id IS NOT NULL OR song_id IS NOT NULL")}


def test_song_keys_are_stored_once_and_a_rename_regroups(db, redis, config):
    plant(db, redis, config)
    before = _groups(db)
    hashes = {r["item_id"]: r["song_key_hash"] for r in db.fetch_all("SELECT item_id, song_key_hash FROM tracks")}
    assert None not in hashes.values() and len(set(hashes.values())) == len(PLANTED) - 4  # the five "Shine"s share
    assert hashes["shine-flac"] == hashes["shine-live"] == song_key_hash("Shine (Live)", "artist a")
    items = [p[0] for p in PLANTED]
    vectors = {r["item_id"]: np.frombuffer(r["vector"], dtype="<f4") for r in db.fetch_all(
        "SELECT item_id, vector FROM embeddings")}
    matrix = np.stack([vectors[i] for i in items])

    # a filler renamed to the song: its key is computed again (the trigger forgot it) and it joins the group
    db.execute("UPDATE tracks SET title = 'Shine', artist = 'Artist A' WHERE item_id = 'f1'")
    assert db.fetch_one("SELECT song_key_hash FROM tracks WHERE item_id = 'f1'")["song_key_hash"] is None
    db.execute("UPDATE tracks SET album = 'Renamed album' WHERE item_id = 'f2'")  # not a title or artist: kept
    assert db.fetch_one("SELECT song_key_hash FROM tracks WHERE item_id = 'f2'")["song_key_hash"] == hashes["f2"]
    store_version_groups(db, items, matrix)
    assert _groups(db)["f1"][1] is not None and _groups(db)["f1"] != before.get("f1")

    # stored by other code (a new version of the title folding): every key is computed again
    db.execute("UPDATE tracks SET song_key_hash = 12345")
    db.execute("UPDATE app_settings SET value = 'older code' WHERE key = 'song_key_code'")
    db.execute("UPDATE tracks SET title = 'Filler 1', artist = 'Artist C' WHERE item_id = 'f1'")
    grouped = store_version_groups(db, items, matrix)
    assert _groups(db) == before and grouped.song_of
    assert db.fetch_one("SELECT count(*) AS n FROM tracks WHERE song_key_hash = 12345")["n"] == 0


def test_a_song_key_read_before_a_rename_is_not_stored(db):
    insert_track(db, item_id="k1", title="Old Name", artist="Someone", vector=np.ones(DIMS))
    (batch,) = list(version_store.tracks_without_song_key(db))
    assert batch == [("k1", "Old Name", "Someone")]
    db.execute("UPDATE tracks SET title = 'New Name' WHERE item_id = 'k1'")  # renamed meanwhile
    version_store.store_song_keys(db, batch, [song_key_hash("Old Name", "Someone")])
    assert db.fetch_one("SELECT song_key_hash FROM tracks WHERE item_id = 'k1'")["song_key_hash"] is None
    version_store.store_song_keys(db, [("k1", "New Name", "Someone")], [song_key_hash("New Name", "Someone")])
    assert db.fetch_one("SELECT song_key_hash FROM tracks WHERE item_id = 'k1'")["song_key_hash"] == song_key_hash(
        "New Name", "Someone")
