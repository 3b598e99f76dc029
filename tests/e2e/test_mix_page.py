"""The Mix page in headless Chromium: pick seeds, see the next songs with their reasons, and switch MPD's queue mode
(stored for the workers, its state shown)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from werkzeug.serving import make_server

from app import serve
from db.app_settings import get_setting
from tests.conftest import OUTPUT_DIR
from tests.seeded_library import seed_arc

pytestmark = pytest.mark.browser


@pytest.fixture
def site(make_config, db, redis) -> Iterator[str]:
    cfg = make_config()
    seed_arc(db, redis, cfg, [(f"t{i}", f"Song t{i}", "") for i in range(12)])
    app = serve(cfg)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    app.extensions["audiomuse"].stop_background.set()


def test_mix_page(site: str, page: Page, db) -> None:
    page.goto(site + "/mix")
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Mix")
    page.click("#mix-run")
    expect(page.locator("#mix-message")).to_have_text("Pick at least one seed song first.")
    page.fill("#mix-seed", "Song t0")
    page.locator(".picker-list li", has_text="Song t0").first.click()
    expect(page.locator("#mix-seeds li")).to_have_count(1)
    page.fill("input[name=count]", "3")
    page.fill("input[name=exclude_artists]", "artist 2")
    page.click("#mix-run")
    rows = page.locator("#mix-rows tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("td").nth(1)).to_have_text("Song t1")
    expect(rows.nth(1).locator("td").nth(1)).to_have_text("Song t3")  # artist 2 excluded
    expect(rows.nth(0).locator("td").last).to_contain_text("near Song t0 (distance ")
    expect(page.locator("#mix-message")).to_have_text("3 songs.")

    expect(page.locator("#queue-state")).to_have_text("off")
    page.check("#queue-toggle")
    expect(page.locator("#queue-message")).to_contain_text("Queue mode on")
    expect(page.locator("#queue-state")).to_contain_text(
        "on, waiting for a worker — the media server is local, not MPD")
    assert get_setting(db, "mpd_queue_mode") == "true"
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "mix-page.png"), full_page=True)
    page.uncheck("#queue-toggle")
    expect(page.locator("#queue-message")).to_have_text("Queue mode off.")
    assert get_setting(db, "mpd_queue_mode") == "false"
