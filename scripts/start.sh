#!/usr/bin/env bash
# Install (first run) and start AudioMuse: web server + workers under supervisord.
# Without DATABASE_URL / REDIS_URL it starts a private PostgreSQL and Redis with data under ./var.
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/system-packages.sh ffmpeg || echo "Without ffmpeg, m4a/AAC and WMA files cannot be analyzed." >&2
exec .venv/bin/python launcher.py "$@"
