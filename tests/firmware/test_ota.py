# Over-the-air update on the device side, end to end on the unix board with the real firmware, broker and
# a scripted gateway: A -> B (verified, on trial, kept once online), B -> broken C (rolled back to B at
# once), a tampered or wrongly signed bundle changes nothing. The gateway's upload/roll-out is not built.
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.firmware.mpvm import MP_DIR, run_mp
from tests.firmware.test_app_host import Device, FakeGateway
from tools.build_firmware import build, mpy_cross
from tools.ota_bundle import make_bundle

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def _variant(
    base: Path, out: Path, tmp: Path, module: str, source: str, version: str, key: bytes = KEY
) -> Path:
    """A bundle: the build's hx package with `module` replaced by compiled `source`."""
    shutil.copytree(base / "hx", out / "hx")
    src = tmp / (module.replace("/", "_") + ".py")
    src.write_text(source)
    subprocess.run([mpy_cross(), "-O3", "-s", module, "-o", str(out / module), str(src)], check=True)
    raw, sig = make_bundle(out, version, key)
    (out / "manifest.json").write_bytes(raw)
    (out / "manifest.sig").write_text(sig)
    return out


def _install(fw: Path, flash: Path, bundle: Path) -> str:
    res = run_mp(MP_DIR / "ota_install.py", str(fw), str(flash), str(bundle), KEY.hex())
    return res.stdout.strip() + res.stderr[-500:]


def _state(flash: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((flash / "slots" / "state.json").read_text())
    return doc


def test_update_a_to_b_then_broken_c_rolls_back(tmp_path: Path, mosquitto: Mosquitto) -> None:
    fw = tmp_path / "fw"
    build(fw)
    b = _variant(fw, tmp_path / "b", tmp_path, "hx/__init__.mpy", 'VERSION = "0.2.0-b"\n', "0.2.0-b")
    c = _variant(fw, tmp_path / "c", tmp_path, "hx/app.mpy", 'raise ImportError("broken C")\n', "0.3.0-c")
    gw = FakeGateway(mosquitto)
    dev = Device(tmp_path / "dev", mosquitto, main=fw / "main.py")
    try:
        dev.start()
        assert dev.wait(lambda e: e["ev"] == "boot")["fw"] == "0.1.0", "A: the factory firmware"
        dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", what="READY")
        dev.kill()

        out = _install(fw, dev.flash, b)
        assert out.startswith("OK a "), out
        assert _state(dev.flash)["trial"], "B is on trial until it proves itself"
        m = dev.mark()
        dev.start()
        assert dev.wait(lambda e: e["ev"] == "boot", m)["fw"] == "0.2.0-b", "B runs after the reboot"
        dev.wait(lambda e: e["ev"] == "ota" and e["state"] == "kept", m, "B kept once online")
        m2 = dev.mark()
        dev.type(b"GOOD-OTA\r\n")
        dev.wait(lambda e: e["ev"] == "verdict" and e["ok"], m2, "B redeems")
        dev.kill()
        assert _state(dev.flash) == {"active": "a", "trial": None}

        out = _install(fw, dev.flash, c)
        assert out.startswith("OK b "), out
        m = dev.mark()
        dev.start()
        assert dev.wait(lambda e: e["ev"] == "boot", m)["fw"] == "0.2.0-b", "C never runs: back to B"
        rb = dev.wait(lambda e: e["ev"] == "ota" and e["state"] == "rolled_back", m, "rollback reported")
        assert "broken C" in json.dumps(rb["detail"])
        dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", m, "READY on B")
        assert not dev.events("crash")
        st = _state(dev.flash)
        assert (st["active"], st["trial"]) == ("a", None)
    finally:
        dev.kill()
        gw.close()


def test_tampered_or_wrongly_signed_bundles_change_nothing(tmp_path: Path) -> None:
    fw = tmp_path / "fw"
    build(fw)
    flash = tmp_path / "flash"
    flash.mkdir()
    b = _variant(fw, tmp_path / "b", tmp_path, "hx/__init__.mpy", 'VERSION = "0.2.0-b"\n', "0.2.0-b")
    data = bytearray((b / "hx" / "ui.mpy").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed after signing
    (b / "hx" / "ui.mpy").write_bytes(bytes(data))
    assert _install(fw, flash, b).startswith("ERR hash mismatch: hx/ui.mpy")
    assert not (flash / "slots" / "state.json").exists(), "nothing switched"
    wrong = _variant(
        fw, tmp_path / "w", tmp_path, "hx/__init__.mpy", 'VERSION = "9"\n', "9", key=b"not the key"
    )
    assert _install(fw, flash, wrong).startswith("ERR bad signature")
    assert not (flash / "slots" / "state.json").exists()
