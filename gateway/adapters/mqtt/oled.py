# A decision rendered for the scanner's 128x64 OLED and buzzer: two 16-character ASCII lines and a sound.
from __future__ import annotations

from gateway.adapters.mqtt.contract import LINE_CHARS, Verdict
from gateway.domain.decisions import Decision

# The sound of each reason; every other denial is "deny". An OK that undid a redemption is "attention".
SOUND_FOR = {
    "OK": "ok",
    "QTY_EXCEEDED": "attention",
    "RATE_LIMITED": "attention",
    "AMOUNT_NEEDED": "attention",
    "LOW_BALANCE": "attention",
    "TOO_SOON": "attention",
    "MALFORMED": "error",
    "UNKNOWN_DEVICE": "error",
    "INTERNAL": "error",
    "SID_REUSED": "error",
}


def oled_text(text: str, width: int = LINE_CHARS) -> str:
    """Fit text to one OLED line: printable ASCII only (the 8x8 font has nothing else), at most `width`."""
    if text.isascii() and text.isprintable():  # the usual case, where the filter below keeps every character
        out = text
    else:
        out = "".join(ch if 32 <= ord(ch) < 127 else " " if ch.isspace() else "" for ch in text)
    return " ".join(out.split())[:width].rstrip()


def sound_of(d: Decision) -> str:
    return "attention" if d.undone else SOUND_FOR.get(d.reason, "deny")


def render(sid: str, d: Decision) -> Verdict:
    """The verdict a device gets for decision `d` on its scan `sid` (also what the ledger stores)."""
    return Verdict(
        sid, d.ok, d.reason, oled_text(d.l1), oled_text(d.l2), d.detail, sound_of(d), d.left, d.extra
    )
