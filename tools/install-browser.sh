#!/usr/bin/env bash
# Install Debian's Chromium for the real-browser test (tests/browser/), once.
#
# Idempotent: does nothing when /usr/lib/chromium/chromium is already there.
# Never runs `playwright install`: the Playwright wheel carries its driver, and
# the test drives Debian's Chromium through executable_path.
set -euo pipefail

CHROMIUM=/usr/lib/chromium/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $CHROMIUM is present"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-browser: $CHROMIUM is missing and this user cannot install packages (not root, no sudo)" >&2
    exit 1
fi

echo "install-browser: installing chromium and fonts-liberation with apt-get"
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends chromium fonts-liberation

if [ ! -x "$CHROMIUM" ]; then
    echo "install-browser: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "install-browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed"
