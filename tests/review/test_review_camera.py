"""Adversarial review of camera boards: breaks found by real attacks (each test fails on the current code).

Held (not kept here): frame/UART scans sharing a sid, QoS 0 duplicate bursts, a 200-frame flood with a
UART scan, crafted headers and images, debug frames bounded and owner-only (see the review report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image


def run_decode(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.entrypoints.decode_cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_hexiao_decode_answers_a_huge_image_with_a_clear_error_line_not_a_python_warning(
    tmp_path: Path,
) -> None:
    # 9500x9500 = 90 Mpx (a 110 kB PNG): over Pillow's bomb *warning* limit, under its error limit.
    huge = tmp_path / "huge.png"
    Image.new("L", (9500, 9500), 255).save(huge)
    (tmp_path / "t.txt").write_text("hello")
    files = [str(tmp_path / "t.txt"), str(huge), str(tmp_path)]
    r = run_decode(*files)
    out = r.stdout.splitlines()
    assert len(out) == len(files) and all(json.loads(line) == [] for line in out)
    assert "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if line.strip()]
    # One "hexiao-decode: <file>: ..." line per unreadable file and nothing else on stderr.
    assert all(line.startswith("hexiao-decode: ") for line in err), err
    assert any(str(huge) in line for line in err), err
    assert r.returncode == 2
