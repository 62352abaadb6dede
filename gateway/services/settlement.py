# Settlement: when each sold unit settles (redeemed, or unredeemed N days after payment), per kind.
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from gateway.adapters.db.models import Order, Redemption, Site
from gateway.services.reports import DAY_S, WALL_SLACK_S, Scope, Zones, outer_bound, site_columns, site_filter

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


def order_entries(o: Any, redeemed: Iterable[tuple[float, int]], days: int) -> list[Entry]:
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


def settlement(engine: Engine, scope: Scope, now: float, days: int, default_tz: str) -> Settlement:
    """Entries whose settlement time falls in [since, until): settled (at <= now) or pending (later)."""
    out = Settlement(days, now)
    zones = Zones(default_tz, scope)
    base = func.coalesce(Order.paid_at, Order.created_at)
    q = (
        select(
            Order.id,
            Order.code,
            Order.title,
            Order.kind,
            Order.quantity,
            Order.refunded,
            Order.status,
            Order.paid_at,
            Order.created_at,
            *site_columns(),
        )
        .select_from(Order)
        .outerjoin(Site, Site.id == Order.site_id)
    )
    # Every entry lies in [base, base + days]: orders wholly outside the range are not read at all.
    since, until = outer_bound(scope.since, -WALL_SLACK_S), outer_bound(scope.until, WALL_SLACK_S)
    if until is not None:
        q = q.where(base < until)
    if since is not None:
        q = q.where(base >= since - days * DAY_S)
    # Nothing was paid for an unpaid order (created by the shop, payment still to come): nothing settles.
    q = site_filter(q, scope).where(Order.status != "unpaid").order_by(Order.id)
    with engine.connect() as c:
        orders = list(c.execute(q))
        reds: dict[int, list[tuple[float, int]]] = {}
        ids = [o.id for o in orders]
        for i in range(0, len(ids), 500):
            rows = c.execute(
                select(Redemption.order_id, Redemption.server_time, Redemption.qty).where(
                    Redemption.order_id.in_(ids[i : i + 500]),
                    Redemption.ok.is_(True),
                    Redemption.op == "redeem",
                    Redemption.undone.is_(False),
                )
            )
            for r in rows:
                reds.setdefault(int(r.order_id), []).append((r.server_time, r.qty))
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
