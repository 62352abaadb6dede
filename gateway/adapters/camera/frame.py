# A camera frame on the wire: one JSON header line, then the image bytes (docs/protocol.md, "frame").
from __future__ import annotations

import json
from dataclasses import dataclass

from gateway.adapters.mqtt.contract import MAX_DEVICE_TIME, MAX_FRAME, SID_RE

MAX_HEADER = 256
FORMATS = ("gray", "jpeg")
MAX_SIDE = 1600  # pixels: more than any camera board sends at the frame size limit


@dataclass(frozen=True, slots=True)
class Frame:
    sid: str  # the attempt: every frame of one burst carries it; the decoded scan is redeemed under it
    n: int  # the frame's number in its burst
    fmt: str
    width: int
    height: int
    qty: int
    dir: str
    at: float
    image: memoryview  # the payload after the header, not copied


class BadHeader(ValueError):
    """A frame whose header breaks the contract: dropped and counted (a frame has no verdict)."""


def _int(doc: dict[str, object], key: str, default: int, lo: int, hi: int) -> int:
    v = doc.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise BadHeader(f"{key} must be an integer {lo}..{hi}")
    return v


def parse_frame(payload: bytes) -> Frame:
    if len(payload) > MAX_FRAME:
        raise BadHeader(f"frame of {len(payload)} bytes is over {MAX_FRAME}")
    cut = payload.find(b"\n", 0, MAX_HEADER)
    if cut < 0:
        raise BadHeader("no header line in the first 256 bytes")
    try:
        doc = json.loads(payload[:cut])
    except (ValueError, UnicodeDecodeError) as e:
        raise BadHeader("header is not JSON") from e
    if not isinstance(doc, dict) or doc.get("v") != 1:
        raise BadHeader("header is not a version 1 object")
    sid = doc.get("sid")
    if not isinstance(sid, str) or not SID_RE.match(sid):
        raise BadHeader("sid must be 1-24 characters of [A-Za-z0-9_-]")
    fmt = doc.get("fmt")
    if fmt not in FORMATS:
        raise BadHeader("fmt must be gray or jpeg")
    direction = doc.get("dir", "in")
    if direction not in ("in", "out"):
        raise BadHeader("dir must be in or out")
    at = doc.get("at", 0)
    if not isinstance(at, int | float) or isinstance(at, bool) or not 0 <= at <= MAX_DEVICE_TIME:
        raise BadHeader("at must be Unix seconds")
    need = 1 if fmt == "gray" else 0
    return Frame(
        sid,
        _int(doc, "n", 0, 0, 65535),
        str(fmt),
        _int(doc, "w", 0, need, MAX_SIDE),
        _int(doc, "h", 0, need, MAX_SIDE),
        _int(doc, "qty", 1, 1, 99),
        str(direction),
        float(at),
        memoryview(payload)[cut + 1 :],
    )


def scan_payload(f: Frame, code: str) -> bytes:
    """The scan a UART board would have sent for this code: the one redemption path takes it from here."""
    doc = {"v": 1, "sid": f.sid, "code": code, "qty": f.qty, "dir": f.dir, "at": f.at}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


# Two OLED lines (16 ASCII characters each) per hint: what the holder should do.
HINT_LINES = {
    "none": ("SHOW THE CODE", "to the camera"),
    "dark": ("TOO DARK", "more light"),
    "bright": ("TOO BRIGHT", "tilt from light"),
    "closer": ("MOVE CLOSER", "code too small"),
    "still": ("HOLD STILL", "code is blurred"),
    "one": ("ONE CODE", "at a time"),
}


def hint_payload(f: Frame, hint: str) -> str:
    l1, l2 = HINT_LINES[hint]
    doc = {"v": 1, "sid": f.sid, "n": f.n, "hint": hint, "l1": l1, "l2": l2}
    return json.dumps(doc, separators=(",", ":"))
