# End to end on a LAN broker (BROKER_BIND=0.0.0.0): TLS only off loopback, no anonymous or plaintext
# device, the real firmware on the VM redeeming over TLS with its provisioned CA, and device ACLs.
from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import GatewayProc
from tests.gateway.fleet_client import Client, FleetGateway, make_fleet_gateway
from tests.helpers import free_port, wait_for
from tools.provision.devconfig import ca_der
from tools.sim.common import DeviceConfig, MqttTarget
from tools.sim.runner import FirmwareProcess

pytestmark = pytest.mark.slow  # a gateway, its Mosquitto and the MicroPython VM

P = "hx/v1/dev/"
CONNECT = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x1e\x00\x04anon"  # a plaintext MQTT 3.1.1 CONNECT


def lan_address() -> str:
    """A non-loopback IPv4 address of this machine (what a scanner on the WiFi would dial), else 127.0.0.1."""
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return str(a.address)
    return "127.0.0.1"


@pytest.fixture
def lan_gw(
    tmp_path: Path, gateway_factory: Callable[..., GatewayProc]
) -> Iterator[tuple[FleetGateway, Path]]:
    # The var dir sits where Debian's `mosquitto` user can pass through (pytest's tmp dirs are 0700),
    # so a gateway running as root hands the broker to that user as it would in production.
    var = Path(tempfile.mkdtemp(prefix="hx-lan-", dir="/tmp"))
    env = {"BROKER_BIND": "0.0.0.0", "BROKER_TLS_PORT": str(free_port()), "VAR_DIR": str(var)}
    gw = make_fleet_gateway(tmp_path, gateway_factory, env)
    try:
        yield gw, var
    finally:
        gw.proc.stop()
        import shutil

        shutil.rmtree(var, ignore_errors=True)


def plaintext_answer(host: str, port: int) -> bytes:
    """What a plaintext MQTT client gets back from (host, port): b"" when the connection is closed."""
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(CONNECT)
        try:
            return s.recv(64)
        except (ConnectionResetError, TimeoutError):
            return b""


def test_lan_broker_tls_only_logins_acls_and_firmware(
    lan_gw: tuple[FleetGateway, Path], tmp_path: Path
) -> None:
    g, var = lan_gw
    host = lan_address()
    broker = g.api("GET", "/api/fleet/broker").json()
    tls_port = int(broker["port"])
    assert broker["tls"] is True and broker["device_auth"] is True and tls_port != g.broker_port
    assert host in broker["names"] and "127.0.0.1" in broker["names"]
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(broker["ca_pem"])

    # Plaintext: refused on the LAN listener (a TLS handshake is expected, no CONNACK comes back) and
    # not listening off loopback at all.
    assert not plaintext_answer(host, tls_port).startswith(b"\x20")
    if host != "127.0.0.1":
        with pytest.raises(OSError):
            socket.create_connection((host, g.broker_port), timeout=2).close()

    # Anonymous over TLS: refused. Demo or not, a LAN broker checks logins.
    anon = Client(host, tls_port, None, None, "anything", ca_file=str(ca_file))
    assert "Not authorized" in anon.wait_refused()
    anon.close()

    # The real firmware, provisioned with its login and the CA (as `tools.provision install` writes
    # them), connects over TLS to the LAN address and redeems end to end.
    r = g.api(
        "POST", "/api/orders", json={"orders": [{"code": "HX-LAN-1", "title": "Day pass", "quantity": 1}]}
    )
    assert r.status_code == 201, r.text
    creds = g.provision("lan-1")
    m = creds["mqtt"]
    target = MqttTarget(host, tls_port, m["username"], m["password"], ca_der(broker))
    dev = FirmwareProcess(
        tmp_path / "lan-1", DeviceConfig(device="lan-1", site="s1", mqtt=target, keepalive=10)
    )
    dev.start()
    try:
        up = dev.wait_event(
            lambda e: e.get("ev") == "mqtt" and e.get("state") == "up", timeout=30, what="TLS up"
        )
        assert up["tls"] is True and up["broker"] == f"{host}:{tls_port}"
        wait_for(lambda: g.api("GET", "/api/fleet/devices/lan-1").json().get("online"), 30, "lan-1 online")
        dev.wait_event(
            lambda e: e.get("ev") == "screen" and e.get("state") == "READY", timeout=30, what="READY"
        )
        dev.scan("HX-LAN-1")
        v = dev.wait_event(lambda e: e.get("ev") == "verdict", timeout=30, what="a verdict")
        assert v["ok"] is True and v["reason"] == "OK", v
        rows = g.api("GET", "/api/redemptions?device=lan-1").json()["items"]
        assert [(x["code"], x["ok"]) for x in rows] == [("HX-LAN-1", True)]
    finally:
        dev.close()

    # A device may not publish retained commands or gateway status, nor touch another device: its
    # publishes reach no subscriber and change no retained state.
    other = g.provision("lan-2")["mqtt"]
    b = Client(host, tls_port, other["username"], other["password"], ca_file=str(ca_file))
    b.wait_connected()
    for t in (P + "lan-2/cmd", "hx/v1/gateway/status", P + "lan-2/verdict"):
        b.subscribe(t)
    wait_for(lambda: b.got("hx/v1/gateway/status"), 10, "the gateway's retained status")
    a = Client(host, tls_port, m["username"], m["password"], ca_file=str(ca_file))
    a.wait_connected()
    reboot = json.dumps({"v": 1, "cmd": "reboot", "args": {}})
    a.publish(P + "lan-2/cmd", reboot, retain=True)
    a.publish(P + "lan-1/cmd", reboot, retain=True)
    a.publish("hx/v1/gateway/status", '{"v":1,"state":"offline"}', retain=True)
    a.publish(P + "lan-2/verdict", '{"v":1,"sid":"x","ok":true}')
    a.publish(P + "lan-1/scan", "{}")  # its own topic, allowed: shows the publishes above were sent
    a.close()
    fresh = Client(host, tls_port, other["username"], other["password"], ca_file=str(ca_file))
    fresh.wait_connected()
    fresh.subscribe(P + "lan-2/cmd")
    fresh.subscribe("hx/v1/gateway/status")
    status = wait_for(lambda: fresh.got("hx/v1/gateway/status"), 10, "retained gateway status")
    assert json.loads(status[-1])["state"] == "online"
    assert (
        fresh.got(P + "lan-2/cmd") == [] and b.got(P + "lan-2/cmd") == [] and b.got(P + "lan-2/verdict") == []
    )
    assert [json.loads(x)["state"] for x in b.got("hx/v1/gateway/status")] == ["online"]
    b.close()
    fresh.close()

    # Files: CA key 0600 for the gateway's user; the broker's key and logins 0600 and, as root, the
    # broker runs as `mosquitto` and owns them (nothing world- or group-readable).
    ca_key = var / "ca" / "ca-key.pem"
    assert stat.S_IMODE(ca_key.stat().st_mode) == 0o600 and ca_key.stat().st_uid == os.geteuid()
    for name in ("broker-key.pem", "passwd", "acl"):
        assert stat.S_IMODE((var / "mosquitto" / name).stat().st_mode) == 0o600, name
    if os.geteuid() == 0:
        pid = int((var / "mosquitto" / "mosquitto.pid").read_text())
        assert psutil.Process(pid).username() == "mosquitto"
        assert (var / "mosquitto" / "passwd").stat().st_uid == psutil.Process(pid).uids().real
