"""The player in Chromium: a result list played whole, next/previous, the queue kept across a change of page, the
keyboard, and a song that cannot be played."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from audio.musicnn import MODEL_NAME
from mediaservers.local import LocalFolder
from tests.conftest import OUTPUT_DIR
from tests.library import make_library
from tests.seeded_library import insert_track
from voyager_manager import rebuild_from_embeddings

pytestmark = pytest.mark.browser


@pytest.fixture
def songs(start_site, config, db, redis, tmp_path: Path) -> tuple[str, list]:
    """8 real 20-second files, indexed with vectors that put them in one neighbourhood."""
    music = tmp_path / "music"
    make_library(music, albums=2, tracks_per_album=4, seconds=20)
    folder = LocalFolder(music, playlist_dir=tmp_path / "playlists")
    tracks = [t for album in folder.list_albums() for t in folder.album_tracks(album.album_id)]
    rng = np.random.default_rng(2)
    for i, t in enumerate(tracks):
        insert_track(db, item_id=t.item_id, title=t.title, artist=f"Artist {i % 2}", path=t.path or "",
                     vector=np.ones(16) + 0.2 * rng.normal(size=16))
    rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME,
                            channel=config.INDEX_RELOAD_CHANNEL, m=16, ef_construction=100)
    return start_site(), tracks


def playing_at(page: Page) -> float:
    return float(page.evaluate("document.querySelector('.player audio').currentTime"))


def test_a_list_is_played_and_its_queue_survives_a_page_change(songs, page: Page):
    base, tracks = songs
    page.goto(f"{base}/similarity?item_id={tracks[0].item_id}&title={tracks[0].title}")
    rows = page.locator("#similar-rows tr")
    expect(page.locator("#similar-message")).to_contain_text("songs.")
    n = rows.count()
    assert n >= 5
    labels = [rows.nth(i).locator("button.play").get_attribute("data-label") for i in range(n)]
    player = page.get_by_role("region", name="Player")
    expect(player).to_be_hidden()

    # every row has its cover (these files have none: the placeholder), loaded
    page.wait_for_function("[...document.querySelectorAll('#similar-rows img.cover')].every("
                           "(img) => img.complete && img.naturalWidth > 0)")
    page.get_by_role("button", name="Play all the songs of this list").click()
    expect(player).to_be_visible()
    first_id = rows.nth(0).get_attribute("data-item-id")
    expect(page.locator(".player-cover")).to_have_attribute("src", f"/api/tracks/{first_id}/cover?size=128")
    expect(page.locator(".player-title")).to_have_text(labels[0])
    page.wait_for_function("document.querySelector('.player audio').currentTime > 0.3", timeout=15_000)
    expect(rows.nth(0).locator("button.play")).to_have_attribute("aria-pressed", "true")
    expect(page).to_have_title(re.compile("^▶ " + re.escape(labels[0])))

    page.get_by_role("button", name="Next song (Shift+→)").click()
    expect(page.locator(".player-title")).to_have_text(labels[1])
    expect(rows.nth(1).locator("button.play")).to_have_attribute("aria-pressed", "true")
    expect(rows.nth(0).locator("button.play")).to_have_attribute("aria-pressed", "false")
    page.get_by_role("button", name="Previous song (Shift+←)").click()
    expect(page.locator(".player-title")).to_have_text(labels[0])

    # the queue: shown, a song removed, another added with its + button
    page.get_by_role("button", name="Show the queue").click()
    queue = page.locator(".player-queue-list li")
    expect(queue).to_have_count(n)
    page.get_by_role("button", name=f"Remove {labels[-1]} from the queue").click()
    expect(queue).to_have_count(n - 1)
    page.get_by_role("button", name=f"Add {labels[-1]} to the queue").click()
    expect(queue).to_have_count(n)
    expect(queue.last).to_contain_text(labels[-1])
    page.wait_for_function("document.querySelector('.player audio').currentTime > 2.5", timeout=15_000)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "player.png"), full_page=False)

    # another page: the same queue, the same song, about the same place
    before = playing_at(page)
    page.locator(".nav-group summary", has_text="Discover").click()
    page.get_by_role("link", name="Text search").click()
    expect(page).to_have_url(base + "/text_search")
    expect(page.locator(".player-title")).to_have_text(labels[0])
    expect(page.locator(".player-queue-list li")).to_have_count(n)
    page.wait_for_function("document.querySelector('.player audio').readyState >= 1")
    assert playing_at(page) >= before - 2.5

    # keys, with no field focused: Space pauses and plays, → seeks 10 s, Shift+→ goes to the next song
    page.locator("main h1").click()
    audio_paused = "document.querySelector('.player audio').paused"
    if page.evaluate(audio_paused):  # the browser did not let the restored page play on its own
        page.keyboard.press("Space")
        page.wait_for_function(f"!{audio_paused}")
    page.keyboard.press("Space")
    page.wait_for_function(audio_paused)
    expect(page).not_to_have_title(re.compile("^▶"))  # the tab's title follows the pause event
    at = playing_at(page)
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"document.querySelector('.player audio').currentTime >= {at + 9}")
    page.keyboard.press("Shift+ArrowRight")
    expect(page.locator(".player-title")).to_have_text(labels[1])

    page.get_by_role("button", name="Clear the queue").click()
    expect(page.get_by_role("region", name="Player")).to_be_hidden()
    page.reload()
    expect(page.get_by_role("region", name="Player")).to_be_hidden()


def test_a_song_that_cannot_be_read_says_why_and_the_next_still_plays(songs, page: Page):
    base, tracks = songs
    page.goto(f"{base}/similarity?item_id={tracks[0].item_id}&title={tracks[0].title}")
    rows = page.locator("#similar-rows tr")
    expect(page.locator("#similar-message")).to_contain_text("songs.")
    gone = rows.nth(0).get_attribute("data-item-id")
    Path(next(t.path for t in tracks if t.item_id == gone)).unlink()
    rows.nth(0).locator("button.play").click()
    expect(page.locator(".player-status")).to_contain_text("the audio of this track cannot be read here")
    expect(rows.nth(0).locator("button.play")).to_have_attribute("aria-pressed", "false")
    page.get_by_role("button", name="Next song (Shift+→)").click()
    page.wait_for_function("document.querySelector('.player audio').currentTime > 0.3", timeout=15_000)
    expect(page.locator(".player-status")).to_have_text("")
    expect(rows.nth(1).locator("button.play")).to_have_attribute("aria-pressed", "true")
