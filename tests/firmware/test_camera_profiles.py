# The camera boards' profiles (hardware/boards/): camera pins as the camera library defines them, free
# pins really free, and the wiring tables of hardware/camera-boards.md agree.
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "hardware" / "boards"
DOC = ROOT / "hardware" / "camera-boards.md"

# micropython-camera-API v0.6.2 src/camera_pins.h (D0..D7, vsync, href, pclk, xclk, sda, scl, pwdn).
LIBRARY = {
    "esp32-cam-aithinker": ([5, 18, 19, 21, 36, 39, 34, 35], 25, 23, 22, 0, 26, 27, 32),
    "xiao-esp32s3-sense": ([15, 17, 18, 16, 14, 12, 11, 48], 38, 47, 13, 10, 40, 39, -1),
}
CHIP = {
    # GPIOs that exist; the ones no peripheral of ours may use (flash, PSRAM, USB); input-only ones.
    "esp32": (
        set(range(0, 20)) | {21, 22, 23, 25, 26, 27} | set(range(32, 40)),
        set(range(6, 12)) | {16, 17},
        set(range(34, 40)),
    ),
    "esp32s3": (set(range(0, 22)) | set(range(26, 49)), set(range(26, 38)) | {19, 20}, set()),
}
SECTIONS = {"esp32-cam-aithinker": "## AI-Thinker ESP32-CAM", "xiao-esp32s3-sense": "## Seeed Studio XIAO"}


def profile(name: str) -> dict[str, Any]:
    p: dict[str, Any] = json.loads((BOARDS / f"{name}.json").read_text())
    return p


def ours(p: dict[str, Any]) -> dict[str, int]:
    out = {"oled.sda": p["oled"]["sda"], "oled.scl": p["oled"]["scl"], "buzzer": p["buzzer"]["pin"]}
    if p.get("relay"):
        out["relay"] = p["relay"]["pin"]
    for name, pin in p["buttons"].items():
        out[f"button.{name}"] = pin
    return out


def camera_pins(c: dict[str, Any]) -> list[int]:
    pins = [
        *c["data"],
        c["vsync"],
        c["href"],
        c["pclk"],
        c["xclk"],
        c["sda"],
        c["scl"],
        c["pwdn"],
        c["reset"],
    ]
    return [x for x in pins if x >= 0]


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_camera_pins_are_the_librarys(name: str) -> None:
    c = profile(name)["camera"]
    got = (c["data"], c["vsync"], c["href"], c["pclk"], c["xclk"], c["sda"], c["scl"], c["pwdn"])
    assert got == LIBRARY[name]


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_our_pins_are_free_and_fit_their_use(name: str) -> None:
    p = profile(name)
    assert p["board"] == name and p["psram"] is True and "micropython-camera-API v0.6.2" in p["firmware"]
    exists, reserved, input_only = CHIP[p["mcu"]]
    mine = ours(p)
    taken = set(camera_pins(p["camera"])) | set(p.get("reserved", {}).values())
    if "light" in p["camera"]:
        taken.add(p["camera"]["light"])
    assert len(set(mine.values())) == len(mine), f"a pin is used twice: {mine}"
    for what, pin in mine.items():
        assert pin in exists, f"{what}: GPIO {pin} does not exist on the {p['mcu']}"
        assert pin not in reserved, f"{what}: GPIO {pin} belongs to flash, PSRAM or USB"
        assert pin not in taken, f"{what}: GPIO {pin} is the camera's or the board's"
        assert pin not in input_only, f"{what}: GPIO {pin} is input-only (no output, no pull-up)"
    assert not set(camera_pins(p["camera"])) & reserved - {16, 17}, "camera pins on flash"


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_wiring_table_matches_profile(name: str) -> None:
    text = DOC.read_text()
    start = text.index(SECTIONS[name])
    nxt = text.find("\n## ", start + 3)
    section = text[start : nxt if nxt > 0 else None]
    found = re.finditer(r"^\| ([^|]+) \| (\d+) \|", section, re.M)
    rows = {
        m.group(1).strip(): int(m.group(2))
        for m in found
        if m.group(1).startswith(("OLED", "buzzer", "relay", "button"))
    }
    p = profile(name)
    expect = {"OLED SDA": p["oled"]["sda"], "OLED SCL": p["oled"]["scl"], "buzzer": p["buzzer"]["pin"]}
    expect["relay"] = p["relay"]["pin"]
    for b, pin in p["buttons"].items():
        expect[f'button "{b}"'] = pin
    assert rows == expect
    data = ", ".join(str(x) for x in p["camera"]["data"])
    assert f"| D0–D7 (Y2–Y9) | {data} |" in section
