"""Where the simulator finds the repository, the firmware and the MicroPython VM."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = ROOT / "firmware"
FIRMWARE_MAIN = FIRMWARE_DIR / "main.py"


def _micropython() -> Path:
    env = os.environ.get("HX_MICROPYTHON")
    if env:
        return Path(env)
    # Next to the interpreter running us (the project venv), else the repository's venv.
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return here
    return ROOT / ".venv" / "bin" / "micropython"


MICROPYTHON = _micropython()
