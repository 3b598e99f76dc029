"""The versions page and the library search's "N versions" in headless Chromium, on the planted library of
tests/integration/test_versions.py: the three files of one recording with the FLAC kept; in search, the song's row
opens its other files from the keyboard; a failing API is said on the page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.integration.test_versions import plant

pytestmark = pytest.mark.browser


def test_versions_page_and_search_versions(start_site, config, db, redis, page):
    plant(db, redis, config)
    base = start_site()
    page.goto(base + "/versions")
    expect(page.locator("#versions-summary")).to_have_text("1 recording is held by more than one file; showing 1.")
    row = page.locator("#versions-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".version-files li")).to_have_count(3)
    expect(row.locator("li.kept")).to_contain_text("FLAC")
    expect(row.locator("td").nth(2)).to_have_text("FLAC: full length over an excerpt; lossless FLAC over MP3, OGG")

    page.goto(base + "/search?q=shine&mode=keyword")
    song = page.locator('#search-rows tr[data-item-id="shine-flac"]')
    expect(song).to_contain_text("FLAC")
    toggle = song.locator(".versions-toggle")
    expect(toggle).to_have_text("4 versions")
    files = page.locator("#versions-shine-flac")
    expect(files).to_be_hidden()
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(files.locator("li")).to_have_count(3)
    expect(files).to_contain_text("Shine (Live)")
    expect(page.locator('#search-rows tr[data-item-id="other-shine"]')).to_be_visible()


def test_versions_page_says_when_the_list_cannot_be_read(start_site, page):
    base = start_site()
    page.route("**/api/versions*", lambda route: route.fulfill(status=500, json={"error": "database is down"}))
    page.goto(base + "/versions")
    expect(page.locator("#versions-message")).to_contain_text("Could not list the versions")
    expect(page.locator("#versions-table")).to_be_hidden()
