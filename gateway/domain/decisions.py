# The pure redemption decision: given an order's state, a request and `now`, what happens and the words for it.
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, tzinfo
from typing import Any

from gateway.domain.validity import counting_day, outside_hours
from gateway.domain.verdict import TRANSIENT_REASONS


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
    kind: str = "ticket"
    rules: dict[str, Any] | None = None
    day_key: str | None = None
    day_used: int = 0
    inside: int = 0  # units inside now (entered and not seen leaving)
    inside_site_id: int | None = None
    version: int = 0

    @property
    def left(self) -> int:
        return max(0, self.quantity - self.used - self.refunded)

    def but(self, **changes: Any) -> OrderView:
        """`dataclasses.replace(self, **changes)` at a third of its cost (it runs twice per scan)."""
        if not changes.keys() <= _ORDER_FIELD_SET:
            raise TypeError(f"OrderView has no field {sorted(changes.keys() - _ORDER_FIELD_SET)}")
        return OrderView(*[changes[n] if n in changes else getattr(self, n) for n in _ORDER_FIELDS])


_ORDER_FIELDS = tuple(f.name for f in fields(OrderView))
_ORDER_FIELD_SET = frozenset(_ORDER_FIELDS)


@dataclass(frozen=True, slots=True)
class Ask:
    """What is asked: redeem (or only check) `qty` units, or `amt` cents of a voucher, entering or leaving."""

    op: str = "redeem"
    qty: int = 1
    amt: int | None = None
    direction: str = "in"


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens and why. `l1`/`l2` are the words for the person at the gate, not yet fitted to any
    screen (the MQTT adapter renders them and picks the sound: gateway/adapters/mqtt/oled.py)."""

    ok: bool
    reason: str
    consume: int
    left: int | None
    l1: str
    l2: str
    detail: str
    extra: dict[str, Any] | None = None
    inside: int | None = None  # change to the units inside (+ entered, - left) when it moves them
    undone: bool = False  # an OK that undid an earlier redemption: the person must notice it


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _deny(
    reason: str, l1: str, l2: str, detail: str, left: int | None, extra: dict[str, Any] | None = None
) -> Decision:
    return Decision(
        ok=False,
        reason=reason,
        consume=0,
        left=left,
        l1=l1,
        l2=l2,
        detail=detail[:120],
        extra=extra,
    )


def _ok(
    l1: str,
    l2: str,
    detail: str,
    consume: int,
    left: int,
    extra: dict[str, Any] | None = None,
    inside: int | None = None,
) -> Decision:
    return Decision(True, "OK", consume, left, l1, l2, detail[:120], extra, inside)


def _when(ts: float, now: float, tz: tzinfo) -> str:
    """Short local time for a 16-char line: `14:02` today, `11-20 14:02` otherwise."""
    t = datetime.fromtimestamp(ts, tz)
    if t.date() == datetime.fromtimestamp(now, tz).date():
        return t.strftime("%H:%M")
    return t.strftime("%m-%d %H:%M")


def _date(ts: float, tz: tzinfo) -> str:
    try:
        return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        # A date outside what the calendar can show (a bad import): still decide, just say "ever".
        return "0000-00-00 00:00" if ts < 0 else "9999-12-31 23:59"


def _used_today(order: OrderView, today: str) -> int:
    return order.day_used if order.day_key == today else 0


def tracks_inside(order: OrderView) -> bool:
    """Whether entries and exits of this order move its count of units inside.

    Only orders whose rules depend on it count: anti-passback needs to know who is in, and a re-entry
    is only ever granted to a unit whose exit was recorded (else one unit would admit anyone).
    """
    rules = order.rules or {}
    return order.kind != "value" and bool(rules.get("passback") or rules.get("reentry"))


def unknown_code() -> Decision:
    """The answer for a code that names no order (also what a person gets for an order they may not see)."""
    return _deny("UNKNOWN_CODE", "UNKNOWN CODE", "not an order", "no order has this code", None)


def decide(
    order: OrderView | None, ask: Ask, site_id: int | None, gate: str, now: float, tz: tzinfo
) -> Decision:
    """Decide one request. Pure: the caller applies `consume`/`inside` with a version-checked update.

    `Decision.inside` is the change to the order's count of units inside (+ entered, - left).
    """
    if order is None:
        return unknown_code()
    rules = order.rules or {}
    left = order.left
    kind_extra: dict[str, Any] = {"kind": order.kind}
    counted = tracks_inside(order)
    if ask.direction == "out":
        # An exit is always let out and recorded, whatever the order's state, validity or hours: a
        # shut exit turnstile traps a person and leaves the count wrong for their next entry.
        out = min(order.inside, ask.qty) if counted else 0
        return _ok("GOODBYE", order.title, "exit recorded", 0, left, kind_extra, inside=-out)
    if order.status == "refunded":
        return _deny("REFUNDED", "REFUNDED", "see front desk", "the order was refunded", 0)
    if order.status == "cancelled":
        return _deny("CANCELLED", "CANCELLED", "see front desk", "the order was cancelled", 0)
    if order.status != "active":
        return _deny("NOT_PAID", "NOT PAID", "see front desk", "the order is not paid yet", left)
    sites = rules.get("sites") or ([order.site_id] if order.site_id is not None else [])
    if sites and site_id not in sites:
        return _deny("WRONG_SITE", "WRONG SITE", "not valid here", "this order is for another site", left)
    gates = rules.get("gates")
    if gates and gate not in gates:
        return _deny("WRONG_SITE", "WRONG GATE", "use " + gates[0], "valid at " + ", ".join(gates), left)
    if order.valid_from is not None and now < order.valid_from:
        when = _date(order.valid_from, tz)
        return _deny("NOT_YET_VALID", "NOT YET VALID", "from " + when[5:], f"valid from {when}", left)
    if order.valid_until is not None and now >= order.valid_until:
        when = _date(order.valid_until, tz)
        return _deny("EXPIRED", "EXPIRED", "since " + when[:10], f"expired {when}", left)
    closed = outside_hours(rules, now, tz)
    if closed is not None:
        return _deny("OUTSIDE_HOURS", "OUTSIDE HOURS", closed[0], closed[1], left)
    passback = bool(rules.get("passback"))
    today = counting_day(now, tz, order.day_key)
    used_today = _used_today(order, today)
    if rules.get("reentry") and counted and used_today - order.inside >= ask.qty:
        # Units used today that were seen leaving come back in for free; never more than left.
        return _ok("WELCOME BACK", order.title, "re-entry, no unit used", 0, left, kind_extra, inside=ask.qty)
    if order.kind == "value":
        return _decide_value(order, ask, left)
    if left <= 0:
        if passback and order.inside > 0:
            return _deny("PASSBACK", "ALREADY INSIDE", "exit first", "entered already and has not left", 0)
        if order.used == 0 and order.refunded > 0:
            return _deny("REFUNDED", "REFUNDED", "see front desk", "all units were refunded", 0)
        where = f" at {order.last_used_gate}" if order.last_used_gate else ""
        if order.last_used_at is not None:
            when = _when(order.last_used_at, now, tz)
            line = f"{when} {order.last_used_gate or ''}".strip()
            detail = f"used {when}{where}"
        else:
            line, detail = "no units left", "no units left"
        if order.quantity > 1 and order.last_used_at is not None:
            detail = f"all {order.quantity} used, last {detail[5:]}"
        return _deny("ALREADY_USED", "ALREADY USED", line, detail, 0)
    gap = rules.get("min_interval_s")
    if gap and order.last_used_at is not None and now - order.last_used_at < gap:
        nxt = _when(order.last_used_at + gap, now, tz)
        return _deny("TOO_SOON", "TOO SOON", "next at " + nxt, f"next use allowed at {nxt}", left)
    per_day = rules.get("per_day")
    room = left
    if per_day:
        room = min(left, per_day - used_today)
        if room <= 0:
            return _deny(
                "DAILY_LIMIT",
                "DAILY LIMIT",
                f"{per_day} per day",
                f"{per_day} per day, come back tomorrow",
                left,
            )
    if ask.op == "check":
        extra = {**kind_extra, "check": True, "max": room, "title": order.title[:40]}
        return _ok(
            order.title, f"{left} left", f"{left} of {order.quantity} left; up to {room} now", 0, left, extra
        )
    if ask.qty > room:
        if per_day and ask.qty <= left:
            return _deny(
                "DAILY_LIMIT",
                f"ONLY {room} TODAY",
                f"asked for {ask.qty}",
                f"{per_day} per day, {room} left today",
                left,
            )
        return _deny(
            "QTY_EXCEEDED", f"ONLY {left} LEFT", f"asked for {ask.qty}", f"asked {ask.qty}, {left} left", left
        )
    after = left - ask.qty
    return _ok(
        f"OK {order.title}",
        f"{after} of {order.quantity} left" if order.quantity > 1 else "welcome",
        f"redeemed {ask.qty}, {after} of {order.quantity} left",
        ask.qty,
        after,
        kind_extra,
        inside=ask.qty if counted else None,
    )


def _decide_value(order: OrderView, ask: Ask, balance: int) -> Decision:
    """Stored value: `quantity` is the face value in cents, `used` what was spent; never below zero."""
    extra: dict[str, Any] = {"kind": "value", "bal": balance}
    if balance <= 0:
        return _deny("LOW_BALANCE", "NO BALANCE", "voucher used up", "the balance is 0.00", 0, extra)
    if ask.op == "check":
        extra.update(check=True, max=balance, title=order.title[:40])
        return _ok(order.title, "bal " + money(balance), f"balance {money(balance)}", 0, balance, extra)
    if ask.amt is None:
        return _deny(
            "AMOUNT_NEEDED",
            "ENTER AMOUNT",
            "bal " + money(balance),
            "a voucher needs an amount",
            balance,
            extra,
        )
    if ask.amt > balance:
        return _deny(
            "LOW_BALANCE",
            "LOW BALANCE",
            "bal " + money(balance),
            f"asked {money(ask.amt)}, balance {money(balance)}",
            balance,
            extra,
        )
    after = balance - ask.amt
    extra["bal"] = after
    return _ok(
        "OK -" + money(ask.amt),
        "bal " + money(after),
        f"paid {money(ask.amt)}, balance {money(after)}",
        ask.amt,
        after,
        extra,
    )


# Answers after which nothing was decided or stored: the device keeps the scan and sends it again.


def system_denial(reason: str, detail: str) -> Decision:
    """Verdicts that do not depend on an order: malformed scans, rate limits, unknown devices, failures.

    Transient ones carry `"retry": true` so a device never drops a queued scan on them.
    """
    lines = {
        "MALFORMED": ("BAD SCAN", "try again"),
        "RATE_LIMITED": ("TOO FAST", "wait a moment"),
        "UNKNOWN_DEVICE": ("NOT REGISTERED", "ask the manager"),
        "INTERNAL": ("SERVER ERROR", "try again"),
        "FORGED": ("FORGED CODE", "not our ticket"),
        "ANNUL_REFUSED": ("CANNOT UNDO", "ask supervisor"),
        "BAD_PIN": ("WRONG PIN", "try again"),
        "SID_REUSED": ("SCAN REFUSED", "id reused"),
    }[reason]
    return _deny(
        reason, lines[0], lines[1], detail, None, {"retry": True} if reason in TRANSIENT_REASONS else None
    )


def annulled(units: int, left: int | None) -> Decision:
    """The answer to an annul that undid this device's own redemption of `units`."""
    return Decision(
        True, "OK", 0, left, "ANNULLED", f"{units} restored", f"annulled, {units} restored", undone=True
    )
