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

from hx.start import main  # noqa: E402
from hx.boards import load  # noqa: E402

_name = os.getenv("HX_BOARD") if hasattr(os, "getenv") else None
asyncio.run(main(load(_name or "esp32")))
