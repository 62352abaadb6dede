#!/usr/bin/env bash
# The firmware's heap when its bytecode is frozen into the image (as firmware/manifest.py does for the
# ESP32), measured rather than estimated: builds MicroPython's unix port twice with `hx` frozen in,
# as a 64-bit and a 32-bit (-m32: 4-byte words and pointers, like the ESP32) binary, then runs
#   - tools/heap32/burst.py (core + App on a full outbox of 500 + a scan burst) on both, and
#   - tests/firmware/test_memory.py (the whole firmware on the unix board, MQTT to a real Mosquitto)
#     on both, with HX_TEST_FROZEN=1 so that no hx/*.mpy on the filesystem shadows the frozen package.
# Usage: tools/heap32/frozen.sh <MicroPython source tree, v1.29>   (make heap-frozen MPY_SRC=...)
# Needs a C compiler and, for the 32-bit binary, gcc-multilib. Built without TLS, btree and ffi (their
# sources are git submodules a plain source tree lacks): the TLS run of test_memory.py is skipped.
set -euo pipefail
src=$(cd "${1:?usage: frozen.sh <MicroPython source tree>}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/build/frozen"
mkdir -p "$out/lib"
# manifest.mk insists on micropython-lib (a submodule); this manifest requires nothing from it.
echo "placeholder: the hexiao manifest requires nothing from micropython-lib" > "$out/lib/README.md"
make -s -C "$src/mpy-cross" >/dev/null
opts=(VARIANT=standard "FROZEN_MANIFEST=$root/tools/heap32/manifest_unix.py" "MPY_LIB_DIR=$out/lib"
      MICROPY_PY_FFI=0 MICROPY_PY_BTREE=0 MICROPY_PY_SSL=0)
make -s -j2 -C "$src/ports/unix" "${opts[@]}" "BUILD=$out/build64" >/dev/null
make -s -j2 -C "$src/ports/unix" "${opts[@]}" "BUILD=$out/build32" CC="gcc -m32" LD="gcc -m32" >/dev/null
rm -rf "$out/nohx" && mkdir -p "$out/nohx"  # a firmware folder without hx/: the frozen one is imported
for bits in 64 32; do
  vm="$out/build$bits/micropython"
  rm -rf "$out/flash$bits"
  echo "burst probe, frozen, $bits-bit: $("$vm" "$root/tools/heap32/burst.py" "$out/nohx" "$out/flash$bits" 500)"
  HX_MICROPYTHON="$vm" HX_TEST_FROZEN=1 "$root/.venv/bin/python" -m pytest "$root/tests/firmware/test_memory.py" \
    -q -s -p no:cacheprovider -k "not heap_probe" 2>&1 | grep -E "live heap|passed|failed" | sed "s/^/whole firmware, frozen, $bits-bit: /"
done
