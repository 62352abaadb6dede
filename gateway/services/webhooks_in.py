# Applies inbound shop events (order created/paid/refunded/cancelled) exactly once per event id.
from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import Audit, Order, Product, WebhookEvent
from gateway.domain.codes import ALPHABET, RANDOM_SYMBOLS, _sig
from gateway.domain.errors import Conflict, HexiaoError, ValidationFailed
from gateway.services import adjustments as adjust
from gateway.services.catalog import products_by_sku, ts
from gateway.services.inputs import DEFAULT_TIMEZONE
from gateway.services.orders import OrderIn, _row, site_ids, site_zones

ACTOR = "webhook"
CLAIM_TIMEOUT_S = 60.0  # a claim older than this belongs to a delivery that crashed mid-way
EventType = Literal["order.created", "order.paid", "order.refunded", "order.cancelled"]
UNPAID = "unpaid"  # an order the shop created but nobody paid for yet: the rules deny it (NOT_PAID)
# Every time a shop sends must lie in these years. Outside them it is a sentinel ("0001-01-01", a zero
# timestamp) or a typo, and converting it to a local date at a site far from UTC would overflow later,
# in every batch of scans that touches the order.
FIRST_YEAR, LAST_YEAR = 2000, 2099
MIN_TS = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC).timestamp() + 86400  # a day inside: any zone stays in range
MAX_TS = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC).timestamp() - 86400
LINE_RE = re.compile(r"^[\x21-\x7e]{1,64}$")
DATE_FIELDS = ("valid_from", "valid_until", "paid_at")


class Envelope(BaseModel):
    """The outer event. Unknown top-level fields are ignored: shop systems add their own."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")
    type: EventType
    created: float = Field(ge=MIN_TS, le=MAX_TS, allow_inf_nan=False, description="Unix seconds")
    data: dict[str, Any]


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=128)
    units: int | None = Field(default=None, ge=1, description="units to refund; absent = all unredeemed")
    reason: str = Field(default="", max_length=150)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=128)
    reason: str = Field(default="", max_length=150)


def _problem(err: ValidationError, prefix: str) -> ValidationFailed:
    problems = [
        {"field": ".".join([prefix, *map(str, e["loc"])]).strip("."), "error": e["msg"]} for e in err.errors()
    ]
    first = problems[0]
    return ValidationFailed(f"{first['field']}: {first['error']}", problems=problems)


def parse(body: bytes) -> Envelope:
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValidationFailed(f"the body is not JSON: {err}") from None
    if not isinstance(raw, dict):
        raise ValidationFailed("the body must be a JSON object")
    try:
        return Envelope.model_validate(raw)
    except ValidationError as err:
        raise _problem(err, "") from None


@dataclass(frozen=True, slots=True)
class LineIn:
    """An order line event: the order fields, plus the shop's line id (`line`) within `external_ref`."""

    order: OrderIn
    line: str | None

    @property
    def code(self) -> str | None:
        return self.order.code


def _line_of(data: dict[str, Any]) -> str | None:
    if "line" not in data:
        return None
    v = data.pop("line")
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**15:
        return str(v)
    if isinstance(v, str) and LINE_RE.match(v):
        return v
    raise ValidationFailed(
        "data.line: the shop's line id, 1-64 printable characters or a whole number",
        problems=[{"field": "data.line", "error": "expected 1-64 printable characters or a whole number"}],
    )


def _dates_in_range(o: OrderIn) -> None:
    """Refuse times outside FIRST_YEAR..LAST_YEAR, naming each field (checked on the wall-clock value, which
    needs no arithmetic and so cannot overflow whatever the offset)."""
    problems = [
        {"field": f"data.{name}", "error": f"must be a time in the years {FIRST_YEAR}-{LAST_YEAR}"}
        for name in DATE_FIELDS
        if (v := getattr(o, name)) is not None and not FIRST_YEAR <= v.year <= LAST_YEAR
    ]
    if problems:
        first = problems[0]
        raise ValidationFailed(f"{first['field']}: {first['error']}", problems=problems)


def _order_in(ev: Envelope) -> LineIn:
    data = dict(ev.data)
    line = _line_of(data)
    if ev.type == "order.paid" and data.get("paid_at") is None:
        # The event's own time is when the shop saw the payment (OrderIn takes date-times, not numbers).
        try:
            data["paid_at"] = datetime.fromtimestamp(ev.created, UTC)
        except (OverflowError, ValueError, OSError):
            raise ValidationFailed("created: not a usable Unix time", field="created") from None
    try:
        o = OrderIn.model_validate(data)
    except ValidationError as err:
        raise _problem(err, "data") from None
    _dates_in_range(o)
    return LineIn(o, line)


def validate(ev: Envelope) -> LineIn | RefundIn | CancelIn:
    """The event's data as the model its type needs; raises ValidationFailed naming the field."""
    if ev.type in ("order.created", "order.paid"):
        return _order_in(ev)
    model: type[RefundIn] | type[CancelIn] = RefundIn if ev.type == "order.refunded" else CancelIn
    try:
        return model.model_validate(ev.data)
    except ValidationError as err:
        raise _problem(err, "data") from None


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
    products = products_by_sku(c, {o.product} if o.product else set())
    # Naive times are local at the order's site (orders.py); without a site, the TIMEZONE setting.
    row = _row(o, site_ids(c), products, now, key, zone)
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
        zone = site_zones(c).get(o.site or "", default_tz)
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
        return adjust.refund(engine, what.code, what.units, ACTOR, reason)
    return adjust.cancel(engine, what.code, ACTOR, reason)


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
