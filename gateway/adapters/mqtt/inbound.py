# An MQTT message as the network thread hands it over, and what it says: a scan request, a status, or junk.
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.adapters.mqtt.contract import Malformed, parse_scan, split_topic
from gateway.domain.requests import Request


def no_ack() -> None:
    return None


@dataclass(slots=True)
class Inbound:
    """A raw MQTT message handed over by the network thread.

    `ack` tells the broker the message is done with; it is called only once the message's outcome is
    committed (or it was answered without anything to commit), so a gateway crash before that leaves
    the scan with the broker, which delivers it again to the persistent session.
    """

    topic: str
    payload: bytes
    ack: Callable[[], None] = no_ack


@dataclass(frozen=True, slots=True)
class ScanIn:
    """A well-formed scan: the device's request."""

    device: str
    request: Request


@dataclass(frozen=True, slots=True)
class BadScan:
    """A scan that broke the contract; answered MALFORMED when `sid` is readable, else dropped."""

    device: str
    sid: str | None
    why: str


@dataclass(frozen=True, slots=True)
class StatusIn:
    """A device's status (None: unreadable, dropped)."""

    device: str
    doc: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Ignored:
    """Nothing to do: a topic of no device (`unreadable`), or a kind the gateway does not take."""

    unreadable: bool


def read(topic: str, payload: bytes) -> ScanIn | BadScan | StatusIn | Ignored:
    """What one message says; never raises."""
    parts = split_topic(topic)
    if parts is None:
        return Ignored(unreadable=True)
    device, kind = parts
    if kind == "status":
        return StatusIn(device, parse_status(payload))
    if kind != "scan":
        return Ignored(unreadable=False)
    msg = parse_scan(payload)
    if isinstance(msg, Malformed):
        return BadScan(device, msg.sid, msg.why)
    req = Request(
        device,
        msg.sid,
        msg.code or "",
        msg.qty,
        msg.dir,
        float(msg.at) or None,
        msg.op,
        msg.amt,
        msg.ref,
        None,
        msg.pin,
    )
    return ScanIn(device, req)


def parse_status(payload: bytes) -> dict[str, Any] | None:
    """A status document (an empty payload: the retained status was cleared, so offline)."""
    if len(payload) > 1024:
        return None
    try:
        doc = json.loads(payload) if payload else {"v": 1, "state": "offline"}
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("v") != 1 or doc.get("state") not in ("online", "offline"):
        return None
    return doc
