"""The library search page in headless Chromium: search from the keyboard, narrow with facets whose counts follow,
the address bar holding the whole search (a reload or a shared link gives the same page), more results by cursor;
a bad value in a shared link is shown as the server's error."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.conftest import OUTPUT_DIR
from tests.integration.test_search_api import seed_library

pytestmark = pytest.mark.browser


def test_search_narrow_by_facets_share_and_page(start_site, config, db, redis, page):
    seed_library(db, redis, config)
    base = start_site()
    page.goto(base + "/search")
    expect(page.locator("#search-message")).to_contain_text("Type words")
    page.locator("#search-mode").select_option("keyword")
    page.locator("#search-q").fill("electronic")
    page.locator("#search-q").press("Enter")
    expect(page.locator("#search-count")).to_have_text("(5)")
    expect(page.locator("#search-rows tr")).to_have_count(5)
    bpm = page.locator("#facet-bpm label", has_text="120-150")
    expect(bpm.locator(".count")).to_have_text("3")
    bpm.locator("input").check()
    expect(page.locator("#search-count")).to_have_text("(3)")
    assert parse_qs(urlsplit(page.url).query) == {"q": ["electronic"], "mode": ["keyword"], "bpmMin": ["120"],
                                                   "bpmMax": ["150"]}
    key = page.locator("#facet-camelot label", has_text="8B")
    expect(key.locator(".count")).to_have_text("1")
    key.locator("input").press("Space")  # keyboard toggles a facet
    expect(page.locator("#search-count")).to_have_text("(1)")
    expect(page.locator("#search-rows tr")).to_contain_text("Neon Nights")
    shared = page.url
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "search-page.png"), full_page=True)

    other = page.context.new_page()  # the link alone gives the same search
    other.goto(shared)
    expect(other.locator("#search-q")).to_have_value("electronic")
    expect(other.locator("#search-rows tr")).to_have_count(1)
    expect(other.locator("#facet-camelot label", has_text="8B").locator("input")).to_be_checked()
    other.close()

    page.go_back()  # history follows the searches
    expect(page.locator("#search-count")).to_have_text("(3)")

    page.goto(base + "/search?q=music+songs+electronic+jazz&limit=4")  # pages of 4
    # hybrid: the first search waits for the text model (~6 s; 30-40 s on a busy box)
    expect(page.locator("#search-rows tr")).to_have_count(4, timeout=60_000)
    total = int(page.locator("#search-count").inner_text().strip("()"))
    assert total > 4
    for shown in range(8, total + 4, 4):
        page.locator("#search-more").click()
        expect(page.locator("#search-rows tr")).to_have_count(min(shown, total))
    expect(page.locator("#search-more")).to_be_hidden()
    item_ids = page.locator("#search-rows tr").evaluate_all("(rows) => rows.map((r) => r.dataset.itemId)")
    assert len(item_ids) == total == len(set(item_ids))


def test_a_bad_value_in_a_shared_link_shows_the_error(start_site, config, db, redis, page):
    seed_library(db, redis, config)
    base = start_site()
    page.goto(base + "/search?q=jazz&energy=extreme")
    expect(page.locator("#search-message")).to_contain_text("Search failed: invalid value for 'energy'")


def test_a_picked_facet_leaves_its_groups_other_options_counted(start_site, config, db, redis, page):
    seed_library(db, redis, config)
    base = start_site()
    page.goto(base + "/search?q=electronic&mode=keyword&keyCamelot=8A")
    expect(page.locator("#search-count")).to_have_text("(1)")
    other = page.locator("#facet-camelot label", has_text="8B")
    expect(other.locator(".count")).to_have_text("2")  # what choosing it adds, not 0
    other.locator("input").check()
    expect(page.locator("#search-count")).to_have_text("(3)")
    slower = page.locator("#facet-bpm label", has_text="60-90")
    expect(slower.locator(".count")).to_have_text("1")  # under both keys: Half Time Groove (8B, 64 BPM)
    page.locator("#facet-bpm label", has_text="120-150").locator("input").check()
    expect(page.locator("#search-count")).to_have_text("(2)")
    expect(slower.locator(".count")).to_have_text("1")  # the tempo range picked, the other ranges still count
    slower.locator("input").check()
    expect(page.locator("#search-count")).to_have_text("(1)")
