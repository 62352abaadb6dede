# A scanner's MQTT side for gateway tests: publishes scans on its device topics and collects verdicts.
from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.helpers import wait_for

PREFIX = "hx/v1/dev/"


class Peer:
    """Speaks the device side of the contract (docs/protocol.md) — the gateway under test is real."""

    def __init__(self, url: str, device: str, will: bool = False) -> None:
        p = urlsplit(url)
        self.device = device
        self.verdicts: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, clean_session=True)
        if will:
            self.c.will_set(
                self.topic("status"), json.dumps({"v": 1, "state": "offline"}), qos=1, retain=True
            )
        self.c.on_message = self._on_message
        ready = threading.Event()
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect(p.hostname or "127.0.0.1", p.port or 1883, keepalive=10)
        self.c.loop_start()
        self.c.subscribe(self.topic("verdict"), qos=1)
        if not ready.wait(10):
            raise AssertionError("subscription not acknowledged")

    def topic(self, kind: str) -> str:
        return f"{PREFIX}{self.device}/{kind}"

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.raw.append(msg.payload)
            self.verdicts.append(json.loads(msg.payload))

    def publish(self, kind: str, payload: bytes | str, retain: bool = False) -> None:
        self.c.publish(self.topic(kind), payload, qos=1, retain=retain).wait_for_publish(10)

    def scan(self, sid: str, code: str, qty: int = 1, direction: str = "in") -> None:
        doc = {"v": 1, "sid": sid, "code": code, "qty": qty, "dir": direction, "at": 1795392000}
        self.publish("scan", json.dumps(doc))

    def verdicts_for(self, sid: str) -> list[dict[str, Any]]:
        with self.lock:
            return [v for v in self.verdicts if v.get("sid") == sid]

    def wait_verdict(self, sid: str, timeout: float = 30) -> dict[str, Any]:
        return wait_for(lambda: (self.verdicts_for(sid) or [None])[0], timeout, f"verdict for {sid}")

    def close(self, clean: bool = True) -> None:
        if clean:
            self.c.disconnect()
        else:
            # Drop the socket without DISCONNECT, like a device losing power: the broker sends the will.
            sock = self.c.socket()
            if sock is not None:
                sock.close()
        self.c.loop_stop()
