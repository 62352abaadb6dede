# Reports from the ledger: counts per site/gate/verifier/product/day, failed scans, settlement.
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, false, func, or_, select

from gateway.adapters.db.models import Order, Product, Redemption, Site
from gateway.domain.roles import Person

DIMENSIONS: dict[str, tuple[str, ...]] = {
    "site": ("site",),
    "gate": ("site", "gate"),  # gate names are per site: "Gate 1" at two sites are two gates
    "verifier": ("verifier",),
    "device": ("device",),  # the console's per-device table: people's redemptions show as `web-<name>`
    "product": ("product",),
    "day": ("day",),
}
COUNT_COLUMNS = ("redemptions", "units", "exits", "undone", "undone_units", "denials")
DAY_S = 86400.0
# A wall-clock time is an instant somewhere within this much of the same digits read as UTC (zones run
# from UTC-12 to UTC+14): the SQL filter widens by it, each row is then cut exactly in its own zone.
WALL_SLACK_S = 2 * DAY_S

Bound: TypeAlias = float | datetime
"""A report bound: Unix seconds (an instant, the same everywhere), or a naive datetime — a wall-clock time
that means each site's own zone (so "2026-03-29" starts at midnight in Berlin for Berlin's rows and at
midnight in Shanghai for Shanghai's)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which ledger rows a report covers: [since, until) (see Bound), and the sites one may see
    (`sites` None = all; `unsited` = also rows without a site)."""

    since: Bound | None = None
    until: Bound | None = None
    sites: frozenset[str] | None = None
    unsited: bool = True
    site: str | None = None  # one site asked for explicitly

    @classmethod
    def of(
        cls, who: Person, since: Bound | None = None, until: Bound | None = None, site: str | None = None
    ) -> Scope:
        """What `who` may see: their own sites' rows; rows without a site for managers and owners."""
        return cls(since, until, None if who.all_sites else who.sites, who.sees_site(None), site)


def _site_filter(q: Any, scope: Scope) -> Any:
    if scope.site is not None:
        q = q.where(Site.slug == scope.site)  # and still only within the sites one may see
    if scope.sites is not None:
        allowed = Site.slug.in_(sorted(scope.sites)) if scope.sites else false()
        return q.where(or_(allowed, Site.slug.is_(None)) if scope.unsited else allowed)
    return q


def _outer(b: Bound | None, widen: float) -> float | None:
    """An instant bound for SQL that surely contains every site's reading of `b` (exact cut: _Zones.inside)."""
    if b is None:
        return None
    if isinstance(b, datetime):
        return b.replace(tzinfo=ZoneInfo("UTC")).timestamp() + widen
    return b


def _site_columns() -> tuple[Any, Any]:
    return Site.slug.label("site"), Site.timezone.label("tz")


def _ledger(conn: Connection, scope: Scope) -> Iterator[Any]:
    q = (
        select(
            Redemption.server_time,
            Redemption.gate,
            Redemption.device,
            Redemption.user,
            Redemption.op,
            Redemption.ok,
            Redemption.undone,
            Redemption.qty,
            Redemption.reason,
            Redemption.order_id,
            *_site_columns(),
            Product.title.label("product_title"),
            Order.title.label("order_title"),
        )
        .select_from(Redemption)
        .outerjoin(Site, Site.id == Redemption.site_id)
        .outerjoin(Order, Order.id == Redemption.order_id)
        .outerjoin(Product, Product.id == Order.product_id)
    )
    since, until = _outer(scope.since, -WALL_SLACK_S), _outer(scope.until, WALL_SLACK_S)
    if since is not None:
        q = q.where(Redemption.server_time >= since)
    if until is not None:
        q = q.where(Redemption.server_time < until)
    q = _site_filter(q, scope).order_by(Redemption.id)
    yield from conn.execution_options(yield_per=2000).execute(q)


class _Zones:
    """The site's zone for each row (`default`, the TIMEZONE setting, for rows without a site), cached:
    building a ZoneInfo, or resolving a wall-clock bound, per row would dominate the report's time."""

    def __init__(self, default: str, scope: Scope | None = None) -> None:
        self.default = default
        self.cache: dict[str, ZoneInfo] = {}
        self.scope = scope or Scope()
        self.bounds: dict[str, tuple[float | None, float | None]] = {}

    def zone(self, name: str | None) -> ZoneInfo:
        key = name or self.default
        tz = self.cache.get(key)
        if tz is None:
            tz = self.cache[key] = ZoneInfo(key)
        return tz

    def day(self, at: float, name: str | None) -> str:
        """The local calendar date at the row's site: days are cut at that site's own midnight, which
        zoneinfo places correctly on the 23- and 25-hour days of a daylight-saving change."""
        return datetime.fromtimestamp(at, self.zone(name)).date().isoformat()

    def _instant(self, b: Bound | None, name: str | None) -> float | None:
        if b is None or not isinstance(b, datetime):
            return b
        return b.replace(tzinfo=self.zone(name)).timestamp()

    def inside(self, at: float, name: str | None) -> bool:
        """Whether `at` lies in the scope's [since, until), wall-clock bounds read in the row's zone."""
        key = name or self.default
        b = self.bounds.get(key)
        if b is None:
            b = self.bounds[key] = (
                self._instant(self.scope.since, name),
                self._instant(self.scope.until, name),
            )
        return (b[0] is None or at >= b[0]) and (b[1] is None or at < b[1])


def _key(r: Any, dims: tuple[str, ...], zones: _Zones) -> tuple[str, ...]:
    out = []
    for d in dims:
        if d == "site":
            out.append(r.site or "")
        elif d == "gate":
            out.append(r.gate or "")
        elif d == "verifier":
            out.append(r.user or r.device)
        elif d == "device":
            out.append(r.device)
        elif d == "product":
            out.append(r.product_title or r.order_title or "")
        else:
            out.append(zones.day(r.server_time, r.tz))
    return tuple(out)


def counts(engine: Engine, by: str, scope: Scope, default_tz: str) -> list[dict[str, Any]]:
    """Per `by` (see DIMENSIONS): successful redemptions and their units (annulled/reverted ones left
    out and counted as `undone`), exits, and denials (every refused request)."""
    dims = DIMENSIONS[by]
    zones = _Zones(default_tz, scope)
    acc: dict[tuple[str, ...], dict[str, int]] = {}
    with engine.connect() as c:
        for r in _ledger(c, scope):
            if r.ok and r.op not in ("redeem", "exit"):
                continue  # annul and revert rows: their effect shows as `undone` on the row they undo
            if not zones.inside(r.server_time, r.tz):
                continue
            a = acc.setdefault(_key(r, dims, zones), dict.fromkeys(COUNT_COLUMNS, 0))
            if not r.ok:
                a["denials"] += 1
            elif r.op == "exit":
                a["exits"] += 1
            elif r.undone:
                a["undone"] += 1
                a["undone_units"] += r.qty
            else:
                a["redemptions"] += 1
                a["units"] += r.qty
    return [dict(zip(dims, k, strict=True)) | v for k, v in sorted(acc.items())]


def failed(engine: Engine, scope: Scope, default_tz: str, by: str | None = None) -> list[dict[str, Any]]:
    """Refused requests per reason (and per `by`, when given): how many, units asked, first and last."""
    dims = (*DIMENSIONS[by], "reason") if by else ("reason",)
    zones = _Zones(default_tz, scope)
    acc: dict[tuple[str, ...], dict[str, Any]] = {}
    with engine.connect() as c:
        for r in _ledger(c, scope):
            if r.ok or not zones.inside(r.server_time, r.tz):
                continue
            k = (*_key(r, dims[:-1], zones), r.reason)
            a = acc.setdefault(k, {"count": 0, "units_asked": 0, "first_at": r.server_time, "last_at": 0.0})
            a["count"] += 1
            a["units_asked"] += r.qty
            a["last_at"] = max(a["last_at"], r.server_time)
    rows = [dict(zip(dims, k, strict=True)) | v for k, v in acc.items()]
    return sorted(rows, key=lambda x: (*(x[d] for d in dims[:-1]), -x["count"], x["reason"]))


# -- settlement ------------------------------------------------------------------------------------------
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
    zones = _Zones(default_tz, scope)
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
            *_site_columns(),
        )
        .select_from(Order)
        .outerjoin(Site, Site.id == Order.site_id)
    )
    # Every entry lies in [base, base + days]: orders wholly outside the range are not read at all.
    since, until = _outer(scope.since, -WALL_SLACK_S), _outer(scope.until, WALL_SLACK_S)
    if until is not None:
        q = q.where(base < until)
    if since is not None:
        q = q.where(base >= since - days * DAY_S)
    # Nothing was paid for an unpaid order (created by the shop, payment still to come): nothing settles.
    q = _site_filter(q, scope).where(Order.status != "unpaid").order_by(Order.id)
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
