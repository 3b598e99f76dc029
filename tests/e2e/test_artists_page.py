"""The "Similar artists" section of the Similar songs page in headless Chromium: similar artists with songs to play,
and artist radio published as a playlist on the local media source."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from werkzeug.serving import make_server

from app import serve
from audio.musicnn import MODEL_NAME
from tests.conftest import OUTPUT_DIR, wait_for
from tests.seeded_library import seed_arc_library
from voyager_manager import rebuild_from_embeddings

pytestmark = pytest.mark.browser

GROUPS = ("Alpha", "Beta", "Gamma", "Delta")


@pytest.fixture
def site(make_config, db, redis, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cfg = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"))
    tracks = seed_arc_library(db, redis, cfg, tmp_path / "music")
    for i, track in enumerate(tracks):
        db.execute("UPDATE tracks SET artist = %s WHERE item_id = %s", (GROUPS[i // 3], track.item_id))
    rebuild_from_embeddings(db, redis, name=cfg.INDEX_NAME, model=MODEL_NAME, channel=cfg.INDEX_RELOAD_CHANNEL,
                            m=16, ef_construction=100)
    app = serve(cfg)
    wait_for(lambda: app.extensions["audiomuse"].index.cache("artists") is not None, what="the artist model")
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_port}", tmp_path / "playlists"
    http.shutdown()
    app.extensions["audiomuse"].stop_background.set()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def test_similar_artists_section(site, page):
    base, playlists = site
    page.goto(base + "/similarity")
    expect(page.locator("#similar-artists")).to_have_attribute("data-ready", "true")
    page.click("#find-artists")
    expect(page.locator("#artists-message")).to_have_text("Type an artist first.")
    page.fill("#artist-query", "Nobody")
    page.click("#find-artists")
    expect(page.locator("#artists-message")).to_contain_text("'Nobody' not found")

    page.fill("#artist-query", "alp")  # the list offers the artists the search finds
    expect(page.locator("#artist-options option[value=Alpha]")).to_have_count(1)
    page.fill("#artist-query", "Alpha")
    page.click("#find-artists")
    matches = page.locator("#artist-results li.artist-match")
    expect(matches).to_have_count(3)
    expect(matches.nth(0).locator("strong")).to_have_text("Beta")
    expect(matches.nth(2).locator("strong")).to_have_text("Delta")
    first_songs = matches.nth(0).locator(".artist-song")
    expect(first_songs).to_have_count(6)  # three of Alpha's and three of Beta's
    first_songs.nth(3).locator("button.play").click()
    expect(page.locator(".player")).to_be_visible()
    expect(first_songs.nth(3).locator("button.play")).to_have_attribute("aria-pressed", "true")

    page.click("#artist-radio")
    expect(page.locator("#radio-rows tr")).to_have_count(12)  # four artists, three songs each at most
    expect(page.locator("#radio-rows tr").first.locator("td").nth(2)).to_have_text("Alpha")
    expect(page.locator("#artists-message")).to_have_text("12 songs in the radio.")
    box = page.locator("#radio-results .playlist-box")
    expect(box.locator("input[name=playlist_name]")).to_have_value("Alpha radio")
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "similar-artists.png"), full_page=True)
    box.locator(".create-playlist").click()
    expect(box.locator(".playlist-status")).to_have_text('Playlist "Alpha radio_instant" created with 12 songs.')
    assert (playlists / "Alpha radio_instant.m3u8").exists()
