# Applies inbound shop events (order created/paid/refunded/cancelled) exactly once per event id.
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import Audit, Order, Product, WebhookEvent
from gateway.adapters.db.repositories.database import SqlDatabase, SqlTx
from gateway.domain.codes import ALPHABET, RANDOM_SYMBOLS, _sig
from gateway.domain.errors import Conflict, HexiaoError
from gateway.services import adjustments as adjust
from gateway.services.catalog import ts
from gateway.services.inputs import DEFAULT_TIMEZONE
from gateway.services.orders import OrderIn, _row
from gateway.services.webhook_events import CancelIn, Envelope, LineIn, RefundIn, parse, validate

# The event's input models are webhook_events'; `parse` and `Envelope` are named here for the route.
__all__ = ["UNPAID", "Envelope", "handle", "line_code", "parse", "stored"]

ACTOR = "webhook"
CLAIM_TIMEOUT_S = 60.0  # a claim older than this belongs to a delivery that crashed mid-way
UNPAID = "unpaid"  # an order the shop created but nobody paid for yet: the rules deny it (NOT_PAID)


def stored(engine: Engine, event_id: str) -> dict[str, Any] | None:
    """The result of an event applied before, or None."""
    with engine.connect() as c:
        row = c.execute(
            select(WebhookEvent.state, WebhookEvent.result).where(WebhookEvent.event_id == event_id)
        ).first()
    if row is None or row.state != "done":
        return None
    return dict(row.result or {})


def _claim(engine: Engine, ev: Envelope, code: str | None, now: float) -> dict[str, Any] | None:
    """Take the event for processing. Returns the stored result instead when it was already applied."""
    try:
        with engine.connect() as c, writer(c).begin():
            row = c.execute(
                select(
                    WebhookEvent.type, WebhookEvent.state, WebhookEvent.result, WebhookEvent.received_at
                ).where(WebhookEvent.event_id == ev.id)
            ).first()
            if row is None:
                c.execute(
                    insert(WebhookEvent).values(
                        event_id=ev.id, type=ev.type, state="claimed", code=code, received_at=now
                    )
                )
                return None
            if row.state == "done":
                return dict(row.result or {})
            if row.type != ev.type:
                raise Conflict(f"event {ev.id!r} was first sent as {row.type}, now as {ev.type}", event=ev.id)
            if row.state == "claimed" and now - row.received_at < CLAIM_TIMEOUT_S:
                raise Conflict(
                    f"event {ev.id!r} is being applied right now; send it again later", event=ev.id
                )
            c.execute(
                update(WebhookEvent)
                .where(WebhookEvent.event_id == ev.id)
                .values(state="claimed", received_at=now, error=None)
            )
            return None
    except IntegrityError:
        # PostgreSQL: a concurrent delivery inserted the same id first.
        raise Conflict(
            f"event {ev.id!r} is being applied right now; send it again later", event=ev.id
        ) from None


def _finish(
    engine: Engine, event_id: str, state: str, result: dict[str, Any] | None, error: str | None
) -> None:
    with engine.connect() as c, writer(c).begin():
        c.execute(
            update(WebhookEvent)
            .where(WebhookEvent.event_id == event_id)
            .values(state=state, result=result, error=error, finished_at=time.time())
        )


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


def _targets(c: Connection, ev: Envelope, li: LineIn, secret: str, key: bytes | None) -> list[str]:
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
        known = [
            r[0]
            for r in c.execute(
                select(Order.code).where(Order.external_ref == o.external_ref).order_by(Order.id)
            )
        ]
        if known:
            return known
    return [line_code(secret, key, o.external_ref, li.line)]


def _same_line(row: Any, o: OrderIn) -> bool:
    """Whether an existing line can be the one this event describes (fields the event leaves out agree)."""
    return (o.title is None or o.title == row.title) and (o.quantity is None or o.quantity == row.quantity)


def _insert(
    c: Connection, o: OrderIn, code: str | None, paid: bool, key: bytes | None, now: float, zone: str
) -> dict[str, Any]:
    tx = SqlTx(c)
    products = tx.products.live({o.product} if o.product else set())
    # Naive times are local at the order's site (orders.py); without a site, the TIMEZONE setting.
    row = _row(o, tx.sites.ids(), products, now, key, zone)
    if code is not None:
        row["code"] = code
    if not paid:
        # Nobody paid: not redeemable, nothing to settle, and `valid_days` waits for the payment.
        row["status"], row["paid_at"] = UNPAID, None
        if o.valid_until is None and row["product_id"] is not None:
            p = c.execute(
                select(Product.valid_days, Product.valid_until).where(Product.id == row["product_id"])
            ).first()
            if p is not None and p.valid_days and p.valid_until is None:
                row["valid_until"] = None
    if c.execute(select(Order.id).where(Order.code == row["code"])).first() is not None:
        raise Conflict(f"order code {row['code']!r} already exists", code=row["code"])
    c.execute(insert(Order).values(**row))
    return row


def _pay(c: Connection, code: str, paid_at: float) -> bool:
    """Mark an unpaid line paid at `paid_at` and start its `valid_days` then. An order paid already (or
    refunded, cancelled) is left alone: the first payment counts."""
    o = c.execute(
        select(Order.id, Order.status, Order.product_id, Order.valid_until, Order.version).where(
            Order.code == code
        )
    ).first()
    if o is None or o.status != UNPAID:
        return False
    values: dict[str, Any] = {"status": "active", "paid_at": paid_at, "version": o.version + 1}
    if o.valid_until is None and o.product_id is not None:
        p = c.execute(
            select(Product.valid_days, Product.valid_until).where(Product.id == o.product_id)
        ).first()
        if p is not None and p.valid_days and p.valid_until is None:
            values["valid_until"] = paid_at + p.valid_days * 86400
    # Version-checked, like every order change: a concurrent writer redoes its step.
    done = c.execute(
        update(Order).where(Order.id == o.id, Order.version == o.version).values(**values)
    ).rowcount
    if done != 1:
        raise Conflict(f"order {code!r} changed while it was being paid; send the event again", code=code)
    return True


def _apply_line(
    engine: Engine, ev: Envelope, li: LineIn, key: bytes | None, secret: str, now: float, default_tz: str
) -> dict[str, Any]:
    o = li.order
    with engine.connect() as c:
        zone = SqlTx(c).sites.zones().get(o.site or "", default_tz)
    # order.created without paid_at is a cart, not a sale; order.paid (paid_at defaults to `created`) is.
    paid_at = ts(o.paid_at, zone)
    try:
        with engine.connect() as c, writer(c).begin():
            codes = _targets(c, ev, li, secret, key)
            rows = {
                r.code: r
                for r in c.execute(
                    select(Order.code, Order.title, Order.quantity, Order.status).where(Order.code.in_(codes))
                )
            }
            if len(codes) == 1 and codes[0] in rows and not _same_line(rows[codes[0]], o):
                raise Conflict(
                    f"order line {codes[0]!r} exists with another title or quantity: give each line of "
                    "a shop order its own `code` or `line`",
                    code=codes[0],
                )
            if not codes or codes[0] not in rows:
                row = _insert(c, o, codes[0] if codes else None, paid_at is not None, key, now, zone)
                return {"code": row["code"], "created": True, "status": row["status"]}
            paid = [code for code in codes if paid_at is not None and _pay(c, code, paid_at)]
            status = "active" if codes[0] in paid else rows[codes[0]].status
            out: dict[str, Any] = {"code": codes[0], "created": False, "status": status}
            if len(codes) > 1:
                out["codes"] = codes
            return out
    except IntegrityError:
        # A parallel delivery of another event for the same line inserted it first (PostgreSQL).
        raise Conflict("the order line is being created right now; send the event again later") from None


def _marker(event_id: str) -> str:
    return f"webhook {event_id}"


def _refunded_by(engine: Engine, event_id: str) -> bool:
    """Whether a refund carrying this event's marker already landed (after a crash before _finish)."""
    with engine.connect() as c:
        hit = c.execute(
            select(Audit.id).where(
                Audit.action == "refund",
                Audit.actor == ACTOR,
                Audit.reason.startswith(_marker(event_id) + ":", autoescape=True),
            )
        ).first()
    return hit is not None


def _apply(
    engine: Engine,
    ev: Envelope,
    what: LineIn | RefundIn | CancelIn,
    key: bytes | None,
    secret: str,
    now: float,
    default_tz: str = DEFAULT_TIMEZONE,
) -> dict[str, Any]:
    if isinstance(what, LineIn):
        return _apply_line(engine, ev, what, key, secret, now, default_tz)
    reason = f"{_marker(ev.id)}: {what.reason}"
    if isinstance(what, RefundIn):
        if _refunded_by(engine, ev.id):
            return {"code": what.code, "recovered": True}
        return adjust.refund(SqlDatabase(engine), what.code, what.units, ACTOR, reason)
    return adjust.cancel(SqlDatabase(engine), what.code, ACTOR, reason)


def handle(
    engine: Engine,
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
    before = stored(engine, ev.id)
    if before is not None:
        return {"duplicate": True, "result": before}
    what = validate(ev)
    again = _claim(engine, ev, what.code, now)
    if again is not None:
        return {"duplicate": True, "result": again}
    try:
        result = _apply(engine, ev, what, key, secret, time.time(), default_tz)
    except HexiaoError as err:
        # Refused: nothing changed. Any other exception leaves the claim in place, because whether the change
        # landed is unknown; a delivery after CLAIM_TIMEOUT_S finds out (the line's code, _refunded_by).
        _finish(engine, ev.id, "failed", None, f"{err.code}: {err.message}")
        raise
    _finish(engine, ev.id, "done", result, None)
    return {"duplicate": False, "result": result}
