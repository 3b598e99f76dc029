#!/usr/bin/env bash
# Install (first run) and start AudioMuse: web server + workers under supervisord.
# Without DATABASE_URL / REDIS_URL it starts a private PostgreSQL and Redis with data under ./var.
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python launcher.py "$@"
