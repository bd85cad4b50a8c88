#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the web page's browser test (Playwright
# drives it; nothing is downloaded by Playwright itself). Needs root or password-less sudo.
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "The browser test needs Debian's chromium at $CHROMIUM, and installing it needs root:" >&2
  echo "  sudo apt-get install --no-install-recommends chromium" >&2
  exit 1
fi

echo "Installing Debian's chromium for the browser test (once)"
export DEBIAN_FRONTEND=noninteractive
install=("${as_root[@]}" apt-get install --quiet --yes --no-install-recommends chromium)
if ! "${install[@]}" >/tmp/install_chromium.log 2>&1; then
  "${as_root[@]}" apt-get update --quiet >>/tmp/install_chromium.log 2>&1
  "${install[@]}" >>/tmp/install_chromium.log 2>&1 || {
    echo "apt-get could not install chromium; its output is in /tmp/install_chromium.log" >&2
    exit 1
  }
fi
"$CHROMIUM" --version 2>/dev/null
