# The inbound shop events as validated input: the envelope, and each event type's payload model.
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.domain.errors import ValidationFailed
from gateway.services.orders import OrderIn

EventType = Literal["order.created", "order.paid", "order.refunded", "order.cancelled"]
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
