# The provisioning tool's pure parts and its error paths: clear messages, nothing changed.
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tools.provision import devconfig, flashing
from tools.provision.build import build
from tools.provision.errors import FirmwareError, UsageError
from tools.provision.ports import guess


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.provision", *args],
        cwd=ROOT,
        env=dict(os.environ, COLUMNS="120", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_port_guesses() -> None:
    assert "CP210x" in guess(0x10C4, 0xEA60)
    assert "CH340" in guess(0x1A86, 0x7523)
    assert "CH9102" in guess(0x1A86, 0x55D4)
    assert "FTDI" in guess(0x0403, 0x6001)
    assert "native USB" in guess(0x303A, 0x1001)
    assert guess(0x1234, 0x5678) == "" and guess(None, None) == ""


def test_help_reads_well() -> None:
    res = cli("--help")
    assert res.returncode == 0
    for word in ("ports", "flash", "install", "verify", "backup", "restore"):
        assert word in res.stdout
    res = cli("install", "--help")
    assert "--dry-run" in res.stdout and "HX_TOKEN" in res.stdout


def placement(**kw: str) -> devconfig.Placement:
    base = {
        "device": "gate-3",
        "site": "demo",
        "gate": "Gate 3",
        "mode": "turnstile",
        "board": "esp32-devkitc",
    }
    base.update(kw)
    return devconfig.Placement(**base)


def test_config_is_what_the_firmware_accepts() -> None:
    cfg = devconfig.build_config(placement(), "192.168.1.10", 1884, "gate-3", "pw", "Shop", "wifipw")
    assert cfg == {
        "device": "gate-3",
        "site": "demo",
        "gate": "Gate 3",
        "mode": "turnstile",
        "board": "esp32-devkitc",
        "mqtt": {"host": "192.168.1.10", "port": 1884, "user": "gate-3", "password": "pw", "keepalive": 30},
        "wifi": {"ssid": "Shop", "password": "wifipw"},
        "heartbeat_s": 60,
    }
    shown = json.dumps(devconfig.masked(cfg))
    assert "pw" not in shown.replace("password", "") and '"(set)"' in shown
    assert cfg["mqtt"]["password"] == "pw"  # masking copies


def test_a_broker_name_is_resolved_at_provisioning_time() -> None:
    """The device would block its event loop in a DNS lookup: provisioning looks the name up and
    writes the address beside it (the name stays for the TLS check); an address needs no lookup."""
    assert devconfig.broker_addr("192.168.1.10") is None
    addr = devconfig.broker_addr("localhost")
    assert addr == "127.0.0.1"
    cfg = devconfig.build_config(placement(), "localhost", 8883, "gate-3", "pw", "", "", tls=True, addr=addr)
    assert cfg["mqtt"]["host"] == "localhost" and cfg["mqtt"]["addr"] == "127.0.0.1"
    with pytest.raises(UsageError, match="does not resolve") as err:
        devconfig.broker_addr("broker.invalid")
    assert "IP address" in err.value.hint
    with pytest.raises(UsageError, match="mqtt.addr"):
        devconfig.check_config({**cfg, "mqtt": {**cfg["mqtt"], "addr": "broker.lan"}})
    # What the firmware refuses at boot (mqtt.addr: a string or null) is refused here too, e.g. in a
    # `restore` file: an int or bytes would pass ipaddress but leave the board with a config it rejects.
    for bad in (3232235786, 1, True):
        with pytest.raises(UsageError, match="mqtt.addr"):
            devconfig.check_config({**cfg, "mqtt": {**cfg["mqtt"], "addr": bad}})
    devconfig.check_config({**cfg, "mqtt": {**cfg["mqtt"], "addr": None}})  # the firmware's default


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"device": "gate 3"}, "device id"),
        ({"device": "x" * 33}, "device id"),
        ({"site": ""}, "--site"),
        ({"gate": "g" * 33}, "--gate"),
        ({"mode": "kiosk"}, "--mode"),
    ],
)
def test_bad_placements(kw: dict[str, str], why: str) -> None:
    with pytest.raises(UsageError, match=why):
        placement(**kw).check()


def test_restore_file_checks() -> None:
    good = devconfig.build_config(placement(), "h", 1, None, None, "", "")
    devconfig.check_config(good)
    for bad in (
        [],
        {**good, "extra": 1},
        {**good, "device": "a/b"},
        {**good, "mqtt": {**good["mqtt"], "port": 0}},
        {**good, "mqtt": {**good["mqtt"], "pass": "x"}},
        {**good, "wifi": {"ssid": "s" * 33, "password": ""}},
    ):
        with pytest.raises(UsageError):
            devconfig.check_config(bad)


def esp_image(tmp_path: Path, chip_id: int) -> Path:
    head = bytes([0xE9, 3, 2, 0x20]) + b"\0" * 8 + chip_id.to_bytes(2, "little") + b"\0" * 10
    path = tmp_path / f"fw-{chip_id}.bin"
    path.write_bytes(head + b"\xff" * 1000)
    return path


def test_firmware_image_checks(tmp_path: Path) -> None:
    img = flashing.check_image(esp_image(tmp_path, 9))
    assert img.chip == "esp32s3"
    assert flashing.check_image(esp_image(tmp_path, 0)).chip == "esp32"
    with pytest.raises(FirmwareError, match="not found"):
        flashing.check_image(tmp_path / "missing.bin")
    uf2 = tmp_path / "fw.uf2"
    uf2.write_bytes(b"UF2\n" + b"\0" * 100)
    with pytest.raises(FirmwareError, match="not an ESP32 firmware image"):
        flashing.check_image(uf2)


def test_flash_plan_offsets_and_mismatch(tmp_path: Path) -> None:
    esp32 = flashing.check_image(esp_image(tmp_path, 0))
    steps = flashing.plan(esp32, "esp32", "/dev/ttyUSB0", 460800, erase=True)
    assert steps[0][-1] == "erase-flash"
    assert steps[1][-3:] == ["write-flash", "0x1000", str(esp32.path)]
    s3 = flashing.check_image(esp_image(tmp_path, 9))
    assert flashing.plan(s3, "esp32s3", "/dev/ttyACM0", 460800, erase=False)[0][-2] == "0x0"
    with pytest.raises(FirmwareError, match="built for esp32s3 but the board is esp32"):
        flashing.plan(s3, "esp32", "/dev/ttyUSB0", 460800, erase=True)


def test_chip_names_from_esptool_output() -> None:
    assert (
        flashing.chip_family("Connecting....\nChip type:          ESP32-D0WD-V3 (revision v3.1)") == "esp32"
    )
    assert flashing.chip_family("Detecting chip type... ESP32-S3\n") == "esp32s3"
    assert flashing.chip_family("Chip is ESP32-C3 (QFN32) (revision v0.4)") == "esp32c3"
    assert flashing.chip_family("A fatal error occurred: Failed to connect") is None


def test_flash_refuses_a_port_without_a_bootloader(tmp_path: Path) -> None:
    # A pty answers nothing like the ROM bootloader: esptool fails and the tool explains what to do.
    m, s = os.openpty()
    try:
        res = cli("flash", "--port", os.ttyname(s), "--firmware", str(esp_image(tmp_path, 0)), "--dry-run")
    finally:
        os.close(m)
        os.close(s)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "no ESP32 bootloader answered" in res.stdout and "BOOT" in res.stdout


def test_flash_refuses_a_wrong_file(tmp_path: Path) -> None:
    bad = tmp_path / "micropython.uf2"
    bad.write_bytes(b"UF2 not a bin")
    res = cli("flash", "--port", "/dev/null", "--firmware", str(bad))
    assert res.returncode == 1 and "not an ESP32 firmware image" in res.stdout


def test_install_usage_errors_change_nothing() -> None:
    res = cli("install", "--port", "/dev/null", "--device", "bad id", "--site", "s1", "--board", "unix")
    assert res.returncode == 2 and "device id 'bad id' is not valid" in res.stdout
    res = cli("install", "--port", "/dev/null", "--device", "d1", "--site", "s1", "--board", "nope")
    assert res.returncode == 2 and "no board profile 'nope'" in res.stdout and "esp32-devkitc" in res.stdout
    res = cli("install", "--port", "/dev/null", "--device", "d1", "--site", "s1")
    assert res.returncode == 2 and "--wifi-ssid is required" in res.stdout


def test_install_without_a_board_says_so() -> None:
    res = cli("install", "--port", "/dev/does-not-exist", "--device", "d1", "--site", "s1", "--board", "unix")
    assert res.returncode == 1
    assert "mpremote failed on /dev/does-not-exist" in res.stdout


def test_builds_for_both_boards(tmp_path: Path) -> None:
    esp = build(tmp_path / "esp", board="esp32-devkitc")
    names = {str(p.relative_to(esp.staging)) for p in esp.staging.rglob("*") if p.is_file()}
    assert {"main.py", "boot.py", "board.json", "hx/app.mpy"} <= names
    assert not any(n.startswith("hx/") and n.endswith(".py") for n in names)
    host = build(tmp_path / "host", board="unix")
    assert (host.staging / "hx" / "app.mpy").exists() and not (host.staging / "board.json").exists()


@pytest.mark.parametrize("board", ["esp32-cam-aithinker", "xiao-esp32s3-sense"])
def test_camera_boards_build_like_any_other(tmp_path: Path, board: str) -> None:
    """A camera board is provisioned like any other: the same build stages its profile and the camera
    modules (the capture policy and the board's camera driver) as .mpy."""
    cam = build(tmp_path / board, board=board)
    names = {str(p.relative_to(cam.staging)) for p in cam.staging.rglob("*") if p.is_file()}
    assert {"main.py", "boot.py", "board.json", "hx/app.mpy", "hx/capture.mpy", "hx/camera.mpy"} <= names
    profile = json.loads((cam.staging / "board.json").read_text())
    assert profile["board"] == board and profile["camera"] and profile["psram"] and "scanner" not in profile
