"""The clustering page in headless Chromium: run the preset and a custom run on a library of four clear styles with
real RQ workers, see the generated playlists (and their .m3u8 files in the local media source), the server's error
for bad parameters or an empty library, the Playlists-wanted control and the pin toggles."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from werkzeug.serving import make_server

from app import serve
from services import automatic_playlists as automatic
from tests.conftest import OUTPUT_DIR
from tests.style_library import seed_style_library

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 120_000


class Site(NamedTuple):
    base: str            # http://127.0.0.1:port
    playlist_dir: Path   # the local media source's PLAYLIST_DIR


@pytest.fixture
def make_site(make_config, db, redis, worker_processes, tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """Serve the app on a real HTTP port; with `library`, seed the four-style library and start workers (one for
    the main task on `high`, two for the batches on `default`) that get the same settings through their env."""
    stops: list[Callable[[], None]] = []

    def start(*, library: bool = True, workers: bool = True) -> Site:
        env = {"MUSIC_DIR": str(tmp_path / "music"), "PLAYLIST_DIR": str(tmp_path / "playlists"),
               "DATA_DIR": str(tmp_path / "data"), "ITERATIONS_PER_BATCH_JOB": "10",
               "CLUSTERING_BATCH_CHECK_INTERVAL_SECONDS": "0.2"}
        (tmp_path / "music").mkdir(exist_ok=True)
        if library:
            seed_style_library(db, tmp_path / "music", per_style=12)
        app = serve(make_config(**env))
        http = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=http.serve_forever, daemon=True).start()
        stops.extend([http.shutdown, app.extensions["audiomuse"].stop_background.set])
        if workers:
            worker_processes("--queues", "high", env=env)
            worker_processes("--queues", "default", env=env)
            worker_processes("--queues", "default", env=env)
        return Site(f"http://127.0.0.1:{http.server_port}", tmp_path / "playlists")

    yield start
    for stop in stops:
        stop()


def shot(page: Page, name: str) -> None:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / name), full_page=True)


def last_run(page: Page, base: str) -> Any:
    return page.request.get(base + "/api/clustering/last").json()["last_run"]


def wait_for_playlists(page: Page, base: str, minimum: int) -> list[str]:
    """Wait until the page lists at least `minimum` generated playlists; on a failed run, fail with its message."""
    playlists = page.locator("#generated-playlists .generated-playlist")
    try:
        page.wait_for_function(
            "n => document.querySelectorAll('#generated-playlists .generated-playlist').length >= n"
            " || ['FAILURE', 'REVOKED'].includes(document.getElementById('run-status').dataset.status)",
            arg=minimum, timeout=RUN_TIMEOUT_MS)
    except PlaywrightTimeout:
        raise AssertionError(f"no playlists listed; last run: {last_run(page, base)}") from None
    run = last_run(page, base)
    assert run["status"] == "SUCCESS", run
    return playlists.locator(".playlist-name").all_text_contents()


def test_run_preset_lists_playlists_and_writes_m3u8(make_site, page):
    site = make_site()
    page.goto(site.base + "/clustering")
    expect(page.locator("#library-size")).to_have_text("48")
    preset = page.request.get(site.base + "/api/clustering/preset").json()["params"]  # follows the library size
    expect(page.locator("#preset-summary")).to_contain_text(
        f"K-Means, {preset['clustering_runs']} runs, {preset['num_clusters_min']}–{preset['num_clusters_max']} "
        f"clusters, up to {preset['top_n_playlists']} playlists of {preset['min_playlist_size']}–"
        f"{preset['max_songs_per_cluster']} songs")
    expect(page.locator("#playlists-empty")).to_be_visible()
    expect(page.locator("#run-status")).to_have_text("No clustering has run yet.")

    page.click("#run-preset")
    expect(page.locator("#clustering-message")).to_contain_text("Clustering started")
    expect(page.locator("#run-preset")).to_be_disabled()  # while the run is active
    expect(page.locator("#start-clustering")).to_be_disabled()
    expect(page.locator("#run-status")).to_contain_text("Running")
    names = wait_for_playlists(page, site.base, 2)
    assert all(name.endswith("_automatic") for name in names), names
    expect(page.locator("#run-status")).to_contain_text("Finished")
    expect(page.locator("#run-status")).to_contain_text("best score")
    expect(page.locator("#run-status")).to_contain_text(re.compile(r"quality \d+(\.\d)?/100"))
    expect(page.locator("#run-status")).to_contain_text(re.compile(r"The playlists cover \d+ of 48 songs"))
    expect(page.locator("#run-status")).to_contain_text(f"{preset['clustering_runs']} runs")
    expect(page.locator("#run-preset")).to_be_enabled()
    expect(page.locator("#playlist-count")).to_have_text(f"({len(names)})")
    # the best score over the runs, drawn from the result's history (at least its first and last improvement)
    points = len(page.request.get(site.base + "/api/clustering/last").json()["last_run"]["result"]["best_history"])
    if points >= 2:
        expect(page.locator("#score-chart svg.line-chart circle")).to_have_count(points)
    else:
        expect(page.locator("#score-chart")).to_be_hidden()

    # Each playlist's song list opens, and its count matches the songs shown.
    first = page.locator(".generated-playlist").first
    first.locator("summary").click()
    songs = first.locator("ol li")
    expect(songs.first).to_be_visible()
    count = int(re.search(r"\d+", first.locator(".playlist-size").inner_text()).group())
    expect(songs).to_have_count(count)
    assert count >= 3
    # each song has a preview button (the shared player; playing itself is tested on the text-search page)
    expect(songs.first.get_by_role("button", name=re.compile("^Play "))).to_be_visible()
    expect(first.locator("ol li button.play")).to_have_count(count)

    # The local media source publishes each playlist as an .m3u8 file in PLAYLIST_DIR.
    files = sorted(site.playlist_dir.glob("*.m3u8"))
    assert len(files) == len(names), files
    titles = {f.read_text().splitlines()[1] for f in files}
    assert titles == {f"#PLAYLIST:{name}" for name in names}
    assert all(f.read_text().startswith("#EXTM3U") and ".flac" in f.read_text() for f in files)
    shot(page, "clustering-preset.png")


def test_custom_run_from_the_basic_view(make_site, page):
    site = make_site()
    page.goto(site.base + "/clustering")
    expect(page.locator("#f-num_clusters_min")).to_be_hidden()  # the ranges are under Advanced
    page.locator("#advanced summary").click()
    expect(page.locator("#f-num_clusters_min")).to_be_visible()  # K-Means is the default algorithm
    expect(page.locator("#f-dbscan_eps_min")).to_be_hidden()
    page.select_option("#f-clustering_method", "dbscan")
    expect(page.locator("#f-dbscan_eps_min")).to_be_visible()
    expect(page.locator("#f-num_clusters_min")).to_be_hidden()
    page.select_option("#f-clustering_method", "kmeans")

    preset = page.request.get(site.base + "/api/clustering/preset").json()["params"]
    page.click("#preset-to-form")
    expect(page.locator("#f-clustering_runs")).to_have_value(str(preset["clustering_runs"]))
    expect(page.locator("#f-num_clusters_max")).to_have_value(str(preset["num_clusters_max"]))
    page.fill("#f-clustering_runs", "20")
    page.fill("#f-num_clusters_min", "3")
    page.fill("#f-num_clusters_max", "6")
    page.fill("#f-top_n_playlists", "4")
    page.fill("#f-min_playlist_size", "3")
    page.fill("#f-seed", "7")
    with page.expect_response("**/api/clustering/start") as answer:
        page.click("#start-clustering")
    assert answer.value.status == 202, answer.value.json()
    body = answer.value.request.post_data_json
    # Numbers and booleans of the right JSON types, and only the chosen algorithm's ranges.
    assert (body["clustering_runs"], body["num_clusters_min"], body["num_clusters_max"]) == (20, 3, 6)
    assert body["enable_clustering_embeddings"] is False and body["seed"] == 7
    # the preset's values: its discovery (on) keeps the ranges given, as Playlists wanted is 0
    assert body["auto_parameter_discovery"] is True and body["playlists_wanted"] == 0
    assert isinstance(body["score_weight_purity"], float | int) and body["clustering_method"] == "kmeans"
    assert not any(key.startswith(("dbscan_", "gmm_", "spectral_")) for key in body), body
    names = wait_for_playlists(page, site.base, 2)
    assert 2 <= len(names) <= 4 and all(name.endswith("_automatic") for name in names), names
    expect(page.locator("#run-status")).to_contain_text("20 runs")
    expect(page.locator("#run-status")).to_contain_text("seed 7")

    run = last_run(page, site.base)
    best = run["result"]["best_params"]
    assert best["algorithm"] == "kmeans" and 3 <= best["n_clusters"] <= 6, best
    assert len(list(site.playlist_dir.glob("*.m3u8"))) == len(names)
    # The four styles are far apart: each playlist (collapsed, but listed) holds songs of one style only.
    for i in range(len(names)):
        songs = page.locator(".generated-playlist").nth(i).locator("ol li").all_text_contents()
        assert songs and len({song.replace("▶", "").split()[0] for song in songs}) == 1, (names[i], songs)
    shot(page, "clustering-custom.png")


def test_bad_values_show_the_servers_error_and_start_nothing(make_site, page, db):
    site = make_site(workers=False)  # a task started by mistake would stay in task_status
    page.goto(site.base + "/clustering")
    message = page.locator("#clustering-message")
    expect(message).to_be_hidden()  # nothing to say yet

    page.fill("#f-clustering_runs", "0")
    page.click("#start-clustering")
    expect(message).to_have_text(
        "Could not start: invalid value for 'clustering_runs': 0 (between 1 and 100000)")
    expect(message).to_have_attribute("role", "alert")
    expect(page.locator("#f-clustering_runs")).to_have_attribute("aria-invalid", "true")

    # A bad value in the closed Advanced section opens it and marks the field.
    page.fill("#f-clustering_runs", "20")
    page.evaluate("document.getElementById('f-num_clusters_min').value = '6';"
                  "document.getElementById('f-num_clusters_max').value = '3'")
    expect(page.locator("#f-num_clusters_max")).to_be_hidden()
    page.click("#start-clustering")
    expect(message).to_have_text(
        "Could not start: invalid value for 'num_clusters_max': 3 (at least num_clusters_min=6)")
    expect(page.locator("#f-num_clusters_max")).to_be_visible()
    expect(page.locator("#f-num_clusters_max")).to_be_focused()
    expect(page.locator("#f-clustering_runs")).not_to_have_attribute("aria-invalid", "true")

    page.fill("#f-num_clusters_max", "8")
    page.locator("#advanced summary").click()  # closed again
    expect(page.locator("#f-min_playlist_size")).to_be_hidden()
    page.evaluate("document.getElementById('f-min_playlist_size').value = '0'")
    page.click("#start-clustering")
    expect(message).to_contain_text("invalid value for 'min_playlist_size': 0")
    expect(page.locator("#f-min_playlist_size")).to_be_visible()
    expect(page.locator("#f-min_playlist_size")).to_be_focused()

    # An empty field is caught before anything is sent.
    page.fill("#f-min_playlist_size", "")
    page.click("#start-clustering")
    expect(message).to_have_text("Min playlist size: enter a number.")

    assert last_run(page, site.base) is None
    assert db.fetch_one("SELECT count(*) AS n FROM task_status")["n"] == 0
    expect(page.locator("#run-status")).to_have_text("No clustering has run yet.")
    shot(page, "clustering-error.png")


def test_empty_library_asks_for_an_analysis(make_site, page, db):
    site = make_site(library=False, workers=False)
    page.goto(site.base + "/clustering")
    expect(page.locator("#library-size")).to_have_text("0")
    page.click("#run-preset")
    expect(page.locator("#clustering-message")).to_contain_text("run an analysis first")
    expect(page.locator("#clustering-message")).to_have_class(re.compile(r"\berror\b"))
    assert db.fetch_one("SELECT count(*) AS n FROM task_status")["n"] == 0



def test_playlists_wanted_up_front_and_pins_toggled_by_keyboard(make_site, page, db):
    """The number of playlists is asked up front (parameter discovery on, the ranges under Advanced); each generated
    playlist has a pin toggle that works from the keyboard and is kept by the server."""
    site = make_site(workers=False)
    songs = [r["item_id"] for r in db.fetch_all("SELECT item_id FROM tracks ORDER BY item_id LIMIT 5")]
    automatic.save(db, [("Calm_automatic", songs[:3]), ("Party_automatic", songs[3:5])])  # an earlier run's
    page.goto(site.base + "/clustering")
    wanted = page.locator("#f-playlists_wanted")
    expect(wanted).to_be_visible()
    expect(wanted).to_have_value("8")  # the playlists kept (TOP_N_PLAYLISTS) while CLUSTERING_PLAYLISTS_WANTED is 0
    for advanced in ("#f-auto_parameter_discovery", "#f-top_n_playlists", "#f-num_clusters_min"):
        expect(page.locator(advanced)).to_be_hidden()
    wanted.fill("3")
    page.locator("#advanced summary").click()
    expect(page.locator("#f-auto_parameter_discovery")).to_be_checked()
    expect(page.locator("#f-top_n_playlists")).to_have_value("3")  # follows Playlists wanted...
    page.fill("#f-top_n_playlists", "5")
    wanted.fill("4")
    expect(page.locator("#f-top_n_playlists")).to_have_value("5")  # ...until changed by hand
    with page.expect_response("**/api/clustering/start") as answer:
        page.click("#start-clustering")
    assert answer.value.status == 202, answer.value.json()
    sent = answer.value.request.post_data_json
    assert (sent["playlists_wanted"], sent["top_n_playlists"], sent["auto_parameter_discovery"]) == (4, 5, True)
    assert answer.value.json()["params"]["playlists_wanted"] == 4

    calm = page.get_by_role("button", name="Pin Calm_automatic")
    party = page.get_by_role("button", name="Pin Party_automatic")
    expect(calm).to_have_attribute("aria-pressed", "false")
    calm.focus()
    page.keyboard.press("Enter")
    expect(calm).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#pin-status")).to_have_text("Calm_automatic is pinned: later runs leave it alone.")
    expect(calm).to_be_focused()
    pins = {p["name"]: p["pinned"] for p in page.request.get(site.base + "/api/clustering/playlists").json()[
        "playlists"]}
    assert pins == {"Calm_automatic": True, "Party_automatic": False}
    page.reload()
    expect(calm).to_have_attribute("aria-pressed", "true")  # kept by the server
    expect(party).to_have_attribute("aria-pressed", "false")
    calm.focus()
    page.keyboard.press("Space")
    expect(calm).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#pin-status")).to_contain_text("Calm_automatic is no longer pinned")
    # a playlist gone meanwhile: the server's 404 is said, the toggle stays as it was
    db.execute("DELETE FROM playlists WHERE name = 'Party_automatic'")
    party.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#pin-status")).to_have_text(
        "Could not pin Party_automatic: no automatic playlist named 'Party_automatic'")
    expect(page.locator("#pin-status")).to_have_class(re.compile(r"\berror\b"))
    expect(party).to_have_attribute("aria-pressed", "false")
    shot(page, "clustering-pins.png")
