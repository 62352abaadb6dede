# Applies inbound shop events (order created/paid/refunded/cancelled) exactly once per event id.
from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway import adjust
from gateway.db.engine import writer
from gateway.db.models import Audit, Order
from gateway.errors import Conflict, HexiaoError, ValidationFailed
from gateway.orders import OrderIn, create_orders
from gateway.products import ts
from gateway.webhooks.models import WebhookEvent

ACTOR = "webhook"
CLAIM_TIMEOUT_S = 60.0  # a claim older than this belongs to a delivery that crashed mid-way
EventType = Literal["order.created", "order.paid", "order.refunded", "order.cancelled"]


class Envelope(BaseModel):
    """The outer event. Unknown top-level fields are ignored: shop systems add their own."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")
    type: EventType
    created: float = Field(ge=0)
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


def _order_in(ev: Envelope) -> OrderIn:
    data = dict(ev.data)
    if ev.type == "order.paid" and data.get("paid_at") is None:
        # The event's own time is when the shop saw the payment (OrderIn takes date-times, not numbers).
        try:
            data["paid_at"] = datetime.fromtimestamp(ev.created, UTC)
        except (OverflowError, ValueError, OSError):
            raise ValidationFailed("created: not a usable Unix time", field="created") from None
    try:
        return OrderIn.model_validate(data)
    except ValidationError as err:
        raise _problem(err, "data") from None


def validate(ev: Envelope) -> OrderIn | RefundIn | CancelIn:
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


def _existing(engine: Engine, o: OrderIn) -> str | None:
    """The code of the order this event names, if it exists already (by code or the shop's reference)."""
    conds = []
    if o.code:
        conds.append(Order.code == o.code)
    if o.external_ref:
        conds.append(Order.external_ref == o.external_ref)
    if not conds:
        return None
    with engine.connect() as c:
        return c.execute(select(Order.code).where(or_(*conds)).order_by(Order.id).limit(1)).scalar()


def _set_paid(engine: Engine, code: str, paid_at: float) -> None:
    with engine.connect() as c, writer(c).begin():
        # Bumps `version` like every order change, so a concurrent version-checked writer redoes its step.
        c.execute(update(Order).where(Order.code == code).values(paid_at=paid_at, version=Order.version + 1))


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
    engine: Engine, ev: Envelope, what: OrderIn | RefundIn | CancelIn, key: bytes | None
) -> dict[str, Any]:
    if isinstance(what, OrderIn):
        code = _existing(engine, what)
        if code is None:
            code = create_orders(engine, [what], key)[0]
            return {"code": code, "created": True}
        if ev.type == "order.paid" and what.paid_at is not None:
            _set_paid(engine, code, ts(what.paid_at) or time.time())
        return {"code": code, "created": False}
    reason = f"{_marker(ev.id)}: {what.reason}"
    if isinstance(what, RefundIn):
        if _refunded_by(engine, ev.id):
            return {"code": what.code, "recovered": True}
        return adjust.refund(engine, what.code, what.units, ACTOR, reason)
    return adjust.cancel(engine, what.code, ACTOR, reason)


def handle(engine: Engine, ev: Envelope, key: bytes | None, now: float) -> dict[str, Any]:
    """Apply one verified event. Returns {"duplicate": bool, "result": ...}; raises HexiaoError when the
    event is refused (nothing changed, and the same id may be sent again once the cause is fixed)."""
    before = stored(engine, ev.id)
    if before is not None:
        return {"duplicate": True, "result": before}
    what = validate(ev)
    again = _claim(engine, ev, what.code, now)
    if again is not None:
        return {"duplicate": True, "result": again}
    try:
        result = _apply(engine, ev, what, key)
    except HexiaoError as err:
        # Refused: nothing changed. Any other exception leaves the claim in place, because whether the change
        # landed is unknown; a delivery after CLAIM_TIMEOUT_S finds out (_existing, _refunded_by) and finishes.
        _finish(engine, ev.id, "failed", None, f"{err.code}: {err.message}")
        raise
    _finish(engine, ev.id, "done", result, None)
    return {"duplicate": False, "result": result}
