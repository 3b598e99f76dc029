"""The pages in a real browser: Debian's headless Chromium driven by Playwright, against a real HTTP server,
PostgreSQL, Redis and an RQ worker process."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from werkzeug.serving import make_server

from app import serve
from routes.pages import PAGES
from tests.analysis_runs import start_analysis_workers
from tests.conftest import OUTPUT_DIR
from tests.integration import jobs
from tests.library import make_library

pytestmark = pytest.mark.browser

PASSWORD = "browser-test-password"




@pytest.fixture
def server(make_config, worker_processes) -> Iterator[tuple[str, object]]:
    cfg = make_config(ADMIN_PASSWORD=PASSWORD, TASK_LOG_LINES=10)
    app = serve(cfg)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    worker_processes()
    yield f"http://127.0.0.1:{http.server_port}", cfg
    http.shutdown()
    app.extensions["audiomuse"].stop_background.set()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield context.new_page()
    context.close()


def log_in(page: Page, base: str) -> None:
    page.goto(base + "/")
    expect(page).to_have_url(base + "/login?next=/")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")


def test_wrong_password_is_refused_with_a_message(server, page):
    base, _ = server
    page.goto(base + "/sonic_fingerprint")
    page.fill("input[name=password]", "not it")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("Wrong password.")
    expect(page.get_by_role("navigation")).to_be_visible()
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/sonic_fingerprint")


def test_every_navigation_link_loads(server, page):
    base, _ = server
    log_in(page, base)
    for target in PAGES:
        page.locator(".nav-group summary", has_text=target.group).click()  # its menu
        with page.expect_navigation() as nav:
            page.get_by_role("navigation").get_by_role("link", name=target.title, exact=True).click()
        assert nav.value.status == 200, target.path
        expect(page.locator("main h1")).to_have_text(target.title)
    expect(page.locator("table.settings")).to_contain_text("ADMIN_PASSWORD")


def test_task_panel_shows_progress_and_cancels(server, page):
    base, cfg = server
    log_in(page, base)
    task_id = jobs.start(jobs.count_to, {"n": 150, "pause": 0.2}, config=cfg)
    task = page.locator(f'.task[data-task-id="{task_id}"]')
    expect(task.locator(".task-type")).to_have_text("Test count")
    bar = task.locator(".progress")
    page.wait_for_function(
        "id => Number(document.querySelector(`.task[data-task-id='${id}'] .progress`)"
        ".getAttribute('aria-valuenow')) >= 5", arg=task_id)
    first = int(bar.get_attribute("aria-valuenow"))
    page.wait_for_function(
        "([id, v]) => Number(document.querySelector(`.task[data-task-id='${id}'] .progress`)"
        ".getAttribute('aria-valuenow')) > v", arg=[task_id, first])
    expect(task.locator(".task-status")).to_have_text("running")
    expect(task.locator(".task-eta")).to_contain_text("left", timeout=15_000)  # once it has run a while
    expect(task.locator(".task-log-box summary")).to_contain_text("Log (")
    expect(task.locator(".task-log li").last).to_be_hidden()  # folded until asked for
    task.locator(".task-log-box summary").click()
    expect(task.locator(".task-log li").last).to_contain_text("step")
    expect(task.locator(".task-elapsed")).to_contain_text("m ")
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "task-panel.png"), full_page=True)

    task.locator(".task-cancel").click()
    expect(page.locator("#task-last")).to_contain_text("Test count — cancelled")
    expect(task.locator(".task-status")).to_have_text("cancelled")
    expect(task.locator(".task-cancel")).to_be_hidden()


def test_a_failed_task_says_what_to_do_and_the_panel_folds_away(server, page):
    base, cfg = server
    log_in(page, base)
    task_id = jobs.start(jobs.explode, {"value": 7}, config=cfg)
    task = page.locator(f'.task[data-task-id="{task_id}"]')
    expect(task.locator(".task-status")).to_have_text("failed", timeout=20_000)
    expect(task.locator(".task-next")).to_contain_text("What to do")
    expect(task).to_have_class(re.compile(r"\bfinished\b"))
    toggle = page.locator("#task-panel-toggle")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(task).to_be_hidden()
    page.goto(base + "/similarity")  # remembered on the next page
    expect(page.locator("#task-panel-toggle")).to_have_attribute("aria-expanded", "false")
    expect(page.locator(f'.task[data-task-id="{task_id}"]')).to_be_hidden()
    page.locator("#task-panel-toggle").click()
    expect(page.locator(f'.task[data-task-id="{task_id}"] .task-next')).to_be_visible()


@pytest.fixture
def analysis_server(make_config, worker_processes, tmp_path) -> Iterator[str]:
    music = tmp_path / "music"
    make_library(music, albums=2, tracks_per_album=3, seconds=8)
    # asks for CUDA, which this CPU-only onnxruntime lacks: the run goes on on the CPU and the page says why
    env = {"MUSIC_DIR": str(music), "PLAYLIST_DIR": str(tmp_path / "playlists"), "ONNX_PROVIDERS": "cuda,cpu"}
    app = serve(make_config(**env))
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    start_analysis_workers(worker_processes, env)
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    app.extensions["audiomuse"].stop_background.set()


def settle_at(page, selector: str) -> None:
    """Scroll `selector` into view and wait until the page stops moving (a filter scrolls smoothly to the table),
    so coordinates read now are where a mouse click lands."""
    page.locator(selector).scroll_into_view_if_needed()
    page.wait_for_function("""() => new Promise((done) => {
        const y = window.scrollY; setTimeout(() => done(window.scrollY === y), 250); })""")
    page.locator(selector).scroll_into_view_if_needed()


def test_analysis_page_runs_an_analysis_and_lists_the_library(analysis_server, page):
    page.goto(analysis_server + "/analysis")
    expect(page.locator("#library-total")).to_have_text("(0 tracks)")
    page.fill("input[name=num_recent_albums]", "0")
    page.click("#start-analysis")
    expect(page.locator("#analysis-message")).to_contain_text("Analysis started")
    task = page.locator(".task").first
    expect(task.locator(".task-type")).to_have_text("Analysis")
    expect(task.locator(".progress")).to_have_attribute("aria-valuenow", "100", timeout=120_000)
    expect(task.locator(".task-status")).to_have_text("done")
    expect(page.locator("#last-run-summary")).to_contain_text("6 analyzed", timeout=10_000)
    expect(page.locator("#providers-line")).to_have_text("Models ran on: musicnn — CPUExecutionProvider.")
    expect(page.locator("#provider-fallbacks-box")).to_be_visible()
    expect(page.locator("#provider-fallbacks li")).to_have_text(
        [re.compile(r"^musicnn: CUDAExecutionProvider: not in this onnxruntime build")])
    expect(page.locator("#library-rows tr")).to_have_count(6)
    expect(page.locator("#library-total")).to_have_text("(6 tracks)")
    first_row = page.locator("#library-rows tr").first
    expect(first_row.locator("td").nth(5)).to_have_text(re.compile(r"^\d{1,2}[AB]$"))  # Camelot code
    page.fill("#library-search", "Song 1-2")
    expect(page.locator("#library-rows tr")).to_have_count(1)
    expect(page.locator("#library-rows tr td").first).to_have_text("Song 1-2")
    page.fill("#library-search", "")
    expect(page.locator("#library-rows tr")).to_have_count(6)

    # The library at a glance: plots, each clickable through to the tracks behind it.
    expect(page.locator("#at-a-glance")).to_be_visible()
    for chart in ("tempo", "camelot", "energy", "loudness", "tags", "moods"):
        expect(page.locator(f"#{chart}-chart .main-svg").first).to_be_visible()
    camelots = [c.strip() for c in page.locator("#library-rows tr td:nth-child(6)").all_inner_texts()]
    key = max(set(camelots), key=camelots.count)
    # a real mouse click inside the wedge of `key`: the mean of points along its outline lies inside it
    expect(page.locator("#camelot-keys button")).to_have_count(len(set(camelots)))
    settle_at(page, "#camelot-chart")
    point = page.evaluate("""(key) => {
        const node = document.getElementById('camelot-chart');
        const trace = node.data.findIndex((t) => t.customdata.includes(key));
        const index = node.data[trace].customdata.indexOf(key);
        const path = node.querySelectorAll('.barlayer .trace')[trace].querySelectorAll('path')[index];
        const length = path.getTotalLength(), m = path.getScreenCTM();
        let x = 0, y = 0;
        for (let i = 0; i < 40; i++) { const p = path.getPointAtLength(length * i / 40); x += p.x; y += p.y; }
        const svg = path.ownerSVGElement.createSVGPoint(); svg.x = x / 40; svg.y = y / 40;
        const screen = svg.matrixTransform(m);
        return { x: screen.x, y: screen.y };
    }""", key)
    page.mouse.click(point["x"], point["y"])
    expect(page.locator("#library-filter-text")).to_have_text(f"Showing tracks in {key}.")
    expect(page.locator("#library-rows tr")).to_have_count(camelots.count(key))
    for text in page.locator("#library-rows tr td:nth-child(6)").all_inner_texts():
        assert text.strip() == key
    page.click("#library-filter-clear")
    expect(page.locator("#library-rows tr")).to_have_count(6)
    # the same from the keyboard: the key buttons under the wheel
    page.locator("#camelot-keys button", has_text=f"{key} (").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#library-rows tr")).to_have_count(camelots.count(key))
    page.click("#library-filter-clear")
    # a tempo bar: its tracks, and only those
    settle_at(page, "#tempo-chart")
    box = page.locator("#tempo-chart .barlayer .point path").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # Plotly's drag layer takes it
    expect(page.locator("#library-filter-text")).to_contain_text("tracks with tempo")
    label = page.locator("#library-filter-text").inner_text()
    low, high = (float(v) for v in re.search(r"tempo (\d+)–(\d+)", label).groups())
    expect(page.locator("#library-rows")).to_have_attribute("aria-busy", "false")  # the filtered rows are in
    for text in page.locator("#library-rows tr td:nth-child(4)").all_inner_texts():
        assert low - 0.05 <= float(text) <= high + 0.05  # the table rounds to 0.1 BPM
    page.click("#library-filter-clear")
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "analysis-page.png"), full_page=True)

    # Error path: a second start while nothing runs is fine; a bad value is refused with the parameter named.
    page.fill("input[name=top_n_moods]", "0")
    page.click("#start-analysis")
    expect(page.locator("#analysis-message")).to_contain_text("invalid value for 'top_n_moods'")


def test_settings_page_tests_and_saves_the_media_server(server, page, tmp_path):
    base, _ = server
    music = tmp_path / "settings-music"
    make_library(music, albums=2, tracks_per_album=1, seconds=1)
    log_in(page, base)
    page.goto(base + "/settings")
    expect(page.locator("#ms-type")).to_have_value("local")
    page.fill("input[name=music_dir]", str(tmp_path / "nowhere"))
    page.click("#ms-test")
    expect(page.locator("#ms-result")).to_contain_text("Connection failed:")
    expect(page.locator("#ms-result")).to_contain_text("does not exist")
    page.fill("input[name=music_dir]", str(music))
    page.click("#ms-test")
    expect(page.locator("#ms-result")).to_have_text("Connected: 2 albums in settings-music.")
    page.select_option("#ms-type", "navidrome")
    expect(page.locator("input[name=url]")).to_be_visible()
    expect(page.locator("input[name=music_dir]")).to_be_hidden()
    page.fill("input[name=url]", "http://127.0.0.1:4533")
    page.fill("input[name=user]", "alice")
    page.fill("input[name=secret]", "s3cret-value-99")
    page.click("#ms-save")
    expect(page.locator("#ms-result")).to_contain_text("Saved.")
    expect(page.locator("#secret-hint")).to_have_text("saved: ••••••••")
    page.reload()
    expect(page.locator("#ms-type")).to_have_value("navidrome")
    expect(page.locator("input[name=secret]")).to_have_value("")
    assert "s3cret-value-99" not in page.content()


def test_named_api_tokens_are_made_and_revoked_on_settings_by_keyboard(server, page):
    import requests

    base, _ = server
    log_in(page, base)
    page.goto(base + "/settings")
    expect(page.locator("#token-form")).to_contain_text("API tokens for scripts and players")
    tokens = {}
    for name in ("Navidrome plugin", "Backup script"):
        page.locator("#token-name").focus()
        page.keyboard.type(name)
        page.keyboard.press("Enter")  # submits the form from its name field
        expect(page.get_by_role("status")).to_contain_text("not shown again")
        tokens[name] = page.locator("#new-token").input_value()
        page.get_by_role("link", name="Back to Settings").click()
    bearer = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}
    assert all(requests.get(base + "/api/active_tasks", headers=sent, timeout=10).status_code == 200
               for sent in bearer.values())
    page.reload()
    expect(page.locator("table.tokens")).to_contain_text("Navidrome plugin")
    revoke = page.get_by_role("button", name="Revoke the token Backup script")
    revoke.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("revoked")
    assert requests.get(base + "/api/active_tasks", headers=bearer["Backup script"], timeout=10).status_code == 401
    assert requests.get(base + "/api/active_tasks", headers=bearer["Navidrome plugin"],
                        timeout=10).status_code == 200
