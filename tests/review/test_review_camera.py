"""Adversarial review of camera boards: breaks found by real attacks (each test fails on the current code).

Held (not kept here): frame/UART scans sharing a sid, QoS 0 duplicate bursts, a 200-frame flood with a
UART scan, crafted headers and images, debug frames bounded and owner-only (see the review report)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.conftest import GatewayProc
from tests.gateway.adapters.test_camera_flow import CameraPeer
from tests.gateway.adapters.test_mqtt_flow import make_order
from tests.helpers import wait_for
from tools.camera.synth import Scene, jpeg, render


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


def _hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_250_kb_jpeg_of_64_mpx_is_dropped_not_decoded_at_300_mb(
    gateway: GatewayProc, mosquitto: Mosquitto
) -> None:
    """Invariant 2/3: the header's w/h are bounded (MAX_SIDE 1600) but the JPEG's own size is not: a
    uniform 8000x8000 progressive JPEG is 250 kB (under max_frame) and the gateway decodes all 64 Mpx
    (plus the ladder's copies) in its own process."""
    make_order(gateway, "HXO-REV-BOMB")
    b = io.BytesIO()
    Image.new("L", (8000, 8000), 128).save(b, "JPEG", quality=1, progressive=True, optimize=True)
    bomb = b.getvalue()
    cams = [CameraPeer(mosquitto.url, f"rev-bomb-{i}") for i in range(2)]
    uart = CameraPeer(mosquitto.url, "rev-bomb-uart")
    assert gateway.proc is not None
    before = _hwm_mb(gateway.proc.pid)
    try:
        for k in range(8):
            cams[k % 2].frame(f"bomb-{k}", k, bomb, w=640, h=480)  # the header claims VGA
        t0 = time.monotonic()
        uart.scan("uart-during-bombs", "HXO-REV-BOMB")
        assert uart.wait_verdict("uart-during-bombs", timeout=30)["reason"] == "OK"
        print(f"UART verdict during bomb frames after {time.monotonic() - t0:.3f}s")

        def settled() -> dict[str, int] | None:
            h: dict[str, int] = gateway.api("GET", "/api/health").json()["camera"]
            done = h["bad"] + h["hints"] + h["dropped_old"] + h["decoded"]
            return h if h["frames"] == 8 and h["waiting"] == 0 and done >= 8 else None

        health = wait_for(settled, 60, "the bomb frames handled")
    finally:
        for c in [*cams, uart]:
            c.close()
    grown = _hwm_mb(gateway.proc.pid) - before
    print(f"camera health {health}; gateway peak RSS grew by {grown:.0f} MB")
    assert health["hints"] == 0, "a 64 Mpx frame was decoded (hinted) instead of dropped as bad"
    assert grown < 100, f"one 250 kB frame grew the gateway's peak memory by {grown:.0f} MB"


def _ladder_only_frames(want: int) -> list[bytes]:
    """Realistic 640x480 frames the gateway reads only at the last ladder step (up2), fresh costs."""
    import numpy as np

    from gateway.adapters.camera.decode import Costs, decode, gray_from_bytes
    from tools.camera.synth import realistic

    rng = np.random.default_rng(7)
    out: list[bytes] = []
    for _ in range(400):
        s, q = realistic(rng, 640, 480, "HXO-REV-LAD")
        data = jpeg(render(s), q)
        if decode(gray_from_bytes(data, "jpeg"), costs=Costs()).stage == "up2":
            out.append(data)
            if len(out) == want:
                break
    assert len(out) == want
    return out


def test_one_hiccup_during_a_ladder_step_disables_the_ladder_for_good(
    gateway_factory: Callable[..., GatewayProc], mosquitto: Mosquitto
) -> None:
    """Decode quality: Costs keeps a step's moving average only when the step runs, and a step whose
    guess is over the budget is never run again (and `break` skips every later step too). One pause
    of the gateway (steal time, swap, a GC) during a step at 640x480 therefore turns off the whole
    retry ladder at that size until restart: frames that the fresh gateway reads now get hints."""
    import os
    import signal
    import threading

    # A budget this machine's steps fit in whatever its speed (the default 22 ms is tuned for a quiet
    # box; on a slow one the ladder-only frames are never read, hiccup or not), and pauses longer than
    # it, so a step caught by one still measures over the budget — the case under test.
    gateway = gateway_factory(mosquitto.url, env={"CAMERA_BUDGET_MS": "250"})
    assert gateway.api("POST", "/api/sites", json={"slug": "s1", "name": "Site One"}).status_code == 201
    make_order(gateway, "HXO-REV-LAD", quantity=50)
    frames = _ladder_only_frames(4)
    cam = CameraPeer(mosquitto.url, "rev-lad-1")
    noise = CameraPeer(mosquitto.url, "rev-lad-noise")
    assert gateway.proc is not None
    pid = gateway.proc.pid
    try:
        cam.frame("lad-ctl", 0, frames[0], w=640, h=480)  # the fresh gateway reads it
        assert cam.wait_verdict("lad-ctl", timeout=15)["reason"] == "OK"
        empty = jpeg(render(Scene(text="", width=640, height=480, noise=6)), 40)
        stop = threading.Event()

        def flood() -> None:
            k = 0
            while not stop.is_set():
                noise.frame(f"nz-{k}", k % 60000, empty, w=640, h=480)
                k += 1
                time.sleep(0.02)

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        for _ in range(10):  # bounded: 10 pauses of 400 ms (a machine hiccup), 4.5 s in all
            time.sleep(0.05)
            os.kill(pid, signal.SIGSTOP)
            time.sleep(0.4)
            os.kill(pid, signal.SIGCONT)
        stop.set()
        t.join(5)
        time.sleep(2.0)  # the queue drains; the machine is quiet again
        for i, f in enumerate(frames):
            cam.frame(f"lad-after-{i}", 0, f, w=640, h=480)
            time.sleep(0.5)
        time.sleep(2.0)
        got = {i: [v["reason"] for v in cam.verdicts_for(f"lad-after-{i}")] for i in range(len(frames))}
        hints = {
            i: [h["hint"] for h in cam.hints if h["sid"] == f"lad-after-{i}"] for i in range(len(frames))
        }
    finally:
        os.kill(pid, signal.SIGCONT)
        cam.close()
        noise.close()
    print("after the hiccups: verdicts", got, "hints", hints)
    assert all(got[i] for i in got), f"frames read before the hiccups now get hints: {hints}"
