# REST edge of the reports (/api/reports/...): counts, failed scans, settlement, each as JSON or CSV.
from __future__ import annotations

import csv
import io
import math
import time
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gateway.domain.errors import ValidationFailed
from gateway.domain.roles import Person
from gateway.entrypoints.http.auth import caller, require_site
from gateway.services import reports
from gateway.services import settlement as settlement_report
from gateway.services.inputs import MAX_YEAR, MIN_YEAR

MAX_SECONDS = 95_617_584_000.0  # the year 5000


# -- CSV -------------------------------------------------------------------------------------------------
def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return buf.getvalue()


SETTLEMENT_COLUMNS = [
    "date",
    "state",
    "kind",
    "units",
    "cause",
    "code",
    "title",
    "site",
    "paid_at",
    "due_at",
    "at",
]


def count_columns(by: str) -> list[str]:
    return [*reports.DIMENSIONS[by], *reports.COUNT_COLUMNS]


def failed_columns(by: str | None) -> list[str]:
    dims = [*reports.DIMENSIONS[by], "reason"] if by else ["reason"]
    return [*dims, "count", "units_asked", "first_at", "last_at"]


router = APIRouter(prefix="/api/reports", tags=["reports"])
Dimension = Literal["site", "gate", "verifier", "product", "day"]


class Range(BaseModel):
    since: str | None = Field(
        default=None,
        max_length=40,
        description="start (inclusive): YYYY-MM-DD or an ISO date-time without offset (both in each site's "
        "own zone), an ISO date-time with offset, or Unix seconds",
    )
    until: str | None = Field(default=None, max_length=40, description="end (exclusive), same forms")
    tz: str | None = Field(
        default=None,
        max_length=64,
        description="zone of the rows without a site (default: the TIMEZONE setting)",
    )
    site: str | None = Field(default=None, max_length=32, description="only this site")


def parse_when(text: str | None, name: str) -> reports.Bound | None:
    """A bound: Unix seconds or a date-time with offset are one instant; a bare date (its midnight) or a
    date-time without offset is a wall-clock time, read in each row's site zone (reports.Bound)."""
    if text is None or not text.strip():
        return None
    t = text.strip()
    try:
        v = float(t)
    except ValueError:
        pass
    else:
        # NaN, infinity and times past the year 5000 are never a real bound (and overflow date arithmetic).
        if not math.isfinite(v) or not 0 <= v <= MAX_SECONDS:
            raise ValidationFailed(
                f"{name}: must be a finite number of Unix seconds (0 to {MAX_SECONDS:.0f})", field=name
            )
        return v
    try:
        if len(t) == 10:
            d = date.fromisoformat(t)
            if not MIN_YEAR <= d.year <= MAX_YEAR:
                raise ValueError(t)
            return datetime(d.year, d.month, d.day)
        dt = datetime.fromisoformat(t)
        if not MIN_YEAR <= dt.year <= MAX_YEAR:
            # Near the ends of datetime's range a shift into a site's zone overflows.
            raise ValueError(t)
    except ValueError:
        raise ValidationFailed(
            f"{name}: expected YYYY-MM-DD, an ISO date-time or Unix seconds (years {MIN_YEAR}-{MAX_YEAR})",
            field=name,
        ) from None
    return dt.timestamp() if dt.tzinfo else dt


def _order_key(b: reports.Bound, tz: ZoneInfo) -> float:
    # Only to check that until comes after since: a wall-clock bound read in the default zone.
    return b.replace(tzinfo=tz).timestamp() if isinstance(b, datetime) else b


def _scope(request: Request, rng: Range, who: Person) -> tuple[reports.Scope, str]:
    tz_name = rng.tz or request.app.state.rt.settings.timezone
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"tz: unknown time zone {tz_name!r}", field="tz") from None
    since = parse_when(rng.since, "since")
    until = parse_when(rng.until, "until")
    if since is not None and until is not None and _order_key(until, tz) <= _order_key(since, tz):
        raise ValidationFailed("until must be after since", field="until")
    if rng.site is not None:
        require_site(who, rng.site)
    return reports.Scope.of(who, since, until, rng.site), tz_name


Viewer = Annotated[Person, Depends(caller("supervisor"))]
Manager = Annotated[Person, Depends(caller("manager"))]


def _csv(body: str, name: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/counts")
def counts(
    request: Request, who: Viewer, rng: Annotated[Range, Query()], by: Dimension = "site"
) -> dict[str, Any]:
    """Redemptions and units (annulled/reverted ones left out, shown as `undone`), exits and denials."""
    scope, tz = _scope(request, rng, who)
    return {"by": by, "rows": reports.counts(request.app.state.rt.db, by, scope, tz)}


@router.get("/counts.csv")
def counts_csv(
    request: Request, who: Viewer, rng: Annotated[Range, Query()], by: Dimension = "site"
) -> Response:
    scope, tz = _scope(request, rng, who)
    rows = reports.counts(request.app.state.rt.db, by, scope, tz)
    return _csv(to_csv(rows, count_columns(by)), f"counts-by-{by}")


@router.get("/failed")
def failed(
    request: Request, who: Viewer, rng: Annotated[Range, Query()], by: Dimension | None = None
) -> dict[str, Any]:
    """Refused scans per reason (and per site/gate/verifier/product/day with `by`)."""
    scope, tz = _scope(request, rng, who)
    return {"by": by, "rows": reports.failed(request.app.state.rt.db, scope, tz, by)}


@router.get("/failed.csv")
def failed_csv(
    request: Request, who: Viewer, rng: Annotated[Range, Query()], by: Dimension | None = None
) -> Response:
    scope, tz = _scope(request, rng, who)
    rows = reports.failed(request.app.state.rt.db, scope, tz, by)
    return _csv(to_csv(rows, failed_columns(by)), "failed-scans")


def _settlement(request: Request, who: Person, rng: Range, days: int | None) -> dict[str, Any]:
    scope, tz = _scope(request, rng, who)
    n = days if days is not None else request.app.state.rt.settings.reports.settle_days
    s = settlement_report.settlement(request.app.state.rt.db, scope, time.time(), n, tz)
    return settlement_report.settlement_view(s)


@router.get("/settlement")
def settlement(
    request: Request,
    who: Manager,
    rng: Annotated[Range, Query()],
    days: Annotated[int | None, Query(ge=0, le=3650, description="override SETTLE_DAYS")] = None,
) -> dict[str, Any]:
    """Units settled by now and pending (with the date each settles) for settlements in [since, until)."""
    return _settlement(request, who, rng, days)


@router.get("/settlement.csv")
def settlement_csv(
    request: Request,
    who: Manager,
    rng: Annotated[Range, Query()],
    days: Annotated[int | None, Query(ge=0, le=3650)] = None,
) -> Response:
    view = _settlement(request, who, rng, days)
    return _csv(to_csv(view["lines"], SETTLEMENT_COLUMNS), "settlement")
