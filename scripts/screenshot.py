"""Screenshot a page of a running AudioMuse with Debian's Chromium, for docs/:
`python scripts/screenshot.py URL OUT.png`.

Used for docs/analysis-page.png on the dev corpus (../shared/data/build-dev-corpus.sh, analyzed by a local copy).
"""

from __future__ import annotations

import argparse

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--wait-for", default="#at-a-glance .main-svg", help="selector to wait for")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1250, help="the part of the page shown (from the top)")
    args = parser.parse_args()
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
