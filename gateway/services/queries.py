# Read-only queries behind the console pages: today's counters, recent scans, order search, report tables.
from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, case, func, or_, select

from gateway.adapters.db.models import Order, Redemption, Site
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.sites import site_of
from gateway.domain.codes import normalize_short
from gateway.domain.roles import Person
from gateway.services import reports
from gateway.services.auto_checkout import inside_now

# What counts: a redemption that still stands (not annulled or reverted). Annul/revert lines themselves are
# bookkeeping and count neither as redeemed nor as denied; exits are recorded with op "exit".
STANDING = Redemption.ok & (Redemption.op == "redeem") & Redemption.undone.is_(False)
DENIED = Redemption.ok.is_(False)


def _visible_site_ids(conn: Any, person: Person) -> tuple[list[int] | None, dict[int, str]]:
    """(ids the person may see or None for all, id→slug of every site)."""
    slugs = dict(conn.execute(select(Site.id, Site.slug)).all())
    if person.all_sites:
        return None, slugs
    return [i for i, s in slugs.items() if s in person.sites], slugs


def _scope(q: Any, col: Any, ids: list[int] | None, person: Person) -> Any:
    if ids is None:
        return q
    if person.at_least("manager"):
        return q.where(or_(col.in_(ids), col.is_(None)))
    return q.where(col.in_(ids))


def midnight(tz: ZoneInfo, now: float | None = None) -> float:
    d = datetime.fromtimestamp(time.time() if now is None else now, tz)
    return d.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def local_midnight(tz: ZoneInfo, day: date) -> float:
    """The instant a calendar day starts in `tz` (zoneinfo: right on both sides of a DST change)."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def site_zones(conn: Connection) -> dict[int, ZoneInfo]:
    """Each site's own zone, by site id: every rule and every report day is the site's zone."""
    return {sid: ZoneInfo(name) for sid, name in conn.execute(select(Site.id, Site.timezone))}


def _zone_groups(zones: dict[int, ZoneInfo]) -> dict[str, tuple[ZoneInfo, list[int]]]:
    groups: dict[str, tuple[ZoneInfo, list[int]]] = {}
    for sid, tz in zones.items():
        groups.setdefault(tz.key, (tz, []))[1].append(sid)
    return groups


def _since_local(zones: dict[int, ZoneInfo], fallback: ZoneInfo, day: Any) -> Any:
    """Rows from the start of `day` (a date, or a function of a zone giving one) at the row's own site:
    one condition per zone in use; rows without a site use `fallback` (the TIMEZONE setting)."""

    def start(tz: ZoneInfo) -> float:
        return local_midnight(tz, day(tz) if callable(day) else day)

    conds = [
        and_(Redemption.site_id.in_(ids), Redemption.server_time >= start(tz))
        for tz, ids in _zone_groups(zones).values()
    ]
    conds.append(and_(Redemption.site_id.is_(None), Redemption.server_time >= start(fallback)))
    return or_(*conds)


def today_counters(engine: Engine, person: Person, tz: ZoneInfo, now: float | None = None) -> dict[str, Any]:
    """Today's counts per gate, where "today" is the local day at each gate's site (`tz`, the TIMEZONE
    setting, only for rows without a site)."""
    at = time.time() if now is None else now
    with engine.connect() as c:
        ids, slugs = _visible_site_ids(c, person)
        since = _since_local(site_zones(c), tz, lambda z: datetime.fromtimestamp(at, z).date())
        q = (
            select(
                Redemption.site_id,
                Redemption.gate,
                func.sum(case((STANDING, 1), else_=0)).label("ok"),
                func.sum(case((STANDING, Redemption.qty), else_=0)).label("units"),
                func.sum(case((DENIED, 1), else_=0)).label("denied"),
            )
            .where(since, Redemption.server_time <= at)
            .group_by(Redemption.site_id, Redemption.gate)
            .order_by(Redemption.site_id, Redemption.gate)
        )
        rows = c.execute(_scope(q, Redemption.site_id, ids, person)).all()
    gates = [
        {
            "site": slugs.get(r.site_id) if r.site_id else None,
            "gate": r.gate,
            "ok": r.ok,
            "units": r.units,
            "denied": r.denied,
        }
        for r in rows
    ]
    counts = inside_now(SqlDatabase(engine))
    inside = {slug: counts.get(slug, 0) for slug in sorted(slugs.values()) if person.sees_site(slug)}
    return {"gates": gates, "inside": inside}


def recent(
    engine: Engine, person: Person, limit: int = 50, device: str | None = None
) -> list[dict[str, Any]]:
    with engine.connect() as c:
        ids, _ = _visible_site_ids(c, person)
        q = (
            select(
                Redemption.server_time.label("t"),
                Redemption.device,
                Site.slug.label("site"),
                Redemption.gate,
                Redemption.code,
                Redemption.qty,
                Redemption.ok,
                Redemption.reason,
                Redemption.verdict,
                Redemption.user,
            )
            .select_from(Redemption)
            .outerjoin(Site, Site.id == Redemption.site_id)
            .order_by(Redemption.id.desc())
            .limit(limit)
        )
        if device:
            q = q.where(Redemption.device == device)
        rows = c.execute(_scope(q, Redemption.site_id, ids, person)).all()
    import json

    out = []
    for r in rows:
        v = json.loads(r.verdict)
        out.append(
            {
                **dict(r._mapping),
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
    engine: Engine, person: Person, q: str, status: str = "", limit: int = 50
) -> list[dict[str, Any]]:
    with engine.connect() as c:
        ids, slugs = _visible_site_ids(c, person)
        stmt = select(*(Order.__table__.c[f] for f in FOUND_FIELDS)).order_by(Order.id.desc())
        if q:
            like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(
                or_(
                    Order.code.like(like, escape="\\"),
                    Order.title.like(like, escape="\\"),
                    Order.external_ref.like(like, escape="\\"),
                    Order.short_code == normalize_short(q),
                )
            )
        if status:
            stmt = stmt.where(Order.status == status)
        rows = c.execute(_scope(stmt, Order.site_id, ids, person).limit(limit)).all()
    return [
        {
            **dict(r._mapping),
            "site": slugs.get(r.site_id) if r.site_id else None,
            "left": max(0, r.quantity - r.used - r.refunded),
        }
        for r in rows
    ]


def report(
    engine: Engine, person: Person, tz: ZoneInfo, days: int, site: str | None, now: float | None = None
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
    db = SqlDatabase(engine)

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


def history(engine: Engine, code: str, limit: int = 200) -> list[dict[str, Any]]:
    """An order's ledger lines, newest first, with what a supervisor needs to revert one."""
    with engine.connect() as c:
        rows = c.execute(
            select(
                Redemption.id,
                Redemption.server_time,
                Redemption.device,
                Site.slug.label("site"),
                Redemption.gate,
                Redemption.qty,
                Redemption.direction,
                Redemption.ok,
                Redemption.reason,
                Redemption.op,
                Redemption.undone,
                Redemption.user,
            )
            .select_from(Redemption)
            .outerjoin(Site, Site.id == Redemption.site_id)
            .where(Redemption.code == code)
            .order_by(Redemption.id.desc())
            .limit(limit)
        ).all()
    return [dict(r._mapping) for r in rows]


def redemption_site(engine: Engine, redemption_id: int) -> tuple[bool, str | None]:
    """Whether the redemption exists, and the slug of the site it happened at."""
    with engine.connect() as c:
        return site_of(c, Redemption.site_id, Redemption.id == redemption_id)


def redemption_code(engine: Engine, redemption_id: int) -> str | None:
    with engine.connect() as c:
        code: str | None = c.execute(select(Redemption.code).where(Redemption.id == redemption_id)).scalar()
    return code
