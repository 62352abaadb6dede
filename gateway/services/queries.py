# Read-only queries behind the console pages: today's counters, recent scans, order search, report tables.
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.domain.codes import normalize_short
from gateway.domain.roles import Person
from gateway.services import reports
from gateway.services.ports.database import Database
from gateway.services.ports.queries import Queries, Seen, Since


def _visible(q: Queries, person: Person) -> tuple[Seen, dict[int, str], dict[int, ZoneInfo]]:
    """(the rows the person may see, id→slug of every site, id→zone of every site: every rule and every
    report day is the site's own zone). Managers and owners also see rows without a site."""
    sites = q.sites()
    slugs = {i: slug for i, slug, _ in sites}
    zones = {i: ZoneInfo(tz) for i, _, tz in sites}
    if person.all_sites:
        return (None, True), slugs, zones
    return ([i for i, s in slugs.items() if s in person.sites], person.at_least("manager")), slugs, zones


def midnight(tz: ZoneInfo, now: float | None = None) -> float:
    d = datetime.fromtimestamp(time.time() if now is None else now, tz)
    return d.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def local_midnight(tz: ZoneInfo, day: date) -> float:
    """The instant a calendar day starts in `tz` (zoneinfo: right on both sides of a DST change)."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def _zone_groups(zones: dict[int, ZoneInfo]) -> dict[str, tuple[ZoneInfo, list[int]]]:
    groups: dict[str, tuple[ZoneInfo, list[int]]] = {}
    for sid, tz in zones.items():
        groups.setdefault(tz.key, (tz, []))[1].append(sid)
    return groups


def _since_local(zones: dict[int, ZoneInfo], fallback: ZoneInfo, day: Any) -> list[Since]:
    """Rows from the start of `day` (a date, or a function of a zone giving one) at the row's own site:
    one start per zone in use; rows without a site use `fallback` (the TIMEZONE setting)."""

    def start(tz: ZoneInfo) -> float:
        return local_midnight(tz, day(tz) if callable(day) else day)

    starts: list[Since] = [(ids, start(tz)) for tz, ids in _zone_groups(zones).values()]
    starts.append((None, start(fallback)))
    return starts


def today_counters(db: Database, person: Person, tz: ZoneInfo, now: float | None = None) -> dict[str, Any]:
    """Today's counts per gate, where "today" is the local day at each gate's site (`tz`, the TIMEZONE
    setting, only for rows without a site)."""
    at = time.time() if now is None else now
    with db.read() as tx:
        seen, slugs, zones = _visible(tx.queries, person)
        since = _since_local(zones, tz, lambda z: datetime.fromtimestamp(at, z).date())
        rows = tx.queries.gate_counts(since, at, seen)
        counts = tx.checkouts.inside()
    gates = [
        {
            "site": slugs.get(r["site_id"]) if r["site_id"] else None,
            "gate": r["gate"],
            "ok": r["ok"],
            "units": r["units"],
            "denied": r["denied"],
        }
        for r in rows
    ]
    inside = {slug: counts.get(slug, 0) for slug in sorted(slugs.values()) if person.sees_site(slug)}
    return {"gates": gates, "inside": inside}


def recent(db: Database, person: Person, limit: int = 50, device: str | None = None) -> list[dict[str, Any]]:
    with db.read() as tx:
        seen, _, _ = _visible(tx.queries, person)
        rows = tx.queries.recent(limit, device, seen)
    out = []
    for r in rows:
        v = json.loads(r["verdict"])
        out.append(
            {
                **r,
                "detail": v.get("detail", ""),
                "sound": v.get("sound"),
                "l1": v.get("l1", ""),
                "l2": v.get("l2", ""),
            }
        )
    return out


# What the order search shows of each order.
FOUND_FIELDS = (
    "code",
    "title",
    "quantity",
    "used",
    "refunded",
    "status",
    "site_id",
    "external_ref",
    "created_at",
)


def search_orders(
    db: Database, person: Person, q: str, status: str = "", limit: int = 50
) -> list[dict[str, Any]]:
    with db.read() as tx:
        seen, slugs, _ = _visible(tx.queries, person)
        rows = tx.queries.find_orders(FOUND_FIELDS, q, normalize_short(q) if q else "", status, limit, seen)
    return [
        {
            **r,
            "site": slugs.get(r["site_id"]) if r["site_id"] else None,
            "left": max(0, r["quantity"] - r["used"] - r["refunded"]),
        }
        for r in rows
    ]


def report(
    db: Database, person: Person, tz: ZoneInfo, days: int, site: str | None, now: float | None = None
) -> dict[str, Any]:
    """The console's report tables from the report engine (services/reports.py, the /api/reports numbers):
    counts over the last `days` calendar days by day, site, device (verifiers are `web-<name>`) and product,
    and failed scans by reason. The days are the dates of `tz` (the TIMEZONE setting) up to today; each
    site's rows are cut at that date's midnight in the site's own zone and counted on their local date, so
    a day with a daylight-saving change has its 23 or 25 hours. Returns `since` (the first day's midnight
    in `tz`), `since_local` (that midnight as a naive wall-clock time, a reports.Bound) and `scope` (the period and sites, for the page's other report tables)."""
    at = time.time() if now is None else now
    today = datetime.fromtimestamp(at, tz).date()
    first = today - timedelta(days=days - 1)
    # Up to and including `now`: the next float after it is the exclusive end.
    since = datetime(first.year, first.month, first.day)  # a wall-clock bound: each site's own midnight
    scope = reports.Scope.of(person, since, math.nextafter(at, math.inf), site)

    def table(by: str, label: Callable[[str], str] = lambda k: k) -> list[dict[str, Any]]:
        rows = [
            {"k": label(r[by]), "ok": r["redemptions"], "units": r["units"], "denied": r["denials"]}
            for r in reports.counts(db, by, scope, tz.key)
        ]
        return sorted(rows, key=lambda r: (-r["units"], str(r["k"])))

    by_day = {date.fromisoformat(r["k"]): r for r in table("day")}
    # A site east of `tz` may already be on tomorrow's date: that date gets its own bar.
    last = max([today, *by_day])
    daily = []
    for i in range((last - first).days + 1):
        d = first + timedelta(days=i)
        counts = by_day.get(d, {"ok": 0, "units": 0, "denied": 0})
        daily.append(
            {
                "k": d.strftime("%m-%d"),
                "ok": counts["ok"],
                "units": counts["units"],
                "denied": counts["denied"],
            }
        )
    return {
        "since": local_midnight(tz, first),
        "since_local": since,
        "scope": scope,
        "daily": daily,
        "sites": table("site", lambda k: k or "—"),
        "devices": table("device"),
        "products": table("product", lambda k: k or "—"),
        "reasons": [{"k": r["reason"], "n": r["count"]} for r in reports.failed(db, scope, tz.key)],
    }


def history(db: Database, code: str, limit: int = 200) -> list[dict[str, Any]]:
    """An order's ledger lines, newest first, with what a supervisor needs to revert one."""
    with db.read() as tx:
        return tx.queries.history(code, limit)


def redemption_site(db: Database, redemption_id: int) -> tuple[bool, str | None]:
    """Whether the redemption exists, and the slug of the site it happened at."""
    with db.read() as tx:
        return tx.queries.redemption_site(redemption_id)


def redemption_code(db: Database, redemption_id: int) -> str | None:
    with db.read() as tx:
        return tx.queries.redemption_code(redemption_id)
