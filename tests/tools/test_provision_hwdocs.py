# The wiring guide and diagram agree with the board profile the firmware reads.
from __future__ import annotations

import json
import re
import xml.dom.minidom

from tools.provision import hwdocs


def profile_pins() -> dict[str, int]:
    p = json.loads(hwdocs.PROFILE.read_text())
    pins = {
        "tx": p["scanner"]["tx"],
        "rx": p["scanner"]["rx"],
        "sda": p["oled"]["sda"],
        "scl": p["oled"]["scl"],
    }
    pins["buzzer"] = p["buzzer"]["pin"]
    if p.get("relay"):
        pins["relay"] = p["relay"]["pin"]
    pins.update({f"button {k}": v for k, v in p.get("buttons", {}).items()})
    if p.get("turn"):
        pins["turn sensor"] = p["turn"]["pin"]
    return pins


def test_generated_docs_are_up_to_date() -> None:
    assert hwdocs.main(["--check"]) == 0, "run: python -m tools.provision.hwdocs"


def test_pin_table_lists_every_profile_pin_once() -> None:
    text = hwdocs.WIRING.read_text()
    table = text.split(hwdocs.BEGIN, 1)[1].split(hwdocs.END, 1)[0]
    gpios = [int(m) for m in re.findall(r"^\|[^|]*\|[^|]*\| (\d+) \|", table, re.M)]
    assert sorted(gpios) == sorted(profile_pins().values())
    row = {
        "tx": "ESP32 TX",
        "rx": "ESP32 RX",
        "sda": "| SDA |",
        "scl": "| SCL |",
        "buzzer": "| buzzer |",
        "relay": "| relay module | IN |",
    }
    for name, pin in profile_pins().items():
        needle = row.get(name, f"| {name} |")
        line = next(ln for ln in table.splitlines() if needle in ln)
        assert f"| {pin} |" in line, (name, line)


def test_diagram_is_valid_svg_with_every_gpio() -> None:
    doc = xml.dom.minidom.parse(str(hwdocs.SVG))
    texts = " ".join(t.firstChild.data for t in doc.getElementsByTagName("text") if t.firstChild)
    for pin in profile_pins().values():
        assert f"GPIO {pin}" in texts
