"""The blocklists and scope on the Settings page in headless Chromium, by keyboard alone: one name per line, the
longest song in minutes; saved server-side (the API reads them back), and a bad value refused with the field named
and nothing saved."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import OUTPUT_DIR

pytestmark = pytest.mark.browser


def test_blocklists_are_edited_and_saved_with_the_keyboard(start_site, page: Page) -> None:
    base = start_site()
    page.goto(base + "/settings")
    artists = page.locator("textarea[name=artists]")
    expect(artists).to_have_value("")
    artists.focus()
    page.keyboard.type("ABBA")
    page.keyboard.press("Enter")
    page.keyboard.type("Earth, Wind & Fire")
    for _ in range(4):  # albums, genres, folders, then the library scope
        page.keyboard.press("Tab")
    page.keyboard.type("Music")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.type("30")  # minutes
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "exclusions-save"
    page.keyboard.press("Enter")
    expect(page.locator("#exclusions-result")).to_have_text("Saved. Every list leaves these out from now on.")
    saved = page.request.get(base + "/api/settings/exclusions").json()
    assert (saved["artists"], saved["libraries"], saved["max_duration"]) == (
        ["ABBA", "Earth, Wind & Fire"], ["Music"], 1800.0)
    page.locator("#exclusions-form").screenshot(path=str(OUTPUT_DIR / "settings-blocklists.png"))

    page.reload()
    expect(artists).to_have_value("ABBA\nEarth, Wind & Fire")
    minutes = page.locator("input[name=max_duration_minutes]")
    expect(minutes).to_have_value("30")
    # error path: a length that is no number is refused naming the field; what was saved stays
    minutes.fill("soon")
    minutes.press("Enter")
    expect(page.locator("#exclusions-result")).to_contain_text("Not saved: invalid value for 'max_duration'")
    assert page.request.get(base + "/api/settings/exclusions").json()["max_duration"] == 1800.0


def test_typing_before_the_saved_lists_arrive_is_kept(start_site, page: Page) -> None:
    """The form is filled from the API after the page loads: what a quick user typed meanwhile was wiped (seen as
    a flaky keyboard test); the saved values still fill the fields not typed into."""
    base = start_site()
    saved = page.request.post(base + "/api/settings/exclusions", data={"artists": ["Saved Artist"],
                                                                       "genres": ["Jazz"]})
    assert saved.ok, saved.text()
    held = []
    page.route("**/api/settings/exclusions",
               lambda route: held.append(route) if route.request.method == "GET" else route.continue_())
    page.goto(base + "/settings")
    page.wait_for_function("() => document.querySelector('textarea[name=artists]') !== null")
    assert held, "the page asked for the saved lists"
    artists = page.locator("textarea[name=artists]")
    artists.focus()
    page.keyboard.type("Typed Artist")
    held[0].continue_()
    expect(page.locator("textarea[name=genres]")).to_have_value("Jazz")
    expect(artists).to_have_value("Typed Artist")
