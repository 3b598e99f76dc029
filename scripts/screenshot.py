"""Screenshot pages of a running AudioMuse with Debian's Chromium, for docs/.

    python scripts/screenshot.py URL OUT.png [--wait-for SELECTOR]     one page
    python scripts/screenshot.py --all BASE_URL OUT_DIR                every page: desktop, phone and dark

`--all` writes OUT_DIR/<page>-desktop.png (1366×900), <page>-phone.png (390×844) and <page>-dark.png (1366×900,
dark theme) for Home and every page of the navigation, each once its first answers are in (the network idle).
docs/analysis-page.png and docs/map-page.png were taken on the dev corpus (../shared/data/build-dev-corpus.sh,
analyzed by a local copy); docs/pages/ by `--all` (see the README's Pages section for the library it showed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from routes.pages import HOME, PAGES  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
VARIANTS = {"desktop": ((1366, 900), "light", False), "phone": ((390, 844), "light", True),
            "dark": ((1366, 900), "dark", False)}


def settle(page: Page) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(800)  # let Plotly and the map finish drawing


def every_page(base: str, out: Path, *, similar_to: str = "") -> None:
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        for variant, ((width, height), theme, phone) in VARIANTS.items():
            context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=theme,
                                          is_mobile=phone, device_scale_factor=1)
            page = context.new_page()
            for target in (HOME, *PAGES):
                # Similar songs with a seed handed over (as Home's quick action does): its results, not a blank form
                seed = f"?item_id={similar_to}&title=Song+10" if similar_to and target.endpoint == "similarity" else ""
                page.goto(base.rstrip("/") + target.path + seed)
                settle(page)
                page.screenshot(path=str(out / f"{target.endpoint}-{variant}.png"), full_page=bool(seed))
                print(out / f"{target.endpoint}-{variant}.png")
            context.close()
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--all", action="store_true", help="every page, desktop, phone and dark, into OUT (a folder)")
    parser.add_argument("--similar-to", default="", metavar="ITEM_ID", help="with --all: the similar-songs seed")
    parser.add_argument("--wait-for", default="#at-a-glance .main-svg", help="selector to wait for")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1250, help="the part of the page shown (from the top)")
    args = parser.parse_args()
    if args.all:
        every_page(args.url, Path(args.out), similar_to=args.similar_to)
        return 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.url)
        page.locator(args.wait_for).first.wait_for()
        page.wait_for_timeout(800)  # let Plotly finish its transitions
        page.screenshot(path=args.out)
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
