"""The camera board's OLED screens as PNGs (``python -m tools.sim screenshots --camera``).

A simulated camera board against a real gateway and broker is shown scripted scenes — a code, an
empty counter, a dark room, glare, a code too far away, a blurred one, two codes — and the exact
frames the firmware drew for each answer are written as docs/img/oled-camera-*.png. Each scene is
checked with the gateway's decoder first, so every screenshot shows the hint it is named after.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gateway.adapters.camera.decode import decode
from gateway.adapters.camera.frame import HINT_LINES
from tools.camera.synth import Scene, from_jpeg, jpeg, render
from tools.sim.camera import SimCamera
from tools.sim.oled import read_pbm
from tools.sim.paths import FIRMWARE_MAIN
from tools.sim.png import render_png
from tools.sim.runner import DeviceConfig, Event, FirmwareProcess, SimError
from tools.sim.stack import LocalStack

TIMEOUT = 30.0
CODE = "HX-CAM-0001"


def scenes() -> dict[str, bytes]:
    """One JPEG frame per hint (the name is the hint), each made so the gateway answers that hint."""
    two = np.hstack(
        [
            render(Scene(text="HX-A-1", ppm=4, seed=1, width=160)),
            render(Scene(text="HX-B-2", ppm=4, seed=2, width=160)),
        ]
    )
    made = {
        "none": render(Scene(text="")),
        "dark": render(Scene(text="", gain=0.12)),
        "bright": render(Scene(text=CODE, offset=190, glare=0.9, seed=7)),
        "closer": render(Scene(text=CODE, ppm=1.9, blur=0.9, seed=0, roll=10)),
        "still": render(Scene(text=CODE, ppm=6, blur=3.5, seed=7)),
        "one": two,
    }
    out = {}
    for hint, frame in made.items():
        data = jpeg(frame, 30)
        got = decode(from_jpeg(data)).hint
        if got != hint:
            raise SimError(f"the scene for {hint!r} reads as {got!r}: adjust tools/sim/camera_screens.py")
        out[hint] = data
    return out


def _screen(l1: str) -> Callable[[Event], bool]:
    return lambda e: e.get("ev") == "screen" and e.get("l1") == l1


def run_camera_screens(
    dest: Path, work: Path, *, palette: str = "white", log: Callable[[str], None] = print
) -> list[Path]:
    shutil.rmtree(work, ignore_errors=True)
    frames = scenes()
    written: list[Path] = []
    stack = LocalStack(work / "stack").start()
    dev: FirmwareProcess | None = None

    def capture(name: str, l1: str, after: int) -> None:
        assert dev is not None
        ev = dev.wait_event(_screen(l1), after=after, timeout=TIMEOUT, what=f"screen {l1!r}")
        frame = read_pbm(dev.out / f"oled-{int(ev['frame']):04d}.pbm")
        written.append(render_png(frame, dest / f"oled-camera-{name}.png", palette=palette))
        log(f"camera-{name}: {' | '.join(frame.text_lines())}")

    def ready() -> None:
        assert dev is not None
        dev.wait_event(
            lambda e: e.get("ev") == "screen" and e.get("state") == "READY",
            after=dev.mark() - 1,
            timeout=TIMEOUT,
            what="READY",
        )

    try:
        stack.ensure_site()
        stack.create_orders([{"code": CODE, "title": "Day Pass", "quantity": 1}])
        cam = SimCamera(work / "camera")
        extra = {"camera": {"burst_ms": 1500}, "verdict_timeout_ms": 1000, "result_ms": 800}
        cfg = DeviceConfig(device="cam-1", gate="Gate 1", mqtt=stack.mqtt, extra=extra)
        dev = FirmwareProcess(work / "cam-1", cfg, main=FIRMWARE_MAIN.resolve(), env=cam.env)
        dev.start()
        dev.wait_event(
            lambda e: e.get("ev") == "screen" and e.get("state") == "READY", timeout=TIMEOUT, what="READY"
        )
        for hint, data in frames.items():
            cam.put(data)
            mark = dev.mark()
            dev.press("ok")
            if hint == "none":
                capture("hold", "HOLD CODE", mark)
            capture(f"hint-{hint}", HINT_LINES[hint][0], mark)
            if hint == "none":
                capture("no-code", "NO CODE", mark)
            dev.wait_event(_screen("READY"), after=mark, timeout=TIMEOUT, what="READY again")
        cam.show(CODE)
        mark = dev.mark()
        dev.press("ok")
        capture("ok", "OK Day Pass", mark)
    finally:
        if dev is not None:
            dev.close()
        stack.stop()
    return written
