# The fleet REST API on a real gateway that runs its own Mosquitto with per-device logins.
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.services.fleet import silence_changes
from tests.conftest import GatewayProc
from tests.gateway.fleet_client import Client, FleetGateway, make_fleet_gateway
from tests.helpers import wait_for

pytestmark = pytest.mark.slow  # starts gateway processes with their own broker

P = "hx/v1/dev/"


@pytest.fixture
def fleet_gw(tmp_path: Path, gateway_factory: Callable[..., GatewayProc]) -> FleetGateway:
    return make_fleet_gateway(tmp_path, gateway_factory)


def online(doc: dict[str, Any] | None = None) -> str:
    base = {"v": 1, "state": "online", "fw": "0.1.0", "board": "unix", "ip": "10.0.0.7", "rssi": -61}
    base.update({"heap": 51200, "outbox": 2, "up": 12, "mode": "handheld"})
    base.update(doc or {})
    return json.dumps(base)


def test_fleet_needs_a_manager(fleet_gw: FleetGateway) -> None:
    r = fleet_gw.proc.api("POST", "/api/fleet/devices/d1/provision", json={"site": "s1"}, local=False)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHENTICATED"


def test_provision_connect_status_commands_revoke(fleet_gw: FleetGateway) -> None:
    g = fleet_gw
    assert g.api("GET", "/api/fleet/broker").json() == {
        "host": "127.0.0.1",
        "port": g.broker_port,
        "device_auth": True,
    }
    creds = g.provision("scan-1", gate="Gate 3", board="esp32-devkitc")
    assert creds["rotated"] is False and creds["generation"] == 1
    assert creds["mqtt"]["username"] == "scan-1" and len(creds["mqtt"]["password"]) == 32
    # The secret is shown once and never stored in clear (the log and the database only see a hash).
    assert creds["mqtt"]["password"] not in g.proc.log()
    assert creds["mqtt"]["password"].encode() not in (g.proc.db_path.read_bytes())

    anon = Client("127.0.0.1", g.broker_port, None, None, "scan-1")
    assert "Not authorized" in anon.wait_refused()
    anon.close()

    dev = g.device_client(creds)
    dev.c.will_set(P + "scan-1/status", '{"v":1,"state":"offline"}', qos=1, retain=True)
    dev.wait_connected()
    dev.subscribe(P + "scan-1/cmd")
    dev.publish(P + "scan-1/status", online(), retain=True)

    def view() -> dict[str, Any]:
        r = g.api("GET", "/api/fleet/devices/scan-1")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    v = wait_for(lambda: (lambda x: x if x["online"] else None)(view()), 15, "device online")
    assert v["site"] == "s1" and v["gate"] == "Gate 3" and v["board"] == "unix"
    assert (v["fw"], v["ip"], v["rssi"], v["heap"], v["outbox"]) == ("0.1.0", "10.0.0.7", -61, 51200, 2)
    assert v["credentials"] == "active" and v["alarm"] is False

    # Commands reach the device on its cmd topic, validated first.
    r = g.api("POST", "/api/fleet/devices/scan-1/commands", json={"cmd": "beep", "args": {"sound": "ok"}})
    assert r.status_code == 200, r.text
    r = g.api(
        "POST",
        "/api/fleet/devices/scan-1/commands",
        json={"cmd": "show", "args": {"l1": "Provisioned", "l2": "Gate 3 ready"}},
    )
    assert r.status_code == 200
    r = g.api(
        "POST", "/api/fleet/devices/scan-1/commands", json={"cmd": "set_mode", "args": {"mode": "turnstile"}}
    )
    assert r.status_code == 200
    wait_for(lambda: len(dev.got(P + "scan-1/cmd")) == 3, 10, "three commands")
    cmds = [json.loads(p) for p in dev.got(P + "scan-1/cmd")]
    assert cmds == [
        {"v": 1, "cmd": "beep", "args": {"sound": "ok"}},
        {"v": 1, "cmd": "show", "args": {"l1": "Provisioned", "l2": "Gate 3 ready"}},
        {"v": 1, "cmd": "set_mode", "args": {"mode": "turnstile"}},
    ]
    assert view()["mode"] == "turnstile"
    assert [c["cmd"] for c in view()["commands"]] == ["set_mode", "show", "beep"]

    # Bad commands change nothing and say why.
    for body in (
        {"cmd": "selfdestruct"},
        {"cmd": "beep", "args": {"sound": "loud"}},
        {"cmd": "show", "args": {"l1": "x" * 17}},
        {"cmd": "show", "args": {"l1": "Provisioned ✓"}},
        {"cmd": "reboot", "args": {"now": True}},
    ):
        r = g.api("POST", "/api/fleet/devices/scan-1/commands", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "VALIDATION"
    assert g.api("POST", "/api/fleet/devices/nope/commands", json={"cmd": "beep"}).status_code == 404
    assert len(view()["commands"]) == 3

    # Site-wide command goes to every device of the site.
    creds2 = g.provision("scan-2")
    dev2 = g.device_client(creds2)
    dev2.wait_connected()
    dev2.subscribe(P + "scan-2/cmd")
    r = g.api("POST", "/api/fleet/sites/s1/commands", json={"cmd": "reboot"})
    assert r.status_code == 200, r.text
    assert [d["device"] for d in r.json()["devices"]] == ["scan-1", "scan-2"]
    wait_for(lambda: dev2.got(P + "scan-2/cmd"), 10, "site command at scan-2")

    # Revoke: the broker drops scan-1 at once (its will marks it offline) and refuses it from now on.
    r = g.api("POST", "/api/fleet/devices/scan-1/revoke")
    assert r.status_code == 200 and r.json()["already"] is False
    wait_for(lambda: dev.disconnects, 10, "revoked device dropped")
    dev.wait_refused()
    wait_for(lambda: not view()["online"], 10, "revoked device offline")
    assert view()["credentials"] == "revoked"
    assert dev2.disconnects == []
    # A revoked device is left out of site commands.
    r = g.api("POST", "/api/fleet/sites/s1/commands", json={"cmd": "status"})
    assert [d["device"] for d in r.json()["devices"]] == ["scan-2"]

    # Re-provisioning issues generation 2 and lets it back in with the new secret only.
    again = g.provision("scan-1")
    assert again["rotated"] is True and again["generation"] == 2
    back = g.device_client(again)
    back.wait_connected()
    old = g.device_client(creds)
    old.wait_refused()
    for c in (dev, dev2, back, old):
        c.close()


def test_silence_alarm_opens_and_clears(fleet_gw: FleetGateway) -> None:
    g = fleet_gw
    creds = g.provision("quiet-1")
    dev = g.device_client(creds)
    dev.wait_connected()
    dev.publish(P + "quiet-1/status", online())

    def alarms() -> list[str]:
        return [a["device"] for a in g.api("GET", "/api/fleet/alarms").json()]

    wait_for(lambda: "quiet-1" in alarms(), 20, "inactivity alarm after 2 s of silence")
    assert g.api("GET", "/api/fleet/devices/quiet-1").json()["alarm"] is True
    dev.publish(P + "quiet-1/status", online())
    wait_for(lambda: "quiet-1" not in alarms(), 20, "alarm cleared when heard again")
    history = g.api("GET", "/api/fleet/alarms?all=true").json()
    assert history[0]["device"] == "quiet-1" and history[0]["cleared_at"] is not None
    dev.close()


def test_silence_rule() -> None:
    seen: dict[str, float | None] = {"a": 100.0, "b": 195.0, "c": None}
    assert silence_changes(seen, set(), 200.0, 60) == (["a"], [])
    assert silence_changes(seen, {"a"}, 200.0, 60) == ([], [])
    assert silence_changes({"a": 199.0}, {"a", "gone"}, 200.0, 60) == ([], ["a", "gone"])
    assert silence_changes(seen, set(), 160.0, 60) == ([], [])  # exactly at the limit: not yet


def test_device_auth_can_be_switched_off(tmp_path: Path, gateway_factory: Callable[..., GatewayProc]) -> None:
    g = make_fleet_gateway(tmp_path, gateway_factory, {"DEVICE_AUTH": "false"})
    assert g.api("GET", "/api/fleet/broker").json()["device_auth"] is False
    anon = Client("127.0.0.1", g.broker_port, None, None, "anything")
    anon.wait_connected()
    anon.close()
    # Provisioning still works (the device keeps its login for when auth is switched on).
    assert g.provision("d1")["mqtt"]["password"]
