# Freezes the firmware package `hx` into a MicroPython image: its bytecode then runs from flash instead
# of being loaded into the heap (docs/firmware.md "Memory": that is most of the resident figure).
# Build (MicroPython source tree + ESP-IDF, see docs/firmware.md):
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=<this repo>/firmware/manifest.py
# boot.py, main.py and board.json stay on the filesystem; a /hx folder there would shadow the frozen one.
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821  (the port's own frozen modules: asyncio, ...)
package("hx", opt=3)  # noqa: F821  (paths are relative to this file: firmware/hx, with hx/boards)
