# Helpers to run MicroPython scripts (the real VM from the venv) from pytest.
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
MP_DIR = Path(__file__).resolve().parent / "mp"
MICROPYTHON = Path(os.environ.get("HX_MICROPYTHON") or Path(sys.executable).parent / "micropython")
if not MICROPYTHON.exists():
    MICROPYTHON = ROOT / ".venv" / "bin" / "micropython"


def run_mp(
    script: Path,
    *args: str,
    heap_k: int | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    cmd = [str(MICROPYTHON)]
    if heap_k:
        cmd += ["-X", f"heapsize={heap_k}K"]
    cmd += [str(script), *args]
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT)


def counts(output: str) -> tuple[int, int]:
    m = re.search(r"^(\d+) passed, (\d+) failed$", output, re.M)
    if not m:
        raise AssertionError(f"runner summary missing; output:\n{output[-3000:]}")
    return int(m.group(1)), int(m.group(2))
