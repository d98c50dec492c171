#!/usr/bin/env bash
# Install Debian's Chromium and the fonts for the real-browser test (tests/browser/), once.
#
# Idempotent and fast when present: does nothing when /usr/lib/chromium/chromium is
# there and every package below is installed (one dpkg-query). Otherwise: apt-get
# update, then the missing packages, without the recommended extras:
#   chromium                Debian's build (the test launches it by executable_path)
#   fonts-liberation        Latin text with the usual metrics
#   fonts-noto-cjk          Chinese text of the sample data (hosts, services, messages)
#   fonts-noto-color-emoji  the sample data's emoji, drawn instead of empty boxes
# Never runs `playwright install`: the Playwright wheel carries its driver, and the
# test drives Debian's Chromium.
#
# When they cannot be installed (not root and no password-less sudo, or apt-get
# fails), this fails if CI is set; elsewhere it warns and exits 0, and the browser
# test then skips (no Chromium) or fails (no fonts) with the same advice.
set -euo pipefail

CHROMIUM=/usr/lib/chromium/chromium
PACKAGES=(chromium fonts-liberation fonts-noto-cjk fonts-noto-color-emoji)

missing=()
for package in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$package")
    fi
done

if [ -x "$CHROMIUM" ] && [ ${#missing[@]} -eq 0 ]; then
    echo "install-browser: $CHROMIUM and its fonts are present"
    exit 0
fi

give_up() {
    echo "install-browser: $1" >&2
    if [ -n "${CI:-}" ]; then
        exit 1
    fi
    echo "install-browser: continuing without them; the browser test will skip or fail" >&2
    exit 0
}

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    give_up "missing: ${missing[*]}; this user cannot install packages (not root, no password-less sudo)"
fi

echo "install-browser: installing ${missing[*]} with apt-get"
"${SUDO[@]}" apt-get update || give_up "apt-get update failed"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}" \
    || give_up "apt-get install ${missing[*]} failed"

if [ ! -x "$CHROMIUM" ]; then
    give_up "apt-get finished but $CHROMIUM is still missing"
fi
echo "install-browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) and its fonts installed"
