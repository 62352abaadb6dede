# `provision linux`'s error paths: a clear message and nothing written (its success path runs end to end
# in tests/reader/test_reader_e2e.py against a real gateway).
from __future__ import annotations

import json
from pathlib import Path

from reader.board import DEFAULTS
from tests.tools.test_provision_cli import cli
from tools.provision.linux import PI_PROFILE


def test_a_bad_device_id_or_an_unreachable_gateway_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "reader"
    bad = cli("linux", "--device", "gate 7", "--site", "zoo", "--out", str(out))
    assert bad.returncode != 0 and "device id 'gate 7' is not valid" in bad.stdout + bad.stderr
    down = cli(
        "linux", "--device", "gate-7", "--site", "zoo", "--out", str(out), "--gateway", "http://127.0.0.1:9"
    )
    assert down.returncode != 0 and "cannot reach the gateway" in down.stdout + down.stderr
    assert not out.exists()


def test_the_default_hardware_description_is_one_the_reader_takes() -> None:
    profile = json.loads(PI_PROFILE.read_text())
    assert not set(profile) - set(DEFAULTS), "unknown keys would stop the reader at start"
    assert {s["type"] for s in profile["scanners"]} <= {"hid", "serial"} and not profile.get("sim")
