"""Instant playlist (chat) through its routes: a local server speaking the Ollama and OpenAI APIs plays the LLM,
PostgreSQL is real. Hostile or broken LLM answers are refused (the fallback answers, nothing changes in the
database); with no LLM, a missing key or the LLM down the fallback answers and says why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app import serve
from audio.musicnn import MODEL_NAME
from mediaservers.local import LocalFolder
from services.chat import ProviderPacer
from tests.conftest import wait_for
from tests.fakes.llm import FakeLLM
from tests.integration.test_chat_queries import fingerprint
from tests.library import make_library
from tests.seeded_library import insert_track
from voyager_manager import rebuild_from_embeddings


def seed(db, redis, config) -> None:  # type: ignore[no-untyped-def]
    """24 tracks by 4 artists: tempo 80-149, even ones jazz, odd ones rock; genres from the media server."""
    rng = np.random.default_rng(1)
    for i in range(24):
        insert_track(db, item_id=f"t{i}", title=f"Song {i}", artist=f"Artist {i % 4}", vector=rng.normal(size=8),
                     bpm=80 + 3 * i, energy=i / 24)
        jazz = 0.9 - i / 100 if i % 2 == 0 else 0.05
        db.execute("UPDATE tracks SET tags = %s, moods = %s, genres = %s WHERE item_id = %s",
                   (json.dumps({"jazz": jazz, "rock": 0.8 if i % 2 else 0.05}),
                    json.dumps({"relaxed": 0.9 if i % 2 == 0 else 0.1, "happy": 0.5}),
                    ["Jazz"] if i % 2 == 0 else ["Rock"], f"t{i}"))
    rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME, channel=config.INDEX_RELOAD_CHANNEL,
                            m=16, ef_construction=100)


@pytest.fixture
def llm():  # type: ignore[no-untyped-def]
    with FakeLLM(answer="{}") as server:
        yield server


@pytest.fixture
def chat(make_config, db, redis, llm, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "music").mkdir()
    config = make_config(AI_MODEL_PROVIDER="ollama", OLLAMA_SERVER_URL=llm.url, MUSIC_DIR=str(tmp_path / "music"),
                         AI_ALLOWED_URLS="http://127.0.0.1:9, http://llm.lan:11434/ollama",
                         PLAYLIST_DIR=str(tmp_path / "playlists"), ALCHEMY_MAX_N_RESULTS=50,
                         CHAT_DEFAULT_N_RESULTS=10, MAX_SONGS_PER_ARTIST=10, CHAT_STATEMENT_TIMEOUT_MS=500,
                         CHAT_MAX_REQUESTS_PER_MINUTE=60)  # the hostile-answers drill sends 23 in a row
    app = serve(config)
    seed(db, redis, config)
    client = app.test_client()
    wait_for(lambda: client.get("/api/health").get_json()["index"]["size"] == 24, what="the index")
    yield client
    app.extensions["audiomuse"].stop_background.set()


def ask(client, text: str, **extra):  # type: ignore[no-untyped-def]
    response = client.post("/chat/api/chatPlaylist", json={"userInput": text, **extra})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["response"]


def llm_says(llm: FakeLLM, query: str, params=(), message: str = "Smooth jazz for you") -> None:  # type: ignore
    llm.answer = "Here you go:\n```json\n" + json.dumps({"message": message, "query": query,
                                                         "params": list(params)}) + "\n```"


def test_the_llm_writes_the_query_it_is_checked_run_and_shown(chat, llm):
    llm_says(llm, "SELECT item_id FROM chat_tracks WHERE (tags->>'jazz')::float > $1 AND tempo_bpm < $2 "
                  "ORDER BY (tags->>'jazz')::float DESC LIMIT 5", [0.5, 100])
    answer = ask(chat, "Relaxed jazz, not too fast")
    assert answer["path"] == "llm" and answer["message"] == "Smooth jazz for you"
    assert answer["ai_provider_used"] == "OLLAMA" and answer["ai_model_selected"]
    assert answer["original_request"] == "Relaxed jazz, not too fast" and answer["warnings"] == []
    assert answer["query_params"] == [0.5, 100] and "chat_tracks" in answer["executed_query"]
    assert [r["item_id"] for r in answer["query_results"]] == ["t0", "t2", "t4", "t6"]  # 80-98 BPM, jazz first
    first = answer["query_results"][0]
    assert set(first) >= {"item_id", "title", "artist", "album", "tempo_bpm", "camelot"} and first["title"] == "Song 0"
    prompt = llm.last.body["prompt"]
    assert "chat_tracks" in prompt and "Relaxed jazz, not too fast" in prompt and "LIMIT" in prompt
    calls = chat.get("/chat/api/status").get_json()["calls"]
    assert calls[0]["provider"] == "ollama" and calls[0]["outcome"] == "4 songs"
    # provider names are case-insensitive; the OpenAI-compatible API works the same way
    assert ask(chat, "jazz please", ai_provider="OLLAMA")["path"] == "llm"


# (the LLM's answer, what the refusal says): writes, several statements, functions and tables out of bounds, an
# unbounded or huge result, prose, an answer without a query, a query finding nothing, a cross join past the timeout
HOSTILE_ANSWERS = [
    ('{"message": "x", "query": "DROP TABLE tracks", "params": []}', "DROP, not a SELECT"),
    ('{"message": "x", "query": "UPDATE tracks SET title = \'gone\'", "params": []}', "UPDATE"),
    ('{"message": "x", "query": "DELETE FROM tracks", "params": []}', "DELETE"),
    ('{"query": "INSERT INTO playlists (name) SELECT title FROM chat_tracks LIMIT 1"}', "INSERT"),
    ('{"query": "SELECT item_id FROM chat_tracks LIMIT 5; DROP TABLE tracks"}', "2 statements"),
    ('{"query": "SELECT item_id FROM chat_tracks LIMIT 5 -- ok\\n; DELETE FROM tracks"}', "2 statements"),
    ('{"query": "WITH x AS (DELETE FROM tracks RETURNING item_id) SELECT item_id FROM x LIMIT 5"}', "WITH"),
    ('{"query": "SELECT item_id INTO copy FROM chat_tracks LIMIT 5"}', "SELECT INTO"),
    ('{"query": "SELECT item_id FROM chat_tracks LIMIT 5 FOR UPDATE"}', "FOR UPDATE"),
    ('{"query": "SELECT pg_sleep(60), item_id FROM chat_tracks LIMIT 1"}', "pg_sleep"),
    ('{"query": "SELECT pg_read_file(\'/etc/passwd\') AS item_id FROM chat_tracks LIMIT 1"}', "pg_read_file"),
    ('{"query": "SELECT set_config(\'role\', \'x\', false) FROM chat_tracks LIMIT 1"}', "set_config"),
    ('{"query": "COPY tracks TO \'/tmp/x\'"}', "COPY"),
    ('{"query": "SELECT lo_import(\'/etc/passwd\') FROM chat_tracks LIMIT 1"}', "lo_import"),
    ('{"query": "SELECT key AS item_id FROM app_settings LIMIT 5"}', "reads app_settings"),
    ('{"query": "SELECT usename AS item_id FROM pg_shadow LIMIT 5"}', "reads pg_shadow"),
    ('{"query": "SELECT table_name AS item_id FROM information_schema.tables LIMIT 5"}', "information_schema"),
    ('{"query": "SELECT item_id FROM chat_tracks"}', "no LIMIT"),
    ('{"query": "SELECT item_id FROM chat_tracks LIMIT 100000"}', "LIMIT 100000"),
    ("I think you would enjoy some jazz.", "not JSON"),
    ('{"message": "jazz!"}', "no query"),
    ('{"query": "SELECT item_id FROM chat_tracks WHERE title = \'nothing like it\' LIMIT 5"}', "found no songs"),
    # 24^6 rows: seconds on any machine (24^5 took 496 ms on a quiet EPYC, under the 500-ms timeout)
    ('{"query": "SELECT a.item_id FROM chat_tracks a, chat_tracks b, chat_tracks c, chat_tracks d, chat_tracks e, '
     'chat_tracks f ORDER BY random() LIMIT 5"}', "longer than 500 ms"),
]


@pytest.mark.drill
def test_hostile_or_broken_answers_are_refused_and_the_fallback_answers(chat, llm, db, drill_summary):
    before = fingerprint(db)
    wrong: list[str] = []
    for answer, why in HOSTILE_ANSWERS:
        llm.answer = answer
        response = ask(chat, "relaxed jazz")
        if not (response["path"] == "fallback" and response["ai_provider_used"] == "NONE"
                and any(why in w for w in response["warnings"])
                and response["query_results"] and all(r["title"] for r in response["query_results"])):
            wrong.append(f"{why}: {response['path']} {response['warnings']}")
        if fingerprint(db) != before:
            wrong.append(f"{why}: the database changed")
    assert wrong == []
    assert db.fetch_one("SELECT count(*) AS n FROM tracks")["n"] == 24
    drill_summary(f"hostile LLM answers — {len(HOSTILE_ANSWERS)}/{len(HOSTILE_ANSWERS)} refused saying why "
                  "(writes, 2 statements, file and settings reads, no LIMIT, a cross join stopped by the statement "
                  "timeout, …), the fallback answered each, the database unchanged")


def test_without_an_llm_the_request_itself_makes_the_playlist(chat, llm):
    answer = ask(chat, "Fast jazz, no Artist 2", ai_provider="none")
    assert answer["path"] == "fallback" and llm.requests == []
    assert any("no LLM is configured" in w for w in answer["warnings"])
    assert "tag jazz" in answer["understood"] and "not Artist 2" in answer["understood"]
    results = answer["query_results"]
    assert results and all(r["artist"] != "Artist 2" and r["tempo_bpm"] >= 125 for r in results)
    assert results[0]["item_id"] == "t16"  # the most jazz of the fast ones (t16: 128 BPM; even ids are jazz)
    assert "$1" in answer["executed_query"] and "jazz" in answer["query_params"]

    like = ask(chat, "songs like Song 5", ai_provider="none")
    assert like["understood"] == ["songs like Song 5"] and like["query_results"][0]["item_id"] == "t5"
    counted = ask(chat, "3 songs by Artist 1", ai_provider="none")
    assert [r["artist"] for r in counted["query_results"]] == ["Artist 1"] * 3
    relaxed = ask(chat, "jazz at 200 bpm", ai_provider="none")  # no track is that fast: filters relaxed
    assert relaxed["query_results"] and any("relaxed" in w for w in relaxed["warnings"])


def test_a_missing_key_or_an_llm_that_is_down_takes_the_fallback(chat, llm):
    keyless = ask(chat, "happy rock", ai_provider="gemini")
    assert keyless["path"] == "fallback" and any("gemini has no API key" in w for w in keyless["warnings"])
    down = ask(chat, "happy rock", ai_provider="ollama", ollama_server_url="http://127.0.0.1:9/")
    assert down["path"] == "fallback" and any("could not be asked" in w for w in down["warnings"])
    assert "tag rock" in down["understood"]
    llm.status = 500
    assert any("could not be asked" in w for w in ask(chat, "happy rock")["warnings"])


def test_only_configured_or_allowed_llm_urls_are_called_and_no_reply_body_is_shown(chat, llm):
    calls = len(llm.requests)
    for url in ("http://127.0.0.1:5432/", "http://169.254.169.254/latest/meta-data", "http://llm.lan:11434/",
                "http://llm.lan:11434/ollamax", llm.url + "/../other"):
        answer = chat.post("/chat/api/chatPlaylist", json={"userInput": "jazz", "ai_provider": "ollama",
                                                           "ollama_server_url": url})
        assert answer.status_code == 400 and answer.get_json()["parameter"] == "ollama_server_url", url
        assert "AI_ALLOWED_URLS" in answer.get_json()["error"]
    assert len(llm.requests) == calls  # refused before any connection
    ask(chat, "jazz", ai_provider="ollama", ollama_server_url=llm.url + "/")
    assert len(llm.requests) > calls  # the configured one, with or without its slash, is called

    llm.page = b"<html><title>Router admin</title><body>admin password: hunter2</body></html>"
    shown = ask(chat, "happy rock", ai_provider="ollama")
    warnings = " ".join(shown["warnings"])
    assert shown["path"] == "fallback" and "HTTP 404" in warnings
    assert "hunter2" not in warnings and "Router admin" not in warnings


def test_llm_answers_nested_thousands_deep_take_the_fallback(chat, llm):
    deep = 100_000
    answers = {
        "the envelope": b'{"response": ' + b"[" * deep + b"]" * deep + b"}",
        "the answer's JSON": json.dumps({"response": '{"query": ' + "[" * deep + "]" * deep + "}"}).encode(),
        "the query": json.dumps({"response": json.dumps(
            {"query": "SELECT item_id FROM chat_tracks WHERE " + "NOT " * 2400 + "true LIMIT 5",
             "params": []})}).encode(),
    }
    for what, raw in answers.items():
        llm.raw = raw
        answer = chat.post("/chat/api/chatPlaylist", json={"userInput": "happy rock"})
        assert answer.status_code == 200, (what, answer.get_json())
        body = answer.get_json()["response"]
        assert body["path"] == "fallback" and body["query_results"], what
        assert any("nested too deeply" in w for w in body["warnings"]), (what, body["warnings"])


@pytest.mark.parametrize(("body", "parameter"), [
    ({}, "userInput"), ({"userInput": "   "}, "userInput"), ({"userInput": "x" * 1001}, "userInput"),
    ({"userInput": 5}, "userInput"), ({"userInput": "jazz", "ai_provider": "skynet"}, "ai_provider"),
    ({"userInput": "jazz", "ollama_server_url": "file:///etc/passwd"}, "ollama_server_url"),
])
def test_bad_requests_are_400s_naming_the_field(chat, body, parameter):
    response = chat.post("/chat/api/chatPlaylist", json=body)
    assert response.status_code == 400 and response.get_json()["parameter"] == parameter


def test_create_playlist_publishes_and_records_it(chat, db, tmp_path):
    make_library(tmp_path / "music", albums=1, tracks_per_album=2, seconds=1)
    folder = LocalFolder(tmp_path / "music", playlist_dir=tmp_path / "playlists")
    real = [t for album in folder.list_albums() for t in folder.album_tracks(album.album_id)]
    for track in real:
        insert_track(db, item_id=track.item_id, title=track.title, artist=track.artist, vector=np.ones(8))
    ids = [t.item_id for t in real]
    response = chat.post("/chat/api/create_playlist", json={"playlist_name": "Evening jazz", "item_ids": ids})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["message"] == "Successfully created playlist 'Evening jazz_instant' with 2 songs"
    assert (tmp_path / "playlists" / "Evening jazz_instant.m3u8").is_file() and body["playlist_id"]
    row = db.fetch_one("SELECT source FROM playlists WHERE name = 'Evening jazz_instant'")
    assert row["source"] == "chat"
    missing = chat.post("/chat/api/create_playlist", json={"playlist_name": "x", "item_ids": ["nope"]})
    assert missing.status_code == 404 and missing.get_json()["parameter"] == "item_ids"
    assert chat.post("/chat/api/create_playlist", json={"playlist_name": "x"}).get_json()["parameter"] == "item_ids"


def test_create_playlist_with_the_media_server_down_is_a_502(make_config, db, redis):
    app = serve(make_config(MEDIASERVER_TYPE="jellyfin", JELLYFIN_URL="http://127.0.0.1:9", JELLYFIN_USER_ID="u",
                            JELLYFIN_TOKEN="t"))
    try:
        insert_track(db, item_id="a", title="A", artist="B", vector=np.ones(8))
        response = app.test_client().post("/chat/api/create_playlist", json={"playlist_name": "x", "item_ids": ["a"]})
        assert response.status_code == 502 and "media server" in response.get_json()["error"]
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_requests_beyond_the_rate_limit_are_429s(make_config, db, redis):
    app = serve(make_config(CHAT_MAX_REQUESTS_PER_MINUTE=2))
    try:
        client = app.test_client()
        for _ in range(2):
            assert client.post("/chat/api/chatPlaylist", json={"userInput": "jazz"}).status_code == 200
        limited = client.post("/chat/api/chatPlaylist", json={"userInput": "jazz"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_a_request_the_vocabulary_misses_is_read_by_the_text_search_model(chat, make_config, db, redis, tmp_path):
    answer = ask(chat, "tranquil lullabies for a rainy afternoon", ai_provider="none")
    assert answer["message"].endswith("(as the text-search model reads the request).") and answer["understood"]
    assert answer["query_results"] and "random" not in answer["executed_query"]
    app = serve(make_config(TEXT_MODEL_DIR=str(tmp_path / "no-model")))
    try:
        blind = app.test_client().post("/chat/api/chatPlaylist", json={"userInput": "tranquil lullabies"})
        body = blind.get_json()["response"]
        assert blind.status_code == 200 and body["understood"] == [] and body["query_results"] == []
        assert "recognised" in body["message"]
        assert any("text-search model could not read the request" in w for w in body["warnings"])
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_a_request_nothing_in_which_is_recognised_makes_no_playlist(chat):
    for gibberish in ("xqzvbnm flibbertigibbet", "asdkjh qwpoeiru"):
        answer = ask(chat, gibberish, ai_provider="none")
        assert answer["understood"] == [] and answer["query_results"] == [], answer["understood"]  # no invented tags
        assert answer["message"].startswith("Nothing in the request was recognised")
        assert answer["path"] == "fallback" and answer["executed_query"] == ""
    assert ask(chat, "some jazz", ai_provider="none")["query_results"]  # a known word still makes one


def test_calls_to_a_provider_keep_the_configured_delay_between_them():
    now, slept = [100.0], []
    pacer = ProviderPacer(clock=lambda: now[0], sleep=lambda s: slept.append(round(s, 3)))
    pacer.wait("gemini", 2.0)  # the first call goes at once
    now[0] += 0.5
    pacer.wait("gemini", 2.0)  # 1.5 s more to wait
    pacer.wait("mistral", 2.0)  # another provider is not held up
    now[0] += 10
    pacer.wait("gemini", 2.0)
    pacer.wait("ollama", 0.0)
    assert slept == [1.5]
