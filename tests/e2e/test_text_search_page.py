"""The text search page in headless Chromium: keyword then semantic results as you type, suggestions, the engine
status, a playlist named after the query, and the error paths (no model, nothing analyzed, media source down)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import OUTPUT_DIR
from tests.seeded_library import seed_groups

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    yield context.new_page()
    context.close()


def sources(page: Page) -> list[str]:
    return page.locator("#search-rows tr").evaluate_all("(rows) => rows.map((r) => r.dataset.source)")


def test_typing_shows_keyword_then_semantic_results_and_makes_a_playlist(start_site, config, db, redis, page,
                                                                         tmp_path):
    tracks = seed_groups(db, redis, config, tmp_path / "music")  # top tag rock, electronic or jazz by i % 3
    # the rock songs have some guitar, though not among their three highest tags (so no keyword match for it)
    db.execute("""UPDATE tracks SET tags = tags || '{"guitar": 0.15, "pop": 0.3, "indie": 0.25}'
                   WHERE tags ? 'rock'""")
    base = start_site()
    page.goto(base + "/text_search")
    expect(page.locator("#engine-status")).to_contain_text("ready", timeout=60_000)  # ~6 s; 30-40 s on a busy box
    expect(page.locator("#suggestions button").first).to_be_visible(timeout=20_000)

    page.locator("#query").press_sequentially("jazz guitar", delay=30)
    # the eight jazz-tagged songs come from the keyword search (tag: jazz) at once; the query's meaning (jazz,
    # guitar) then adds the eight rock songs with guitar; the electronic ones have none of it
    expect(page.locator("#search-rows tr[data-source='keyword']")).to_have_count(8)
    expect(page.locator("#search-rows tr[data-source='semantic']")).to_have_count(8)
    order = sources(page)
    assert order == ["keyword"] * 8 + ["semantic"] * 8
    ids = page.locator("#search-rows tr").evaluate_all("(rows) => rows.map((r) => r.dataset.itemId)")
    assert len(ids) == len(set(ids))  # no song twice
    assert set(ids[:8]) == {t.item_id for i, t in enumerate(tracks) if i % 3 == 2}
    assert set(ids[8:]) == {t.item_id for i, t in enumerate(tracks) if i % 3 == 0}
    expect(page.locator("#search-rows tr").first.locator("td").nth(4)).to_have_text("tag: jazz")
    semantic_row = page.locator("#search-rows tr[data-source='semantic']").first
    expect(semantic_row.locator("td").nth(4)).to_contain_text("sounds like it")
    expect(semantic_row.locator("td").nth(5)).to_contain_text("guitar")
    # ▶ plays a preview of the song in the page (the browser fetches the file with Range requests)
    first_row = page.locator("#search-rows tr").first
    first_row.locator("button.play").click()
    expect(first_row.locator("button.play")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function("() => { const a = document.querySelector('.player audio'); "
                           "return a && a.currentTime > 0.2; }", timeout=15_000)
    expect(page.locator(".player-title")).to_contain_text(first_row.locator("td").nth(1).inner_text())
    first_row.locator("button.play").click()  # a second click stops it
    expect(first_row.locator("button.play")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("input[name=playlist_name]")).to_have_value("jazz guitar")
    page.click(".create-playlist")
    expect(page.locator(".playlist-status")).to_contain_text('Playlist "jazz guitar_instant" created with 16')
    assert (tmp_path / "playlists" / "jazz guitar_instant.m3u8").is_file()
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "text-search-page.png"), full_page=True)

    # A suggestion runs at once; Enter in the box too.
    first = page.locator("#suggestions button").first
    suggestion = first.inner_text()
    first.click()
    expect(page.locator("#query")).to_have_value(suggestion)
    expect(page.locator("#search-message")).to_contain_text(f'songs for "{suggestion}"')
    page.fill("#query", "ab")
    page.press("#query", "Enter")
    expect(page.locator("#search-message")).to_have_text("Type at least three letters.")

    # The media source fails: a clear message, the results stay.
    shutil.rmtree(tmp_path / "playlists")
    (tmp_path / "playlists").write_text("not a folder")
    page.fill("#query", "rock")
    page.press("#query", "Enter")
    expect(page.locator("#search-rows tr").first).to_be_visible()
    page.click(".create-playlist")
    expect(page.locator(".playlist-status")).to_contain_text("Not created:")


def test_without_the_model_keyword_results_still_show(start_site, config, db, redis, page, tmp_path: Path):
    tracks = seed_groups(db, redis, config, tmp_path / "music")
    base = start_site(TEXT_MODEL_DIR=str(tmp_path / "no-model"))
    page.goto(base + "/text_search")
    expect(page.locator("#engine-status")).to_contain_text("not available")
    page.fill("#query", "rock")
    page.press("#query", "Enter")
    expect(page.locator("#search-rows tr[data-source='keyword']")).to_have_count(8)
    expect(page.locator("#search-message")).to_contain_text("Only title, artist, album and tag matches are shown")
    expect(page.locator("#search-message")).to_contain_text("fetch_text_model.py")
    # a song whose file is gone cannot be previewed, and the page says why
    first = page.locator("#search-rows tr").first
    gone = next(t for t in tracks if t.item_id == first.get_attribute("data-item-id"))
    Path(gone.path).unlink()
    first.locator("button.play").click()
    expect(page.locator(".player-status")).to_contain_text("the audio of this track cannot be read here")


def test_nothing_analyzed_says_so(start_site, page):
    base = start_site()
    page.goto(base + "/text_search")
    page.fill("#query", "calm piano")
    page.press("#query", "Enter")
    expect(page.locator("#search-message")).to_contain_text("Nothing has been analyzed yet")


def test_words_the_engine_does_not_understand_say_so(start_site, config, db, redis, page, tmp_path):
    seed_groups(db, redis, config, tmp_path / "music")
    base = start_site()
    page.goto(base + "/text_search")
    expect(page.locator("#engine-status")).to_contain_text("ready", timeout=60_000)  # ~6 s; 30-40 s on a busy box
    page.locator("#query").fill("xqzvbnm flibbertigibbet")
    page.locator("#query").press("Enter")
    expect(page.locator("#search-message")).to_contain_text("names nothing the analysis knows", timeout=20_000)
    expect(page.locator("#search-rows tr")).to_have_count(0)
    page.goto(base + "/search?q=xqzvbnm+flibbertigibbet")  # library search: no song, and why
    expect(page.locator("#search-message")).to_contain_text("names nothing the analysis knows", timeout=20_000)
    expect(page.locator("#search-rows tr")).to_have_count(0)
