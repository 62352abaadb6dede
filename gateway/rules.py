# The pure redemption decision: given an order's state, a request and `now`, what happens and what to show.
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from gateway.contract import oled_text


@dataclass(frozen=True, slots=True)
class OrderView:
    """What the rules need to know about an order, as read inside the deciding transaction."""

    id: int
    code: str
    title: str
    quantity: int
    used: int
    refunded: int
    status: str
    site_id: int | None
    valid_from: float | None
    valid_until: float | None
    last_used_at: float | None
    last_used_gate: str | None

    @property
    def left(self) -> int:
        return max(0, self.quantity - self.used - self.refunded)


@dataclass(frozen=True, slots=True)
class Decision:
    ok: bool
    reason: str
    consume: int
    left: int | None
    l1: str
    l2: str
    detail: str
    sound: str


SOUND_FOR = {
    "OK": "ok",
    "QTY_EXCEEDED": "attention",
    "RATE_LIMITED": "attention",
    "MALFORMED": "error",
    "UNKNOWN_DEVICE": "error",
    "INTERNAL": "error",
}


def _deny(reason: str, l1: str, l2: str, detail: str, left: int | None) -> Decision:
    return Decision(
        ok=False,
        reason=reason,
        consume=0,
        left=left,
        l1=oled_text(l1),
        l2=oled_text(l2),
        detail=detail[:120],
        sound=SOUND_FOR.get(reason, "deny"),
    )


def _when(ts: float, now: float, tz: tzinfo) -> str:
    """Short local time for a 16-char line: `14:02` today, `11-20 14:02` otherwise."""
    t = datetime.fromtimestamp(ts, tz)
    if t.date() == datetime.fromtimestamp(now, tz).date():
        return t.strftime("%H:%M")
    return t.strftime("%m-%d %H:%M")


def _date(ts: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")


def decide(order: OrderView | None, qty: int, site_id: int | None, now: float, tz: tzinfo) -> Decision:
    """Decide one redemption request. Pure: the caller applies `consume` with a conditional update."""
    if order is None:
        return _deny("UNKNOWN_CODE", "UNKNOWN CODE", "not an order", "no order has this code", None)
    left = order.left
    if order.status == "refunded":
        return _deny("REFUNDED", "REFUNDED", "see front desk", "the order was refunded", 0)
    if order.status == "cancelled":
        return _deny("CANCELLED", "CANCELLED", "see front desk", "the order was cancelled", 0)
    if order.site_id is not None and site_id != order.site_id:
        return _deny("WRONG_SITE", "WRONG SITE", "not valid here", "this order is for another site", left)
    if order.valid_from is not None and now < order.valid_from:
        when = _date(order.valid_from, tz)
        return _deny("NOT_YET_VALID", "NOT YET VALID", "from " + when[5:], f"valid from {when}", left)
    if order.valid_until is not None and now >= order.valid_until:
        when = _date(order.valid_until, tz)
        return _deny("EXPIRED", "EXPIRED", "since " + when[:10], f"expired {when}", left)
    if left <= 0:
        if order.used == 0 and order.refunded > 0:
            return _deny("REFUNDED", "REFUNDED", "see front desk", "all units were refunded", 0)
        where = f" at {order.last_used_gate}" if order.last_used_gate else ""
        if order.last_used_at is not None:
            when = _when(order.last_used_at, now, tz)
            line = f"{when} {order.last_used_gate or ''}".strip()
            detail = f"used {when}{where}"
        else:
            line, detail = "no units left", "no units left"
        if order.quantity > 1:
            detail = f"all {order.quantity} used, last {detail[5:]}" if order.last_used_at else detail
        return _deny("ALREADY_USED", "ALREADY USED", line, detail, 0)
    if qty > left:
        return _deny(
            "QTY_EXCEEDED", f"ONLY {left} LEFT", f"asked for {qty}", f"asked {qty}, {left} left", left
        )
    after = left - qty
    return Decision(
        ok=True,
        reason="OK",
        consume=qty,
        left=after,
        l1=oled_text(f"OK {order.title}"),
        l2=oled_text(f"{after} of {order.quantity} left" if order.quantity > 1 else "welcome"),
        detail=f"redeemed {qty}, {after} of {order.quantity} left",
        sound="ok",
    )


def system_denial(reason: str, detail: str) -> Decision:
    """Verdicts that do not depend on an order: malformed scans, rate limits, unknown devices, failures."""
    lines = {
        "MALFORMED": ("BAD SCAN", "try again"),
        "RATE_LIMITED": ("TOO FAST", "wait a moment"),
        "UNKNOWN_DEVICE": ("NOT REGISTERED", "ask the manager"),
        "INTERNAL": ("SERVER ERROR", "try again"),
    }[reason]
    return _deny(reason, lines[0], lines[1], detail, None)
