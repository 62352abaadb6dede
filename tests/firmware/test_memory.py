# RAM: the compiled firmware (.mpy, as shipped) must do its job inside a fixed heap on the 64-bit VM.
# The measured figures (live-heap high-water from the `heap` events, smallest heap that works) are
# recorded in docs/firmware.md; this test keeps the budget from silently growing past HEAP_K.
from __future__ import annotations

import json
import os
from pathlib import Path

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.firmware.test_app_host import Device, FakeGateway
from tools.build_firmware import build

HEAP_K = int(os.environ.get("HX_TEST_HEAP_K", "104"))  # budget: measured need + headroom (docs/firmware.md)


def test_mpy_build_runs_in_budget(tmp_path: Path, mosquitto: Mosquitto) -> None:
    out = tmp_path / "fw"
    build(out)
    assert (out / "hx" / "app.mpy").exists() and not (out / "hx" / "app.py").exists()
    assert json.loads((out / "board.json").read_text())["board"] == "esp32-devkitc"
    gw = FakeGateway(mosquitto)
    dev = Device(tmp_path / "dev", mosquitto, main=out / "main.py", heap_k=HEAP_K)
    dev.flash.parent.mkdir(exist_ok=True)
    dev.start()
    try:
        dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", what="READY")
        for i in range(12):
            m = dev.mark()
            dev.type(f"GOOD-M{i}\r\n".encode())
            dev.wait(lambda e: e["ev"] == "verdict", m, f"verdict {i}")
        m = dev.mark()
        dev.type(b"GOOD-LAST\r\n")
        dev.wait(lambda e: e["ev"] == "heap" and e["live_peak"] > 0, m, "heap report", timeout=30)
        assert not dev.events("crash"), [e.get("error") for e in dev.events("crash")]
        peak = max(e["live_peak"] for e in dev.events("heap"))
        print(f"live heap high-water: {peak} bytes (heap {HEAP_K} KiB)")
        assert peak < HEAP_K * 1024
    finally:
        dev.kill()
        gw.close()
