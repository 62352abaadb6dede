# Fleet test helpers: a gateway running its own secured Mosquitto, and a logged-in MQTT client that records
# connect results, disconnects and every message it reads.
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.mqtt.acl import DeviceAuth, make_auth
from gateway.services.accounts import create_user, issue_api_token
from gateway.services.device_auth import Credentials
from tests.conftest import GatewayProc
from tests.helpers import free_port, wait_for


class Client:
    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        client_id: str | None = None,
        protocol: int = mqtt.MQTTv311,
        ca_file: str | None = None,
    ) -> None:
        self.username = username
        self.connects: list[str] = []  # reason strings of CONNACKs, "Success" or the refusal
        self.disconnects: list[str] = []
        self.messages: list[tuple[str, bytes]] = []
        self.suback: list[Any] = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or username or "", protocol=protocol
        )
        if username is not None:
            self.c.username_pw_set(username, password)
        if ca_file is not None:
            self.c.tls_set(ca_certs=ca_file)  # TLS; the broker's certificate checked for `host`
        self.c.on_connect = lambda c, u, f, rc, p: self._log(self.connects, str(rc))
        self.c.on_disconnect = lambda c, u, f, rc, p: self._log(self.disconnects, str(rc))
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self._log(self.suback, [str(r) for r in rcs])
        self.c.reconnect_delay_set(1, 2)
        self.c.connect_async(host, port, keepalive=10)
        self.c.loop_start()

    def _log(self, where: list[Any], item: Any) -> None:
        with self.lock:
            where.append(item)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def wait_connected(self, timeout: float = 10) -> None:
        wait_for(lambda: "Success" in self.connects, timeout, f"{self.username} connected")

    def wait_refused(self, timeout: float = 10) -> str:
        return str(
            wait_for(
                lambda: next((r for r in self.connects if r != "Success"), None),
                timeout,
                f"{self.username} refused",
            )
        )

    def subscribe(self, topic: str) -> None:
        n = len(self.suback)
        self.c.subscribe(topic, qos=1)
        wait_for(lambda: len(self.suback) > n, 10, f"suback for {topic}")

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def got(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class CredentialBroker:
    """A credential table (a fresh SQLite) whose password and ACL files a real broker reads, as the gateway
    runs it, and the MQTT clients a test opened: `close()` ends them all. `start_broker` makes the broker
    (Mosquitto or the amqtt demo broker) from the auth files' paths."""

    def __init__(self, tmp: Path, start_broker: Callable[[DeviceAuth], Any]) -> None:
        self.engine: Engine = make_engine(f"sqlite:///{tmp / 'fleet.db'}")
        migrate(self.engine)
        self.auth: DeviceAuth = make_auth(tmp, "hexiao-gateway")
        self.creds = Credentials(SqlDatabase(self.engine), self.auth)
        self.creds.sync()
        self.broker = start_broker(self.auth)
        self.broker.start()
        self.creds.reload = self.broker.reload
        self.clients: list[Client] = []

    def client(self, user: str | None, password: str | None, client_id: str | None = None) -> Client:
        c = Client("127.0.0.1", self.broker.port, user, password, client_id)
        self.clients.append(c)
        return c

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.broker.stop()
        self.engine.dispose()


class FleetGateway:
    def __init__(self, proc: GatewayProc, token: str, broker_port: int) -> None:
        self.proc = proc
        self.headers = {"authorization": f"Bearer {token}"}
        self.broker_port = broker_port

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.proc.api(method, path, headers=self.headers, **kw)

    def provision(self, device: str, site: str = "s1", **kw: Any) -> dict[str, Any]:
        r = self.api("POST", f"/api/fleet/devices/{device}/provision", json={"site": site, **kw})
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def device_client(self, creds: dict[str, Any]) -> Client:
        m = creds["mqtt"]
        return Client("127.0.0.1", m["port"], m["username"], m["password"])


def make_fleet_gateway(
    tmp_path: Path, gateway_factory: Callable[..., GatewayProc], env: dict[str, str] | None = None
) -> FleetGateway:
    db = tmp_path / "fleet.db"
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    create_user(SqlDatabase(engine), "boss", "boss-password", "owner")
    token = issue_api_token(SqlDatabase(engine), "boss", "tests")
    engine.dispose()
    port = free_port()
    full_env = {"MQTT_URL": "", "BROKER_PORT": str(port), "FLEET_SILENCE_S": "2", "FLEET_CHECK_S": "0.2"}
    full_env.update(env or {})
    g = FleetGateway(gateway_factory("", db, full_env), token, port)
    r = g.api("POST", "/api/sites", json={"slug": "s1", "name": "Site One"})
    assert r.status_code == 201, r.text
    return g
