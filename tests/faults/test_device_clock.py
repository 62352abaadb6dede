# A device clock hours off: the gateway decides with its own clock, stores the device's reading as given,
# and the real firmware sets its clock from the gateway's status before its next scan.
from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.conftest import GatewayProc
from tests.e2e.conftest import Tap
from tests.faults.harness import record
from tests.helpers import wait_for
from tools.sim.runner import DeviceConfig, FirmwareProcess, MqttTarget

HOURS_OFF = 5 * 3600


def _orders(gw: GatewayProc, now: float) -> None:
    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")

    def order(code: str, start: float, end: float) -> dict[str, object]:
        return {
            "code": code,
            "title": "clock",
            "quantity": 5,
            "site": None,
            "valid_from": iso(start),
            "valid_until": iso(end),
        }

    body = {
        "orders": [
            order("CLK-NOW", now - 3600, now + 3600),  # valid now, not at the device's (wrong) time
            order("CLK-PAST", now - 9 * 3600, now - 3600),  # expired an hour ago, "valid" 5 h ago
            order("CLK-SOON", now + 3600, now + 9 * 3600),  # not yet valid, "valid" 5 h ahead
            order("CLK-FW", now - 600, now + 600),  # for the firmware's scan
        ]
    }
    r = gw.api("POST", "/api/orders", json=body)
    assert r.status_code == 201, r.text


def _raw_scans(mosquitto: Mosquitto, scans: list[tuple[str, str, int]]) -> dict[str, dict[str, object]]:
    """Scans with the given device clock readings from a bare MQTT client; the verdicts by sid."""
    got: dict[str, dict[str, object]] = {}
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="clk-raw", clean_session=True)
    c.on_message = lambda cl, u, m: got.__setitem__(json.loads(m.payload)["sid"], json.loads(m.payload))
    c.connect(mosquitto.host, mosquitto.port)
    c.loop_start()
    try:
        c.subscribe("hx/v1/dev/clk-raw/verdict", qos=1)[1]
        time.sleep(0.3)
        for sid, code, at in scans:
            body = {"v": 1, "sid": sid, "code": code, "qty": 1, "dir": "in", "at": at}
            c.publish("hx/v1/dev/clk-raw/scan", json.dumps(body), qos=1).wait_for_publish(10)
        wait_for(lambda: len(got) == len(scans), 30, "verdicts for the off-clock scans")
    finally:
        c.loop_stop()
        c.disconnect()
    return got


def test_device_clock_hours_off(
    tmp_path: Path, mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc]
) -> None:
    gw = gateway_factory(mosquitto.url)
    now = time.time()
    _orders(gw, now)
    behind, ahead = int(now) - HOURS_OFF, int(now) + HOURS_OFF
    got = _raw_scans(
        mosquitto,
        [
            ("b1", "CLK-NOW", behind),
            ("b2", "CLK-PAST", behind),
            ("a1", "CLK-NOW", ahead),
            ("a2", "CLK-SOON", ahead),
        ],
    )
    assert {s: (v["ok"], v["reason"]) for s, v in got.items()} == {
        "b1": (True, "OK"),
        "b2": (False, "EXPIRED"),
        "a1": (True, "OK"),
        "a2": (False, "NOT_YET_VALID"),
    }
    engine = sa.create_engine(f"sqlite:///{gw.db_path}")
    with engine.connect() as c:
        rows = {
            r.scan_id: r
            for r in c.execute(
                sa.text("SELECT scan_id, device_time, server_time FROM redemptions WHERE device='clk-raw'")
            )
        }
    engine.dispose()
    # The device's reading is kept as evidence; the ledger's time is the gateway's.
    assert {s: r.device_time for s, r in rows.items()} == {
        "b1": behind,
        "b2": behind,
        "a1": ahead,
        "a2": ahead,
    }
    assert all(abs(r.server_time - now) < 600 for r in rows.values())

    # The real firmware, its RTC 5 h behind: the gateway's retained status sets it before it scans.
    tap = Tap(mosquitto.host, mosquitto.port)
    cfg = DeviceConfig(device="clk-fw", mqtt=MqttTarget(mosquitto.host, mosquitto.port), keepalive=10)
    dev = FirmwareProcess(tmp_path / "fw", cfg, env={"HX_CLOCK_OFFSET": str(-HOURS_OFF)})
    try:
        dev.start()
        set_ev = dev.wait_event(
            lambda e: e.get("ev") == "clock", timeout=30, what="the device setting its clock"
        )
        assert dev.scan("CLK-FW")
        scan = wait_for(lambda: tap.of("scan", "clk-fw"), 30, "the firmware's scan")[0]
        verdict = wait_for(lambda: tap.verdict("clk-fw", scan["sid"]), 30, "its verdict")
    finally:
        dev.close()
        tap.close()
    record(
        "device_clock",
        hours_off=HOURS_OFF / 3600,
        fw_clock_set_to=set_ev["set"],
        fw_scan_at_error_s=scan["at"] - time.time(),
    )
    assert abs(int(set_ev["set"]) - now) < 600
    assert abs(scan["at"] - time.time()) < 120, "the firmware scanned with its wrong clock"
    assert verdict["ok"] is True and verdict["reason"] == "OK"
