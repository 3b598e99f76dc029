"""The music map page in headless Chromium: samples, the legend, click and lasso selection, search and highlight,
song paths drawn on the map, playlists from the selection, refresh and rebuild, and the error paths."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from db import task_status as store
from tasks.catalog import MAP, start_task
from tests.conftest import OUTPUT_DIR, wait_for
from tests.seeded_library import insert_track, seed_groups

pytestmark = pytest.mark.browser

@pytest.fixture
def mapped(config, db, redis, run_worker_burst, tmp_path: Path) -> list[Any]:
    """The library, mapped by a real projection job (UMAP: 24 tracks)."""
    tracks = seed_groups(db, redis, config, tmp_path / "music")
    task_id = start_task(MAP, {"full": True}, reason="test", db=db, redis=redis, config=config).task_id
    run_worker_burst()
    assert store.get_task(db, task_id)["status"] == "SUCCESS"
    return tracks


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    yield context.new_page()
    context.close()


def shown(page: Page) -> int:
    return int(page.locator("#map-plot").get_attribute("data-points") or -1)


def wait_for_points(page: Page, n: int) -> None:
    expect(page.locator("#map-plot")).to_have_attribute("data-points", str(n), timeout=20_000)


def screen_xy(page: Page, item_id: str) -> tuple[float, float]:
    """Where the song's point is on the screen: its place from /api/map/points through the page's view."""
    return tuple(page.evaluate("""async (id) => {
        const body = await window.AudioMuse.api("/api/map/points", { method: "POST", body: { item_ids: [id] } });
        const [x, y] = body.points[id];
        return window.AudioMuseMap.toScreen(x, y);
    }""", item_id))


def lasso_around(page: Page, item_ids: list[str]) -> None:
    """Drag a lasso (a rectangle traced with the mouse) around the points of `item_ids`."""
    points = np.array([screen_xy(page, i) for i in item_ids])
    (left, top), (right, bottom) = points.min(axis=0) - 6, points.max(axis=0) + 6
    page.mouse.move(left, top)
    page.mouse.down()
    for x, y in ((right, top), (right, bottom), (left, bottom), (left, top + 1)):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def trace_names(page: Page) -> list[str]:
    """The layers drawn (the points, then the overlays), but the selection's rings."""
    return page.evaluate("""() => window.AudioMuseMap.layers()
        .filter((t) => t.visible !== false && t.name !== "selected").map((t) => t.name)""")


def selection(page: Page) -> list[str]:
    return page.locator("#selection-list li").evaluate_all("(lis) => lis.map((li) => li.dataset.itemId)")


def shot(page: Page, name: str) -> None:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / name), full_page=True)


def test_samples_legend_and_selection(start_site, mapped, page):
    base = start_site(MAP_SELECTION_MAX="5")
    page.goto(base + "/map")
    wait_for_points(page, 6)  # 25 % of 24
    expect(page.locator(".percent[data-percent='25']")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#map-projection")).to_contain_text("Projection: UMAP")
    expect(page.locator("#map-message")).to_have_text("6 of 24 songs shown (25 %).")
    page.click(".percent[data-percent='100']")
    wait_for_points(page, 24)
    expect(page.locator("#map-legend button")).to_have_count(3)

    # The legend hides and shows a tag; the state survives loading another sample.
    rock = page.locator("#map-legend button[data-tag='rock']")
    rock.click()
    expect(rock).to_have_attribute("aria-pressed", "false")
    wait_for_points(page, 16)
    page.click(".percent[data-percent='50']")
    expect(page.locator("#map-message")).to_contain_text("12 of 24")
    expect(page.locator("#map-legend button[data-tag='rock']")).to_have_attribute("aria-pressed", "false")
    page.click(".percent[data-percent='100']")
    wait_for_points(page, 16)
    page.click("#legend-hide-all")
    wait_for_points(page, 0)
    page.click("#legend-show-all")
    wait_for_points(page, 24)
    page.locator("#map-legend button[data-tag='jazz']").focus()  # the legend works from the keyboard
    page.keyboard.press("Enter")
    wait_for_points(page, 16)
    page.keyboard.press("Space")
    wait_for_points(page, 24)

    # A click selects one song; a lasso selects a group, up to the cap.
    rock_ids = [t.item_id for i, t in enumerate(mapped) if i % 3 == 0]
    page.mouse.click(*screen_xy(page, rock_ids[0]))
    expect(page.locator("#selection-list li")).to_have_count(1)
    assert selection(page) == [rock_ids[0]]
    electronic = [t.item_id for i, t in enumerate(mapped) if i % 3 == 1]
    lasso_around(page, electronic)
    expect(page.locator("#selection-message")).to_have_text("The selection holds at most 5 songs: 4 not added.")
    expect(page.locator("#selection-list li")).to_have_count(5)
    assert set(selection(page)[1:]) <= set(electronic)
    expect(page.locator("#selection-count")).to_have_text("(5)")
    expect(page.locator("#map-song-path")).to_be_enabled()
    page.locator("#selection-list li").first.locator("button.remove").click()
    expect(page.locator("#selection-list li")).to_have_count(4)
    assert rock_ids[0] not in selection(page)
    ringed = page.evaluate("""() => window.AudioMuseMap.layers().find((t) => t.name === "selected").ids""")
    assert ringed == selection(page)  # the selection is marked on the map
    shot(page, "map-page.png")
    page.click("#selection-clear")
    expect(page.locator("#selection-list li")).to_have_count(0)
    expect(page.locator("#map-song-path")).to_be_disabled()
    expect(page.locator(".playlist-box")).to_be_hidden()


def test_search_highlight_song_path_and_playlist(start_site, mapped, page, tmp_path):
    base = start_site()
    page.goto(base + "/map")
    wait_for_points(page, 6)
    first, last = mapped[0], mapped[-1]
    # Search from the keyboard: type, arrow to the suggestion, Enter picks it, then Search.
    page.fill("#map-search", first.title)
    expect(page.locator(".picker-list li").first).to_be_visible()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.click("#map-search-go")
    expect(page.locator("#map-message")).to_contain_text(f'Found "{first.title}"')
    assert "found" in trace_names(page)
    point = page.evaluate("""() => window.AudioMuseMap.layers().find((d) => d.name === "found").points[0]""")
    ranges = page.evaluate("""() => { const v = window.AudioMuseMap.view(); return [v.x, v.y]; }""")
    for value, (low, high) in zip(point, ranges, strict=True):  # the view is centred on it
        assert abs((low + high) / 2 - value) < 1e-6 * max(1.0, abs(value)) + 1e-6
    assert selection(page) == [first.item_id]
    page.click("#map-highlight-toggle")
    expect(page.locator("#map-highlight-toggle")).to_have_text("Show highlight")
    assert "found" not in trace_names(page)
    page.click("#map-highlight-toggle")
    assert "found" in trace_names(page)

    # A second song by typed text alone (the first match), then a song path between the two.
    page.fill("#map-search", last.title)
    page.click("#map-search-go")
    expect(page.locator("#selection-list li")).to_have_count(2)
    page.click("#map-song-path")
    expect(page.locator("#path-list li")).to_have_count(1)
    expect(page.locator("#selection-message")).to_contain_text("1 paths drawn")
    assert {"path 1 line", "path 1 songs"} <= set(trace_names(page))
    assert len(selection(page)) > 2 and selection(page)[:2] == [first.item_id, last.item_id]
    page.locator("#path-list input[data-toggle='line']").uncheck()
    assert "path 1 line" not in trace_names(page) and "path 1 songs" in trace_names(page)
    page.locator("#path-list input[data-toggle='points']").uncheck()
    assert "path 1 songs" not in trace_names(page)
    page.locator("#path-list input[data-toggle='line']").check()
    assert "path 1 line" in trace_names(page)

    # A playlist of the selection, on the media source and as a download.
    count = len(selection(page))
    page.fill("input[name=playlist_name]", "Map walk")
    page.click(".create-playlist")
    expect(page.locator(".playlist-status")).to_contain_text(f'Playlist "Map walk_instant" created with {count}')
    saved = (tmp_path / "playlists" / "Map walk_instant.m3u8").read_text()
    assert first.path in saved and last.path in saved
    with page.expect_download() as download:
        page.click(".download-m3u")
    download.value.save_as(tmp_path / "download.m3u8")
    assert (tmp_path / "download.m3u8").read_text().startswith("#EXTM3U")

    # The media source fails (its playlist folder is gone and a file is in its place): a clear message.
    shutil.rmtree(tmp_path / "playlists")
    (tmp_path / "playlists").write_text("not a folder")
    page.click(".create-playlist")
    expect(page.locator(".playlist-status")).to_contain_text("Not created:")

    # Refresh clears the selection and the overlays and loads the map again.
    page.click("#map-refresh")
    expect(page.locator("#selection-list li")).to_have_count(0)
    expect(page.locator("#path-list li")).to_have_count(0)
    wait_for_points(page, 6)
    assert trace_names(page) == ["songs"]


def test_rebuild_button_runs_the_job_and_shows_its_progress(start_site, config, db, redis, run_worker_burst, page,
                                                            tmp_path):
    seed_groups(db, redis, config, tmp_path / "music")
    base = start_site()
    page.goto(base + "/map")
    wait_for_points(page, 6)
    expect(page.locator("#map-projection")).to_contain_text("PCA because no map projection has been computed yet")
    page.click("#map-rebuild")
    expect(page.locator("#map-message")).to_contain_text("Rebuilding the map")
    run_worker_burst()
    expect(page.locator("#map-projection")).to_contain_text("Projection: UMAP", timeout=20_000)
    expect(page.locator("#map-message")).to_contain_text("6 of 24 songs shown")


def test_nothing_analyzed_links_to_analysis(start_site, page):
    base = start_site()
    page.goto(base + "/map")
    expect(page.locator("#map-message")).to_contain_text("Nothing has been analyzed yet")
    page.locator("#map-message a", has_text="Go to Analysis").click()
    expect(page).to_have_url(base + "/analysis")


def test_a_failed_projection_job_is_shown_with_the_pca_map(start_site, config, db, redis, run_worker_burst, page,
                                                           tmp_path):
    seed_groups(db, redis, config, tmp_path / "music")
    insert_track(db, item_id="odd", title="Odd", artist="Nobody", vector=np.ones(3))  # another embedding size
    task_id = start_task(MAP, {"full": True}, reason="test", db=db, redis=redis, config=config).task_id
    run_worker_burst()
    assert store.get_task(db, task_id)["status"] == "FAILURE"
    base = start_site()
    page.goto(base + "/map")
    wait_for_points(page, 6)
    expect(page.locator("#map-projection")).to_contain_text("The last map build failed")
    expect(page.locator("#map-projection")).to_contain_text("Showing the PCA map meanwhile")
    expect(page.locator("#map-projection")).to_have_class("muted error")


def test_the_page_draws_the_binary_map_with_webgl_and_names_points_on_hover(start_site, mapped, page):
    base = start_site()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url.removeprefix(base)))
    page.goto(base + "/map?percent=100")
    wait_for_points(page, 24)
    # the page read the binary form, not the JSON document, and drew it with WebGL
    maps = [url for url in asked if url.startswith("/api/map?")]
    assert maps == ["/api/map?percent=100&format=binary"]
    assert page.locator("#map-plot").get_attribute("data-renderer") == "webgl2"
    painted = page.evaluate("() => window.AudioMuseMap.painted()")
    assert painted > 24 * 12  # 24 discs of 6 px, a few overlapping
    page.click("#legend-hide-all")
    wait_for_points(page, 0)
    assert page.evaluate("() => window.AudioMuseMap.painted()") == 0
    page.click("#legend-show-all")
    wait_for_points(page, 24)
    # the pixel renderer (what a large map gets where WebGL has no GPU) draws the same points
    page.goto(base + "/map?percent=100&renderer=pixels")
    wait_for_points(page, 24)
    assert page.locator("#map-plot").get_attribute("data-renderer") == "pixels"
    assert page.evaluate("() => window.AudioMuseMap.painted()") >= 24 * 30  # 24 squares of 6 × 6 px, a few overlapping
    page.click("#legend-hide-all")
    wait_for_points(page, 0)
    assert page.evaluate("() => window.AudioMuseMap.painted()") == 0
    page.goto(base + "/map?percent=100")
    wait_for_points(page, 24)
    asked.clear()

    # Hovering a point names it (asked by point index); the names of the others were never loaded.
    song = mapped[4]
    page.mouse.move(*screen_xy(page, song.item_id))
    expect(page.locator(".map-tooltip")).to_be_visible()
    expect(page.locator(".map-tooltip")).to_contain_text(f"{song.title} — Artist 4 · electronic")
    assert sum(url.startswith("/api/map/items") for url in asked) == 1

    # From the keyboard: + zooms in around the centre, arrows pan, 0 shows it all again.
    whole = page.evaluate("() => window.AudioMuseMap.view()")
    page.locator("#map-plot").focus()
    page.keyboard.press("+")
    zoomed = page.evaluate("() => window.AudioMuseMap.view()")
    assert abs((zoomed["x"][1] - zoomed["x"][0]) * 1.5 - (whole["x"][1] - whole["x"][0])) < 1e-9
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => window.AudioMuseMap.view()")["x"][0] > zoomed["x"][0]
    page.keyboard.press("0")
    assert page.evaluate("() => window.AudioMuseMap.view()") == whole
    # Enter selects the song under the cross: find one (the map centres on it), clear the selection, press Enter.
    page.fill("#map-search", song.title)
    page.click("#map-search-go")
    expect(page.locator("#map-message")).to_contain_text(f'Found "{song.title}"')
    page.click("#selection-clear")
    page.locator("#map-plot").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#selection-list li")).to_have_count(1)
    assert selection(page) == [song.item_id]
    # Box mode selects what a dragged rectangle holds; pan mode moves the view instead.
    page.click("#map-reset")
    page.click(".map-mode[data-mode='box']")
    jazz = [t.item_id for i, t in enumerate(mapped) if i % 3 == 2]
    corners = np.array([screen_xy(page, i) for i in jazz])
    page.mouse.move(*(corners.min(axis=0) - 6))
    page.mouse.down()
    page.mouse.move(*(corners.max(axis=0) + 6), steps=8)
    page.mouse.up()
    expect(page.locator("#selection-list li")).to_have_count(1 + len(jazz))
    page.click(".map-mode[data-mode='pan']")
    before = page.evaluate("() => window.AudioMuseMap.view()")
    box = page.locator("#map-plot").bounding_box()
    page.mouse.move(box["x"] + 200, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 300, box["y"] + 250, steps=5)
    page.mouse.up()
    after = page.evaluate("() => window.AudioMuseMap.view()")
    assert after["x"][0] < before["x"][0] and after["y"][0] > before["y"][0]
    expect(page.locator("#selection-list li")).to_have_count(1 + len(jazz))


def test_a_map_that_changed_since_the_page_loaded_it_is_loaded_again(start_site, config, db, redis, mapped, page):
    from audio.musicnn import MODEL_NAME
    from voyager_manager import rebuild_from_embeddings

    base = start_site()
    page.goto(base + "/map?percent=100")
    wait_for_points(page, 24)
    first = mapped[0]
    where = screen_xy(page, first.item_id)
    # A song is analyzed meanwhile: the index is rebuilt and the web process serves a new version of the map.
    insert_track(db, item_id="late", title="Late song", artist="Somebody", vector=np.ones(24))
    rebuild_from_embeddings(db, redis, name=config.INDEX_NAME, model=MODEL_NAME, channel=config.INDEX_RELOAD_CHANNEL,
                            m=16, ef_construction=100)
    wait_for(lambda: page.evaluate("""async () => (await window.AudioMuse.api("/api/map/status")).served.total""")
             == 25, timeout=20, what="the map of 25 songs served")
    # Hovering names the point by an index of the old version: refused, so the page loads the map again.
    page.mouse.move(*where)
    expect(page.locator("#selection-message")).to_have_text(
        "The map had changed since it was loaded: it has been loaded again. Try once more.")
    wait_for_points(page, 25)
    page.mouse.move(1, 1)
    page.mouse.click(*screen_xy(page, first.item_id))
    expect(page.locator("#selection-list li")).to_have_count(1)
    assert selection(page) == [first.item_id]
