"""Type-check the firmware against the MicroPython ESP32 stubs with pyright (part of `make typecheck`).

Installs micropython-esp32-stubs 1.29 + micropython-stdlib-stubs into firmware/typings (pip --target,
--no-deps) when missing, adds firmware/stubs/*.pyi (modules of third-party firmware builds), then runs pyright with firmware/pyrightconfig.json. Exit code: pyright's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
TYPINGS = FIRMWARE / "typings"
STUBS = ("micropython-esp32-stubs==1.29.*", "micropython-stdlib-stubs==1.29.*")
MARKER = TYPINGS / ".hexiao-stubs"


def ensure_stubs() -> None:
    want = "\n".join(STUBS)
    if not (MARKER.exists() and MARKER.read_text() == want):
        install_stubs(want)
    # Our own stubs for modules of third-party firmware builds (the camera board's `camera` module).
    for own in (FIRMWARE / "stubs").glob("*.pyi"):
        shutil.copy2(own, TYPINGS / own.name)


def install_stubs(want: str) -> None:
    if TYPINGS.exists():
        shutil.rmtree(TYPINGS)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(TYPINGS), *STUBS]
    res = subprocess.run(cmd)
    if res.returncode != 0:
        raise SystemExit(f"installing MicroPython stubs failed: {' '.join(cmd)}")
    MARKER.write_text(want)


def pyright() -> str:
    exe = Path(sys.executable).parent / "pyright"
    if exe.exists():
        return str(exe)
    found = shutil.which("pyright")
    if not found:
        raise SystemExit("pyright not found: run `make setup-dev`")
    return found


def main() -> int:
    ensure_stubs()
    res = subprocess.run([pyright(), "-p", str(FIRMWARE / "pyrightconfig.json")], cwd=FIRMWARE)
    return res.returncode


if __name__ == "__main__":
    raise SystemExit(main())
