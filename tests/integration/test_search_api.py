"""Hybrid library search through the HTTP API with real PostgreSQL (full-text ranking, pg_trgm where installed), the
real sentence model, the web process's caches; facets, filters, cursors; the seed's similar / mixable shapes."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from app import serve
from audio.musicnn import MODEL_NAME, MSD_TAGS
from db import search_terms
from db.search import as_read_from_real, keyword_hits, trigram_available
from tests.conftest import wait_for
from tests.seeded_library import insert_track
from voyager_manager import rebuild_from_embeddings

LOW = {t: 0.02 for t in MSD_TAGS}
# item id: (title, artist, tags, bpm, camelot, energy, year)
LIBRARY = {
    "t01": ("Midnight Jazz Club", "Blue Quartet", {"jazz": 0.9, "instrumental": 0.5}, 92.0, "8A", 0.55, 1961),
    "t02": ("Smoky Saxophone", "Blue Quartet", {"jazz": 0.8, "blues": 0.4}, 88.0, "9A", 0.50, 1963),
    "t03": ("Warehouse Rave", "Pulse Unit", {"electronic": 0.9, "dance": 0.7}, 128.0, "8A", 0.86, 2012),
    "t04": ("Neon Nights", "Pulse Unit", {"electronic": 0.8, "electro": 0.6}, 126.0, "8B", 0.84, 2015),
    "t05": ("Acid Morning", "Synth Lab", {"electronic": 0.7, "house": 0.6}, 124.0, "7A", 0.80, 2018),
    "t06": ("Thunder Road Riff", "Iron Wheels", {"rock": 0.9, "hard rock": 0.6}, 140.0, "3B", 0.88, 1985),
    "t07": ("Quiet Rain", "Piano Rooms", {"ambient": 0.8, "chillout": 0.6}, 70.0, "5A", 0.45, 2005),
    "t08": ("Jazz Funeral March", "Brass Street", {"jazz": 0.6, "soul": 0.4}, 100.0, "10A", 0.62, 1958),
    "t09": ("Drum Machine Love", "Synth Lab", {"electronic": 0.6, "pop": 0.5}, 118.0, "9A", 0.78, 1984),
    "t10": ("Forest Echo", "Piano Rooms", {"ambient": 0.9, "instrumental": 0.7}, 64.0, "8A", 0.40, 2001),
    "t11": ("Half Time Groove", "Pulse Unit", {"electronic": 0.7, "hip-hop": 0.5}, 64.0, "8B", 0.75, 2019),
    "t12": ("Stadium Anthem", "Iron Wheels", {"rock": 0.8, "80s": 0.5}, 150.0, "4B", 0.90, 1987),
}


def seed_library(db: Any, redis: Any, config: Any) -> None:
    rng = np.random.default_rng(4)
    centres = {"jazz": rng.normal(size=16), "electronic": rng.normal(size=16), "rock": rng.normal(size=16),
               "ambient": rng.normal(size=16)}
    for item_id, (title, artist, tags, bpm, camelot, energy, year) in LIBRARY.items():
        group = next(g for g in centres if g in tags) if any(g in tags for g in centres) else "ambient"
        insert_track(db, item_id=item_id, title=title, artist=artist, bpm=bpm, camelot=camelot, energy=energy,
                     vector=centres[group] + 0.1 * rng.normal(size=16))
        db.execute("UPDATE tracks SET tags = %s, year = %s WHERE item_id = %s",
                   (json.dumps({**LOW, **tags}), year, item_id))
    rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME,
                            channel=config.INDEX_RELOAD_CHANNEL, m=16, ef_construction=100)


@pytest.fixture
def site(make_config, db, redis) -> Any:
    cfg = make_config()
    seed_library(db, redis, cfg)
    app = serve(cfg)
    client = app.test_client()
    wait_for(lambda: client.get("/api/v1/search?q=jazz").status_code == 200, what="the search caches")
    yield client
    app.extensions["audiomuse"].stop_background.set()


def ids(body: dict[str, Any]) -> list[str]:
    return [r["track"]["item_id"] for r in body["results"]]


def test_keyword_ranking_is_postgresql_full_text_and_says_whether_trigrams_are_used(site, db):
    body = site.get("/api/v1/search?q=jazz&semantic=false").get_json()
    assert body["mode"] == "keyword" and body["semantic_available"] is False
    assert body["keyword_engine"] == {"ranking": "PostgreSQL full text (ts_rank_cd)", "trigram": trigram_available(db)}
    # titles (weight A) outrank the tags (weight C): the two jazz titles first, then the jazz-tagged saxophone
    assert ids(body)[:2] == ["t08", "t01"] or ids(body)[:2] == ["t01", "t08"]
    assert set(ids(body)) == {"t01", "t02", "t08"} and ids(body)[2] == "t02"
    assert all(r["match_reasons"] == ["keyword"] and r["semantic_score"] == 0 for r in body["results"])
    assert body["results"][0]["keyword_score"] == 1.0
    # stemming and the artist/album fields
    assert set(ids(site.get("/api/v1/search?q=quartets&semantic=false").get_json())) == {"t01", "t02"}


def test_the_keyword_table_follows_the_tracks(site, db):
    """Keyword search ranks the narrow copy of the documents (track_search, migration 0024) and its words (migration
    0035), kept by triggers: a renamed track, new tags, a track no longer analysed, a deleted one and an emptied
    table are followed."""
    def found(q: str) -> set[str]:
        return {h.item_id for h in keyword_hits(db, q, limit=50, trigram=False)}

    assert found("jazz") == {"t01", "t02", "t08"}
    db.execute("UPDATE tracks SET title = 'Late Jazz' WHERE item_id = 't07'")
    db.execute("UPDATE tracks SET tags = %s WHERE item_id = 't08'", (json.dumps({**LOW, "soul": 0.9}),))
    assert found("jazz") == {"t01", "t02", "t07", "t08"}  # t08 keeps "Jazz" in its title
    assert found("soul") == {"t08"} and found("funeral") == {"t08"}
    db.execute("UPDATE tracks SET analyzed_at = NULL WHERE item_id = 't01'")
    assert found("jazz") == {"t02", "t07", "t08"}
    db.execute("UPDATE tracks SET analyzed_at = now() WHERE item_id = 't01'")
    db.execute("DELETE FROM tracks WHERE item_id = 't02'")
    assert found("jazz") == {"t01", "t07", "t08"}
    counts = db.fetch_one("""SELECT (SELECT count(*) FROM track_search) AS documents,
                                    (SELECT count(*) FROM tracks WHERE analyzed_at IS NOT NULL) AS analysed,
                                    (SELECT count(*) FROM tracks t JOIN track_search s USING (item_id)
                                      WHERE s.search_document IS DISTINCT FROM t.search_document) AS differing""")
    assert counts["documents"] == counts["analysed"] == len(LIBRARY) - 1 and counts["differing"] == 0
    # the rank-ordered word table (migration 0035) holds each word of each document once, with its rank there
    terms = db.fetch_one("""WITH expected AS (SELECT u.lexeme, search_term_rank(u.weights) AS rank, s.item_id
                                                FROM track_search s CROSS JOIN LATERAL unnest(s.search_document) AS u)
                            SELECT (SELECT count(*) FROM track_search_terms) AS terms,
                                   (SELECT count(*) FROM expected) AS expected,
                                   (SELECT count(*) FROM (SELECT * FROM expected EXCEPT ALL
                                                          SELECT lexeme, rank, item_id FROM track_search_terms) AS d)
                                       AS missing""")
    assert terms["terms"] == terms["expected"] > 0 and terms["missing"] == 0, terms
    db.execute("TRUNCATE tracks CASCADE")
    assert db.fetch_one("SELECT count(*) AS n FROM track_search_terms")["n"] == 0


def test_trigram_fuzzy_names_where_pg_trgm_is_installed(site, db):
    body = site.get("/api/v1/search?q=warehose%20rave&semantic=false").get_json()  # a typo
    if trigram_available(db):
        assert ids(body)[0] == "t03" and body["keyword_engine"]["trigram"] is True
    else:  # full text only: "rave" still matches, the misspelt word does not
        assert ids(body) == ["t03"] and body["keyword_engine"]["trigram"] is False


def test_hybrid_adds_songs_that_sound_like_the_words(site):
    body = site.get("/api/v1/search?q=relaxing%20ambient%20piano&keyword_weight=0.7").get_json()
    assert body["mode"] == "hybrid" and body["semantic_available"] is True and body["semantic_engine"] == "concepts"
    assert body["semanticWeight"] == pytest.approx(0.3)
    top = ids(body)[:2]
    assert set(top) == {"t07", "t10"}, ids(body)
    both = [r for r in body["results"] if r["track"]["item_id"] in top]
    assert all("semantic" in r["match_reasons"] for r in both)
    semantic_only = site.post("/api/v1/search/semantic", json={"query": "calm ambient music", "mode": "semantic"})
    assert semantic_only.status_code == 200
    assert set(ids(semantic_only.get_json())[:2]) == {"t07", "t10"}


def test_facets_and_filters(site):
    body = site.get("/api/v1/search?q=electronic&semantic=false").get_json()
    assert set(ids(body)) == {"t03", "t04", "t05", "t09", "t11"} and body["totalMatches"] == 5
    facets = body["facets"]
    assert {b["range"]: b["count"] for b in facets["bpm"]} == {"60-90": 1, "90-120": 1, "120-150": 3, "150+": 0}
    camelot = {c["key"]: c["count"] for c in facets["camelot"]}
    assert (camelot["8A"], camelot["8B"], camelot["7A"], camelot["9A"]) == (1, 2, 1, 1) and len(camelot) == 24
    assert facets["tags"][0] == {"tag": "electronic", "count": 5}
    assert {e["level"]: e["count"] for e in facets["energy"]} == {"high": 3, "medium": 1, "low": 1}

    narrowed = site.get("/api/v1/search?q=electronic&semantic=false&bpmMin=120&bpmMax=130&keyCamelot=8A,8B").get_json()
    assert set(ids(narrowed)) == {"t03", "t04"} and narrowed["filters"] == {"bpmMin": "120.0", "bpmMax": "130.0",
                                                                              "keyCamelot": "8A,8B"}
    assert set(ids(site.get("/api/v1/search?q=electronic&semantic=false&energy=high").get_json())) == {
        "t03", "t04", "t05"}
    # mixable with Warehouse Rave (8A, 128 BPM): compatible keys, tempo within ±3 BPM or at half/double time
    mix = site.get("/api/v1/search?mixableWith=t03").get_json()
    assert set(ids(mix)) == {"t04", "t10", "t11"}, ids(mix)  # not t05: 7A but 124 BPM, 4 off
    browse = site.post("/api/v1/search/semantic", json={"mode": "keyword", "filters": {
        "yearMin": 1950, "yearMax": 1970, "tag": "jazz"}}).get_json()
    assert set(ids(browse)) == {"t01", "t02", "t08"} and browse["results"][0]["match_reasons"] == ["filter"]


@pytest.mark.parametrize("query, parameter", [
    ("q=jazz&bpmMin=fast", "bpmMin"), ("q=jazz&keyCamelot=13A", "keyCamelot"), ("q=jazz&energy=extreme", "energy"),
    ("q=jazz&bpmMin=130&bpmMax=120", "bpmMin"), ("q=jazz&yearMin=99999", "yearMin"),
    ("q=jazz&keyword_weight=0.7&semantic_weight=0.5", "keyword_weight"), ("q=jazz&fusion=magic", "fusion"),
    ("q=jazz&semantic=perhaps", "semantic"), ("q=jazz&limit=0", "limit"), ("q=jazz&cursor=garbage", "cursor"),
    ("q=jazz&durationMin=-4", "durationMin")])
def test_invalid_values_are_400s_naming_the_parameter(site, query, parameter):
    response = site.get(f"/api/v1/search?{query}")
    assert response.status_code == 400 and response.get_json()["parameter"] == parameter, response.get_json()


def test_weights_must_sum_to_one_in_the_post_form_too(site):
    response = site.post("/api/v1/search/semantic", json={"query": "jazz", "semanticWeight": 0.3,
                                                           "keywordWeight": 0.3})
    assert response.status_code == 400 and response.get_json()["parameter"] == "keywordWeight"
    assert site.post("/api/v1/search/semantic", json={"query": "jazz", "mode": "fuzzy"}).status_code == 400
    unknown = site.get("/api/v1/search?mixableWith=nope")
    assert unknown.status_code == 404 and unknown.get_json()["parameter"] == "mixableWith"


@pytest.mark.parametrize("fusion", ["weighted", "rrf"])
def test_cursor_pages_are_stable_without_duplicates_or_gaps(site, fusion):
    whole = site.get(f"/api/v1/search?q=music%20songs%20electronic%20jazz&limit=200&fusion={fusion}").get_json()
    assert whole["totalMatches"] == len(whole["results"]) >= 8 and whole["nextCursor"] is None
    assert whole["fusion"] == fusion
    paged, cursor = [], None
    while True:
        url = f"/api/v1/search?q=music%20songs%20electronic%20jazz&limit=3&fusion={fusion}"
        body = site.get(url + (f"&cursor={cursor}" if cursor else "")).get_json()
        paged += ids(body)
        cursor = body["nextCursor"]
        assert body["totalMatches"] == whole["totalMatches"]
        if cursor is None:
            break
    assert paged == ids(whole) and len(set(paged)) == len(paged)
    first_page = site.get(f"/api/v1/search?q=music%20songs%20electronic%20jazz&limit=3&fusion={fusion}").get_json()
    other = site.get(f"/api/v1/search?q=jazz&cursor={first_page['nextCursor']}")  # a cursor of another query
    assert other.status_code == 400 and "another query" in other.get_json()["error"]


def test_keyword_results_still_come_when_the_semantic_engine_fails(make_config, db, redis, tmp_path):
    cfg = make_config(TEXT_MODEL_DIR=str(tmp_path / "nowhere"))
    seed_library(db, redis, cfg)
    app = serve(cfg)
    try:
        client = app.test_client()
        body = wait_for(lambda: (r := client.get("/api/v1/search?q=jazz")).status_code == 200 and r.get_json(),
                        what="the search caches")
        assert body["semantic_available"] is False and "fetch_text_model" in body["semantic_reason"]
        assert set(ids(body)) == {"t01", "t02", "t08"}
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_track_routes_in_the_seed_shape(site):
    similar = site.get("/api/v1/tracks/t03/similar?n=3").get_json()
    assert similar["sourceTrack"]["item_id"] == "t03" and similar["totalMatches"] == len(similar["similar"]) == 3
    first = similar["similar"][0]
    assert set(first) == {"track", "similarity", "bpmDiff", "keyCompatible", "matchReasons"}
    assert 0 <= first["similarity"] <= 1 and first["matchReasons"][0] == "semantic"
    assert all(s["track"]["item_id"] != "t03" for s in similar["similar"])
    others = site.get("/api/v1/tracks/t03/similar?n=5&scope=other_artists").get_json()
    assert all(s["track"]["author"] != "Pulse Unit" for s in others["similar"])
    mix = site.get("/api/v1/tracks/t03/mixable?mode=harmonic&n=5").get_json()
    assert mix["mode"] == "harmonic" and all(set(s["matchReasons"]) <= {"semantic", "bpm", "key"}
                                             for s in mix["similar"])
    assert any(s["keyCompatible"] for s in mix["similar"])
    assert site.get("/api/v1/tracks/nope/similar").status_code == 404
    assert site.get("/api/v1/tracks/t03/similar?scope=world").get_json()["parameter"] == "scope"


def test_a_facet_groups_counts_leave_out_its_own_filter(site):
    # a picked key leaves the other keys counted: choosing 8B as well adds exactly the 8B count
    picked = site.get("/api/v1/search?q=electronic&semantic=false&keyCamelot=8A").get_json()
    assert ids(picked) == ["t03"]
    camelot = {c["key"]: c["count"] for c in picked["facets"]["camelot"]}
    assert (camelot["8A"], camelot["8B"], camelot["7A"], camelot["9A"]) == (1, 2, 1, 1)
    both = site.get("/api/v1/search?q=electronic&semantic=false&keyCamelot=8A,8B").get_json()
    assert both["totalMatches"] == camelot["8A"] + camelot["8B"] == 3
    # the other groups count under the key filter
    assert {b["range"]: b["count"] for b in picked["facets"]["bpm"]} == {"60-90": 0, "90-120": 0, "120-150": 1,
                                                                          "150+": 0}
    # a picked tempo range: the other ranges still say what choosing them gives
    tempo = site.get("/api/v1/search?q=electronic&semantic=false&bpmMin=120&bpmMax=150").get_json()
    ranges = {b["range"]: b["count"] for b in tempo["facets"]["bpm"]}
    assert ranges == {"60-90": 1, "90-120": 1, "120-150": 3, "150+": 0}
    other = site.get("/api/v1/search?q=electronic&semantic=false&bpmMin=90&bpmMax=120").get_json()
    assert other["totalMatches"] == ranges["90-120"]
    # browsing by filters only: the whole library's keys under no other filter
    browse = site.get("/api/v1/search?keyCamelot=8A").get_json()
    keys = {c["key"]: c["count"] for c in browse["facets"]["camelot"]}
    assert (browse["totalMatches"], keys["8A"], keys["9A"], keys["8B"]) == (3, 3, 2, 2)


def test_words_the_engine_does_not_understand_find_no_song_that_sounds_like_them(site):
    body = site.get("/api/v1/search?q=xqzvbnm%20flibbertigibbet").get_json()
    assert body["totalMatches"] == 0 and body["results"] == [] and body["understood"] is False
    assert "names nothing the analysis knows" in body["message"]
    # the keyword side still answers: a title word beside the gibberish
    mixed = site.get("/api/v1/search?q=thunder%20xqzvbnm&semantic_weight=0.5").get_json()
    assert ids(mixed)[0] == "t06" and all(r["match_reasons"] == ["keyword"] for r in mixed["results"]), ids(mixed)
    assert mixed["understood"] is False
    heavy = site.get("/api/v1/search?q=heavy%20guitars&semantic_weight=1").get_json()
    assert heavy["understood"] is True and "message" not in heavy
    assert {"t06", "t12"} & set(ids(heavy)[:10]), ids(heavy)  # the rock songs


def test_the_keyword_rank_is_ts_rank_cd_of_the_whole_or_query(db):
    """keyword_hits sums each word's ts_rank_cd (db/search.py): the same order and scores as ts_rank_cd of the
    OR-query, which it replaced for speed, over documents where words repeat across the title, artist, album, tags
    and genres; with pg_trgm (where installed) plus half the name similarity where the name is a match."""
    words = _library_of_repeated_words(db)
    trigram = trigram_available(db)
    for query in ["jazz", "smooth jazz", "blue night dance", "dance dance club", "electronic rain jazz smooth",
                  "the", "zzqx", " ".join(words + ["ambient", "blues"])]:  # the last: past SUMMED_WORDS
        or_query = db.fetch_one("SELECT replace(plainto_tsquery('english', %s)::text, '&', '|') AS q", (query,))["q"]
        expected = [(r["item_id"], round(float(r["rank"]), 6)) for r in db.fetch_all(
            """SELECT item_id, ts_rank_cd(search_document, %(q)s::tsquery, 32) AS rank FROM track_search
                WHERE search_document @@ %(q)s::tsquery ORDER BY rank DESC, item_id LIMIT 40""", {"q": or_query})] \
            if or_query else []
        got = keyword_hits(db, query, limit=40, trigram=False)
        assert [(h.item_id, h.score) for h in got] == expected, query
        if query in ("jazz", "zzqx"):
            assert (len(expected) > 40 // 2) == (query == "jazz")  # many matches, and none
        if trigram and or_query:
            with db.transaction() as cur:
                cur.execute("SET LOCAL pg_trgm.word_similarity_threshold = 0.45")
                cur.execute("""SELECT item_id, f, w FROM (
                                   SELECT item_id, ts_rank_cd(search_document, %(q)s::tsquery, 32) AS f,
                                          CASE WHEN %(raw)s <%% lower(title || ' ' || artist)
                                               THEN word_similarity(%(raw)s, lower(title || ' ' || artist)) ELSE 0
                                          END AS w
                                     FROM tracks WHERE analyzed_at IS NOT NULL AND (search_document @@ %(q)s::tsquery
                                           OR %(raw)s <%% lower(title || ' ' || artist))) AS m
                                ORDER BY f + 0.5 * w DESC, item_id LIMIT 40""", {"q": or_query, "raw": query})
                with_names = [(r["item_id"], round(float(r["f"]) + 0.5 * float(r["w"]), 6)) for r in cur.fetchall()]
            assert [(h.item_id, h.score) for h in keyword_hits(db, query, limit=40, trigram=True)] == with_names, query


def _library_of_repeated_words(db: Any) -> list[str]:
    """150 analysed tracks whose titles, artists, albums, tags and genres repeat a few words; the words."""
    rng = np.random.default_rng(12)
    words = ["jazz", "night", "dance", "blue", "rain", "electronic", "smooth", "club"]
    tag_names = ["jazz", "smooth jazz", "dance", "electronic", "ambient", "blues"]
    for i in range(150):
        title = " ".join(rng.choice(words, size=rng.integers(1, 4)))
        artist = " ".join(rng.choice(words, size=rng.integers(1, 3)))
        insert_track(db, item_id=f"k{i:03d}", title=title.title(), artist=artist.title(), vector=rng.normal(size=8))
        tags = {str(t): round(float(rng.uniform(0.05, 0.95)), 2) for t in rng.choice(tag_names, size=3, replace=False)}
        genres = list(rng.choice(["Jazz", "Dance", "Club Jazz", "Rock"], size=rng.integers(0, 3), replace=False))
        db.execute("UPDATE tracks SET tags = %s, genres = %s, album = %s WHERE item_id = %s",
                   (json.dumps(tags), genres, str(rng.choice(["Blue Night", "Dance Club", "Rain"])), f"k{i:03d}"))
    return words


def test_the_word_table_reads_classes_of_rank_as_adding_up_every_list_would(db, monkeypatch):
    """db/search_terms.py reads the best documents class by class (a value per word) and stops when the page is
    full; adding up every list of the words (its fallback past MAX_CLASSES) gives the same page, ties included."""
    _library_of_repeated_words(db)
    added_up_sql = search_terms._ADDED_UP
    for query in [["jazz", "night"], ["club", "smooth"], ["ambient", "blue", "night"], ["night", "zzqx"],
                  ["ambient", "blue"]]:  # 103, 149, 175, 7 and 21 classes in this library
        for limit in (1, 7, 40, 500):
            added_up = [(r["item_id"], float(r["rank"])) for r in db.fetch_all(added_up_sql, (query, limit))]
            with monkeypatch.context() as patched:  # the classes are read, not the fallback
                patched.setattr(search_terms, "_ADDED_UP", "SELECT 'the fallback was used'")
                assert search_terms.best_by_words(db, query, limit) == added_up, (query, limit)
            assert len(added_up) == limit or limit == 500, (query, limit)


def test_keyword_scores_read_as_postgresql_sends_its_reals(db):
    """The word table's scores are computed in Python; they equal the reals PostgreSQL computes and sends (the
    trigram path's), ranks of a title word repeated many times included."""
    rows = db.fetch_all("SELECT g / 10.0 AS rank, ((g / 10.0)::float8 / ((g / 10.0)::float8 + 1))::real AS score"
                        " FROM generate_series(1, 3000) AS g")
    assert [as_read_from_real(float(r["rank"]) / (float(r["rank"]) + 1)) for r in rows] == \
        [float(r["score"]) for r in rows]
