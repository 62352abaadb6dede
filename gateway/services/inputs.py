# Strict input types for the HTTP edge: no coercion, no unknown fields, date-times as ISO-8601 text only.
from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, PlainValidator, StringConstraints

from gateway.domain.validity import DEFAULT_TIMEZONE as DEFAULT_TIMEZONE
from gateway.domain.validity import known_zone as known_zone

Sid = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,24}$")]
# Printable characters only: a control character in a code means the scanner or the wire garbled it.
Code = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]

# Years outside this range are typos, and near the ends of datetime's range converting a local time to
# an instant overflows (0001-01-01 at a site east of UTC is before year 1).
MIN_YEAR, MAX_YEAR = 1970, 9998


class StrictIn(BaseModel):
    """Base of every request body: `"1"` is not 1, `true` is not 1, and an unknown field (a typo such
    as `unit` for `units`) is an error instead of being ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _iso_datetime(v: object) -> datetime:
    if isinstance(v, datetime):  # Python callers (demo data, tests) pass datetimes directly
        d = v
    elif isinstance(v, str) and 10 <= len(v) <= 40:
        try:
            d = datetime.fromisoformat(v)
        except ValueError:
            raise ValueError("expected an ISO-8601 date-time such as 2026-05-01T09:00:00+08:00") from None
    else:
        # Numbers are refused on purpose: 0, 1.5 and "1" were all once taken as Unix seconds.
        raise ValueError("expected an ISO-8601 date-time string such as 2026-05-01T09:00:00+08:00")
    if not MIN_YEAR <= d.year <= MAX_YEAR:
        raise ValueError(f"the year must be between {MIN_YEAR} and {MAX_YEAR}")
    return d


# A naive value means the local time of the site it belongs to (see `to_ts`); with an offset, that instant.
IsoDateTime = Annotated[datetime, PlainValidator(_iso_datetime, json_schema_input_type=str)]


def to_ts(d: datetime | None, tz: str) -> float | None:
    """Unix seconds of `d`; a naive `d` is wall-clock time in the zone `tz` (the site's zone)."""
    if d is None:
        return None
    return (d if d.tzinfo is not None else d.replace(tzinfo=ZoneInfo(tz))).timestamp()
