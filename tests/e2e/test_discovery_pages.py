"""The discovery pages in headless Chromium: pick songs with the autocomplete, see results and charts, create a
playlist on the local media source and download the .m3u8."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from werkzeug.serving import make_server

from app import serve
from tests.conftest import OUTPUT_DIR
from tests.seeded_library import seed_arc, seed_arc_library

pytestmark = pytest.mark.browser


def similar_box(page):
    """The similar songs' playlist box (the page has a second one, artist radio's)."""
    return page.locator(".playlist-box").first




@pytest.fixture
def site(make_config, db, redis, tmp_path: Path) -> Iterator[tuple[str, list, Path]]:
    cfg = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"))
    tracks = seed_arc_library(db, redis, cfg, tmp_path / "music")
    app = serve(cfg)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_port}", tracks, tmp_path / "playlists"
    http.shutdown()
    app.extensions["audiomuse"].stop_background.set()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    yield context.new_page()
    context.close()


def pick(page: Page, selector: str, text: str, choice: str) -> None:
    page.fill(selector, text)
    page.locator(".picker-list li", has_text=choice).first.click()
    expect(page.locator(selector)).to_have_value(f"{choice} — " + page.locator(selector).input_value().split(" — ")[1])


def shot(page: Page, name: str) -> None:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / name), full_page=True)


def test_similar_songs_page(site, page, tmp_path):
    base, tracks, playlists = site
    page.goto(base + "/similarity")
    page.click("#find-similar")
    expect(page.locator("#similar-message")).to_have_text("Pick a seed song from the list first.")  # error path
    pick(page, "#seed", "Song 0-0", tracks[0].title)
    page.fill("input[name=n]", "4")
    page.click("#find-similar")
    expect(page.locator("#similar-rows tr")).to_have_count(4)
    expect(page.locator("#similar-rows tr").first.locator("td").nth(1)).to_have_text(tracks[1].title)
    page.click("#find-mixable")
    expect(page.locator("#results-title")).to_have_text("Mixable tracks (harmonic)")
    expect(page.locator("#bpm-tolerance-meaning")).to_contain_text("In harmonic mode the tolerance is a preference")
    expect(page.locator("#similar-rows tr").first.locator("td").last).to_contain_text("key")
    similar_box(page).locator("input[name=playlist_name]").fill("Browser mix")
    similar_box(page).locator(".create-playlist").click()
    expect(similar_box(page).locator(".playlist-status")).to_contain_text('Playlist "Browser mix_instant" created')
    assert (playlists / "Browser mix_instant.m3u8").is_file()
    with page.expect_download() as download:
        similar_box(page).locator(".download-m3u").click()
    saved = tmp_path / "download.m3u8"
    download.value.save_as(saved)
    assert saved.read_text().startswith("#EXTM3U") and tracks[0].path in saved.read_text()
    shot(page, "similar-page.png")


def find_path(page, base, tracks, *, steps):
    """The path page with the arc's first and last songs as its ends and `steps` steps, found."""
    page.goto(base + "/path")
    pick(page, "#start", tracks[0].title, tracks[0].title)
    pick(page, "#end", tracks[-1].title, tracks[-1].title)
    page.fill("input[name=max_steps]", str(steps))
    page.click("#find-path")
    expect(page.locator("#path-rows tr")).to_have_count(steps)


def test_song_path_page(site, page):
    base, tracks, _ = site
    find_path(page, base, tracks, steps=6)
    expect(page.locator("#path-rows tr").first.locator("td").nth(1)).to_have_text(tracks[0].title)
    expect(page.locator("#path-rows tr").last.locator("td").nth(1)).to_have_text(tracks[-1].title)
    expect(page.locator("#path-chart .main-svg").first).to_be_visible()  # Plotly drew the progression
    page.fill("input[name=max_steps]", "1")
    page.click("#find-path")
    expect(page.locator("#path-message")).to_contain_text("invalid value for 'max_steps'")
    shot(page, "path-page.png")


def test_song_path_chart_runs_from_start_to_end_and_a_short_path_says_why(site, page):
    base, tracks, _ = site
    find_path(page, base, tracks, steps=6)
    expect(page.locator("#path-chart .main-svg").first).to_be_visible()
    # each line's points left to right in path order: the first song is not drawn last
    lines = page.locator("#path-chart .scatterlayer .trace").evaluate_all(
        """(traces) => traces.map((t) => [...t.querySelectorAll('.point')].map((p) =>
             parseFloat(p.getAttribute('transform').match(/translate\\(([-\\d.]+)/)[1])))""")
    assert [len(x) for x in lines] == [5, 6]
    assert all(x == sorted(x) and len(set(x)) == len(x) for x in lines), lines
    assert lines[1][1:] == lines[0]  # a hop is drawn at the song it arrives at
    ticks = page.locator("#path-chart .xtick text").evaluate_all("(texts) => texts.map((t) => t.textContent)")
    assert ticks[0].startswith("1. ") and ticks[-1].startswith("6. ")
    expect(page.locator("#path-message")).to_have_text("6 songs.")
    # tempo and energy along the path, drawn song by song (the arc library's tempos: 100, 102, …)
    curves = page.locator("#path-curves svg.line-chart")
    expect(curves).to_have_count(2)
    expect(curves.first.locator("circle")).to_have_count(6)
    expect(curves.first).to_have_attribute("aria-label", re.compile(r"^Tempo along the path \(BPM\): from \d+"))
    page.fill("input[name=max_steps]", "25")  # the library has 12 songs
    page.click("#find-path")
    expect(page.locator("#path-message")).to_contain_text("steps between the two ends found no song that was not")
    expect(page.locator("#path-message")).to_contain_text("try fewer steps")


def test_song_alchemy_page(site, page):
    base, tracks, _ = site
    page.goto(base + "/alchemy")
    page.click("#run-alchemy")
    expect(page.locator("#alchemy-message")).to_have_text(  # nothing added yet: said in words, not the API's
        "Add at least one song to blend first: pick it, then press Add (or Enter).")
    # a title typed in full and Enter: added (Enter adds the song; it does not run the blend)
    page.fill("#alchemy-song", tracks[0].title)
    expect(page.locator(".picker-list li").first).to_be_visible()
    page.press("#alchemy-song", "Enter")
    expect(page.locator("#alchemy-items li")).to_have_count(1)
    expect(page.locator("#alchemy-items li").first).to_contain_text(f"+ {tracks[0].title} — ")
    expect(page.locator("#alchemy-rows tr")).to_have_count(0)
    # ArrowUp from the field goes to the last suggestion
    page.fill("#alchemy-song", "Song")
    expect(page.locator(".picker-list li").first).to_be_visible()
    options = page.locator(".picker-list li")
    page.press("#alchemy-song", "ArrowUp")
    expect(options.nth(options.count() - 1)).to_have_attribute("aria-selected", "true")
    pick(page, "#alchemy-song", tracks[-1].title, tracks[-1].title)
    page.click("#subtract-song")
    page.fill("input[name=n]", "5")
    page.fill("input[name=temperature]", "0")
    page.click("#run-alchemy")
    expect(page.locator("#alchemy-rows tr")).not_to_have_count(0)
    expect(page.locator("#alchemy-chart .main-svg").first).to_be_visible()
    page.click(".create-playlist")
    expect(page.locator(".playlist-status")).to_contain_text("created")
    shot(page, "alchemy-page.png")


def test_sonic_fingerprint_page_reports_missing_history(site, page):
    base, _, _ = site
    page.goto(base + "/sonic_fingerprint")
    # said before any click: the local folder keeps no play history
    expect(page.locator("#fingerprint-no-history")).to_contain_text("Local music folder keeps no play history")
    expect(page.locator("#generate-fingerprint")).to_be_disabled()


@pytest.fixture
def jellyfin_site(make_config, db, redis, tmp_path: Path) -> Iterator[tuple[str, object]]:
    """A server whose media source has a play history (the Jellyfin fake), with arc vectors for its tracks."""
    from tests.fakes.jellyfin import FakeJellyfin
    from tests.library import make_library

    make_library(tmp_path / "media" / "Music", albums=3, tracks_per_album=3, seconds=1)
    with FakeJellyfin(tmp_path / "media", libraries={"Music": "music"}) as fake:
        cfg = make_config(MEDIASERVER_TYPE="jellyfin", JELLYFIN_URL=fake.url, JELLYFIN_USER_ID="Bob",
                          JELLYFIN_TOKEN="bob-token", HTTP_RETRIES=0)
        seed_arc(db, redis, cfg, [(t["Id"], t["Name"], "") for t in fake.tracks])
        app = serve(cfg)
        http = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=http.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{http.server_port}", fake
        http.shutdown()
        app.extensions["audiomuse"].stop_background.set()


def test_sonic_fingerprint_page_with_a_play_history(jellyfin_site, page):
    base, fake = jellyfin_site
    fake.set_played("Alice", fake.tracks[0]["Id"], 12, None)
    fake.set_played("Alice", fake.tracks[1]["Id"], 3, None)
    page.goto(base + "/sonic_fingerprint")
    page.fill("input[name=n]", "5")
    page.fill("input[name=user]", "Alice")
    page.fill("input[name=secret]", "alice-token")
    page.click("#generate-fingerprint")
    expect(page.locator("#fingerprint-rows tr")).to_have_count(5)
    expect(page.locator("#fingerprint-rows tr").first.locator("td").last).to_have_text("your top songs")
    expect(page.locator("#fingerprint-rows tr").last.locator("td").last).to_have_text("discovery")
    page.fill("input[name=playlist_name]", "Alice mix")
    page.click(".create-playlist")
    expect(page.locator(".playlist-status")).to_contain_text('"Alice mix_instant" created with 5 songs')
    assert [p.owner_id for p in fake.playlists.values() if p.name == "Alice mix_instant"] == [fake.users["Alice"]]
    shot(page, "fingerprint-page.png")


def test_song_picker_is_a_keyboard_combobox_that_tells_copies_apart(site, page, db):
    """ArrowDown/ArrowUp move through the suggestions, Enter picks, Escape closes; the list sits below its input;
    two copies of one title show their album, length and format; the playlist name follows the results."""
    base, tracks, _ = site
    copy = tracks[0]
    db.execute("UPDATE tracks SET title = %s, album = 'Live at Home', duration_seconds = 321, year = 2019 "
               "WHERE item_id = %s", (tracks[1].title, copy.item_id))  # two "Song 0-1": different album, length
    page.goto(base + "/similarity")
    seed = page.locator("#seed")
    expect(seed).to_have_attribute("role", "combobox")
    seed.fill(tracks[1].title)
    options = page.locator("#" + seed.get_attribute("aria-controls") + " [role=option]")
    expect(options).to_have_count(2)
    expect(seed).to_have_attribute("aria-expanded", "true")
    details = sorted(options.locator("small").all_inner_texts())
    assert details[0].startswith("Album · 3:20 · ") and details[1] == "Live at Home · 5:21 · FLAC · 2019", details
    box, listed = seed.bounding_box(), page.locator(".picker-list").bounding_box()
    assert listed["y"] >= box["y"] + box["height"] - 1  # below the input, not over it

    seed.press("ArrowDown")
    first_id = options.nth(0).get_attribute("id")
    expect(seed).to_have_attribute("aria-activedescendant", first_id)
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    seed.press("ArrowDown")
    expect(seed).to_have_attribute("aria-activedescendant", options.nth(1).get_attribute("id"))
    seed.press("ArrowDown")  # wraps round
    expect(seed).to_have_attribute("aria-activedescendant", first_id)
    chosen = options.nth(0).locator("span").inner_text()
    seed.press("Enter")
    expect(seed).to_have_value(chosen)
    expect(seed).to_have_attribute("aria-expanded", "false")
    assert seed.get_attribute("data-item-id") in (copy.item_id, tracks[1].item_id)
    expect(page.locator("#similar-results")).to_be_hidden()  # Enter picked; it did not submit the form

    seed.fill(tracks[2].title)
    expect(options).to_have_count(1)
    seed.press("Escape")
    expect(page.locator(".picker-list")).to_be_hidden()
    expect(seed).to_have_attribute("aria-expanded", "false")

    seed.fill(tracks[3].title)
    expect(options).to_have_count(1)
    seed.press("ArrowDown")
    seed.press("Enter")
    page.fill("input[name=n]", "3")
    page.click("#find-similar")
    expect(page.locator("#similar-rows tr")).to_have_count(3)
    expect(similar_box(page).locator("input[name=playlist_name]")).to_have_value(f"Similar to {tracks[3].title}")
    similar_box(page).locator("input[name=playlist_name]").fill("Mine")  # a name the user typed is kept
    page.click("#find-mixable")
    expect(page.locator("#results-title")).to_contain_text("Mixable")
    expect(similar_box(page).locator("input[name=playlist_name]")).to_have_value("Mine")
    # the checkboxes sit on the line of their labels
    check = page.locator("label.check", has_text="Radius walk ordering")
    tick, text_box = check.locator("input").bounding_box(), check.bounding_box()
    assert abs((tick["y"] + tick["height"] / 2) - (text_box["y"] + text_box["height"] / 2)) < 4
    shot(page, "similar-picker.png")


def test_path_and_alchemy_suggest_names_from_their_songs(site, page):
    base, tracks, _ = site
    page.goto(base + "/path")
    pick(page, "#start", tracks[0].title, tracks[0].title)
    pick(page, "#end", tracks[-1].title, tracks[-1].title)
    page.fill("input[name=max_steps]", "4")
    page.click("#find-path")
    expect(page.locator("input[name=playlist_name]")).to_have_value(f"{tracks[0].title} → {tracks[-1].title}")
    page.goto(base + "/alchemy")
    pick(page, "#alchemy-song", tracks[0].title, tracks[0].title)
    page.click("#add-song")
    pick(page, "#alchemy-song", tracks[5].title, tracks[5].title)
    page.click("#add-song")
    page.fill("input[name=n]", "3")
    page.click("#run-alchemy")
    expect(page.locator("input[name=playlist_name]")).to_have_value(f"{tracks[0].title} + {tracks[5].title}")
