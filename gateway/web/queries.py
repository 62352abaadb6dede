# Read-only queries behind the console pages: today's counters, fleet, order search, report tables.
from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Integer, case, cast, func, or_, select

from gateway.auth.roles import Person
from gateway.checkout import inside_now
from gateway.codes import normalize_short
from gateway.db.models import Order, Redemption, Site
from gateway.devices import list_devices

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


def today_counters(engine: Engine, person: Person, tz: ZoneInfo) -> dict[str, Any]:
    since = midnight(tz)
    with engine.connect() as c:
        ids, slugs = _visible_site_ids(c, person)
        q = (
            select(
                Redemption.site_id,
                Redemption.gate,
                func.sum(case((STANDING, 1), else_=0)).label("ok"),
                func.sum(case((STANDING, Redemption.qty), else_=0)).label("units"),
                func.sum(case((DENIED, 1), else_=0)).label("denied"),
            )
            .where(Redemption.server_time >= since)
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
    counts = inside_now(engine)
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


def devices(engine: Engine, person: Person, device: str | None = None) -> list[dict[str, Any]]:
    with engine.connect() as c:
        ids, _ = _visible_site_ids(c, person)
    rows = list_devices(
        engine, site_ids=ids, unplaced=ids is None or person.at_least("manager"), device=device
    )
    fields = ("fw", "board", "rssi", "heap", "outbox", "ip", "up")
    return [
        {
            **{k: v for k, v in r.items() if k != "status"},
            "online": bool(r["online"]),
            **{f: (r["status"] or {}).get(f) for f in fields},
        }
        for r in rows
    ]


def search_orders(
    engine: Engine, person: Person, q: str, status: str = "", limit: int = 50
) -> list[dict[str, Any]]:
    with engine.connect() as c:
        ids, slugs = _visible_site_ids(c, person)
        stmt = select(
            Order.code,
            Order.title,
            Order.quantity,
            Order.used,
            Order.refunded,
            Order.status,
            Order.site_id,
            Order.external_ref,
            Order.created_at,
        ).order_by(Order.id.desc())
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


def report(engine: Engine, person: Person, tz: ZoneInfo, days: int, site: str | None) -> dict[str, Any]:
    """Counts over the last `days` local days, grouped by day, site, device (verifiers are `web-<name>`),
    product and failure reason. Days are cut at the console time zone's current UTC offset."""
    since = midnight(tz) - (days - 1) * 86400
    offset = datetime.now(tz).utcoffset() or timedelta(0)
    day = cast(func.floor((Redemption.server_time + offset.total_seconds()) / 86400), Integer)
    ok_n = func.sum(case((STANDING, 1), else_=0))
    units = func.sum(case((STANDING, Redemption.qty), else_=0))
    denied = func.sum(case((DENIED, 1), else_=0))
    with engine.connect() as c:
        ids, slugs = _visible_site_ids(c, person)

        def run(*cols: Any, by: Any, join_order: bool = False, failed_only: bool = False) -> list[Any]:
            q = select(*cols).select_from(Redemption).where(Redemption.server_time >= since)
            if join_order:
                q = q.outerjoin(Order, Order.id == Redemption.order_id)
            if site:
                q = q.where(Redemption.site_id == next((i for i, s in slugs.items() if s == site), -1))
            if failed_only:
                q = q.where(Redemption.ok.is_(False))
            q = _scope(q, Redemption.site_id, ids, person).group_by(by)
            return list(c.execute(q).all())

        def counts(key: Any, **kw: Any) -> list[Any]:
            return run(
                key.label("k"), ok_n.label("ok"), units.label("units"), denied.label("denied"), by=key, **kw
            )

        per_day = counts(day)
        per_site = counts(Redemption.site_id)
        per_device = counts(Redemption.device)
        per_product = counts(Order.title, join_order=True)
        reasons = run(
            Redemption.reason.label("k"), func.count().label("n"), by=Redemption.reason, failed_only=True
        )

    def rows(rs: list[Any], label: Any = lambda k: k) -> list[dict[str, Any]]:
        out = [{"k": label(r.k), "ok": r.ok or 0, "units": r.units or 0, "denied": r.denied or 0} for r in rs]
        return sorted(out, key=lambda r: (-r["units"], str(r["k"])))

    by_day = {int(r.k): r for r in per_day}
    first = int((since + offset.total_seconds()) // 86400)
    daily = []
    for i in range(days):
        r = by_day.get(first + i)
        label = datetime.fromtimestamp((first + i) * 86400 - offset.total_seconds() + 1, tz).strftime("%m-%d")
        daily.append(
            {"k": label, "ok": r.ok if r else 0, "units": r.units if r else 0, "denied": r.denied if r else 0}
        )
    return {
        "since": since,
        "daily": daily,
        "sites": rows(per_site, lambda k: slugs.get(k, "—") if k else "—"),
        "devices": rows(per_device),
        "products": rows(per_product, lambda k: k or "—"),
        "reasons": sorted(({"k": r.k, "n": r.n} for r in reasons), key=lambda r: -r["n"]),
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


def redemption_code(engine: Engine, redemption_id: int) -> str | None:
    with engine.connect() as c:
        code: str | None = c.execute(select(Redemption.code).where(Redemption.id == redemption_id)).scalar()
    return code
