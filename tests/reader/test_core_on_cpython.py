# The firmware's own unit tests of its pure core (tests/firmware/mp), run under CPython through the
# reader's compatibility shim (reader/compat.py): the Linux reader runs the same core, and this shows
# it behaves the same there — UI, codes, outbox (with the shim's fsync'd writes), protocol, app, GM65.
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.firmware.mpvm import MP_DIR, counts
from tests.reader.process import ROOT

# test_render draws on MicroPython's framebuf, which CPython has not: the reader's screen is Adafruit's
# framebuffer (tests/reader/test_oled.py). The rest is every module that tests the core's logic.
MODULES = [
    "test_app",
    "test_codes",
    "test_config",
    "test_gm65",
    "test_outbox",
    "test_protocol",
    "test_queue",
    "test_ui",
]
RUN = """
import runpy, sys
from reader import compat
compat.install()
sys.argv = ["runner.py", sys.argv[1]]
runpy.run_path(%r, run_name="__main__")
"""


@pytest.mark.parametrize("module", MODULES)
def test_core_module_passes_under_cpython(module: str) -> None:
    code = RUN % str(MP_DIR / "runner.py")
    out = subprocess.run(
        [sys.executable, "-c", code, module], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    passed, failed = counts(out.stdout)
    assert failed == 0 and out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert passed > 0
