# The MQTT contract in code: topics, scan parsing with clear errors, and verdict encoding (see docs/protocol.md).
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from gateway.domain.identifiers import DEVICE_RE as DEVICE_RE
from gateway.domain.identifiers import MAX_DEVICE_TIME as MAX_DEVICE_TIME
from gateway.domain.identifiers import RESERVED_DEVICES as RESERVED_DEVICES
from gateway.domain.identifiers import SID_RE as SID_RE
from gateway.domain.identifiers import reserved_device as reserved_device
from gateway.domain.verdict import LINE_CHARS as LINE_CHARS
from gateway.domain.verdict import REASONS as REASONS
from gateway.domain.verdict import SCHEMA_VERSION
from gateway.domain.verdict import SOUNDS as SOUNDS
from gateway.domain.verdict import TRANSIENT_REASONS as TRANSIENT_REASONS
from gateway.domain.verdict import Verdict as Verdict
from gateway.services.inputs import Code, Sid

TOPIC_PREFIX = "hx/v1/dev/"
# Retained, with the offline message as the gateway's last will: devices tell "broker up but gateway
# down" from "all fine" and show OFFLINE instead of waiting for verdicts that cannot come.
GATEWAY_STATUS_TOPIC = "hx/v1/gateway/status"
PRESENCE_EVERY_S = 60  # the retained "online" is refreshed this often: its `t` is the devices' clock


def gateway_online(now: float, watch: str = "") -> str:
    """The gateway's retained presence: online, with the Unix time `now` (devices set their clock).
    A worker's own presence also names its watch connection (`watch`, adapters/mqtt/watch.py)."""
    doc: dict[str, object] = {"v": SCHEMA_VERSION, "state": "online", "t": int(now)}
    if watch:
        doc["watch"] = watch
    return json.dumps(doc, separators=(",", ":"))


GATEWAY_OFFLINE = '{"v":1,"state":"offline"}'
# Several workers: each one's own presence (retained; its last will says offline). Devices read only
# GATEWAY_STATUS_TOPIC, which no worker's will touches: one worker's death never shows OFFLINE while
# another serves (docs/scaling.md).
WORKER_STATUS_PREFIX = "hx/v1/gateway/worker/"
MAX_PAYLOAD = 1024
# Larger payloads are never answered: reading a sid out of them is not worth the parse.
MAX_PARSE = 16 * 1024
# Camera boards: a frame is a JSON header line and the image bytes; the broker refuses bigger packets.
MAX_FRAME = 640 * 480 + 512


class ScanMsg(BaseModel):
    """A scan as the device publishes it. Unknown extra fields are ignored for forward compatibility.

    op: `redeem` (default) decides and records; `check` only says what a redemption would do (the
    handheld shows it and lets the verifier pick a quantity or amount); `annul` undoes this device's
    own redemption `ref` (a turnstile that did not turn) within the annul window.
    """

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    v: StrictInt
    sid: Sid
    op: Literal["redeem", "check", "annul", "login", "logout"] = "redeem"
    code: Code | None = None
    qty: int = Field(default=1, ge=1, le=99)
    amt: int | None = Field(default=None, ge=1, le=10_000_000, description="cents, stored-value vouchers")
    ref: Sid | None = None
    pin: Annotated[str, StringConstraints(pattern=r"^[0-9]{4,8}$")] | None = None
    dir: Literal["in", "out"] = "in"
    at: StrictFloat | StrictInt = Field(default=0, ge=0, le=MAX_DEVICE_TIME, allow_inf_nan=False)

    @model_validator(mode="after")
    def _needs(self) -> ScanMsg:
        if self.v != SCHEMA_VERSION:
            raise ValueError(f"v: schema version must be {SCHEMA_VERSION}")
        if self.op == "annul" and self.ref is None:
            raise ValueError("ref: an annul names the scan id it undoes")
        if self.op == "login" and self.pin is None:
            raise ValueError("pin: a login needs the verifier's PIN (4-8 digits)")
        if self.op in ("redeem", "check") and self.code is None:
            raise ValueError("code: Field required")
        return self


def scan_topic(device: str) -> str:
    return f"{TOPIC_PREFIX}{device}/scan"


def verdict_topic(device: str) -> str:
    return f"{TOPIC_PREFIX}{device}/verdict"


def status_topic(device: str) -> str:
    return f"{TOPIC_PREFIX}{device}/status"


def cmd_topic(device: str) -> str:
    return f"{TOPIC_PREFIX}{device}/cmd"


def frame_topic(device: str) -> str:
    return f"{TOPIC_PREFIX}{device}/frame"


def hint_topic(device: str) -> str:
    return f"{TOPIC_PREFIX}{device}/hint"


def split_topic(topic: str) -> tuple[str, str] | None:
    """`hx/v1/dev/<device>/<kind>` → (device, kind); None for anything else."""
    if not topic.startswith(TOPIC_PREFIX):
        return None
    rest = topic[len(TOPIC_PREFIX) :].split("/")
    if len(rest) != 2 or not DEVICE_RE.match(rest[0]):
        return None
    return rest[0], rest[1]


@dataclass(frozen=True, slots=True)
class Malformed:
    """A payload that broke the contract. `sid` is set when a MALFORMED verdict can be addressed."""

    sid: str | None
    why: str


def _explain(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "payload"
    msg = first["msg"]
    if first["type"] == "string_pattern_mismatch":
        msg = "has characters that are not allowed"
    elif first["type"] == "literal_error" and loc == "v":
        msg = f"schema version must be {SCHEMA_VERSION}"
    elif first["type"] == "value_error":
        return str(msg).removeprefix("Value error, ")[:120]
    return f"{loc}: {msg}"[:120]


def parse_scan(payload: bytes) -> ScanMsg | Malformed:
    """Validate a scan payload; never raises."""
    if len(payload) > MAX_PARSE:
        return Malformed(None, f"payload of {len(payload)} bytes is over the {MAX_PARSE}-byte limit")
    if len(payload) > MAX_PAYLOAD:
        return Malformed(_readable_sid(payload), f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    try:
        return ScanMsg.model_validate_json(payload)
    except ValidationError as err:
        return Malformed(_readable_sid(payload), _explain(err))
    except (RecursionError, ValueError, TypeError) as err:  # never let one payload raise
        return Malformed(_readable_sid(payload), f"payload: unreadable ({type(err).__name__})")


def _readable_sid(payload: bytes) -> str | None:
    try:
        doc: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a small payload nested a thousand deep must not take its batch down.
        return None
    if isinstance(doc, dict):
        sid = doc.get("sid")
        if isinstance(sid, str) and SID_RE.match(sid):
            return sid
    return None
