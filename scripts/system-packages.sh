#!/usr/bin/env bash
# Install the Debian packages AudioMuse needs when they are missing: scripts/system-packages.sh PACKAGE...
# (ffmpeg decodes m4a/AAC, WMA and other formats libsndfile cannot read; chromium runs the browser tests.)
set -euo pipefail
missing=()
for package in "$@"; do
  case "$package" in
    chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
    node) command -v node >/dev/null 2>&1 || missing+=(nodejs) ;;
    *) command -v "$package" >/dev/null 2>&1 || missing+=("$package") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "Missing Debian packages: ${missing[*]} (install them with apt-get as root)" >&2
    exit 1
  fi
fi
echo "Installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
