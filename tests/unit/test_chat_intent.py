"""Reading a playlist request without an LLM (the chat's fallback), the LLM answer's JSON, and the playlist's
post-processing."""

from __future__ import annotations

import pytest

from audio.musicnn import MSD_TAGS
from discovery.chat_intent import extract_intent
from discovery.chat_results import playlist_rows, song_key
from services.chat_prompt import ChatAnswerInvalid, chat_prompt, parse_llm_answer

ARTISTS = ["Miles Davis", "ABBA", "Queen", "Sigur Rós", "Air"]
ALBUMS = ["Kind of Blue", "Arrival"]
TITLES = ["Yesterday", "So What", "Hoppípolla"]


def read(text: str):  # type: ignore[no-untyped-def]
    return extract_intent(text, tags=MSD_TAGS, genres=["Jazz", "Post-Rock"], artists=ARTISTS, albums=ALBUMS,
                          titles=TITLES)


def test_tags_moods_tempo_energy_and_keys_are_read():
    intent = read("Fast energetic heavy metal and hip hop for the gym, in A minor")
    assert intent.tags == ["heavy metal", "Hip-Hop", "metal"]  # longest first; heavy metal is metal too
    assert (intent.min_bpm, intent.max_bpm, intent.energy) == (125.0, None, "high")
    assert (intent.key, intent.scale) == ("A", "minor")
    calm = read("calm melancholic piano, slow, 8A or 9a")
    assert set(calm.moods) == {"relaxed", "sad"} and calm.tags == ["acoustic"] and calm.max_bpm == 95.0
    assert calm.energy == "low" and calm.camelot == ["8A", "9A"]
    assert (read("songs between 90 and 110 bpm").min_bpm, read("songs between 90 and 110 bpm").max_bpm) == (90, 110)
    assert (read("around 120 bpm").min_bpm, read("around 120 bpm").max_bpm) == (114, 126)
    assert read("over 140 bpm").min_bpm == 140 and read("over 140 bpm").max_bpm is None
    assert read("upbeat r&b").tags == ["rnb"] and read("upbeat r&b").moods == ["happy"]


def test_library_names_exclusions_similar_songs_and_counts_are_read():
    intent = read("20 songs of Kind of Blue and Sigur Ros, no ABBA, without queen")
    assert intent.artists == ["Sigur Rós"] and intent.exclude_artists == ["ABBA", "Queen"]
    assert intent.albums == ["Kind of Blue"] and intent.count == 20
    assert read("songs like So What").like_title == "So What"
    assert read("music similar to hoppipolla").like_title == "Hoppípolla"
    assert read("post-rock and jazz").genres == ["Post-Rock", "Jazz"]  # in the order named
    assert read("fresh air").artists == ["Air"] and read("chair music").artists == []  # whole words only
    nothing = read("something nice")
    assert nothing.empty and nothing.describe() == []
    assert read("jazz without Miles Davis").describe() == ["tag jazz", "genre Jazz", "not Miles Davis"]


def test_the_llm_answer_is_read_from_json_a_code_fence_or_after_words():
    plan = parse_llm_answer('Sure!\n```json\n{"message": "Hi", "query": "SELECT 1", "params": [1]}\n```')
    assert (plan.message, plan.query, plan.params) == ("Hi", "SELECT 1", [1])
    assert parse_llm_answer('Here: {"query": "SELECT 2"} enjoy').params == []
    for text, reason in (("no json here", "not JSON"), ('{"message": "x"}', "no query"),
                         ('{"query": "SELECT 1", "params": {"a": 1}}', "not a list"), ("[1, 2]", "not JSON")):
        with pytest.raises(ChatAnswerInvalid, match=reason):
            parse_llm_answer(text)
    prompt = chat_prompt('jazz "now"', tags=MSD_TAGS, max_limit=50, default_limit=20)
    assert "never more than 50" in prompt and '"jazz \\"now\\""' in prompt and "chat_tracks" in prompt


def test_versions_are_one_song_and_artists_are_capped():
    assert song_key("Yesterday (Remastered 2009)", "The Beatles") == song_key("Yesterday - Live", "the beatles")
    rows = [{"item_id": "1", "title": "Song", "artist": "A"}, {"item_id": "2", "title": "Song [Live]", "artist": "A"},
            {"item_id": "3", "title": "Other", "artist": "A"}, {"item_id": "4", "title": "Third", "artist": "A"},
            {"item_id": "5", "title": "Song", "artist": "B"}]
    assert [r["item_id"] for r in playlist_rows(rows, max_per_artist=2, limit=10)] == ["1", "3", "5"]
    assert [r["item_id"] for r in playlist_rows(rows, max_per_artist=0, limit=2)] == ["1", "3"]
