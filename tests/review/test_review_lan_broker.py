# Review: attacks on the LAN broker (BROKER_BIND=0.0.0.0) with real Mosquitto and paho clients.
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import GatewayProc
from tests.gateway.fleet_client import Client, make_fleet_gateway
from tests.helpers import free_port, wait_for

P = "hx/v1/dev/"


def _plant_retained_before_upgrade(workdir: Path, topic: str, payload: str) -> None:
    """The broker as it ran before the security change (anonymous, same persistence folder), with the
    retained reboot an attacker on the WiFi published then (the issue's boot-loop attack)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "old.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {workdir}/\nuser root\n"
    )
    broker = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(conf)])
    try:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="attacker")
        wait_for(lambda: _connects(c, port), 10, "old broker")
        c.loop_start()
        c.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
        c.disconnect()
        c.loop_stop()
    finally:
        broker.terminate()  # Mosquitto saves its persistence file on a clean stop
        broker.wait(10)
    conf.unlink()
    assert (workdir / "mosquitto.db").exists()


def _connects(c: mqtt.Client, port: int) -> bool:
    try:
        return c.connect("127.0.0.1", port) == 0
    except OSError:
        return False


def test_a_retained_reboot_from_before_the_upgrade_still_boot_loops_the_device(
    tmp_path: Path, gateway_factory: Callable[..., GatewayProc]
) -> None:
    """Invariant 1: cmd never retained. The ACL stops new retained commands, but the gateway keeps
    the broker's persistence across the upgrade and never clears retained `cmd` topics: a reboot
    planted on the old anonymous broker is delivered to the device at every (re)connect."""
    var = Path(tempfile.mkdtemp(prefix="hx-rev-up-", dir="/tmp"))
    try:
        reboot = json.dumps({"v": 1, "cmd": "reboot", "args": {}})
        _plant_retained_before_upgrade(var / "mosquitto", P + "victim-3/cmd", reboot)
        env = {"BROKER_BIND": "0.0.0.0", "BROKER_TLS_PORT": str(free_port()), "VAR_DIR": str(var)}
        g = make_fleet_gateway(tmp_path, gateway_factory, env)
        broker = g.api("GET", "/api/fleet/broker").json()
        ca = tmp_path / "ca.pem"
        ca.write_text(broker["ca_pem"])
        victim = g.provision("victim-3")["mqtt"]
        v = Client("127.0.0.1", int(broker["port"]), victim["username"], victim["password"], ca_file=str(ca))
        v.wait_connected()
        v.subscribe(P + "victim-3/cmd")
        time.sleep(1.0)
        got = v.got(P + "victim-3/cmd")
        v.close()
        g.proc.stop()
        assert got == [], f"the device got a retained command at connect: {got}"
    finally:
        shutil.rmtree(var, ignore_errors=True)
