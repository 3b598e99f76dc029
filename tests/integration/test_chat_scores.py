"""The chat fallback's narrow score table (migration 0028): the fallback finds its best rows there first, and its
playlists are exactly those of ranking the whole chat view — with ties, missing tags, unknown energy or tempo, a
blocklist — while the trigger keeps the table in step with the tracks. Real PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from audio.musicnn import MSD_TAGS
from services import chat as chat_service
from services.chat import AiCallLog, ChatContext, ChatRequest, ProviderPacer, chat_playlist
from tests.seeded_library import insert_track

TAGS = ("jazz", "rock", "chill", "ambient", "instrumental", "Mellow", "sad", "happy", "party", "electronic")
PROMPTS = ("relaxing jazz", "sad songs", "fast energetic rock", "slow ambient music", "happy party music",
           "calm instrumental music for a rainy evening", "electronic music between 100 and 120 bpm",
           "jazz faster than 175 bpm")


def _seed(db, n: int = 400) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    for i in range(n):
        tied = i % 4 == 0  # a hundred tracks with the same high tags and moods: ties across the first rows
        tags = {t: 0.85 if tied else round(float(rng.uniform(0, 0.8)), 4) for t in TAGS if tied or rng.random() > 0.2}
        moods = {m: 0.9 if tied else round(float(rng.uniform(0, 0.9)), 3)
                 for m in ("danceable", "aggressive", "happy", "party", "relaxed", "sad")}
        insert_track(db, item_id=f"t{i:03d}", title=f"Song {999 - i:03d}", artist=f"Artist {i % 53}",
                     vector=rng.normal(size=8), bpm=float(rng.uniform(60, 190)), energy=float(rng.uniform(0, 1)))
        db.execute("UPDATE tracks SET tags = %s, moods = %s, energy = CASE WHEN %s THEN NULL ELSE energy END, "
                   "tempo_bpm = CASE WHEN %s THEN NULL ELSE tempo_bpm END WHERE item_id = %s",
                   (json.dumps(tags), json.dumps(moods), i % 17 == 0, i % 19 == 0, f"t{i:03d}"))


@pytest.fixture
def context(make_config, db):  # type: ignore[no-untyped-def]
    _seed(db)
    config = make_config(AI_MODEL_PROVIDER="none", ALCHEMY_MAX_N_RESULTS=100, CHAT_DEFAULT_N_RESULTS=25,
                         MAX_SONGS_PER_ARTIST=25)
    return ChatContext(config=config, db=db, role=None, calls=AiCallLog(), pacer=ProviderPacer())


def _answer(ctx: ChatContext, text: str) -> dict[str, Any]:
    return dict(chat_playlist(ctx, ChatRequest(text))["response"])


def test_the_score_table_holds_the_analysis_tags_in_order(db):
    rows = db.fetch_all("SELECT tag FROM chat_score_tags ORDER BY position")
    assert tuple(r["tag"] for r in rows) == MSD_TAGS


@pytest.mark.parametrize("blocked", [False, True])
def test_the_fallback_through_the_score_table_gives_the_whole_view_s_playlists(context, monkeypatch, blocked):
    if blocked:
        context.allowed = lambda item_id: int(item_id[1:]) % 5 == 0
    through_table = {text: _answer(context, text) for text in PROMPTS}
    monkeypatch.setattr(chat_service, "_best_candidates", lambda *args: None)
    whole_view = {text: _answer(context, text) for text in PROMPTS}
    for text in PROMPTS:
        ids = [r["item_id"] for r in through_table[text]["query_results"]]
        assert ids == [r["item_id"] for r in whole_view[text]["query_results"]], text
        assert ids and "item_id IN" in through_table[text]["executed_query"], text  # the table was used
        assert "item_id IN" not in whole_view[text]["executed_query"]
        if blocked:
            assert all(int(i[1:]) % 5 == 0 for i in ids)



def test_tied_scores_go_by_item_id_so_the_table_is_read_once(context, monkeypatch):
    reads: list[int] = []
    read = chat_service.chat_queries.fallback_candidates

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(kwargs["count"])
        return read(*args, **kwargs)

    monkeypatch.setattr(chat_service.chat_queries, "fallback_candidates", counted)
    # a hundred tracks share the best jazz score: the cut falls among them
    ids = [r["item_id"] for r in _answer(context, "jazz")["query_results"]]
    assert reads == [75] and ids == sorted(ids)[:len(ids)] and ids[0] == "t000"


@pytest.mark.parametrize("blocked", [False, True])
def test_a_tempo_only_request_draws_its_songs_from_the_score_table(context, db, blocked):
    if blocked:
        context.allowed = lambda item_id: int(item_id[1:]) % 3 == 0
    answer = _answer(context, "songs between 100 and 120 bpm")
    ids = [r["item_id"] for r in answer["query_results"]]
    assert "item_id IN" in answer["executed_query"] and "random()" in answer["executed_query"]
    in_range = {r["item_id"] for r in db.fetch_all(
        "SELECT item_id FROM chat_tracks WHERE tempo_bpm BETWEEN 100 AND 120")}
    assert len(ids) == min(25, len([i for i in in_range if not blocked or int(i[1:]) % 3 == 0]))
    assert set(ids) <= in_range and len(set(ids)) == len(ids)
    if blocked:
        assert all(int(i[1:]) % 3 == 0 for i in ids)

def test_the_trigger_keeps_the_score_table_in_step(db):
    insert_track(db, item_id="k1", title="Kept", artist="Someone", vector=np.ones(8))
    db.execute("""UPDATE tracks SET tags = '{"jazz": 0.25, "rock": 0.5}', moods = '{"relaxed": 0.75}'
                  WHERE item_id = 'k1'""")
    row = db.fetch_one("SELECT tags, relaxed, energy, tempo_bpm FROM chat_scores WHERE item_id = 'k1'")
    assert row["tags"][MSD_TAGS.index("jazz")] == 0.25 and row["tags"][MSD_TAGS.index("rock")] == 0.5
    assert row["tags"][MSD_TAGS.index("pop")] is None and row["relaxed"] == 0.75
    assert (row["energy"], row["tempo_bpm"]) == (0.5, 120.0)
    db.execute("UPDATE tracks SET analyzed_at = NULL WHERE item_id = 'k1'")
    assert db.fetch_one("SELECT count(*) AS n FROM chat_scores WHERE item_id = 'k1'")["n"] == 0
    db.execute("UPDATE tracks SET analyzed_at = now(), tempo_bpm = 99 WHERE item_id = 'k1'")
    assert db.fetch_one("SELECT tempo_bpm FROM chat_scores WHERE item_id = 'k1'")["tempo_bpm"] == 99.0
    db.execute("DELETE FROM tracks WHERE item_id = 'k1'")
    assert db.fetch_one("SELECT count(*) AS n FROM chat_scores")["n"] == 0


def test_songs_like_one_the_index_cannot_answer_for_are_ranked_by_the_rest_of_the_request(context):
    context.similar = lambda item_id, n: []  # the seed is not indexed yet
    answer = _answer(context, "jazz songs like Song 998")
    assert answer["query_results"] and "no similar songs could be found for song 998" in " ".join(
        answer.get("warnings", [])).lower()
