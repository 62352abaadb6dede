# Applies a batch of requests inside one transaction: dedupe, decide, version-checked update, record.
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway import hotsql
from gateway.contract import Verdict
from gateway.db.models import Device, Order, Redemption, Site
from gateway.rules import Ask, Decision, OrderView, decide, system_denial
from gateway.validity import day_key

log = logging.getLogger(__name__)

ANNUL_WINDOW_S = 120.0


@dataclass(frozen=True, slots=True)
class Request:
    """One request from a device scan or the console, addressed by (device, sid)."""

    device: str
    sid: str
    code: str
    qty: int
    direction: str
    device_time: float | None
    op: str = "redeem"
    amt: int | None = None
    ref: str | None = None
    user: str | None = None
    pin: str | None = None


@dataclass(frozen=True, slots=True)
class Place:
    """Where a request is made: the device's site and gate, and the site's time zone."""

    site_id: int | None
    gate: str
    tz: tzinfo
    user: str | None = None  # the verifier signed in on the device, if any


class LostRace(Exception):
    """Another writer changed an order between our read and our update; redo the batch."""


def idem_key(device: str, sid: str) -> str:
    return f"{device}/{sid}"


def verdict_of(sid: str, d: Decision) -> Verdict:
    return Verdict(sid, d.ok, d.reason, d.l1, d.l2, d.detail, d.sound, d.left, d.extra)


ORDER_COLS = (
    Order.id,
    Order.code,
    Order.title,
    Order.quantity,
    Order.used,
    Order.refunded,
    Order.status,
    Order.site_id,
    Order.valid_from,
    Order.valid_until,
    Order.last_used_at,
    Order.last_used_gate,
    Order.kind,
    Order.rules,
    Order.day_key,
    Order.day_used,
    Order.inside,
    Order.inside_site_id,
    Order.version,
)


def load_orders(conn: Connection, codes: set[str], ids: set[int] | None = None) -> dict[str, OrderView]:
    """Orders by code (a short manual-entry code finds its order too); keys are what was asked for."""
    out: dict[str, OrderView] = {}
    if codes:
        for t in hotsql.select_orders(conn, list(codes)):
            out[t[1]] = OrderView(*t)
        missing = {c.replace("-", "").upper() for c in codes if c not in out}
        if missing:
            rows = conn.execute(
                select(Order.short_code, *ORDER_COLS).where(Order.short_code.in_(missing))
            ).all()
            by_short = {r[0]: OrderView(*r[1:]) for r in rows}
            for c in codes:
                v = by_short.get(c.replace("-", "").upper())
                if c not in out and v is not None:
                    out[c] = v
    if ids:
        for r in conn.execute(select(*ORDER_COLS).where(Order.id.in_(ids))):
            out.setdefault(r.code, OrderView(*r))
    return out


def stored_verdicts(conn: Connection, keys: Sequence[str]) -> dict[str, str]:
    if not keys:
        return {}
    return hotsql.select_verdicts(conn, list(keys))


def _refs(conn: Connection, keys: list[str]) -> dict[str, Any]:
    if not keys:
        return {}
    cols = (
        Redemption.idem_key,
        Redemption.id,
        Redemption.order_id,
        Redemption.qty,
        Redemption.ok,
        Redemption.op,
        Redemption.undone,
        Redemption.server_time,
        Redemption.direction,
    )
    return {r.idem_key: r for r in conn.execute(select(*cols).where(Redemption.idem_key.in_(keys)))}


def after(order: OrderView, d: Decision, place: Place, now: float) -> OrderView:
    """The order once decision `d` is applied (units, per-day counter, entry state)."""
    changes: dict[str, Any] = {}
    if d.consume:
        today = day_key(now, place.tz)
        changes.update(
            used=order.used + d.consume,
            last_used_at=now,
            last_used_gate=place.gate,
            day_key=today,
            day_used=(order.day_used if order.day_key == today else 0) + d.consume,
        )
    if d.inside is not None:
        changes.update(inside=d.inside, inside_site_id=place.site_id if d.inside else None)
    return replace(order, **changes) if changes else order


def undo(order: OrderView, units: int, was_entry: bool, now: float, tz: tzinfo) -> OrderView:
    """The order once a redemption of `units` is annulled or reverted: the units come back."""
    today = day_key(now, tz)
    day_used = max(0, order.day_used - units) if order.day_key == today else order.day_used
    inside = False if was_entry else order.inside
    return replace(
        order,
        used=order.used - units,
        day_used=day_used,
        inside=inside,
        inside_site_id=order.inside_site_id if inside else None,
    )


def annul_decision(ref: Any, now: float, window: float) -> Decision | None:
    """None when the referenced redemption may be annulled, else the refusal."""
    why = None
    if ref is None:
        why = "no such scan from this device"
    elif not ref.ok or ref.op not in ("redeem",):
        why = "that scan redeemed nothing"
    elif ref.undone:
        why = "already undone"
    elif now - ref.server_time > window:
        why = f"too late: annul within {int(window)} s"
    return None if why is None else system_denial("ANNUL_REFUSED", why)


def write_orders(conn: Connection, changed: dict[int, OrderView], versions: dict[int, int]) -> None:
    """Write the new state of every changed order, each only if its version is still the one we read.

    A row whose version moved was changed by another writer (another gateway process, a refund) after
    we read it: the update matches nothing, the total falls short, and the batch is redone.
    """
    if not changed:
        return
    rows = [
        (
            o.used,
            o.last_used_at,
            o.last_used_gate,
            o.day_key,
            o.day_used,
            o.inside,
            o.inside_site_id,
            versions[order_id] + 1,
            order_id,
            versions[order_id],
        )
        for order_id, o in changed.items()
    ]
    matched = hotsql.update_orders(conn, rows)
    if matched != len(rows):
        raise LostRace(f"{len(rows) - matched} order(s) changed under us")


def apply_batch(
    conn: Connection, items: Sequence[tuple[Request, Place]], now: float, annul_window: float = ANNUL_WINDOW_S
) -> list[Verdict]:
    """Decide every request of the batch in the caller's transaction and return verdicts in order.

    The caller commits, and publishes the verdicts only after that commit succeeds. Requests seen
    before (same device and sid, in an earlier batch or earlier in this one) get their stored verdict
    and change nothing. `check` requests change nothing and are not recorded. Raises LostRace when a
    concurrent writer changed an order we touch, and IntegrityError when it recorded the same sid.
    """
    keys = [idem_key(r.device, r.sid) for r, _ in items]
    seen = stored_verdicts(conn, keys)
    refs = _refs(conn, [idem_key(r.device, r.ref) for r, _ in items if r.op == "annul" and r.ref])
    found = load_orders(
        conn, {r.code for r, _ in items if r.code}, {x.order_id for x in refs.values() if x.order_id}
    )
    views = {o.id: o for o in found.values()}  # one current view per order, however it was named
    index = {k: o.id for k, o in found.items()}
    versions = {o.id: o.version for o in views.values()}
    changed: dict[int, OrderView] = {}
    undone: list[int] = []
    undone_keys: set[str] = set()
    new_rows: list[dict[str, Any]] = []
    out: list[Verdict] = []
    batch_verdicts: dict[str, Verdict] = {}
    for (req, place), key in zip(items, keys, strict=True):
        if key in batch_verdicts:
            out.append(batch_verdicts[key])
            continue
        if key in seen:
            v = Verdict.from_json(seen[key])
            batch_verdicts[key] = v
            out.append(v)
            continue
        order: OrderView | None
        ref_id = None
        units = 0
        if req.op == "annul":
            ref_key = idem_key(req.device, req.ref or "")
            ref = refs.get(ref_key)
            refusal = annul_decision(ref, now, annul_window)
            if refusal is None and ref_key in undone_keys:
                refusal = system_denial("ANNUL_REFUSED", "already undone")
            order = views.get(ref.order_id) if ref is not None and ref.order_id else None
            if refusal is not None or ref is None:
                d = refusal or system_denial("ANNUL_REFUSED", "no such scan")
            else:
                ref_id, units = ref.id, ref.qty
                if order is not None:
                    order = undo(order, units, ref.direction == "in", now, place.tz)
                    views[order.id] = changed[order.id] = order
                undone.append(ref.id)
                undone_keys.add(ref_key)
                left = order.left if order is not None else None
                d = Decision(
                    True,
                    "OK",
                    0,
                    left,
                    "ANNULLED",
                    f"{units} restored",
                    f"annulled, {units} restored",
                    "attention",
                )
        else:
            oid = index.get(req.code)
            order = views.get(oid) if oid is not None else None
            d = decide(
                order, Ask(req.op, req.qty, req.amt, req.direction), place.site_id, place.gate, now, place.tz
            )
            if d.ok and order is not None and (d.consume or d.inside is not None):
                order = after(order, d, place, now)
                views[order.id] = changed[order.id] = order
            units = d.consume if d.ok else (req.amt or req.qty)
        v = verdict_of(req.sid, d)
        batch_verdicts[key] = v
        out.append(v)
        if req.op == "check":
            continue
        new_rows.append(
            {
                "idem_key": key,
                "device": req.device,
                "scan_id": req.sid,
                "site_id": place.site_id,
                "gate": place.gate,
                "order_id": order.id if order is not None else None,
                "code": (order.code if order is not None else req.code)[:128],
                "qty": units,
                "direction": req.direction,
                "ok": d.ok,
                "reason": d.reason,
                "device_time": req.device_time,
                "server_time": now,
                "verdict": v.to_json(),
                "op": "annul" if req.op == "annul" else ("exit" if req.direction == "out" else "redeem"),
                "ref_id": ref_id,
                "undone": False,
                "user": req.user or place.user,
            }
        )
    write_orders(conn, changed, versions)
    if undone:
        res = conn.execute(
            update(Redemption)
            .where(Redemption.id.in_(undone), Redemption.undone.is_(False))
            .values(undone=True)
        )
        if res.rowcount != len(undone):
            raise LostRace("a redemption was undone concurrently")
    if new_rows:
        hotsql.insert_redemptions(conn, new_rows)
    return out


def load_place(conn: Connection, device: str, auto_site: str, now: float, default_tz: str) -> Place | None:
    """The device's site and gate; registers an unknown device at `auto_site` (None when refused)."""
    row = conn.execute(
        select(Device.site_id, Device.gate, Site.timezone, Device.user)
        .select_from(Device)
        .outerjoin(Site, Site.id == Device.site_id)
        .where(Device.device_id == device)
    ).first()
    if row is not None:
        return Place(row.site_id, row.gate or device, ZoneInfo(row.timezone or default_tz), row.user)
    if not auto_site:
        return None
    site = conn.execute(select(Site.id, Site.timezone).where(Site.slug == auto_site)).first()
    site_id, tz = (site.id, site.timezone) if site is not None else (None, default_tz)
    try:
        with conn.begin_nested():
            conn.execute(
                insert(Device).values(
                    device_id=device,
                    site_id=site_id,
                    gate=device,
                    mode="handheld",
                    online=False,
                    created_at=now,
                )
            )
    except IntegrityError:
        log.debug("device %s registered concurrently", device)
    log.info("registered new device %s at site %s", device, auto_site)
    return Place(site_id, device, ZoneInfo(tz))
