# The update channel on the wire (docs/protocol.md "Over-the-air updates"): a device's chunk request read,
# and what the gateway sends back (a JSON header line, then the raw bytes) as the service's OtaLink.
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gateway.adapters.mqtt.contract import TOPIC_PREFIX
from gateway.domain import ota

MAX_REQUEST = 512
REQUEST_KIND = "otareq"  # hx/v1/dev/<device>/otareq: device -> gateway
REPLY_KIND = "ota"  # hx/v1/dev/<device>/ota: gateway -> device


def ota_topic(device: str) -> str:
    return f"{TOPIC_PREFIX}{device}/{REPLY_KIND}"


def _count(v: Any, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= hi


def parse_request(payload: bytes) -> dict[str, Any] | None:
    """`{"v": 1, "ver": version, "f": path ("" = the manifest), "o": offset, "n": bytes}`, or None for
    anything else (dropped: the device asks again after its timeout)."""
    if len(payload) > MAX_REQUEST:
        return None
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("v") != 1:
        return None
    ver, path, off, n = doc.get("ver"), doc.get("f"), doc.get("o"), doc.get("n")
    if not isinstance(ver, str) or not ota.VERSION_RE.match(ver):
        return None
    if not isinstance(path, str) or (path and not ota.PATH_RE.match(path)):
        return None
    if not _count(off, ota.MAX_BUNDLE) or not _count(n, 4096) or n == 0:
        return None
    return {"ver": ver, "f": path, "o": off, "n": n}


def encode_reply(header: dict[str, Any], data: bytes) -> bytes:
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + data


class MqttOtaLink:
    """services.ota.OtaLink over a publish function (topic, payload): QoS 1, never retained."""

    def __init__(self, publish: Callable[[str, bytes], None]) -> None:
        self.publish = publish

    def send(self, device: str, header: dict[str, Any], data: bytes) -> None:
        self.publish(ota_topic(device), encode_reply(header, data))
