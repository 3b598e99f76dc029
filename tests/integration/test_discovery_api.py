"""Discovery APIs against a real PostgreSQL and a real Voyager index, on a library whose vectors are known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import serve
from tests.seeded_library import seed_arc_library


@pytest.fixture
def library(make_config, db, redis, tmp_path: Path):
    cfg = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"))
    tracks = seed_arc_library(db, redis, cfg, tmp_path / "music")
    app = serve(cfg)
    yield app.test_client(), tracks, tmp_path / "playlists"
    app.extensions["audiomuse"].stop_background.set()


def test_search_is_case_and_accent_insensitive(library, db):
    client, tracks, _ = library
    db.execute("UPDATE tracks SET title = 'Café Bleu' WHERE item_id = %s", (tracks[0].item_id,))
    db.execute("UPDATE tracks SET title = 'Ölwechsel', artist = 'Bjørk' WHERE item_id = %s", (tracks[1].item_id,))
    assert [t["item_id"] for t in client.get("/api/search_tracks?q=OLWECH").get_json()] == [tracks[1].item_id]
    found = client.get("/api/search_tracks?q=cafe bl").get_json()
    assert [t["item_id"] for t in found] == [tracks[0].item_id]
    assert client.get("/api/search_tracks?artist=ARTIST 1").get_json()[0]["author"] in ("Artist 1", "Artist 10",
                                                                                        "Artist 11")
    missing = client.get("/api/search_tracks")
    assert missing.status_code == 400 and missing.get_json()["parameter"] == "q"


def test_the_pickers_name_table_follows_the_tracks(library, db):
    """The pickers match on track_names (migration 0021), kept by a trigger: a renamed track is found by its new
    name only, a track no longer analysed and a deleted one are not found, and a fragment inside a word still is."""
    client, tracks, _ = library
    def found(query: str) -> list[str]:
        return [t["item_id"] for t in client.get(f"/api/search_tracks?q={query}").get_json()]
    db.execute("UPDATE tracks SET title = 'Zyxwv Overture' WHERE item_id = %s", (tracks[2].item_id,))
    assert found("xwv over") == [tracks[2].item_id]
    db.execute("UPDATE tracks SET title = 'Quorn Prelude' WHERE item_id = %s", (tracks[2].item_id,))
    assert found("xwv") == [] and found("ORN PREL") == [tracks[2].item_id]
    db.execute("UPDATE tracks SET analyzed_at = NULL WHERE item_id = %s", (tracks[2].item_id,))
    assert found("quorn") == []
    db.execute("UPDATE tracks SET analyzed_at = now() WHERE item_id = %s", (tracks[2].item_id,))
    assert found("quorn") == [tracks[2].item_id]
    db.execute("DELETE FROM tracks WHERE item_id = %s", (tracks[2].item_id,))
    assert found("quorn") == []
    counts = db.fetch_one("""SELECT (SELECT count(*) FROM track_names) AS names,
                                    (SELECT count(*) FROM tracks WHERE analyzed_at IS NOT NULL) AS analysed""")
    assert counts["names"] == counts["analysed"] == len(tracks) - 1


def test_similar_tracks_are_nearest_first(library):
    client, tracks, _ = library
    answer = client.get(f"/api/similar_tracks?item_id={tracks[0].item_id}&n=3").get_json()
    assert [t["item_id"] for t in answer] == [t.item_id for t in tracks[1:4]]
    assert client.get("/api/similar_tracks?item_id=nope&n=3").status_code == 404
    bad = client.get(f"/api/similar_tracks?item_id={tracks[0].item_id}&n=0")
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "n"
    bpm = client.get(f"/api/similar_tracks?item_id={tracks[0].item_id}&n=3&min_bpm=110").get_json()
    assert all(t["tempo_bpm"] >= 110 for t in bpm) and len(bpm) == 3


def test_mixable_tracks_say_why(library):
    client, tracks, _ = library
    body = client.get(f"/api/mixable_tracks?item_id={tracks[0].item_id}&n=5&mode=harmonic").get_json()
    assert body["results"] and all("key" in t["reasons"] for t in body["results"])
    assert body["bpm_tolerance"]["kind"] == "preference" and "preference" in body["bpm_tolerance"]["meaning"]
    capped = client.get(f"/api/mixable_tracks?item_id={tracks[0].item_id}&n=50&mode=vibe&max_per_artist=1").get_json()
    assert capped["max_per_artist"] == 1
    assert client.get(f"/api/mixable_tracks?item_id={tracks[0].item_id}&mode=energy").get_json()[
        "bpm_tolerance"]["kind"] == "limit"
    wrong = client.get(f"/api/mixable_tracks?item_id={tracks[0].item_id}&mode=loud")
    assert wrong.status_code == 400 and wrong.get_json()["parameter"] == "mode"


def test_path_walks_the_arc_in_order(library):
    client, tracks, _ = library
    body = client.get(f"/api/find_path?start_song_id={tracks[0].item_id}&end_song_id={tracks[-1].item_id}"
                      f"&max_steps=5").get_json()
    ids = [t["item_id"] for t in body["path"]]
    assert ids[0] == tracks[0].item_id and ids[-1] == tracks[-1].item_id and len(ids) == 5
    order = [next(i for i, t in enumerate(tracks) if t.item_id == item) for item in ids]
    assert order == sorted(order)
    same = client.get(f"/api/find_path?start_song_id={tracks[0].item_id}&end_song_id={tracks[0].item_id}")
    assert same.status_code == 400


def test_a_short_path_says_why(library):
    client, tracks, _ = library
    body = client.get(f"/api/find_path?start_song_id={tracks[0].item_id}&end_song_id={tracks[-1].item_id}"
                      f"&max_steps=25").get_json()
    missed = body["targets_missed"]
    assert len(body["path"]) + missed == 25 and len(body["path"]) <= 12 and missed >= 13
    assert body["shortfall"].startswith(f"{missed} of the 23 steps between the two ends found no song that was not ")
    assert body["shortfall"].endswith("or a larger library.")
    assert set(body["missed_reasons"]) <= {"used", "version", "duplicate", "artist", "none"}
    full = client.get(f"/api/find_path?start_song_id={tracks[0].item_id}&end_song_id={tracks[-1].item_id}"
                      f"&max_steps=5").get_json()
    assert full["targets_missed"] == 0 and full["shortfall"] is None and full["missed_reasons"] == {}


def test_alchemy_with_projection_and_validation(library):
    client, tracks, _ = library
    body = client.post("/api/alchemy", json={"items": [{"id": tracks[0].item_id, "op": "ADD"},
                                                        {"id": tracks[-1].item_id, "op": "SUBTRACT"}],
                                             "n": 4, "temperature": 0, "subtract_distance": 0.05}).get_json()
    assert len(body["results"]) <= 4 and body["projection"]
    kept = {t["item_id"] for t in body["results"]}
    assert tracks[0].item_id not in kept and tracks[-1].item_id not in kept
    assert {p["kind"] for p in body["projection"]} >= {"add", "subtract", "kept", "add centroid"}
    none = client.post("/api/alchemy", json={"items": [{"id": tracks[0].item_id, "op": "SUBTRACT"}]})
    assert none.status_code == 400
    unknown = client.post("/api/alchemy", json={"items": [{"id": "ghost", "op": "ADD"}]})
    assert unknown.status_code == 404 and "ghost" in unknown.get_json()["error"]


def test_playlist_on_the_local_media_source_and_m3u(library):
    client, tracks, playlists = library
    ids = [t.item_id for t in tracks[:3]]
    made = client.post("/api/create_playlist", json={"playlist_name": "Evening", "track_ids": ids})
    assert made.status_code == 201 and made.get_json()["name"] == "Evening_instant"
    text = (playlists / "Evening_instant.m3u8").read_text()
    assert [line for line in text.splitlines() if not line.startswith("#")] == [t.path for t in tracks[:3]]
    m3u = client.post("/api/playlist.m3u8", json={"playlist_name": "Evening", "track_ids": ids})
    assert m3u.status_code == 200 and 'filename="Evening.m3u8"' in m3u.headers["Content-Disposition"]
    assert m3u.data.decode().splitlines()[0] == "#EXTM3U" and tracks[0].path in m3u.data.decode()
    unknown = client.post("/api/create_playlist", json={"playlist_name": "x", "track_ids": ["ghost"]})
    assert unknown.status_code == 404


def test_fingerprint_without_play_history_is_an_empty_list(library):
    client, _, _ = library
    answer = client.post("/api/sonic_fingerprint/generate", json={"n": 5})
    assert answer.status_code == 200 and answer.get_json() == []


def test_no_index_yet_is_a_clear_503(client):
    answer = client.get("/api/similar_tracks?item_id=x")
    assert answer.status_code == 503 and "run an analysis first" in answer.get_json()["error"]


def test_odd_input_gets_a_400_not_a_500(library):
    client, tracks, _ = library
    seed = tracks[0].item_id
    for body in ([1, 2], "text", 3):
        answer = client.post("/api/alchemy", json=body)
        assert answer.status_code == 400 and answer.get_json()["parameter"] == "body", body
    raw = '{"items": [{"id": "SEED", "op": "ADD"}], "n": 1e999}'.replace("SEED", seed)
    huge = client.post("/api/alchemy", data=raw, content_type="application/json")
    assert huge.status_code == 400 and huge.get_json()["parameter"] == "n"
    not_a_number = client.get(f"/api/mixable_tracks?item_id={seed}&bpm_tolerance=nan")
    assert not_a_number.status_code == 400 and not_a_number.get_json()["parameter"] == "bpm_tolerance"
    fraction = client.get(f"/api/similar_tracks?item_id={seed}&n=2.5")
    assert fraction.status_code == 400
    nul = client.get("/api/search_tracks?q=a%00b")
    assert nul.status_code == 400 and nul.get_json()["parameter"] == "q"
    newline = client.post("/api/create_playlist", json={"playlist_name": "a\n/etc/passwd", "track_ids": [seed]})
    assert newline.status_code == 400 and newline.get_json()["parameter"] == "playlist_name"
    many = client.post("/api/alchemy", json={"items": [{"id": seed, "op": "ADD"}], "n": 400})
    assert many.status_code == 200  # n above the old fixed pool of 300 is fine


def test_m3u_name_with_non_latin_characters(library):
    client, tracks, _ = library
    answer = client.post("/api/playlist.m3u8", json={"playlist_name": "Nacht ą 夜", "track_ids": [tracks[0].item_id]})
    disposition = answer.headers["Content-Disposition"]
    assert answer.status_code == 200 and disposition.isascii() and "filename*=UTF-8''Nacht%20" in disposition


def test_similar_tracks_come_from_the_in_memory_catalogue(library, db):
    """Metadata (moods included) is read with the index, so a request needs no database trip at all."""
    client, tracks, _ = library
    happy = {t.item_id for i, t in enumerate(tracks) if i % 2}
    for t in tracks:
        db.execute("UPDATE tracks SET moods = %s WHERE item_id = %s",
                   (json.dumps({"happy": 0.9 if t.item_id in happy else 0.1, "sad": 0.3}), t.item_id))
    runtime = client.application.extensions["audiomuse"]
    assert runtime.index.reload()
    assert client.get("/similarity").status_code == 200  # the first request reads the session key and auth state

    class NoDatabase:
        def __getattr__(self, name: str) -> None:
            raise AssertionError(f"a similar-songs request used the database ({name})")

    real_db, runtime.db = runtime.db, NoDatabase()
    try:
        answer = client.get(f"/api/similar_tracks?item_id={tracks[1].item_id}&n=3&mood_happy=0.2")
    finally:
        runtime.db = real_db
    assert answer.status_code == 200
    body = answer.get_json()
    assert len(body) == 3 and {t["item_id"] for t in body} <= happy - {tracks[1].item_id}
    assert set(body[0]) == {"item_id", "title", "author", "album", "duration_seconds", "tempo_bpm", "camelot",
                            "energy", "format", "distance"}  # copies/copy_note only for a song held by several files
    assert body[0]["tempo_bpm"] == 100 + 2 * next(i for i, t in enumerate(tracks) if t.item_id == body[0]["item_id"])


def test_similar_tracks_by_title_and_artist_as_the_reference_clients_ask(library, db):
    """No item_id: the seed is found by title and/or artist (case- and accent-insensitive, best match)."""
    client, tracks, _ = library
    seed = tracks[0]
    db.execute("UPDATE tracks SET title = 'Déjà Vu' WHERE item_id = %s", (seed.item_id,))
    by_id = client.get(f"/api/similar_tracks?item_id={seed.item_id}&n=3").get_json()
    both = client.get(f"/api/similar_tracks?title=deja vu&artist={seed.artist.upper()}&n=3")
    assert both.status_code == 200 and both.get_json() == by_id
    assert client.get("/api/similar_tracks?title=DEJA VU&n=3").get_json() == by_id
    artist_only = client.get(f"/api/similar_tracks?artist={tracks[5].artist}&n=2")
    assert artist_only.status_code == 200 and len(artist_only.get_json()) == 2
    missing = client.get("/api/similar_tracks?title=No such song&artist=Nobody&n=3")
    assert missing.status_code == 404 and missing.get_json()["parameter"] == "title"
    assert "'No such song' by 'Nobody'" in missing.get_json()["error"]
    nothing = client.get("/api/similar_tracks?n=3")
    assert nothing.status_code == 400 and nothing.get_json()["parameter"] == "item_id"


def test_a_song_whose_path_holds_a_line_break_is_left_out_and_said_so(library, db):
    """A playlist file has one path a line: such a song cannot be an entry. It is counted apart and named, never
    counted as written."""
    import numpy as np

    from mediaservers.local import item_id_for
    from tests.seeded_library import insert_track

    client, tracks, playlists = library
    source = Path(tracks[0].path)
    odd = source.with_name("two\nlines.flac")
    odd.write_bytes(source.read_bytes())
    odd_id = item_id_for(str(odd.relative_to(source.parents[1])))
    insert_track(db, item_id=odd_id, title="Two lines", artist="Odd", vector=np.ones(200), path=str(odd))
    ids = [tracks[1].item_id, odd_id, tracks[2].item_id]
    made = client.post("/api/create_playlist", json={"playlist_name": "Mixed", "track_ids": ids})
    body = made.get_json()
    assert made.status_code == 201 and body["track_count"] == 2, body
    assert [s["item_id"] for s in body["left_out"]] == [odd_id] and "line break" in body["left_out"][0]["reason"]
    assert "1 song left out" in body["message"]
    text = (playlists / "Mixed_instant.m3u8").read_text()
    assert [line for line in text.splitlines() if not line.startswith("#")] == [tracks[1].path, tracks[2].path]
    chat = client.post("/chat/api/create_playlist", json={"playlist_name": "Chat", "item_ids": ids}).get_json()
    assert chat["track_count"] == 2 and "with 2 songs (1 song left out" in chat["message"]
    m3u = client.post("/api/playlist.m3u8", json={"playlist_name": "Mixed", "track_ids": ids})
    assert (m3u.headers["X-Track-Count"], m3u.headers["X-Left-Out-Count"]) == ("2", "1")
    nothing = client.post("/api/create_playlist", json={"playlist_name": "None", "track_ids": [odd_id]})
    assert nothing.status_code == 422 and nothing.get_json()["left_out"][0]["title"] == "Two lines"
    assert not (playlists / "None_instant.m3u8").exists()
