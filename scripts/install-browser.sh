#!/usr/bin/env bash
# Install Debian's Chromium when missing (for make e2e-browser). Exit 0 when Chromium is there afterwards,
# 3 when it cannot be installed (no root/sudo, no package): the caller skips the browser check, loudly.
set -uo pipefail
if command -v chromium >/dev/null || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "Cannot install chromium: not root and no sudo." >&2
  exit 3
fi
echo "Installing chromium from Debian's packages..."
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium; then
  "${sudo[@]}" apt-get update -q && "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium || exit 3
fi
command -v chromium >/dev/null || exit 3
