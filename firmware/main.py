# Device entry point: pick the board and start the app (all logic lives in the hx package).
import os
import sys

# On the host the firmware runs from wherever this file is; on the device "/" is already on sys.path.
try:
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else ""
except NameError:  # main.py run by the board's boot sequence may have no __file__
    _here = ""
if _here and _here not in sys.path:
    sys.path.insert(0, _here)

import asyncio  # noqa: E402

# asyncio loads its parts (funcs, event, lock, stream) on first use: load them now, at the bottom of an
# empty heap, instead of later when a fragmented heap may have no 640 contiguous bytes for them.
for _part in ("wait_for_ms", "Event", "ThreadSafeFlag", "Lock", "StreamReader"):
    getattr(asyncio, _part)

import slots  # noqa: E402

_name = os.getenv("HX_BOARD") if hasattr(os, "getenv") else None
_flash = (os.getenv("HX_FLASH") or "flash") if _name == "unix" else ""
_slot = slots.select(_flash)  # an over-the-air update, if one is installed (on trial or kept)
if _slot:
    sys.path.insert(0, _slot)
try:
    import hx.start  # noqa: E402
except Exception as _e:  # an update that does not even import: back to the previous firmware now
    if not _slot:
        raise
    sys.print_exception(_e)
    slots.rollback(_flash, None, "import: %r" % (_e,))
    slots.forget_hx()
    sys.path.remove(_slot)
    _slot = slots.select(_flash)
    if _slot:
        sys.path.insert(0, _slot)
    import hx.start  # noqa: E402
from hx import lazy  # noqa: E402
from hx.boards import load  # noqa: E402

slots = None  # boot-only: the app loads it again (hx.lazy) for the one call it needs
lazy.unload("slots")
_board = load(_name or "esp32")
try:
    _app = asyncio.run(hx.start.main(_board))
    lazy.unload("hx.start")  # boot-only code leaves the heap before the app runs for days
    if _app is not None:  # None only if the config screen ever gave up waiting (it does not)
        asyncio.run(_app.run(_board.start(_app.cfg, _app.healthy, _app.on_turned)))
except KeyboardInterrupt:
    _board.maintenance()  # Ctrl-C at the REPL (mpremote): a running watchdog must not reset mid-work
    raise
except Exception as _e:  # a fault as the app starts (the boot itself shows its own): show, reset
    sys.print_exception(_e)
    _app = None  # a MemoryError: free what the app held before the fault screen's code is loaded
    asyncio.run(lazy.run("hx.rescue", "fault", _board, _e))
