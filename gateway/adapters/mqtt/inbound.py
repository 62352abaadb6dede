# An MQTT message read into what it says: a scan request, a status, or junk (types: services/messages.py).
from __future__ import annotations

import json
from typing import Any

from gateway.adapters.mqtt.contract import Malformed, parse_scan, split_topic
from gateway.domain.requests import Request
from gateway.services.messages import BadScan, Ignored, ScanIn, StatusIn


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
