# Freezes the firmware into MicroPython's unix port for the heap measurement (tools/heap32/frozen.sh):
# the same `hx` package and options as firmware/manifest.py (the device image), plus the asyncio the
# port would otherwise lack. Paths are relative to this file.
include("$(MPY_DIR)/extmod/asyncio")  # noqa: F821
package("hx", base_path="../../firmware", opt=3)  # noqa: F821
