# Review: the LAN rules when the broker is an external one (MQTT_URL), as README's settings table offers.
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psutil
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import ROOT, GatewayProc
from tests.helpers import free_port, wait_for


def lan_address() -> str:
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return str(a.address)
    pytest.fail("this machine has no non-loopback IPv4 address to stand in for the shop LAN")


class DemoGatewayProc(GatewayProc):
    """`python -m gateway run` with its demo data (as `make run` / a first install starts it)."""

    def start(self) -> GatewayProc:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        log.close()

        def healthy() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                return True  # it refused to start: fine for this test
            try:
                return httpx.get(self.http + "/api/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 30, "gateway health")
        return self


@pytest.fixture
def lan_mosquitto(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The shop's existing Mosquitto on the LAN, as many installs have one (defaults: anonymous, plaintext)."""
    host, port = lan_address(), free_port()
    conf = tmp_path / "m.conf"
    conf.write_text(f"listener {port} 0.0.0.0\nallow_anonymous true\n")
    p = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(conf)])
    try:
        wait_for(lambda: _can_connect(host, port), 10, "LAN mosquitto")
        yield host, port
    finally:
        p.terminate()
        p.wait(10)


def _can_connect(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def test_demo_codes_open_the_gate_through_a_plaintext_lan_broker(
    tmp_path: Path, lan_mosquitto: tuple[str, int]
) -> None:
    """Invariant 1: plaintext MQTT only on loopback; demo codes invalid once the broker is on the LAN;
    no anonymous broker off loopback. With MQTT_URL=mqtt://<LAN address> (README: "external broker")
    the gateway starts, speaks plaintext over the LAN, keeps the demo codes, and a stranger on the
    WiFi redeems HXDEMO-VIP-0001 (printed in the docs) from a device id they just made up."""
    host, port = lan_mosquitto
    g = DemoGatewayProc(
        f"mqtt://{host}:{port}",
        tmp_path / "d.db",
        tmp_path / "var",
        {"DEMO": "true", "AUTO_REGISTER_SITE": "", "AUTO_REGISTER_PER_MIN": "10"},
    )
    g.env.pop("AUTO_REGISTER_SITE")  # the product's default in a demo: unknown devices join site demo
    g.start()
    try:
        assert g.proc is not None
        if g.proc.poll() is not None:
            return  # refusing a plaintext LAN broker is one right answer
        got: list[dict[str, Any]] = []
        ready = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="intruder-1")
        c.on_message = lambda cl, u, m: got.append(json.loads(m.payload))
        c.on_subscribe = lambda *a: ready.set()
        c.connect(host, port, keepalive=10)
        c.loop_start()
        c.subscribe("hx/v1/dev/intruder-1/verdict", qos=1)
        assert ready.wait(10)
        scan = {"v": 1, "sid": "x1", "code": "HXDEMO-VIP-0001", "qty": 1, "dir": "in", "at": 1795392000}
        c.publish("hx/v1/dev/intruder-1/scan", json.dumps(scan), qos=1).wait_for_publish(10)
        try:
            wait_for(lambda: got, 15, "a verdict")
        finally:
            c.loop_stop()
            c.disconnect()
        assert got[0].get("ok") is not True, got
    finally:
        g.stop()
