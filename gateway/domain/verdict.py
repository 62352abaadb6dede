# The answer to one request as the device receives it: a decision fitted to the screen, and its sid.
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
LINE_CHARS = 16  # characters per OLED line (128 px / 8 px font)
SOUNDS = ("ok", "deny", "attention", "error")

REASONS = (
    "OK",
    "ALREADY_USED",
    "UNKNOWN_CODE",
    "EXPIRED",
    "NOT_YET_VALID",
    "REFUNDED",
    "CANCELLED",
    "WRONG_SITE",
    "QTY_EXCEEDED",
    "MALFORMED",
    "RATE_LIMITED",
    "UNKNOWN_DEVICE",
    "INTERNAL",
    "OUTSIDE_HOURS",
    "TOO_SOON",
    "DAILY_LIMIT",
    "PASSBACK",
    "LOW_BALANCE",
    "AMOUNT_NEEDED",
    "FORGED",
    "ANNUL_REFUSED",
    "BAD_PIN",
    "SID_REUSED",
    "NOT_PAID",
)
# Nothing was decided or stored after these: the device keeps the scan and retries with back-off.
TRANSIENT_REASONS = ("INTERNAL", "RATE_LIMITED", "UNKNOWN_DEVICE")
# json.dumps(..., separators=(",", ":"), ensure_ascii=False) without building an encoder per verdict.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Stored with the ledger row, so a repeated request is answered byte for byte."""

    sid: str
    ok: bool
    reason: str
    l1: str
    l2: str
    detail: str
    sound: str
    left: int | None
    # Optional fields some verdicts carry: kind, check, max, bal (cents), title.
    extra: dict[str, Any] | None = None
    # to_json's text, made once: the ledger stores it and the device is sent it (the same bytes).
    _json: str | None = field(default=None, init=False, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        base = {
            "v": SCHEMA_VERSION,
            "sid": self.sid,
            "ok": self.ok,
            "reason": self.reason,
            "l1": self.l1,
            "l2": self.l2,
            "detail": self.detail,
            "sound": self.sound,
            "left": self.left,
        }
        if self.extra:
            base.update(self.extra)
        return base

    def to_json(self) -> str:
        text = self._json
        if text is None:
            text = _COMPACT.encode(self.to_dict())
            object.__setattr__(self, "_json", text)  # frozen: a cache of its own fields, not a change
        return text

    @classmethod
    def from_json(cls, text: str | bytes) -> Verdict:
        d = json.loads(text)
        known = ("v", "sid", "ok", "reason", "l1", "l2", "detail", "sound", "left")
        extra = {k: v for k, v in d.items() if k not in known} or None
        return cls(
            d["sid"], d["ok"], d["reason"], d["l1"], d["l2"], d["detail"], d["sound"], d["left"], extra
        )
