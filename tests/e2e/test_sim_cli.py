# The simulator as a user runs it: `python -m tools.sim run` against a real gateway, `scan` from another shell.
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.e2e.helpers import TIMEOUT, create_orders, redemptions
from tests.helpers import wait_for
from tools.sim.control import request
from tools.sim.paths import ROOT


def sim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.sim", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "120"},
    )


def test_run_and_scan_from_another_terminal(
    tmp_path: Path, mosquitto: Mosquitto, gateway_factory: Callable[..., Any]
) -> None:
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("CLI-PASS-1", "Day Pass", 2))
    out = tmp_path / "sim"
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.sim", "run", "--devices", "2", "--mqtt-url", mosquitto.url]
        + ["--out", str(out), "--no-prompt"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "120"},
    )
    try:
        sock = out / "control.sock"
        wait_for(sock.exists, TIMEOUT, "the simulator's control socket")
        # Both devices reach READY before we scan (their screens say so).
        for name in ("dev-1", "dev-2"):
            wait_for(
                lambda n=name: "READY" in " ".join(request(sock, {"cmd": "screen", "device": n})["lines"]),
                TIMEOUT,
                f"{name} READY",
            )

        done = sim("scan", "--out", str(out), "--device", "dev-2", "--wait", "20", "CLI-PASS-1")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 of 2 left" in done.stdout and "OK" in done.stdout

        rows = redemptions(gw, code="CLI-PASS-1")
        assert [(r["device"], r["reason"]) for r in rows] == [("dev-2", "OK")]

        shot = sim("screen", "--out", str(out), "--device", "dev-2")
        assert shot.returncode == 0 and "1 of 2 left" in shot.stdout
        assert (out / "dev-2" / "oled.png").stat().st_size > 0

        bad = sim("scan", "--out", str(out), "--device", "dev-9", "X")
        assert bad.returncode == 2 and "no device" in bad.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(90)  # an upper bound for a loaded machine, not a speed check
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    text = (tmp_path / "run.log").read_text()
    assert "simulator running" in text and "simulator stopped" in text
    assert not (out / "control.sock").exists()


def test_scan_without_a_running_simulator_says_how_to_start_one(tmp_path: Path) -> None:
    done = sim("scan", "--out", str(tmp_path), "CODE")
    assert done.returncode == 2
    assert "python -m tools.sim run" in done.stdout
