# Settlement: when each sold unit settles (redeemed, or unredeemed N days after payment), per kind.
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.services.ports.database import Database
from gateway.services.ports.reports import SoldOrder
from gateway.services.reports import DAY_S, WALL_SLACK_S, Scope, Zones, outer_bound

# The rule merchants know: a redeemed unit settles when it is redeemed; a unit still unredeemed N days
# after payment settles then (paid_at, else created_at, + N x 24 h); refunded units and cancelled orders
# never settle. Redemptions that were annulled or reverted settle nothing. A unit redeemed after the
# due date already settled at the due date. The report reflects the ledger as it is now.


@dataclass
class Entry:
    code: str
    title: str
    site: str | None
    kind: str
    paid_at: float
    due_at: float
    cause: str  # redeemed | unredeemed
    units: int
    at: float
    date: str = ""
    state: str = ""


@dataclass
class Settlement:
    days: int
    now: float
    lines: list[Entry] = field(default_factory=list)
    never: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> refunded / cancelled units


def order_entries(o: SoldOrder, redeemed: Iterable[tuple[float, int]], days: int) -> list[Entry]:
    """The settlement entries of one order (pure): one per redemption before the due date, one for the rest."""
    base = o.paid_at if o.paid_at is not None else o.created_at
    due = base + days * DAY_S
    out: list[Entry] = []
    if o.status == "cancelled":
        return out
    early = 0
    for at, units in sorted(redeemed):
        if at < due and units > 0:
            out.append(Entry(o.code, o.title, o.site, o.kind, base, due, "redeemed", units, at))
            early += units
    rest = o.quantity - o.refunded - early
    if rest > 0:
        out.append(Entry(o.code, o.title, o.site, o.kind, base, due, "unredeemed", rest, due))
    return out


def settlement(db: Database, scope: Scope, now: float, days: int, default_tz: str) -> Settlement:
    """Entries whose settlement time falls in [since, until): settled (at <= now) or pending (later)."""
    out = Settlement(days, now)
    zones = Zones(default_tz, scope)
    # Every entry lies in [base, base + days]: orders wholly outside the range are not read at all.
    since, until = outer_bound(scope.since, -WALL_SLACK_S), outer_bound(scope.until, WALL_SLACK_S)
    start = None if since is None else since - days * DAY_S
    # `sold` leaves unpaid orders out (created by the shop, payment still to come): nothing settles.
    with db.read() as tx:
        orders = tx.reports.sold(start, until, scope.visible)
        reds = tx.reports.standing_units([o.id for o in orders])
    for o in orders:
        never = out.never.setdefault(o.kind, {"refunded": 0, "cancelled": 0})
        if o.status == "cancelled":
            never["cancelled"] += o.quantity - o.refunded
        never["refunded"] += o.refunded
        for e in order_entries(o, reds.get(o.id, []), days):
            if zones.inside(e.at, o.tz):
                e.date = zones.day(e.at, o.tz)
                e.state = "settled" if e.at <= now else "pending"
                out.lines.append(e)
    out.lines.sort(key=lambda e: (e.at, e.code))
    return out


def settlement_view(s: Settlement) -> dict[str, Any]:
    """Totals per kind (units of different kinds are never added up: cents are not tickets)."""
    totals: dict[str, dict[str, int]] = {}
    by_date: dict[tuple[str, str], dict[str, int]] = {}
    for e in s.lines:
        t = totals.setdefault(e.kind, {"settled": 0, "pending": 0})
        t[e.state] += e.units
        d = by_date.setdefault((e.date, e.kind), {"settled": 0, "pending": 0})
        d[e.state] += e.units
    for kind, never in s.never.items():
        totals.setdefault(kind, {"settled": 0, "pending": 0}).update(
            refunded_never=never["refunded"], cancelled_never=never["cancelled"]
        )
    return {
        "days": s.days,
        "now": s.now,
        "totals": totals,
        "by_date": [{"date": d, "kind": k} | v for (d, k), v in sorted(by_date.items())],
        "lines": [vars(e) for e in s.lines],
    }
