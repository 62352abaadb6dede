# What the redemption service takes from a transport and gives back: its ports, implemented by adapters.
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.domain.decisions import Decision
from gateway.domain.requests import Request
from gateway.domain.verdict import Verdict


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
    received: float = 0.0  # monotonic time of the hand-over (the gateway-side verdict latency starts)


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


Message = ScanIn | BadScan | StatusIn | Ignored
# Reads one raw message (topic, payload) into what it says; never raises (the MQTT adapter's `read`).
Read = Callable[[str, bytes], Message]
# Fits a decision to the device's screen and sound (the MQTT adapter's `oled.render`).
Render = Callable[[str, Decision], Verdict]
# Sends a device its verdict (the MQTT adapter publishes it on the device's verdict topic).
Answer = Callable[[str, Verdict], None]


@dataclass(frozen=True, slots=True)
class Transport:
    """The device link's ports: how a raw message is read, a decision rendered, a verdict sent."""

    read: Read
    render: Render
    answer: Answer
