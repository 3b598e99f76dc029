"""The playlist matching page in headless Chromium with a real worker: match every song, accept and reject
suggestions (the playlist file grows; the rejected song is not offered again), extend a playlist with songs that
fit; before any matching the page says no playlist is known, and a refused addition shows the media server's error."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import OUTPUT_DIR
from tests.seeded_library import seed_groups

pytestmark = pytest.mark.browser


def test_match_accept_reject_and_extend(start_site, worker_processes, config, db, redis, page, tmp_path: Path):
    music, playlists = tmp_path / "music", tmp_path / "playlists"
    tracks = seed_groups(db, redis, config, music)
    playlists.mkdir()
    group0 = [t for i, t in enumerate(tracks) if i % 3 == 0]
    file = playlists / "Rock night.m3u8"
    file.write_text("".join(f"{music / (t.path or '')}\n" for t in group0[:3]), encoding="utf-8")
    base = start_site()
    page.goto(base + "/playlists/match")
    expect(page.locator("#continue-message")).to_contain_text("No playlist of yours is known yet")
    worker_processes("--queues", "high,default", env={"MUSIC_DIR": str(music), "PLAYLIST_DIR": str(playlists)})
    page.locator("#match-run").click()
    expect(page.locator("#match-status")).to_contain_text("SUCCESS", timeout=60_000)
    rows = page.locator("#suggestions tbody tr")
    expect(rows.first).to_be_visible()
    count = rows.count()
    assert count >= 2
    first_title = rows.first.locator("td").first.inner_text()
    rows.first.get_by_role("button", name="Accept").click()
    expect(page.locator("#match-status")).to_contain_text("to Rock night")
    expect(rows).to_have_count(count - 1)
    assert sum(1 for line in file.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")) == 4
    rejected = rows.first.get_attribute("data-item-id")
    rows.first.get_by_role("button", name="Reject").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#match-status")).to_contain_text("will not be suggested for Rock night again")
    expect(rows).to_have_count(count - 2)
    assert first_title.strip()

    expect(page.locator("#continue-playlist option")).to_have_text(["Rock night (4 songs)"])
    page.locator("#continue-playlist").select_option("Rock night.m3u8")
    page.locator("#continue-n").fill("3")
    page.locator("#continue-go").click()
    expect(page.locator("#continue-results li")).to_have_count(3)
    page.locator("#continue-results li input").first.uncheck()
    page.locator("#continue-add").click()
    expect(page.locator("#continue-message")).to_have_text("Added 2 songs to Rock night.")
    assert sum(1 for line in file.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")) == 6
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "playlist-match-page.png"), full_page=True)

    page.locator("#match-run").click()  # the rejected song is not offered again
    expect(page.locator("#match-status")).to_contain_text("SUCCESS", timeout=60_000)
    expect(page.locator(f'#suggestions tbody tr[data-item-id="{rejected}"]')).to_have_count(0)

    remaining = page.locator("#suggestions tbody tr")
    expect(remaining).not_to_have_count(0)
    file.unlink()  # the playlist is gone from the media server: accepting shows its error
    remaining.first.get_by_role("button", name="Accept").click()
    expect(page.locator("#match-status")).to_contain_text("Not done: the media server did not add the song")
