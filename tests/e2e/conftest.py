# Fixtures for end-to-end tests: simulated devices (real firmware on the VM) wired to the test broker.
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from tools.sim.runner import DeviceConfig, FirmwareProcess, MqttTarget

DeviceFactory = Callable[..., FirmwareProcess]


@pytest.fixture
def devices(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[DeviceFactory]:
    """``devices("dev-1", mode="handheld", config={...})`` → a started firmware process on the test broker."""
    made: list[FirmwareProcess] = []

    def make(
        name: str, *, mode: str = "handheld", site: str = "demo", start: bool = True, **kw: Any
    ) -> FirmwareProcess:
        cfg = DeviceConfig(
            device=name,
            site=site,
            gate=f"Gate {len(made) + 1}",
            mode=mode,
            mqtt=MqttTarget(mosquitto.host, mosquitto.port),
            keepalive=kw.pop("keepalive", 10),
            heartbeat_s=kw.pop("heartbeat_s", 60),
            extra=kw.pop("config", {}),
        )
        dev = FirmwareProcess(tmp_path / "devices" / name, cfg, **kw)
        made.append(dev)
        if start:
            dev.start()
        return dev

    yield make
    for dev in made:
        dev.close()


class Tap:
    """Listens to every device topic on the broker (scans, verdicts, statuses), across broker restarts."""

    def __init__(self, host: str, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, str, dict[str, Any]]] = []  # (device, kind, payload)
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"e2e-tap-{port}", clean_session=True)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda *a: self._subscribed.set()
        self.c.on_message = self._on_message
        self.c.reconnect_delay_set(0.2, 1)
        self.c.connect(host, port, keepalive=10)
        self.c.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("tap subscription not acknowledged")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        client.subscribe("hx/v1/dev/+/+", qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            doc = {"_raw": msg.payload.decode("latin-1")}
        with self._lock:
            self.messages.append((parts[3], parts[4], doc if isinstance(doc, dict) else {"_raw": doc}))

    def command(self, device: str, cmd: str, args: dict[str, Any] | None = None) -> None:
        doc = {"v": 1, "cmd": cmd, "args": args or {}}
        self.c.publish(f"hx/v1/dev/{device}/cmd", json.dumps(doc), qos=1).wait_for_publish(10)

    def of(self, kind: str, device: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [m for d, k, m in self.messages if k == kind and (device is None or d == device)]

    def verdict(self, device: str, sid: str) -> dict[str, Any] | None:
        found = [v for v in self.of("verdict", device) if v.get("sid") == sid]
        return found[-1] if found else None

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def tap(mosquitto: Mosquitto) -> Iterator[Tap]:
    t = Tap(mosquitto.host, mosquitto.port)
    yield t
    t.close()
