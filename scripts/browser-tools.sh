#!/usr/bin/env bash
# The browser tests' page checkers, pinned in tests/browser_tools/package-lock.json: axe-core (accessibility, run
# in the page) and Lighthouse (bench/lighthouse.py). Node and npm come from Debian when missing; `npm ci` runs
# again only when the lock file changes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh node npm
tools=tests/browser_tools
stamp="$tools/node_modules/.installed-$(sha256sum "$tools/package-lock.json" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi
