# What is asked and where: a request, its place, its idempotency key and the fingerprint a repeat must match.
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import tzinfo


@dataclass(frozen=True, slots=True)
class Request:
    """One request from a device scan or the console, addressed by (device, sid)."""

    device: str
    sid: str
    code: str
    qty: int
    direction: str
    device_time: float | None
    op: str = "redeem"
    amt: int | None = None
    ref: str | None = None
    user: str | None = None
    pin: str | None = None
    key: str = ""  # idempotency key; empty: this device's scan key `d:<device>/<sid>`

    @property
    def idem(self) -> str:
        return self.key or idem_key(self.device, self.sid)

    @property
    def fingerprint(self) -> str:
        """What was asked, hashed: the same key with another fingerprint is a reused id, not a retry."""
        return fingerprint(self.op, self.code, self.qty, self.amt, self.direction, self.ref)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a request is made: the device's site and gate, and the site's time zone."""

    site_id: int | None
    gate: str
    tz: tzinfo
    user: str | None = None  # the verifier signed in on the device, if any


# Key spaces that cannot collide: device ids and user names never contain ':' (both are validated),
# so a device named like a person or a system action can never read or block another's decisions.
def idem_key(device: str, sid: str) -> str:
    return f"d:{device}/{sid}"


def person_key(user: str, request_id: str) -> str:
    return f"u:{user}/{request_id}"


def local_key(request_id: str) -> str:
    """The gateway's local token (its CLI and tools): a key space of its own, so it can never reach a
    person's decisions, even one named like it (the name `local` is reserved for people anyway)."""
    return f"l:local/{request_id}"


def system_key(action: str, ident: object) -> str:
    return f"s:{action}/{ident}"


def legacy_fingerprint(req: Request) -> str | None:
    """What a decision stored before fingerprints existed is matched by (migration 0006): the code
    and the direction of a redeem or exit. None for anything else, which never matches."""
    if req.op != "redeem":
        return None
    return f"legacy:{req.direction}:{req.code}"


# json.dumps(..., separators=(",", ":"), ensure_ascii=False) without building an encoder per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def fingerprint(op: str, code: str, qty: int, amt: int | None, direction: str, ref: str | None) -> str:
    raw = _COMPACT.encode([op, code, qty, amt, direction, ref])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
