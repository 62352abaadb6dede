# Reports from the ledger: counts per site/gate/verifier/device/product/day, failed scans (settlement.py: settlement).
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from gateway.domain.roles import Person
from gateway.services.ports.database import Database
from gateway.services.ports.reports import LedgerLine, Reports, Visible

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

    @property
    def visible(self) -> Visible:
        """The sites part, as the repository reads it."""
        return self.site, self.sites, self.unsited


def outer_bound(b: Bound | None, widen: float) -> float | None:
    """An instant bound for SQL that surely contains every site's reading of `b` (exact cut: Zones.inside)."""
    if b is None:
        return None
    if isinstance(b, datetime):
        return b.replace(tzinfo=ZoneInfo("UTC")).timestamp() + widen
    return b


def _ledger(reports: Reports, scope: Scope) -> Iterator[LedgerLine]:
    since, until = outer_bound(scope.since, -WALL_SLACK_S), outer_bound(scope.until, WALL_SLACK_S)
    return reports.lines(since, until, scope.visible)


class Zones:
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


def _key(r: LedgerLine, dims: tuple[str, ...], zones: Zones) -> tuple[str, ...]:
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


def counts(db: Database, by: str, scope: Scope, default_tz: str) -> list[dict[str, Any]]:
    """Per `by` (see DIMENSIONS): successful redemptions and their units (annulled/reverted ones left
    out and counted as `undone`), exits, and denials (every refused request)."""
    dims = DIMENSIONS[by]
    zones = Zones(default_tz, scope)
    acc: dict[tuple[str, ...], dict[str, int]] = {}
    with db.read() as tx:
        for r in _ledger(tx.reports, scope):
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


def failed(db: Database, scope: Scope, default_tz: str, by: str | None = None) -> list[dict[str, Any]]:
    """Refused requests per reason (and per `by`, when given): how many, units asked, first and last."""
    dims = (*DIMENSIONS[by], "reason") if by else ("reason",)
    zones = Zones(default_tz, scope)
    acc: dict[tuple[str, ...], dict[str, Any]] = {}
    with db.read() as tx:
        for r in _ledger(tx.reports, scope):
            if r.ok or not zones.inside(r.server_time, r.tz):
                continue
            k = (*_key(r, dims[:-1], zones), r.reason)
            a = acc.setdefault(k, {"count": 0, "units_asked": 0, "first_at": r.server_time, "last_at": 0.0})
            a["count"] += 1
            a["units_asked"] += r.qty
            a["last_at"] = max(a["last_at"], r.server_time)
    rows = [dict(zip(dims, k, strict=True)) | v for k, v in acc.items()]
    return sorted(rows, key=lambda x: (*(x[d] for d in dims[:-1]), -x["count"], x["reason"]))
