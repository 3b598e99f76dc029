"""Every page through axe-core (the npm package, in the page) and at a desktop and a phone width: no serious or
critical accessibility violation, in the light and the dark theme, and nothing wider than the screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from db import playlists as playlist_store
from routes.pages import HOME, PAGES
from tests.conftest import REPO_ROOT
from tests.seeded_library import seed_groups

pytestmark = pytest.mark.browser

AXE = REPO_ROOT / "tests" / "browser_tools" / "node_modules" / "axe-core" / "axe.min.js"
EVERY_PAGE = [HOME.path] + [p.path for p in PAGES]
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run scripts/browser-tools.sh")
    return AXE.read_text()


@pytest.fixture
def site(start_site, config, db, redis, tmp_path: Path) -> str:
    tracks = seed_groups(db, redis, config, tmp_path / "music")
    playlist_store.save_playlist(db, name="Calm_automatic", source="clustering",
                                 item_ids=[t.item_id for t in tracks[:4]], mediaserver_playlist="x")
    return start_site()


def serious_violations(page: Page, axe_source: str) -> list[dict[str, Any]]:
    page.add_script_tag(content=axe_source)
    result = page.evaluate("""async () => {
        const found = await axe.run(document, { resultTypes: ["violations"] });
        return found.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


# what sticks out past the right edge (none when the page is no wider than the screen)
WIDER_THAN_THE_SCREEN = """() => {
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth <= width) return [];
    return [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > width + 1)
        .slice(0, 6).map((e) => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`);
}"""


def settled(page: Page) -> None:
    """The page's first answers are in (tables filled, the map drawn): what a person would see."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_has_no_serious_violation_and_fits_the_screen(site, browser: Browser, axe_source, theme):
    failures = {}
    for size, (width, height) in SIZES.items():
        context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=theme,
                                      is_mobile=size == "phone")
        page = context.new_page()
        try:
            for path in EVERY_PAGE:
                page.goto(site + path)
                expect(page.locator("main h1")).to_have_count(1)
                settled(page)
                problems = serious_violations(page, axe_source)
                if problems:
                    failures[f"{path} ({size}, {theme})"] = problems
                wide = page.evaluate(WIDER_THAN_THE_SCREEN)
                if wide:  # a chart drawn at its first size is resized to its box a moment later
                    page.wait_for_timeout(1500)
                    wide = page.evaluate(WIDER_THAN_THE_SCREEN)
                if wide:
                    failures[f"{path} ({size}, {theme}) overflow"] = wide
        finally:
            context.close()
    assert not failures, failures


# every control a person can use, visible, in <main> (not inside a closed <details>: its content is not drawn)
CONTROLS_IN_MAIN = """() => [...document.querySelectorAll(
    "main input:not([type=hidden]), main select, main textarea, main button, main a[href], main summary")]
    .filter((e) => !e.disabled && e.checkVisibility({ checkVisibilityCSS: true, contentVisibilityAuto: true }))
    .map((e) => e.id || e.name || e.textContent.trim().slice(0, 40) || e.outerHTML.slice(0, 60))"""


def test_every_control_of_every_page_is_reached_with_the_keyboard(site, page: Page):
    """Tab alone reaches every visible control of every page's forms (no mouse-only control, no focus trap), and
    the focused control is visibly marked."""
    missed = {}
    for path in EVERY_PAGE:
        page.goto(site + path)
        expect(page.locator("main h1")).to_have_count(1)
        settled(page)
        wanted = page.evaluate(CONTROLS_IN_MAIN)
        reached: set[str] = set()
        unmarked = []
        for _ in range(len(wanted) + 60):  # the top bar's and the side panel's controls come first or after
            page.keyboard.press("Tab")
            focused = page.evaluate("""() => { const e = document.activeElement;
                if (!e || !e.closest("main")) return null;
                const style = getComputedStyle(e);
                return [e.id || e.name || e.textContent.trim().slice(0, 40) || e.outerHTML.slice(0, 60),
                        style.outlineStyle !== "none" || style.boxShadow !== "none"]; }""")
            if focused:
                reached.add(focused[0])
                if not focused[1]:
                    unmarked.append(focused[0])
            if reached >= set(wanted):
                break
        if set(wanted) - reached or unmarked:
            missed[path] = {"not reached": sorted(set(wanted) - reached)[:8], "no focus mark": unmarked[:8]}
    assert not missed, missed
