"""The instant-playlist page in headless Chromium: ask (the LLM, a local server speaking Ollama's API, writes the
query), see the songs and the executed query, create the playlist; with the LLM down the fallback's playlist and
its reason are shown."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.conftest import OUTPUT_DIR
from tests.fakes.llm import FakeLLM
from tests.seeded_library import seed_groups

pytestmark = pytest.mark.browser


def test_ask_see_the_query_and_create_the_playlist(start_site, config, db, redis, page, tmp_path):
    tracks = seed_groups(db, redis, config, tmp_path / "music")  # top tag rock, electronic or jazz by i % 3
    with FakeLLM() as llm:
        llm.answer = json.dumps({"message": "Jazz, and nothing but", "params": [0.5],
                                 "query": "SELECT item_id, title FROM chat_tracks WHERE (tags->>'jazz')::float > $1 "
                                          "ORDER BY title LIMIT 5"})
        base = start_site(AI_MODEL_PROVIDER="ollama", OLLAMA_SERVER_URL=llm.url, MAX_SONGS_PER_ARTIST=10)
        page.goto(base + "/chat")
        expect(page.locator("#chat-provider")).to_have_value("ollama")
        expect(page.locator("#role-status")).to_contain_text("read-only")
        page.locator("#chat-input").fill("some jazz for the evening")
        page.locator("#chat-go").focus()
        page.keyboard.press("Enter")  # the form works from the keyboard
        expect(page.locator("#chat-message")).to_have_text("Jazz, and nothing but")
        expect(page.locator("#chat-rows tr")).to_have_count(5)
        jazz = {t.item_id for i, t in enumerate(tracks) if i % 3 == 2}
        shown = page.locator("#chat-rows tr").evaluate_all("(rows) => rows.map((r) => r.dataset.itemId)")
        assert set(shown) <= jazz
        expect(page.locator("#chat-path")).to_contain_text("Written by OLLAMA")
        page.locator("#chat-query-box summary").click()
        expect(page.locator("#chat-query")).to_contain_text("FROM chat_tracks")
        expect(page.locator("#chat-params")).to_have_text("[0.5]")
        page.locator("#ai-log-box summary").click()
        expect(page.locator("#ai-log tr").first).to_contain_text("5 songs")
        page.locator("#chat-playlist-name").fill("Jazz evening")
        page.locator("#chat-create").click()
        expect(page.locator("#chat-playlist-status")).to_have_text(
            "Successfully created playlist 'Jazz evening_instant' with 5 songs")
        assert (tmp_path / "playlists" / "Jazz evening_instant.m3u8").is_file()
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT_DIR / "chat-page.png"), full_page=True)


def test_with_the_llm_down_the_fallback_playlist_and_its_reason_are_shown(start_site, config, db, redis, page,
                                                                          tmp_path):
    seed_groups(db, redis, config, tmp_path / "music")
    base = start_site(AI_MODEL_PROVIDER="ollama", OLLAMA_SERVER_URL="http://127.0.0.1:9", MAX_SONGS_PER_ARTIST=10)
    page.goto(base + "/chat")
    page.locator("#chat-input").fill("rock")
    page.locator("#chat-go").click()
    expect(page.locator("#chat-warnings")).to_contain_text("could not be asked")
    expect(page.locator("#chat-path")).to_contain_text("Made without the LLM; understood: tag rock")
    expect(page.locator("#chat-rows tr").first).to_be_visible()
    page.locator("#chat-input").fill("")
    page.locator("#chat-go").click()
    expect(page.locator("#chat-message")).to_have_text("Type a request first.")
