"""The home page in Chromium: the library at a glance with the map preview, the quick actions by keyboard, the
warnings that matter (with their fix), the grouped navigation folded on a phone, and the dark theme."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from db import playlists as playlist_store
from db import schedules as schedule_store
from tests.conftest import OUTPUT_DIR
from tests.seeded_library import seed_groups

pytestmark = pytest.mark.browser


@pytest.fixture
def library_site(start_site, config, db, redis, worker_processes, tmp_path: Path) -> tuple[str, list]:
    tracks = seed_groups(db, redis, config, tmp_path / "music")
    playlist_store.save_playlist(db, name="Night drive_automatic", source="clustering",
                                 item_ids=[t.item_id for t in tracks[:5]], mediaserver_playlist="x")
    schedule_store.upsert_by_name(db, schedule_store.ScheduleValues(
        name="Nightly analysis", task_type="analysis", cron_expr="0 3 * * *", timezone="UTC", enabled=True, params={}))
    worker_processes()
    return start_site(), tracks


def no_horizontal_overflow(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), \
        page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")


def test_home_shows_the_library_and_its_quick_actions_work_by_keyboard(library_site, page: Page):
    base, tracks = library_site
    page.goto(base + "/")
    expect(page.locator("#analyzed-count")).to_have_text("24")
    expect(page.locator("#recent-playlists")).to_contain_text("Night drive_automatic")
    expect(page.locator("#recent-playlists")).to_contain_text("5 songs")
    expect(page.locator("#next-runs")).to_contain_text("Analysis")
    expect(page.locator("#next-runs")).to_contain_text("Nightly analysis")
    expect(page.locator("#map-preview")).to_have_attribute("data-points", "6", timeout=30_000)  # a quarter of 24
    expect(page.locator("#map-preview-status")).to_contain_text("6 of 24 songs shown")
    expect(page.locator("#home-warnings")).to_have_attribute("aria-busy", "false", timeout=15_000)
    expect(page.locator("#home-warnings .warning")).to_have_count(0, timeout=20_000)  # the index may still load
    no_horizontal_overflow(page)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "home.png"), full_page=True)

    # "similar songs" by keyboard: type, arrow to the first match, Enter picks it, Enter again goes
    page.locator("#similar-seed").focus()
    page.keyboard.type(tracks[0].title[:6])
    expect(page.locator(".picker-list li").first).to_be_visible()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#similar-seed")).to_have_value(f"{tracks[0].title} — Artist 0")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/similarity?item_id={tracks[0].item_id}&title="
                             f"{tracks[0].title.replace(' ', '+')}+%E2%80%94+Artist+0")
    expect(page.locator("#similar-rows tr")).not_to_have_count(0)
    expect(page.locator("#seed")).to_have_value(f"{tracks[0].title} — Artist 0")

    page.goto(base + "/")
    page.fill("#describe-query", "calm piano")
    page.keyboard.press("Enter")
    expect(page).to_have_url(base + "/text_search?q=calm+piano")
    expect(page.locator("#query")).to_have_value("calm piano")


def test_an_empty_library_without_a_worker_or_a_media_server_says_what_to_fix(start_site, tmp_path: Path,
                                                                             page: Page):
    base = start_site(MUSIC_DIR=str(tmp_path / "not-mounted"))
    page.goto(base + "/")
    warnings = page.locator("#home-warnings .warning")
    expect(warnings.filter(has_text="No worker is running")).to_contain_text("python -m tasks.worker")
    expect(warnings.filter(has_text="does not answer")).to_contain_text("Check its address and credentials")
    expect(warnings.filter(has_text="does not answer").get_by_role("link", name="Go there")).to_have_attribute(
        "href", "/settings")
    expect(warnings.filter(has_text="Nothing is analysed yet")).to_be_visible()
    expect(page.locator("#analyzed-count")).to_have_text("0")
    expect(page.locator("#last-analysis")).to_have_text("No analysis has run yet.")
    expect(page.locator("#map-preview-status")).to_contain_text("once tracks are analysed", timeout=30_000)

    # the "similar songs" action refuses a typed title that was not picked, and says how to pick one
    page.fill("#similar-seed", "something")
    page.click("#similar-to button[type=submit]")
    expect(page.locator("#similar-to-message")).to_contain_text("Pick a song from the list first")
    expect(page).to_have_url(base + "/")


def test_the_navigation_folds_on_a_phone_and_the_dark_theme_is_kept(start_site, browser, tmp_path: Path):
    base = start_site()
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    try:
        phone.goto(base + "/similarity")
        nav = phone.get_by_role("navigation", name="Main")
        expect(nav).to_be_hidden()
        no_horizontal_overflow(phone)
        menu = phone.get_by_role("button", name="Menu")
        menu.focus()
        phone.keyboard.press("Enter")
        expect(menu).to_have_attribute("aria-expanded", "true")
        expect(nav.get_by_role("link", name="Similar songs")).to_be_visible()  # its group is open
        expect(nav.get_by_role("link", name="Similar songs")).to_have_attribute("aria-current", "page")
        phone.keyboard.press("Escape")
        expect(nav).to_be_hidden()
        expect(menu).to_be_focused()

        toggle = phone.locator(".theme-toggle")
        expect(toggle).to_have_attribute("aria-pressed", "false")
        toggle.click()
        expect(phone.locator("html")).to_have_attribute("data-theme", "dark")
        background = phone.evaluate("getComputedStyle(document.body).backgroundColor")
        phone.goto(base + "/")
        expect(phone.locator("html")).to_have_attribute("data-theme", "dark")
        expect(phone.locator(".theme-toggle")).to_have_attribute("aria-pressed", "true")
        assert phone.evaluate("getComputedStyle(document.body).backgroundColor") == background == "rgb(18, 21, 27)"
        no_horizontal_overflow(phone)
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        phone.screenshot(path=str(OUTPUT_DIR / "home-phone-dark.png"), full_page=True)
    finally:
        context.close()


def test_desktop_menus_open_one_at_a_time_and_close_with_escape(start_site, page: Page):
    base = start_site()
    page.goto(base + "/")
    discover = page.locator(".nav-group summary", has_text="Discover")
    discover.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Music map", exact=True)).to_be_visible()
    page.locator(".nav-group summary", has_text="System").click()
    expect(page.get_by_role("link", name="Settings")).to_be_visible()
    expect(page.get_by_role("link", name="Music map", exact=True)).to_be_hidden()
    page.keyboard.press("Escape")
    expect(page.get_by_role("link", name="Settings")).to_be_hidden()
    expect(page.locator(".nav-group summary", has_text="System")).to_be_focused()
