"""One headless Chromium per browser test module: Debian's /usr/bin/chromium, driven by Playwright."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import make_server

from app import serve

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts from this closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (1400×1000) per test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


@pytest.fixture
def start_site(make_config, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """start(**settings) → the URL of a real web process (threaded WSGI server) on a local music folder."""
    stops: list[Callable[[], None]] = []

    def start(**overrides: Any) -> str:
        cfg = make_config(**{"MUSIC_DIR": str(tmp_path / "music"), "PLAYLIST_DIR": str(tmp_path / "playlists"),
                             **overrides})
        app = serve(cfg)
        http = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=http.serve_forever, daemon=True).start()
        stops.extend([http.shutdown, app.extensions["audiomuse"].stop_background.set])
        return f"http://127.0.0.1:{http.server_port}"

    yield start
    for stop in stops:
        stop()
