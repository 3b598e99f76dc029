"""Lighthouse (the npm package, tests/browser_tools) on the pages issue 30 names, against the real web server
(gunicorn) and Debian's Chromium, desktop preset; prints the scores (markdown).

    .venv/bin/python bench/lighthouse.py [--tracks 5000] [--runs 3] [--screenshots docs/pages]

The library is synthetic (bench.similarity's rows with tag scores, an index, a worker so the home page has nothing to
warn about); each page is measured --runs times and the median of each score is kept (performance moves from run to
run on a 2-core machine). Install the tools first: scripts/browser-tools.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audio.musicnn import MODEL_NAME  # noqa: E402
from bench.map import library_chunks, tag_json  # noqa: E402
from bench.similarity import free_port, load_library  # noqa: E402
from bench.stack import (  # noqa: E402
    embedded_services,
    start_web_server,
    stop_web_server,
    task_workers,
    wait_for_caches,
    wait_for_index,
)
from db.pool import Database  # noqa: E402
from voyager_manager import build_index, store_index  # noqa: E402

LIGHTHOUSE = ROOT / "tests" / "browser_tools" / "node_modules" / ".bin" / "lighthouse"
PAGES = {"Home": "/", "Similar songs": "/similarity", "Music map": "/map", "Text search": "/text_search",
         "Settings": "/settings"}
CATEGORIES = ("performance", "accessibility", "best-practices")
TARGETS = {"performance": 85, "accessibility": 95, "best-practices": 95}


def audit(url: str) -> dict[str, float]:
    """One Lighthouse run on `url`: each category's score (0-100)."""
    with tempfile.TemporaryDirectory(prefix="lighthouse-") as work:
        report = Path(work) / "report.json"
        done = subprocess.run(
            [str(LIGHTHOUSE), url, "--preset=desktop", "--output=json", f"--output-path={report}", "--quiet",
             f"--only-categories={','.join(CATEGORIES)}",
             "--chrome-flags=--headless=new --no-sandbox --disable-gpu --disable-background-networking "
             f"--user-data-dir={work}/profile"],
            env=dict(os.environ, CHROME_PATH="/usr/bin/chromium"), capture_output=True, text=True, timeout=300,
            check=False)
        if done.returncode != 0 or not report.is_file():
            raise RuntimeError(f"lighthouse failed on {url}: {done.stderr.strip()[-500:]}")
        categories = json.loads(report.read_text())["categories"]
    return {name: round(100 * (categories[name]["score"] or 0), 1) for name in CATEGORIES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--screenshots", type=Path, metavar="DIR",
                        help="also shoot every page (desktop, phone, dark) of the same server into DIR")
    parser.add_argument("--screenshots-only", action="store_true", help="no Lighthouse runs (with --screenshots)")
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        print("Lighthouse is not installed: run scripts/browser-tools.sh", file=sys.stderr)
        return 1
    rng = random.Random(5)
    with embedded_services() as (work, database_url, redis_url):
        db = Database(database_url, max_connections=2)
        vectors, labels = next(library_chunks(args.tracks, chunk=args.tracks))
        ids = load_library(db, vectors, rng, tags=lambda i: tag_json(int(labels[i]), rng))
        store_index(db, "music_library", build_index(ids, vectors), ids, model=MODEL_NAME)
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                   DATA_DIR=str(work), MUSIC_DIR=str(work / "music"))
        (work / "music").mkdir()
        port = free_port()
        web = start_web_server(dict(env, PORT=str(port)), port)
        base = f"http://127.0.0.1:{port}"
        try:
            with task_workers(env, child_workers=0):
                wait_for_index(base, len(ids))
                wait_for_caches(base)
                time.sleep(2)
                rows = []
                for name, path in PAGES.items() if not args.screenshots_only else ():
                    runs = [audit(base + path) for _ in range(args.runs)]
                    rows.append((name, path, {c: statistics.median(r[c] for r in runs) for c in CATEGORIES},
                                 runs))
                    print(f"{name}: {rows[-1][2]}", file=sys.stderr, flush=True)
                if args.screenshots:
                    subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshot.py"), "--all", base,
                                    str(args.screenshots), "--similar-to", ids[10]], check=True)
                if args.screenshots_only:
                    return 0
        finally:
            stop_web_server(web)
    version = subprocess.run([str(LIGHTHOUSE), "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True,
                              check=False).stdout.strip()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}; Lighthouse {version} (desktop preset), {chromium} headless; the real web "
          f"server (gunicorn) on this machine with a synthetic library of {args.tracks:,} tracks; median of "
          f"{args.runs} runs per page (every run in brackets).\n")
    print("| page | performance | accessibility | best practices |")
    print("| --- | --- | --- | --- |")
    for name, path, median, runs in rows:
        cells = []
        for category in CATEGORIES:
            mark = "" if median[category] >= TARGETS[category] else " (below target)"
            cells.append(f"{median[category]:.0f}{mark} ({', '.join(f'{r[category]:.0f}' for r in runs)})")
        print(f"| {name} (`{path}`) | " + " | ".join(cells) + " |")
    print(f"\nTargets (issue 30): performance ≥ {TARGETS['performance']}, accessibility ≥ "
          f"{TARGETS['accessibility']}, best practices ≥ {TARGETS['best-practices']}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
