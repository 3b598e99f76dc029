"""The cleaning page in headless Chromium with a real RQ worker: files removed from the music folder are previewed
by artist and album, deleted after the confirmation (keyboard only), and a missing music folder is shown as a
refusal with nothing deleted."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from mediaservers.local import LocalFolder
from tests.cleaning_runs import seed_tracks
from tests.conftest import OUTPUT_DIR
from tests.library import make_library

pytestmark = pytest.mark.browser


def seed_library(db, redis, config, music: Path) -> int:  # type: ignore[no-untyped-def]
    """4 albums × 6 tracks in a music folder, all analyzed (hand-made vectors) with the folder's metadata."""
    make_library(music, albums=4, tracks_per_album=6, seconds=1)
    folder = LocalFolder(music, playlist_dir=music.parent / "playlists")
    tracks = [t for album in folder.list_albums() for t in folder.album_tracks(album.album_id)]
    seed_tracks(db, redis, config, tracks)
    return len(tracks)


def tracks_in_db(db) -> int:  # type: ignore[no-untyped-def]
    return int(db.fetch_one("SELECT count(*) AS n FROM tracks")["n"])


def start(start_site, worker_processes, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    base = start_site()
    worker_processes("--queues", "high,default", env={"MUSIC_DIR": str(tmp_path / "music"),
                                                     "PLAYLIST_DIR": str(tmp_path / "playlists")})
    return str(base)


def test_preview_confirm_and_delete_the_removed_files(start_site, worker_processes, config, db, redis, page,
                                                      tmp_path):
    analyzed = seed_library(db, redis, config, tmp_path / "music")
    album = tmp_path / "music" / "Artist 3" / "Album 3"
    for path in sorted(album.iterdir())[:4]:
        path.unlink()
    base = start(start_site, worker_processes, tmp_path)
    page.goto(base + "/cleaning")
    expect(page.locator("#analyzed-count")).to_have_text(str(analyzed))
    page.locator("#clean-preview").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#clean-summary")).to_contain_text("4 are no longer on the server; 4 would be deleted",
                                                           timeout=60_000)
    expect(page.locator("#clean-albums tbody tr")).to_have_count(1)
    expect(page.locator("#clean-albums tbody tr")).to_have_text("Artist 3Album 34")
    expect(page.locator("#clean-delete")).to_have_text("Delete these 4 tracks")
    assert tracks_in_db(db) == 24  # the preview deleted nothing
    page.locator("#clean-delete").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#clean-confirm-text")).to_contain_text("Remove 4 tracks")
    expect(page.locator("#clean-confirm-yes")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#clean-summary")).to_contain_text("Deleted 4 tracks", timeout=60_000)
    expect(page.locator("#clean-result-title")).to_have_text("Last cleaning")
    expect(page.locator("#analyzed-count")).to_have_text("20")
    assert tracks_in_db(db) == 20
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "cleaning-page.png"), full_page=True)
    page.reload()  # the last run is shown again on load
    expect(page.locator("#clean-summary")).to_contain_text("Deleted 4 tracks")
    expect(page.locator("#clean-confirm-box")).to_be_hidden()


def test_a_missing_music_folder_is_refused_and_nothing_deleted(start_site, worker_processes, config, db, redis,
                                                               page, tmp_path):
    seed_library(db, redis, config, tmp_path / "music")
    (tmp_path / "music").rename(tmp_path / "unmounted")
    base = start(start_site, worker_processes, tmp_path)
    page.goto(base + "/cleaning")
    page.locator("#clean-preview").click()
    summary = page.locator("#clean-summary")
    expect(summary).to_contain_text("Nothing deleted: the media server's listing was incomplete", timeout=60_000)
    expect(summary).to_contain_text("does not exist")
    expect(summary).to_have_class("error")
    expect(page.locator("#clean-confirm-box")).to_be_hidden()
    assert tracks_in_db(db) == 24
