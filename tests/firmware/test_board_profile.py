# The ESP32 board profile (hardware/boards/esp32-devkitc.json): valid pins, and the wiring docs agree.
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "hardware" / "boards" / "esp32-devkitc.json"
ESP32_GPIOS = set(range(0, 20)) | {21, 22, 23, 25, 26, 27} | set(range(32, 40))
FLASH_PINS = set(range(6, 12))
INPUT_ONLY = set(range(34, 40))
STRAPPING = {0, 2, 5, 12, 15}


def pins(p: dict) -> dict[str, int]:
    out = {
        "scanner.tx": p["scanner"]["tx"],
        "scanner.rx": p["scanner"]["rx"],
        "oled.sda": p["oled"]["sda"],
        "oled.scl": p["oled"]["scl"],
        "buzzer": p["buzzer"]["pin"],
    }
    if p.get("relay"):
        out["relay"] = p["relay"]["pin"]
    for name, pin in p.get("buttons", {}).items():
        out[f"button.{name}"] = pin
    if p.get("turn"):
        out["turn"] = p["turn"]["pin"]
    return out


def test_profile_pins_are_valid() -> None:
    p = json.loads(PROFILE.read_text())
    assert p["board"] == "esp32-devkitc" and p["mcu"] == "esp32"
    assigned = pins(p)
    assert len(set(assigned.values())) == len(assigned), f"a pin is used twice: {assigned}"
    for name, pin in assigned.items():
        assert pin in ESP32_GPIOS, f"{name}: GPIO {pin} does not exist on the ESP32"
        assert pin not in FLASH_PINS, f"{name}: GPIO {pin} is wired to the SPI flash"
        assert pin not in STRAPPING, f"{name}: GPIO {pin} is a strapping pin"
        if name != "scanner.rx":
            # Outputs need an output driver; buttons need the internal pull-up 34-39 lack.
            assert pin not in INPUT_ONLY, f"{name}: GPIO {pin} is input-only"
    assert p["scanner"]["uart"] in (1, 2) and p["scanner"]["baud"] in (9600, 115200)
    assert p["oled"]["addr"] in (0x3C, 0x3D) and (p["oled"]["width"], p["oled"]["height"]) == (128, 64)
    assert set(p.get("buttons", {})) <= {"ok", "up", "down"}


def test_wiring_table_matches_profile() -> None:
    p = json.loads(PROFILE.read_text())
    table = (ROOT / "hardware" / "README.md").read_text()
    rows = {m.group(1).strip(): int(m.group(2)) for m in re.finditer(r"^\| ([^|]+) \| (\d+) \|", table, re.M)}
    expect = {
        "scanner TX (ESP32 → module RX)": p["scanner"]["tx"],
        "scanner RX (module TX → ESP32)": p["scanner"]["rx"],
        "OLED SDA": p["oled"]["sda"],
        "OLED SCL": p["oled"]["scl"],
        "buzzer": p["buzzer"]["pin"],
        "relay": p["relay"]["pin"],
    }
    for name, pin in p["buttons"].items():
        expect[f'button "{name}"'] = pin
    if p.get("turn"):
        expect["turn sensor"] = p["turn"]["pin"]
    assert rows == expect


# Pins other modules reserve: ESP32-WROVER wires GPIO16/17 to its PSRAM; the ESP32-S3 uses 26-32 for
# its SPI flash/PSRAM. A profile that uses them must not be sold as working on those modules.
RESERVED_ON = {"WROVER": {16, 17}, "ESP32-S3": set(range(26, 33))}


def test_bom_does_not_claim_modules_whose_reserved_pins_the_profile_uses() -> None:
    p = json.loads(PROFILE.read_text())
    used = set(pins(p).values())
    bom = (ROOT / "hardware" / "bom.md").read_text()
    for module, reserved in RESERVED_ON.items():
        clash = used & reserved
        assert clash, f"the profile avoids {module}'s reserved pins: this check would need updating"
        says = [ln for ln in bom.replace("\n  ", " ").splitlines() if module in ln]
        assert says and all(f"{module} boards do not work" in ln for ln in says), (
            module,
            sorted(clash),
            says,
        )
