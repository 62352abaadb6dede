# Over-the-air update end to end: the real firmware on the VM, the real gateway and broker. A turnstile
# provisioned with its update key goes A -> B (uploaded, rolled out, downloaded in chunks, switched when
# idle, kept once online) and is then given a broken C, which it rolls back from; the gateway shows each
# step per device and raises an alarm (fleet alarms, audit, /metrics, console) for the rollback.
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.firmware.test_app_host import Device
from tests.firmware.test_ota import _variant
from tests.helpers import wait_for
from tools.build_firmware import build
from tools.ota_bundle import archive

DEV = "ota-gate"


def _upload(gw: Any, bundle: Path) -> dict[str, Any]:
    raw = (bundle / "manifest.json").read_bytes()
    tar = archive(bundle, raw, (bundle / "manifest.sig").read_text().strip())
    r = gw.api("POST", "/api/ota/bundles", content=tar, headers={"content-type": "application/x-tar"})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _rollout(gw: Any, version: str) -> None:
    r = gw.api("POST", "/api/ota/rollouts", json={"version": version, "device": DEV})
    assert r.status_code == 200, r.text
    assert r.json()["devices"] == [DEV]


def _row(gw: Any) -> dict[str, Any]:
    rows = [d for d in gw.api("GET", "/api/ota/devices").json() if d["device"] == DEV]
    assert len(rows) == 1, rows
    return rows[0]


def _state(gw: Any, state: str, what: str, timeout: float = 30) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        row = _row(gw)
        return row if row["rollout"] and row["rollout"]["state"] == state else None

    row: dict[str, Any] = wait_for(found, timeout, what)
    return row


def _rebooted(dev: Device, what: str) -> int:
    """The firmware asked for the reset itself (exit 75, after its "reboot" event): power it up again
    as the chip would, returning the event mark of the new boot."""
    assert dev.proc is not None
    wait_for(lambda: dev.proc is not None and dev.proc.poll() is not None, 60, what)
    assert dev.proc.returncode == 75, (dev.flash.parent / "console.log").read_text()[-2000:]
    dev.console.close()
    m = dev.mark()
    dev.start()
    return m


def test_update_a_to_b_then_broken_c_rolls_back(
    tmp_path: Path, mosquitto: Mosquitto, gateway_factory: Callable[..., Any]
) -> None:
    gw = gateway_factory(mosquitto.url)
    assert gw.api("POST", "/api/sites", json={"slug": "demo", "name": "Demo"}).status_code == 201
    prov = gw.api("POST", f"/api/fleet/devices/{DEV}/provision", json={"site": "demo", "mode": "turnstile"})
    assert prov.status_code == 201, prov.text
    ota_key = prov.json()["ota_key"]
    master = bytes.fromhex((gw.var_dir / "ota-key").read_text().strip())
    assert oct((gw.var_dir / "ota-key").stat().st_mode & 0o777) == "0o600"

    fw = tmp_path / "fw"
    build(fw)
    b = _variant(fw, tmp_path / "b", tmp_path, "hx/__init__.mpy", 'VERSION = "0.2.0-b"\n', "0.2.0-b", master)
    c = _variant(
        fw, tmp_path / "c", tmp_path, "hx/app.mpy", 'raise ImportError("broken C")\n', "0.3.0-c", master
    )
    assert _upload(gw, b)["version"] == "0.2.0-b"
    assert _upload(gw, c)["version"] == "0.3.0-c"
    forged = archive(b, (b / "manifest.json").read_bytes(), "0" * 64)
    again = gw.api("POST", "/api/ota/bundles", content=forged, headers={"content-type": "application/x-tar"})
    assert again.status_code == 422 and "not signed" in again.json()["error"]["message"]

    dev = Device(tmp_path / "dev", mosquitto, main=fw / "main.py", device=DEV, ota_key=ota_key)
    try:
        dev.start()
        assert dev.wait(lambda e: e["ev"] == "boot")["fw"] == "0.1.0", "A: the factory firmware"
        dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", what="READY on A")
        wait_for(lambda: _row(gw)["fw"] == "0.1.0", 20, "the gateway sees A")

        # A -> B: offered, downloaded chunk by chunk, switched over when idle, kept once online.
        _rollout(gw, "0.2.0-b")
        m = _rebooted(dev, "B installed and the switch-over reboot")
        ev = dev.events("ota")
        assert any(e["state"] == "installed" and e["ver"] == "0.2.0-b" for e in ev), ev
        assert dev.wait(lambda e: e["ev"] == "boot", m)["fw"] == "0.2.0-b", "B runs after the reboot"
        dev.wait(lambda e: e["ev"] == "ota" and e["state"] == "kept", m, "B kept once online")
        _state(gw, "confirmed", "the gateway shows B confirmed")
        # The device's row follows with its status, which is written after the scans (statuses are
        # coalesced and written in batches, services/device_status.py): waited for, not assumed.
        wait_for(lambda: (r := _row(gw))["fw"] == "0.2.0-b" and r["online"], 30, "the row shows B online")
        assert not [a for a in gw.api("GET", "/api/fleet/alarms").json() if a["kind"] == "ota"]

        # B -> broken C: installed, fails to import at the next boot, back on B in that same boot.
        _rollout(gw, "0.3.0-c")
        m = _rebooted(dev, "C installed and the switch-over reboot")
        assert dev.wait(lambda e: e["ev"] == "boot", m)["fw"] == "0.2.0-b", "C never runs: back to B"
        dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", m, "READY on B")
        row = _state(gw, "rolled_back", "the gateway shows C rolled back")
        assert "broken C" in row["rollout"]["detail"]
        wait_for(lambda: _row(gw)["fw"] == "0.2.0-b", 30, "the row shows B again")
        alarms = [a for a in gw.api("GET", "/api/fleet/alarms").json() if a["kind"] == "ota"]
        assert [a["device"] for a in alarms] == [DEV], "a rolled-back update raises an alarm"
        metrics = gw.api("GET", "/metrics").text
        assert "hexiao_ota_alarms 1.0" in metrics
        assert 'hexiao_ota_rollouts{state="rolled_back"} 1.0' in metrics
        page = gw.api("GET", "/console/updates").text
        assert f'data-ota-alarm="{DEV}"' in page
        assert not dev.events("crash")
        st = json.loads((dev.flash / "slots" / "state.json").read_text())
        assert st["trial"] is None and st["rolled_back"]["ver"] == "0.3.0-c"
    finally:
        dev.kill()
