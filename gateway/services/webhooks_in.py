# Applies inbound shop events (order created/paid/refunded/cancelled) exactly once per event id.
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from gateway.domain.codes import ALPHABET, RANDOM_SYMBOLS, _sig
from gateway.domain.errors import Conflict, HexiaoError
from gateway.services import adjustments as adjust
from gateway.services.catalog import ts
from gateway.services.inputs import DEFAULT_TIMEZONE
from gateway.services.orders import OrderIn, _row
from gateway.services.ports.database import Database, Tx
from gateway.services.webhook_events import CancelIn, Envelope, LineIn, RefundIn, parse, validate

# The event's input models are webhook_events'; `parse` and `Envelope` are named here for the route.
__all__ = ["UNPAID", "Envelope", "handle", "line_code", "parse", "stored"]

ACTOR = "webhook"
CLAIM_TIMEOUT_S = 60.0  # a claim older than this belongs to a delivery that crashed mid-way
UNPAID = "unpaid"  # an order the shop created but nobody paid for yet: the rules deny it (NOT_PAID)


def stored(db: Database, event_id: str) -> dict[str, Any] | None:
    """The result of an event applied before, or None."""
    with db.read() as tx:
        return tx.webhook_events.result(event_id)


def _busy(ev: Envelope) -> Conflict:
    return Conflict(f"event {ev.id!r} is being applied right now; send it again later", event=ev.id)


def _claim(db: Database, ev: Envelope, code: str | None, now: float) -> dict[str, Any] | None:
    """Take the event for processing. Returns the stored result instead when it was already applied."""
    with db.write() as tx:
        row = tx.webhook_events.get(ev.id)
        if row is None:
            if not tx.webhook_events.add(ev.id, ev.type, code, now):
                raise _busy(ev)  # PostgreSQL: a concurrent delivery inserted the same id first
            return None
        if row["state"] == "done":
            return dict(row["result"] or {})
        if row["type"] != ev.type:
            raise Conflict(f"event {ev.id!r} was first sent as {row['type']}, now as {ev.type}", event=ev.id)
        if row["state"] == "claimed" and now - row["received_at"] < CLAIM_TIMEOUT_S:
            raise _busy(ev)
        tx.webhook_events.reclaim(ev.id, now)
        return None


def _finish(
    db: Database, event_id: str, state: str, result: dict[str, Any] | None, error: str | None
) -> None:
    with db.write() as tx:
        tx.webhook_events.finish(event_id, state, result, error, time.time())


def line_code(secret: str, key: bytes | None, external_ref: str, line: str | None) -> str:
    """The code of a shop order line that came without one: the same (order, line) always gives the same
    code, so a retried delivery, or the `order.paid` after its `order.created`, finds the line again.

    Keyed with WEBHOOK_SECRET: the shop's order numbers are no secret (often sequential), the codes must be
    unguessable. Signed with the signing key like every generated code when one is set.
    """
    msg = f"{external_ref}\x00{line or ''}".encode()
    digest = hmac.new(b"hexiao-line-code\x00" + secret.encode(), msg, hashlib.sha256).digest()
    value = int.from_bytes(digest[:16], "big")
    body = "".join(ALPHABET[(value >> (5 * i)) & 31] for i in range(RANDOM_SYMBOLS))
    return f"HX-{body}-{_sig(body, key)}" if key else f"HX-{body}"


def _targets(tx: Tx, ev: Envelope, li: LineIn, secret: str, key: bytes | None) -> list[str]:
    """The codes of the lines this event names, whether they exist or not.

    A line is named by its `code`; without one by (`external_ref`, `line`), through line_code. The one
    exception: `order.paid` with only `external_ref` pays every line of that shop order we know of (shops
    send one payment per order, not per line).
    """
    o = li.order
    if o.code is not None:
        return [o.code]
    if o.external_ref is None:
        return []
    if ev.type == "order.paid" and li.line is None:
        known = tx.orders.codes_of(o.external_ref)
        if known:
            return known
    return [line_code(secret, key, o.external_ref, li.line)]


def _same_line(row: dict[str, Any], o: OrderIn) -> bool:
    """Whether an existing line can be the one this event describes (fields the event leaves out agree)."""
    return (o.title is None or o.title == row["title"]) and (
        o.quantity is None or o.quantity == row["quantity"]
    )


def _creating() -> Conflict:
    # A parallel delivery of another event for the same line inserted it first (PostgreSQL).
    return Conflict("the order line is being created right now; send the event again later")


def _insert(
    tx: Tx, o: OrderIn, code: str | None, paid: bool, key: bytes | None, now: float, zone: str
) -> dict[str, Any]:
    products = tx.products.live({o.product} if o.product else set())
    # Naive times are local at the order's site (orders.py); without a site, the TIMEZONE setting.
    row = _row(o, tx.sites.ids(), products, now, key, zone)
    if code is not None:
        row["code"] = code
    if not paid:
        # Nobody paid: not redeemable, nothing to settle, and `valid_days` waits for the payment.
        row["status"], row["paid_at"] = UNPAID, None
        if o.valid_until is None and row["product_id"] is not None:
            p = tx.products.validity(row["product_id"])
            if p is not None and p[0] and p[1] is None:
                row["valid_until"] = None
    if row["code"] in tx.orders.taken([row["code"]]):
        raise Conflict(f"order code {row['code']!r} already exists", code=row["code"])
    if not tx.orders.add(row):
        raise _creating()
    return row


def _pay(tx: Tx, code: str, paid_at: float) -> bool:
    """Mark an unpaid line paid at `paid_at` and start its `valid_days` then. An order paid already (or
    refunded, cancelled) is left alone: the first payment counts."""
    o = tx.orders.state(code)
    if o is None or o["status"] != UNPAID:
        return False
    values: dict[str, Any] = {"status": "active", "paid_at": paid_at, "version": o["version"] + 1}
    if o["valid_until"] is None and o["product_id"] is not None:
        p = tx.products.validity(o["product_id"])
        if p is not None and p[0] and p[1] is None:
            values["valid_until"] = paid_at + p[0] * 86400
    # Version-checked, like every order change: a concurrent writer redoes its step.
    if not tx.orders.change(o["id"], o["version"], values):
        raise Conflict(f"order {code!r} changed while it was being paid; send the event again", code=code)
    return True


def _apply_line(
    db: Database, ev: Envelope, li: LineIn, key: bytes | None, secret: str, now: float, default_tz: str
) -> dict[str, Any]:
    o = li.order
    with db.read() as tx:
        zone = tx.sites.zones().get(o.site or "", default_tz)
    # order.created without paid_at is a cart, not a sale; order.paid (paid_at defaults to `created`) is.
    paid_at = ts(o.paid_at, zone)
    with db.write() as tx:
        codes = _targets(tx, ev, li, secret, key)
        rows = tx.orders.lines(codes)
        if len(codes) == 1 and codes[0] in rows and not _same_line(rows[codes[0]], o):
            raise Conflict(
                f"order line {codes[0]!r} exists with another title or quantity: give each line of "
                "a shop order its own `code` or `line`",
                code=codes[0],
            )
        if not codes or codes[0] not in rows:
            row = _insert(tx, o, codes[0] if codes else None, paid_at is not None, key, now, zone)
            return {"code": row["code"], "created": True, "status": row["status"]}
        paid = [code for code in codes if paid_at is not None and _pay(tx, code, paid_at)]
        status = "active" if codes[0] in paid else rows[codes[0]]["status"]
        out: dict[str, Any] = {"code": codes[0], "created": False, "status": status}
        if len(codes) > 1:
            out["codes"] = codes
        return out


def _marker(event_id: str) -> str:
    return f"webhook {event_id}"


def _refunded_by(db: Database, event_id: str) -> bool:
    """Whether a refund carrying this event's marker already landed (after a crash before _finish)."""
    with db.read() as tx:
        return tx.audit.recorded("refund", ACTOR, _marker(event_id) + ":")


def _apply(
    db: Database,
    ev: Envelope,
    what: LineIn | RefundIn | CancelIn,
    key: bytes | None,
    secret: str,
    now: float,
    default_tz: str = DEFAULT_TIMEZONE,
) -> dict[str, Any]:
    if isinstance(what, LineIn):
        return _apply_line(db, ev, what, key, secret, now, default_tz)
    reason = f"{_marker(ev.id)}: {what.reason}"
    if isinstance(what, RefundIn):
        if _refunded_by(db, ev.id):
            return {"code": what.code, "recovered": True}
        return adjust.refund(db, what.code, what.units, ACTOR, reason)
    return adjust.cancel(db, what.code, ACTOR, reason)


def handle(
    db: Database,
    ev: Envelope,
    key: bytes | None,
    now: float,
    *,
    secret: str,
    default_tz: str = DEFAULT_TIMEZONE,
) -> dict[str, Any]:
    """Apply one verified event. Returns {"duplicate": bool, "result": ...}; raises HexiaoError when the
    event is refused (nothing changed, and the same id may be sent again once the cause is fixed).

    `secret` is WEBHOOK_SECRET: it keys the codes of lines sent without one (line_code). `default_tz`
    (the TIMEZONE setting) is the zone of naive times for lines without a site."""
    before = stored(db, ev.id)
    if before is not None:
        return {"duplicate": True, "result": before}
    what = validate(ev)
    again = _claim(db, ev, what.code, now)
    if again is not None:
        return {"duplicate": True, "result": again}
    try:
        result = _apply(db, ev, what, key, secret, time.time(), default_tz)
    except HexiaoError as err:
        # Refused: nothing changed. Any other exception leaves the claim in place, because whether the change
        # landed is unknown; a delivery after CLAIM_TIMEOUT_S finds out (the line's code, _refunded_by).
        _finish(db, ev.id, "failed", None, f"{err.code}: {err.message}")
        raise
    _finish(db, ev.id, "done", result, None)
    return {"duplicate": False, "result": result}
