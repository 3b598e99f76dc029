"""Text search through the HTTP API with the real sentence model, PostgreSQL, Redis and the web process's caches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app import serve
from audio.musicnn import MODEL_NAME, MSD_TAGS
from services.text_search import TextModel, concept_engine_loader
from tests.conftest import wait_for
from tests.seeded_library import insert_track
from voyager_manager import rebuild_from_embeddings

LOW = {t: 0.05 for t in MSD_TAGS}


def seed(db: Any, redis: Any, config: Any, tracks: dict[str, dict[str, float]],
         albums: dict[str, str] | None = None) -> None:
    """Tracks named by item id with their tag scores (the rest low) and album names when given, indexed."""
    rng = np.random.default_rng(0)
    for n, (item_id, tags) in enumerate(tracks.items()):
        insert_track(db, item_id=item_id, title=f"Title {item_id}", artist=f"Artist {n}",
                     vector=rng.normal(size=16), energy=0.2 + 0.6 * (n % 2))
        db.execute("UPDATE tracks SET tags = %s WHERE item_id = %s", (json.dumps({**LOW, **tags}), item_id))
    for item_id, album in (albums or {}).items():
        db.execute("UPDATE tracks SET album = %s WHERE item_id = %s", (album, item_id))
    rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME,
                            channel=config.INDEX_RELOAD_CHANNEL, m=16, ef_construction=100)


def library() -> dict[str, dict[str, float]]:
    tracks = {f"plain{i}": {} for i in range(12)}
    tracks.update({"drone": {"ambient": 0.8}, "pads": {"ambient": 0.6, "chillout": 0.4},
                   "thrash": {"metal": 0.7, "heavy metal": 0.6}, "swing": {"jazz": 0.9}})
    return tracks


def ask(client: Any, query: Any, **extra: Any) -> Any:
    return client.post("/api/clap/search", json={"query": query, **extra})


def test_a_query_in_words_finds_the_tracks_that_sound_like_it(app, client, config, db, redis):
    seed(db, redis, config, library())
    body = wait_for(lambda: (r := ask(client, "dark ambient", limit=5)).status_code == 200 and r.get_json()["count"]
                    and r.get_json(), what="text search over the library")
    # only the two tracks with more ambient than the rest match: the others have none of what the query means
    assert [r["item_id"] for r in body["results"]] == ["drone", "pads"]
    assert body["count"] == 2 and body["engine"] == "concepts" and body["query"] == "dark ambient"
    first = body["results"][0]
    assert set(first) >= {"item_id", "title", "author", "album", "similarity", "matched"}
    assert first["title"] == "Title drone" and first["matched"][0]["concept"] == "ambient"
    assert 0 < first["similarity"] <= 1 and body["results"][1]["similarity"] <= first["similarity"]
    assert ask(client, "heavy metal").get_json()["results"][0]["item_id"] == "thrash"
    assert ask(client, "smooth jazz").get_json()["results"][0]["item_id"] == "swing"
    many = ask(client, "energetic music").get_json()  # energy differs across the library (0.2 / 0.8)
    assert many["count"] == 8 and many["results"][0]["matched"][0]["concept"] == "energetic"
    assert ask(client, "energetic music", limit=3).get_json()["count"] == 3

    semantic = client.get("/search/semantic?q=dark%20ambient&limit=2").get_json()
    assert semantic["available"] is True and [r["item_id"] for r in semantic["results"]] == ["drone", "pads"]


@pytest.mark.parametrize(("payload", "parameter"), [
    ({"query": "ab"}, "query"), ({"query": "x" * 201}, "query"), ({"query": 42}, "query"), ({}, "query"),
    ({"query": "calm piano", "limit": 0}, "limit"), ({"query": "calm piano", "limit": 501}, "limit"),
    ({"query": "calm piano", "limit": "many"}, "limit"), ({"query": "calm piano", "limit": True}, "limit"),
])
def test_bad_queries_and_limits_are_400s_naming_them(client, payload, parameter):
    response = client.post("/api/clap/search", json=payload)
    assert response.status_code == 400 and response.get_json()["parameter"] == parameter


def test_an_empty_library_answers_with_no_results_and_a_message(client):
    body = wait_for(lambda: (r := ask(client, "calm piano")).status_code == 200 and r.get_json(),
                    what="the text-search cache")
    assert body["results"] == [] and body["count"] == 0 and "analysis" in body["message"]


def test_without_the_model_search_says_so_and_semantic_search_is_unavailable_not_an_error(
        make_config, db, redis, tmp_path):
    cfg = make_config(TEXT_MODEL_DIR=str(tmp_path / "nowhere"))
    seed(db, redis, cfg, library())
    app = serve(cfg)
    try:
        client = app.test_client()
        response = wait_for(lambda: "being prepared" not in (r := ask(client, "dark ambient")).get_data(as_text=True)
                            and r, what="an answer once the cache is built")
        assert response.status_code == 503 and "fetch_text_model.py" in response.get_json()["error"]
        semantic = client.get("/search/semantic?q=dark%20ambient").get_json()
        assert semantic["available"] is False and semantic["results"] == [] and "fetch_text_model" in semantic[
            "reason"]
        assert client.post("/api/clap/warmup").status_code == 503
        assert client.get("/api/clap/warmup/status").get_json()["active"] is False
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_new_tracks_are_searchable_after_the_index_reload_without_a_restart(app, client, config, db, redis):
    seed(db, redis, config, library())
    wait_for(lambda: ask(client, "jazz").get_json().get("count") == 1, what="the first library")
    seed(db, redis, config, {"bebop": {"jazz": 0.95}})
    body = wait_for(lambda: (b := ask(client, "jazz").get_json()).get("count") == 2 and b, what="the new track")
    assert [r["item_id"] for r in body["results"]] == ["bebop", "swing"]
    stats = client.get("/api/clap/stats").get_json()
    assert stats["songs"] == 17 and stats["memory_bytes"] > 0 and stats["model_loaded"] is True
    assert client.post("/api/clap/cache/refresh").get_json()["songs"] == 17


def test_warmup_keeps_the_model_for_the_configured_time(client, config):
    body = client.post("/api/clap/warmup").get_json()
    assert body["active"] is True and config.CLAP_TEXT_SEARCH_WARMUP_DURATION - 2 <= body["seconds_remaining"] <= \
        config.CLAP_TEXT_SEARCH_WARMUP_DURATION
    status = client.get("/api/clap/warmup/status").get_json()
    assert status["active"] is True and status["model"] == "all-MiniLM-L6-v2"


def test_the_model_is_unloaded_after_it_is_idle_and_repeated_queries_are_not_embedded_again(config):
    now = [1000.0]
    model = TextModel(concept_engine_loader(Path(config.TEXT_MODEL_DIR)), name="all-MiniLM-L6-v2", idle_seconds=60,
                      query_cache=2, clock=lambda: now[0])
    engine, first = model.embed("Calm  Piano")
    assert model.loaded and model.seconds_remaining() == 60
    engine.encode = None  # type: ignore[assignment]  # any new embedding would fail now
    _, again = model.embed("calm piano")  # same words, case and spaces aside: from the cache
    np.testing.assert_array_equal(first, again)
    now[0] += 59
    assert model.unload_if_idle() is False and model.seconds_remaining() == 1
    now[0] += 1
    assert model.unload_if_idle() is True and not model.loaded and model.seconds_remaining() == 0


def test_keyword_search_matches_titles_artists_albums_then_named_tags(app, client, config, db, redis):
    seed(db, redis, config, library(), albums={"plain3": "Jazz Nights"})
    # while the cache is prepared PostgreSQL answers, after it the catalogue in memory: the same answer
    titles = client.get("/api/search/keyword?q=SWÏNG").get_json()  # case and accents ignored
    assert [(r["item_id"], r["matched"]) for r in titles["results"]] == [("swing", "title")]
    wait_for(lambda: client.get("/api/clap/stats").get_json()["songs"] == 16, what="the text-search cache")
    titles = client.get("/api/search/keyword?q=SWÏNG").get_json()
    assert [(r["item_id"], r["matched"]) for r in titles["results"]] == [("swing", "title")]
    jazz = client.get("/api/search/keyword?q=jazz").get_json()
    assert [(r["item_id"], r["matched"]) for r in jazz["results"]][:2] == [("plain3", "album"), ("swing", "tag: jazz")]
    assert client.get("/api/search/keyword?q=Artist%201&limit=1").get_json()["count"] == 1
    bad = client.get("/api/search/keyword?q=j")
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "q"


def test_a_query_the_engine_does_not_understand_says_so(app, client, config, db, redis):
    tracks = library()
    tracks.update({"riffs": {"rock": 0.8, "hard rock": 0.6}})
    seed(db, redis, config, tracks)
    wait_for(lambda: ask(client, "dark ambient").get_json().get("count"), what="text search over the library")
    for gibberish in ("xqzvbnm flibbertigibbet", "asdkjh qwpoeiru"):
        response = ask(client, gibberish, limit=100)
        body = response.get_json()
        assert response.status_code == 200 and body["results"] == [] and body["count"] == 0, body["count"]
        assert body["understood"] is False and "names nothing the analysis knows" in body["message"]
        assert body["engine"] == "concepts" and body["concepts"] == {}
        semantic = client.get(f"/search/semantic?q={gibberish}").get_json()
        assert semantic["results"] == [] and "names nothing" in semantic["message"]
    understood = ask(client, "dark ambient").get_json()
    assert understood["understood"] is True and "message" not in understood
    top = [r["item_id"] for r in ask(client, "heavy guitars", limit=10).get_json()["results"]]
    assert top[0] == "riffs", top  # the rock song first: heavy guitars are hard rock, not acoustic
