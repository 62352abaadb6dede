#!/usr/bin/env bash
# Installs the Debian packages Hexiao needs when missing; explains what to do when not root.
# `run`: what the gateway needs (mosquitto). `test`: also what the test suite needs.
set -euo pipefail
what="${1:-run}"
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
if [ "$what" = "test" ]; then
# PostgreSQL: the ledger runs on it too, and the test suite proves that against a real server.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# Chromium: the console's browser tests drive Debian's build with Playwright (never a downloaded browser).
[ -x /usr/bin/chromium ] || need+=(chromium)
# A CJK font, so the console's Chinese pages render (and are screenshotted) with real glyphs.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo ">> installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || true
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The package starts a system-wide broker on :1883; we run our own, so leave theirs as Debian set it.
else
  echo "!! missing: ${need[*]}. Install with: sudo apt-get install ${need[*]}" >&2
  echo "!! (make run falls back to a demo-only in-process broker; make test needs them all)" >&2
fi
