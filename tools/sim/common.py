"""Shared simulator pieces: the error type, a device's config.json, polling, and the events.log reader."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
CA_FILE = "ca.der"  # next to config.json on the device's flash
Event = dict[str, Any]


class SimError(Exception):
    """A simulator operation failed (stable, user-facing message)."""


@dataclass(frozen=True)
class MqttTarget:
    host: str = "127.0.0.1"
    port: int = 1884
    user: str | None = None
    password: str | None = None
    ca_der: bytes | None = None  # the gateway's CA: TLS, the broker verified against it (file ca.der)

    @classmethod
    def parse(cls, url: str) -> MqttTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp"):
            raise SimError(f"MQTT URL must look like mqtt://host:port, got {url!r}")
        if not parts.hostname:
            raise SimError(f"MQTT URL has no host: {url!r}")
        return cls(parts.hostname, parts.port or 1883, parts.username, parts.password)


@dataclass
class DeviceConfig:
    """The device's config.json (see docs/firmware.md)."""

    device: str = "dev-1"
    site: str = "demo"
    gate: str = "Gate 1"
    mode: str = "handheld"
    mqtt: MqttTarget = field(default_factory=MqttTarget)
    keepalive: int = 30
    heartbeat_s: int = 60
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "device": self.device,
            "site": self.site,
            "gate": self.gate,
            "mode": self.mode,
            "board": "unix",
            "mqtt": {
                "host": self.mqtt.host,
                "port": self.mqtt.port,
                "user": self.mqtt.user,
                "password": self.mqtt.password,
                "keepalive": self.keepalive,
            },
            "wifi": {"ssid": "", "password": ""},
            "heartbeat_s": self.heartbeat_s,
        }
        if self.mqtt.ca_der:
            doc["mqtt"]["ca"] = CA_FILE
        doc.update(self.extra)
        return doc


def wait_until(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll until ``predicate`` returns something truthy; raise SimError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise SimError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


class EventLog:
    """Incremental reader of HX_OUT/events.log (JSON lines); tolerates a half-written last line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[Event] = []
        self.bad_lines = 0
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[Event]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self._offset:  # the file was replaced: start over
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return []
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        new: list[Event] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                self.bad_lines += 1
                continue
            if isinstance(ev, dict):
                new.append(ev)
        self.events.extend(new)
        return new
