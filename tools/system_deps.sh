#!/usr/bin/env bash
# Installs the Debian packages Hexiao needs when missing; explains what to do when not root.
# `run`: what the gateway needs (mosquitto, python3-venv). `test`: also what the test suite needs.
# `fresh`: only what `make check-fresh` needs on this machine (debootstrap, qemu-user-static).
# Each package is installed on its own, so one that cannot be had (Ubuntu's snap-only Chromium, a
# mirror without PostgreSQL) is named with what to do, and never stops the others from installing.
set -uo pipefail
what="${1:-run}"
need=()
if [ "$what" = "fresh" ]; then
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
  [ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
else
  # python3 -m venv needs ensurepip, which Debian ships in python3-venv (python3.X-venv on Ubuntu).
  python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
fi
if [ "$what" = "test" ]; then
  # PostgreSQL: the ledger runs on it too, and the test suite proves that against a real server.
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  # Chromium: the console's browser tests drive Debian's build with Playwright (never a downloaded browser).
  [ -x /usr/bin/chromium ] || need+=(chromium)
  # A CJK font, so the console's Chinese pages render (and are screenshotted) with real glyphs.
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
  # Node.js for pyright (the firmware's type check); without it pyright would download one at test time.
  command -v node >/dev/null 2>&1 || need+=(nodejs)
fi
[ ${#need[@]} -eq 0 ] && exit 0

distro="$( (. /etc/os-release 2>/dev/null && echo "${ID:-}") || true)"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "!! missing: ${need[*]}. Install with: sudo apt-get install ${need[*]}" >&2
  echo "!! (make run falls back to a demo-only in-process broker; make test needs them all)" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
echo ">> installing Debian packages: ${need[*]}"
apt-get update -qq >/dev/null 2>&1 || echo "!! apt-get update failed; trying the package lists as they are" >&2
failed=()
for pkg in "${need[@]}"; do
  if [ "$pkg" = chromium ] && [ "$distro" = ubuntu ]; then
    # Ubuntu's chromium packages only install a snap wrapper, which Playwright cannot drive headless here.
    echo "!! chromium: Ubuntu ships it as a snap only. Install a Debian build or Google Chrome, then link it:" >&2
    echo "!!   sudo ln -s \"\$(command -v google-chrome)\" /usr/bin/chromium   (the browser tests use /usr/bin/chromium)" >&2
    failed+=(chromium)
    continue
  fi
  if [ "$pkg" = python3-venv ] && [ "$distro" = ubuntu ]; then
    pkg="python3.$(python3 -c 'import sys; print(sys.version_info[1])')-venv"
  fi
  if ! out="$(apt-get install -y -qq --no-install-recommends "$pkg" 2>&1 >/dev/null)"; then
    echo "!! could not install $pkg: ${out:-apt-get failed}" >&2
    failed+=("$pkg")
  fi
done
# The mosquitto package starts a system-wide broker on :1883; we run our own, so leave theirs as Debian set it.
if [ ${#failed[@]} -gt 0 ]; then
  echo "!! still missing: ${failed[*]} — make test needs them (see the lines above)" >&2
  [ "$what" != run ] && exit 1
fi
exit 0
